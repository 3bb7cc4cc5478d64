//! [`Measured<T>`]: a value, or `null` with the reason it could not be measured.
//!
//! The contract says a run never claims a number it did not measure: a metric it could not
//! measure is `null` with a reason, never 0 and never a guess. In JSON a metric `x` is two
//! fields side by side, `x` (the value, or `null`) and `x_null_reason` (`null`, or why `x`
//! is). In Rust it is one [`Measured`] field, serialized to those two fields by a module that
//! [`measured_fields!`](crate::measured_fields) generates for each field name:
//!
//! ```ignore
//! #[serde(flatten, with = "fields::latency_us")]
//! pub latency_us: Measured<Percentiles>,
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The reason of a metric a reader found neither measured nor explained (an older or
/// hand-edited file).
pub const NOT_RECORDED: &str = "not recorded";

/// A measured value, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured<T> {
    Value(T),
    Null(String),
}

impl<T> Measured<T> {
    /// Not measured, because `reason`.
    pub fn null(reason: impl Into<String>) -> Measured<T> {
        Measured::Null(reason.into())
    }

    /// From a reader's pair of fields: the value wins when present; with neither, the reason
    /// is [`NOT_RECORDED`].
    pub fn from_parts(value: Option<T>, null_reason: Option<String>) -> Measured<T> {
        match (value, null_reason) {
            (Some(v), _) => Measured::Value(v),
            (None, Some(reason)) => Measured::Null(reason),
            (None, None) => Measured::null(NOT_RECORDED),
        }
    }

    /// `value` when there is one, else null because `reason()`.
    pub fn from_option(value: Option<T>, reason: impl FnOnce() -> String) -> Measured<T> {
        match value {
            Some(v) => Measured::Value(v),
            None => Measured::Null(reason()),
        }
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Measured::Value(v) => Some(v),
            Measured::Null(_) => None,
        }
    }

    pub fn into_value(self) -> Option<T> {
        match self {
            Measured::Value(v) => Some(v),
            Measured::Null(_) => None,
        }
    }

    pub fn null_reason(&self) -> Option<&str> {
        match self {
            Measured::Value(_) => None,
            Measured::Null(reason) => Some(reason),
        }
    }
}

impl<T> From<Result<T, String>> for Measured<T> {
    fn from(result: Result<T, String>) -> Measured<T> {
        match result {
            Ok(v) => Measured::Value(v),
            Err(reason) => Measured::Null(reason),
        }
    }
}

/// Writes `measured` as the two map entries `value_key` and `reason_key` (used through
/// `#[serde(flatten)]`, so they land among the enclosing struct's fields).
pub fn serialize_pair<T, S>(
    measured: &Measured<T>,
    value_key: &'static str,
    reason_key: &'static str,
    serializer: S,
) -> Result<S::Ok, S::Error>
where
    T: Serialize,
    S: Serializer,
{
    let mut map = serializer.serialize_map(Some(2))?;
    match measured {
        Measured::Value(v) => {
            map.serialize_entry(value_key, v)?;
            map.serialize_entry(reason_key, &None::<String>)?;
        }
        Measured::Null(reason) => {
            map.serialize_entry(value_key, &None::<T>)?;
            map.serialize_entry(reason_key, reason)?;
        }
    }
    map.end()
}

/// Reads the two entries `keys[0]` (value) and `keys[1]` (reason), leaving every other field
/// to the enclosing struct. Missing entries read as `null` (as a missing `Option` field does).
pub fn deserialize_pair<'de, T, D>(
    keys: &'static [&'static str; 2],
    deserializer: D,
) -> Result<Measured<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    struct PairVisitor<T> {
        keys: &'static [&'static str; 2],
        marker: PhantomData<T>,
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for PairVisitor<T> {
        type Value = Measured<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "the fields {} and {}", self.keys[0], self.keys[1])
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Measured<T>, A::Error> {
            let mut value: Option<T> = None;
            let mut reason: Option<String> = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == self.keys[0] {
                    value = map.next_value::<Option<T>>()?;
                } else if key == self.keys[1] {
                    reason = map.next_value::<Option<String>>()?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Measured::from_parts(value, reason))
        }
    }

    deserializer
        .deserialize_struct(
            "Measured",
            keys,
            PairVisitor {
                keys,
                marker: PhantomData,
            },
        )
        .map_err(|e: D::Error| de::Error::custom(format!("{}: {e}", keys[0])))
}

/// Generates, for each `name => "value_key", "reason_key"`, a module `name` with the
/// `serialize` / `deserialize` pair `#[serde(flatten, with = "...::name")]` needs. The short
/// form `name` uses `"name"` and `"name_null_reason"`.
#[macro_export]
macro_rules! measured_fields {
    ($($name:ident $(=> $value_key:literal, $reason_key:literal)?),* $(,)?) => {$(
        pub mod $name {
            use $crate::results::measured::{deserialize_pair, serialize_pair, Measured};

            const KEYS: &[&str; 2] = &$crate::measured_fields!(@keys $name $(=> $value_key, $reason_key)?);

            pub fn serialize<T: serde::Serialize, S: serde::Serializer>(
                measured: &Measured<T>,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                serialize_pair(measured, KEYS[0], KEYS[1], serializer)
            }

            // A struct that is only ever written (sweep.json) uses `serialize` alone.
            #[allow(dead_code)]
            pub fn deserialize<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Measured<T>, D::Error> {
                deserialize_pair(KEYS, deserializer)
            }
        }
    )*};
    (@keys $name:ident) => {
        [stringify!($name), concat!(stringify!($name), "_null_reason")]
    };
    (@keys $name:ident => $value_key:literal, $reason_key:literal) => {
        [$value_key, $reason_key]
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    mod fields {
        crate::measured_fields! {
            latency_us,
            total => "total", "null_reason",
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        before: u32,
        #[serde(flatten, with = "fields::latency_us")]
        latency_us: Measured<f64>,
        #[serde(flatten, with = "fields::total")]
        total: Measured<u64>,
        after: u32,
    }

    #[test]
    fn a_value_serializes_as_the_value_and_a_null_reason() {
        let doc = Doc {
            before: 1,
            latency_us: Measured::Value(2.5),
            total: Measured::null("perf_event_open: EACCES"),
            after: 3,
        };
        let json = serde_json::to_string(&doc).expect("serializes");
        assert_eq!(
            json,
            r#"{"before":1,"latency_us":2.5,"latency_us_null_reason":null,"total":null,"null_reason":"perf_event_open: EACCES","after":3}"#
        );
        assert_eq!(serde_json::from_str::<Doc>(&json).expect("reads back"), doc);
    }

    #[test]
    fn missing_fields_read_as_not_recorded() {
        let doc: Doc = serde_json::from_str(r#"{"before":1,"after":2}"#).expect("reads");
        assert_eq!(doc.latency_us, Measured::null(NOT_RECORDED));
        assert_eq!(doc.total.null_reason(), Some(NOT_RECORDED));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error_naming_the_field() {
        let err = serde_json::from_str::<Doc>(
            r#"{"before":1,"latency_us":"fast","latency_us_null_reason":null,"after":2}"#,
        )
        .expect_err("a string is not a number");
        assert!(err.to_string().contains("latency_us"), "{err}");
    }
}
