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

/// How deeply JSON may nest, both ways: `parse_json` (serde_json's own limit) and `to_json`
/// accept the same documents, and no conversion recurses deep enough to endanger the stack.
pub const MAX_JSON_DEPTH: usize = 127;

/// Converts a Rhai value into JSON; `Err` names the value that has no JSON form. Linear in the
/// value's size: containers are read in place, never copied.
pub fn dynamic_to_json(value: &Dynamic) -> Result<Value, String> {
    to_json_at(value, 1)
}

fn to_json_at(value: &Dynamic, depth: usize) -> Result<Value, String> {
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::Number(i.into()));
    }
    if let Ok(f) = value.as_float() {
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} has no JSON form (NaN or infinite)"));
    }
    if value.is_string() {
        return Ok(Value::String(value.to_string()));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    let nested = value.is_array() || value.is_map() || value.is_blob();
    if nested && depth > MAX_JSON_DEPTH {
        return Err(format!(
            "the value nests deeper than {MAX_JSON_DEPTH} arrays or maps, more than JSON documents may (parse_json refuses them too)"
        ));
    }
    if let Some(items) = value.read_lock::<Array>() {
        return items
            .iter()
            .map(|item| to_json_at(item, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(map) = value.read_lock::<Map>() {
        return map_at(&map, depth).map(Value::Object);
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return Ok(Value::Array(blob.iter().map(|b| Value::from(*b)).collect()));
    }
    Err(format!(
        "a {} has no JSON form; use its to_map() or one of its attributes",
        super::options::script_type_name(value.type_name())
    ))
}

/// Converts a Rhai map into a JSON object.
pub fn map_to_object(map: &Map) -> Result<serde_json::Map<String, Value>, String> {
    map_at(map, 1)
}

fn map_at(map: &Map, depth: usize) -> Result<serde_json::Map<String, Value>, String> {
    map.iter()
        .map(|(k, v)| {
            to_json_at(v, depth + 1)
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

    /// `[[[...]]]` nested `depth` arrays deep.
    fn nested(depth: usize) -> Dynamic {
        let mut value = Dynamic::from_array(Array::new());
        for _ in 1..depth {
            value = Dynamic::from_array(vec![value]);
        }
        value
    }

    #[test]
    fn to_json_and_parse_json_agree_on_depth() {
        let deepest = dynamic_to_json(&nested(MAX_JSON_DEPTH)).expect("at the limit");
        let text = serde_json::to_string(&deepest).expect("text");
        serde_json::from_str::<Value>(&text).expect("serde_json parses what to_json writes");
        let too_deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        assert!(serde_json::from_str::<Value>(&too_deep).is_err());
        let refused = dynamic_to_json(&nested(MAX_JSON_DEPTH + 1)).expect_err("past the limit");
        assert!(refused.contains("deeper than 127"), "{refused}");
    }

    #[test]
    fn deep_values_are_refused_without_copying() {
        // Depth 4,000 took 3.8 s and 516 MB when each level copied the one below.
        let started = std::time::Instant::now();
        assert!(dynamic_to_json(&nested(4_000)).is_err());
        assert!(started.elapsed() < std::time::Duration::from_millis(200));
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
