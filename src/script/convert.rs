//! JSON ↔ Rhai values, losslessly: objects ↔ maps, arrays ↔ arrays, integers stay integers,
//! `null` ↔ `()`.

use rhai::{Array, Dynamic, Map};
use serde_json::{Number, Value};

/// Converts JSON into a Rhai value.
pub fn json_to_dynamic(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            // Integers beyond i64 (rare: u64 counters) and fractions become floats.
            None => n.as_f64().unwrap_or(f64::NAN).into(),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => items.iter().map(json_to_dynamic).collect::<Array>().into(),
        Value::Object(map) => object_to_map(map).into(),
    }
}

/// Converts a JSON object into a Rhai map.
pub fn object_to_map(map: &serde_json::Map<String, Value>) -> Map {
    map.iter()
        .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
        .collect()
}

/// Converts a Rhai value into JSON; `Err` names the value that has no JSON form.
pub fn dynamic_to_json(value: &Dynamic) -> Result<Value, String> {
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Some(b) = value.clone().try_cast::<bool>() {
        return Ok(Value::Bool(b));
    }
    if let Some(i) = value.clone().try_cast::<rhai::INT>() {
        return Ok(Value::Number(i.into()));
    }
    if let Some(f) = value.clone().try_cast::<rhai::FLOAT>() {
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} has no JSON form (NaN or infinite)"));
    }
    if value.is_string() {
        return Ok(Value::String(value.to_string()));
    }
    if let Some(c) = value.clone().try_cast::<char>() {
        return Ok(Value::String(c.to_string()));
    }
    if value.is_array() {
        let items = value
            .read_lock::<Array>()
            .map(|a| a.clone())
            .unwrap_or_default();
        return items
            .iter()
            .map(dynamic_to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if value.is_map() {
        let map = value
            .read_lock::<Map>()
            .map(|m| m.clone())
            .unwrap_or_default();
        return map_to_object(&map).map(Value::Object);
    }
    if value.is_blob() {
        let blob = value
            .read_lock::<rhai::Blob>()
            .map(|b| b.clone())
            .unwrap_or_default();
        return Ok(Value::Array(blob.into_iter().map(Value::from).collect()));
    }
    Err(format!(
        "a {} has no JSON form; use its to_map() or one of its attributes",
        value.type_name()
    ))
}

/// Converts a Rhai map into a JSON object.
pub fn map_to_object(map: &Map) -> Result<serde_json::Map<String, Value>, String> {
    map.iter()
        .map(|(k, v)| {
            dynamic_to_json(v)
                .map(|j| (k.to_string(), j))
                .map_err(|e| format!("in key '{k}': {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn ints_stay_ints_and_null_is_unit() {
        let v = json!({"a": 1, "b": 1.5, "c": null, "d": [true, "x"], "e": {"f": -7}});
        let d = json_to_dynamic(&v);
        let m = d.clone().cast::<Map>();
        assert!(m["a"].is_int());
        assert!(m["b"].is_float());
        assert!(m["c"].is_unit());
        assert_eq!(dynamic_to_json(&d).expect("back"), v);
    }

    #[test]
    fn nan_has_no_json_form() {
        assert!(dynamic_to_json(&Dynamic::from_float(f64::NAN)).is_err());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            (-1.0e9f64..1.0e9).prop_map(|f| json!(f)),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(".*", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn json_round_trips_through_rhai(v in arb_json()) {
            prop_assert_eq!(dynamic_to_json(&json_to_dynamic(&v)).expect("convertible"), v);
        }
    }
}
