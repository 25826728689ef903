//! [`Strict`]: a serde deserializer over a parsed JSON value that refuses a JSON array wherever
//! a struct is expected, and otherwise reads the value exactly as `serde_json::Value` does.
//!
//! serde's derive accepts a struct's fields as a positional array, so without it
//! `"inference_options": [null, null]` or `"params": ["thr_1"]` was a valid request. The
//! reference (pydantic) refuses both, and so does the OpenAPI document; schemathesis found them
//! accepted. Wrapping the value rather than each type keeps every request type derived.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// A JSON value to deserialize with arrays refused for structs, at any depth.
pub struct Strict(pub Value);

impl<'de> de::Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Fields {
                entries: map.into_iter(),
                value: None,
            }),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
            other => Strict(other).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Only unit variants (`"asc"`, `"positive"`) are read in requests: no nested struct.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Fields {
    entries: <Map<String, Value> as IntoIterator>::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for Fields {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Value::String(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a map value was read before its key"))?;
        seed.deserialize(Strict(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Inner {
        a: Option<i64>,
        #[serde(default)]
        b: Vec<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Outer {
        inner: Inner,
        free: Value,
        #[serde(default)]
        named: BTreeMap<String, Inner>,
    }

    fn read<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, String> {
        T::deserialize(Strict(value)).map_err(|e| e.to_string())
    }

    #[test]
    fn objects_read_as_serde_json_reads_them() {
        let value = json!({"inner": {"a": 1, "b": ["x"], "extra": [1]}, "free": [1, {"k": [2]}],
                           "named": {"n": {"a": null}}});
        let strict: Outer = read(value.clone()).expect("valid");
        let plain: Outer = serde_json::from_value(value).expect("valid");
        assert_eq!(strict, plain);
        assert_eq!(strict.free, json!([1, {"k": [2]}]));
    }

    #[test]
    fn an_array_in_place_of_a_struct_is_refused_at_any_depth() {
        let positional = json!({"inner": [1, []], "free": null});
        assert!(serde_json::from_value::<Outer>(positional.clone()).is_ok());
        let err = read::<Outer>(positional).expect_err("array for a struct");
        assert!(err.contains("invalid type: sequence"), "{err}");
        assert!(read::<Outer>(json!([{"a": 1}, null])).is_err());
        let nested = json!({"inner": {}, "free": 0, "named": {"n": [5]}});
        assert!(read::<Outer>(nested).is_err());
    }
}
