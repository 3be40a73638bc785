//! Options maps (`#{wait: true, timeout: 10}`), read strictly: an unknown key or a wrong type is
//! an `InvalidArgument` that names the call, the key and what was expected.

use rhai::{Dynamic, Map};

use super::errors::{RhaiResultOf, invalid_argument};

/// One options map, checked against the keys a call takes.
pub struct Options<'a> {
    call: &'a str,
    map: Map,
}

impl<'a> Options<'a> {
    /// Checks `map` against `allowed` for the call named `call` (e.g. `"Instance.start"`).
    pub fn new(call: &'a str, map: Map, allowed: &[&str]) -> RhaiResultOf<Self> {
        let unknown: Vec<&str> = map
            .keys()
            .map(|k| k.as_str())
            .filter(|k| !allowed.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(invalid_argument(format!(
                "{call}: unknown option{} {}; expected one of: {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", "),
                allowed.join(", ")
            )));
        }
        Ok(Options { call, map })
    }

    fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    fn wrong(&self, key: &str, expected: &str, got: &Dynamic) -> Box<rhai::EvalAltResult> {
        invalid_argument(format!(
            "{}: option '{key}' must be {expected}, not {}",
            self.call,
            got.type_name()
        ))
    }

    /// A bool option.
    pub fn bool(&self, key: &str) -> RhaiResultOf<Option<bool>> {
        self.get(key)
            .map(|v| v.as_bool().map_err(|_| self.wrong(key, "a bool", v)))
            .transpose()
    }

    /// An integer option.
    pub fn int(&self, key: &str) -> RhaiResultOf<Option<i64>> {
        self.get(key)
            .map(|v| v.as_int().map_err(|_| self.wrong(key, "an integer", v)))
            .transpose()
    }

    /// A number of seconds (int or float).
    pub fn seconds(&self, key: &str) -> RhaiResultOf<Option<f64>> {
        self.get(key)
            .map(|v| seconds(v).ok_or_else(|| self.wrong(key, "a number of seconds", v)))
            .transpose()
    }

    /// A string option.
    pub fn string(&self, key: &str) -> RhaiResultOf<Option<String>> {
        self.get(key)
            .map(|v| {
                v.clone()
                    .into_string()
                    .map_err(|_| self.wrong(key, "a string", v))
            })
            .transpose()
    }

    /// An array-of-strings option.
    pub fn strings(&self, key: &str) -> RhaiResultOf<Option<Vec<String>>> {
        self.get(key)
            .map(|v| strings(v).ok_or_else(|| self.wrong(key, "an array of strings", v)))
            .transpose()
    }

    /// A map option.
    pub fn map(&self, key: &str) -> RhaiResultOf<Option<Map>> {
        self.get(key)
            .map(|v| {
                v.clone()
                    .try_cast::<Map>()
                    .ok_or_else(|| self.wrong(key, "a map", v))
            })
            .transpose()
    }
}

/// A non-negative number of seconds from an int or a float.
pub fn seconds(v: &Dynamic) -> Option<f64> {
    let s = v
        .as_int()
        .map(|i| i as f64)
        .or_else(|_| v.as_float())
        .ok()?;
    (s.is_finite() && s >= 0.0).then_some(s)
}

/// An array of strings.
pub fn strings(v: &Dynamic) -> Option<Vec<String>> {
    let items = v.clone().try_cast::<rhai::Array>()?;
    items.into_iter().map(|i| i.into_string().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    #[test]
    fn unknown_keys_are_named_with_the_allowed_ones() {
        let err = Options::new(
            "Instance.start",
            map(&[("wiat", true.into())]),
            &["wait", "force"],
        )
        .err()
        .expect("unknown key");
        let text = err.to_string();
        assert!(
            text.contains("wiat") && text.contains("wait, force"),
            "{text}"
        );
    }

    #[test]
    fn wrong_types_are_named() {
        let o = Options::new("f", map(&[("wait", "yes".into())]), &["wait"]).expect("ok");
        let text = o.bool("wait").expect_err("wrong type").to_string();
        assert!(text.contains("'wait' must be a bool"), "{text}");
    }

    proptest::proptest! {
        /// Option maps of any keys and value types are accepted or refused, never a panic.
        #[test]
        fn any_options_map_is_handled(keys in proptest::collection::vec("[a-z]{1,6}", 0..5), n in proptest::prelude::any::<i64>(), f in proptest::prelude::any::<f64>(), s in ".{0,10}") {
            let values = [Dynamic::from_int(n), Dynamic::from_float(f), Dynamic::from(s.clone()), Dynamic::UNIT, Dynamic::from(true)];
            let map: Map = keys.iter().enumerate().map(|(i, k)| (k.as_str().into(), values[i % values.len()].clone())).collect();
            if let Ok(o) = Options::new("t", map, &["wait", "timeout", "name", "a", "b"]) {
                let _ = (o.bool("wait"), o.int("timeout"), o.seconds("timeout"), o.string("name"), o.strings("a"), o.map("b"));
            }
            let _ = seconds(&values[(n.unsigned_abs() % 5) as usize]);
        }
    }

    #[test]
    fn seconds_accept_ints_and_floats_but_not_negatives() {
        assert_eq!(seconds(&Dynamic::from_int(2)), Some(2.0));
        assert_eq!(seconds(&Dynamic::from_float(0.5)), Some(0.5));
        assert_eq!(seconds(&Dynamic::from_int(-1)), None);
    }
}
