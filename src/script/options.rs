//! Options maps (`#{wait: true, timeout: 10}`), read strictly: an unknown key or a wrong type is
//! an `InvalidArgument` that names the call, the key and what was expected.

use std::time::Duration;

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
            describe_value(got)
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

    /// A number of seconds (int or float) as a duration, within [`MAX_SECONDS`].
    pub fn seconds(&self, key: &str) -> RhaiResultOf<Option<Duration>> {
        self.get(key)
            .map(|v| duration(v).map_err(|expected| self.wrong(key, expected, v)))
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

/// The longest duration a script or the command line may give, in seconds (about 31 years):
/// beyond it a deadline could overflow the clock, and nobody means it (leave a timeout out for
/// no limit).
pub const MAX_SECONDS: f64 = 1e9;

/// What a number of seconds must be, for error messages.
pub const SECONDS_EXPECTED: &str =
    "a number of seconds from 0 to 1000000000 (leave a timeout out for no limit)";

/// A duration from a number of seconds, or what it must be instead.
pub fn seconds_to_duration(secs: f64) -> Result<Duration, &'static str> {
    if (0.0..=MAX_SECONDS).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(SECONDS_EXPECTED)
    }
}

/// A duration from a script's int or float number of seconds, or what it must be instead.
pub fn duration(v: &Dynamic) -> Result<Duration, &'static str> {
    let secs = v
        .as_int()
        .map(|i| i as f64)
        .or_else(|_| v.as_float())
        .map_err(|_| SECONDS_EXPECTED)?;
    seconds_to_duration(secs)
}

/// A script value as an error message shows it: a number or bool itself, anything else by its
/// script type name (`string`, `int`, `map`; never a Rust type's).
pub fn describe_value(v: &Dynamic) -> String {
    if v.is_int() || v.is_float() || v.is_bool() {
        return v.to_string();
    }
    script_type_name(v.type_name()).to_owned()
}

/// The name a script knows a type by: `int` for `i64`, `string` for Rhai's string types, the
/// last path segment of a registered Rust type.
pub fn script_type_name(rust_name: &str) -> &str {
    match rust_name {
        "i64" => "int",
        "f64" => "float",
        "&str" | "ImmutableString" | "String" | "string" => "string",
        "()" => "()",
        other => other.rsplit("::").next().unwrap_or(other),
    }
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
            let _ = duration(&values[(n.unsigned_abs() % 5) as usize]);
        }
    }

    #[test]
    fn seconds_accept_ints_and_floats_but_not_negatives_or_huge() {
        assert_eq!(duration(&Dynamic::from_int(2)), Ok(Duration::from_secs(2)));
        assert_eq!(
            duration(&Dynamic::from_float(0.5)),
            Ok(Duration::from_millis(500))
        );
        for bad in [-1.0, 1e300, f64::NAN, f64::INFINITY, MAX_SECONDS * 2.0] {
            assert_eq!(
                duration(&Dynamic::from_float(bad)),
                Err(SECONDS_EXPECTED),
                "{bad}"
            );
        }
        assert_eq!(
            duration(&Dynamic::from_int(i64::MAX)),
            Err(SECONDS_EXPECTED)
        );
    }

    #[test]
    fn wrong_values_are_shown_as_scripts_know_them() {
        let o = Options::new(
            "f",
            map(&[("timeout", Dynamic::from_int(-1))]),
            &["timeout"],
        )
        .expect("ok");
        let text = o.seconds("timeout").expect_err("negative").to_string();
        assert!(text.contains("from 0 to 1000000000"), "{text}");
        assert!(text.contains("not -1\""), "{text}");
        let o = Options::new("f", map(&[("wait", Dynamic::from_int(3))]), &["wait"]).expect("ok");
        let text = o.bool("wait").expect_err("int").to_string();
        assert!(text.contains("must be a bool, not 3"), "{text}");
    }
}
