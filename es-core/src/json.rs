//! [`Json`]: a JSON tree that keeps every number exactly as it was written (integers
//! beyond 64 bits, floats digit for digit) and objects in their order, so that an
//! upcaster that only moves fields around never changes a value.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;

use crate::upcast::UpcastError;

/// A JSON value that keeps numbers exactly as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, kept as its JSON text.
    Number(JsonNumber),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, in the order its keys were written.
    Object(JsonObject),
}

/// A JSON number kept as its exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonNumber(String);

impl JsonNumber {
    /// The number's JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The number as an `i128`, if it is an integer in range.
    #[must_use]
    pub fn as_i128(&self) -> Option<i128> {
        self.0.parse().ok()
    }
    /// The number as a `u128`, if it is a non-negative integer in range.
    #[must_use]
    pub fn as_u128(&self) -> Option<u128> {
        self.0.parse().ok()
    }
    /// The number as an `f64` (exact for every float `es` wrote).
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        self.0.parse().ok()
    }
}

macro_rules! number_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Json {
            fn from(value: $ty) -> Self {
                Json::Number(JsonNumber(value.to_string()))
            }
        }
    )*};
}
number_from!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, usize, isize);

impl From<f64> for Json {
    /// A finite float; `NaN` and infinities have no JSON form and become `null`, as in
    /// `serde_json`.
    fn from(value: f64) -> Self {
        if value.is_finite() {
            // serde_json prints the shortest text that parses back to the same bits.
            Json::Number(JsonNumber(serde_json::to_string(&value).unwrap_or_default()))
        } else {
            Json::Null
        }
    }
}

impl From<bool> for Json {
    fn from(value: bool) -> Self {
        Json::Bool(value)
    }
}

impl From<&str> for Json {
    fn from(value: &str) -> Self {
        Json::String(value.to_owned())
    }
}

impl From<String> for Json {
    fn from(value: String) -> Self {
        Json::String(value)
    }
}

impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(values: Vec<T>) -> Self {
        Json::Array(values.into_iter().map(Into::into).collect())
    }
}

impl Json {
    /// Parses JSON text, keeping numbers exact.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Writes the value as compact JSON text.
    #[must_use]
    pub fn to_json_string(&self) -> String {
        // Serializing a tree of plain values into a Vec cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The object inside, if this is an object.
    #[must_use]
    pub fn as_object(&self) -> Option<&JsonObject> {
        match self {
            Json::Object(object) => Some(object),
            _ => None,
        }
    }

    /// The object inside, mutably, if this is an object.
    pub fn as_object_mut(&mut self) -> Option<&mut JsonObject> {
        match self {
            Json::Object(object) => Some(object),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    /// The number inside, if this is a number.
    #[must_use]
    pub fn as_number(&self) -> Option<&JsonNumber> {
        match self {
            Json::Number(number) => Some(number),
            _ => None,
        }
    }
}

/// A JSON object that keeps its keys in the order they were written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonObject {
    entries: Vec<(String, Json)>,
}

impl JsonObject {
    /// The value under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        self.entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Json>) -> Option<Json> {
        let key = key.into();
        let value = value.into();
        if let Some(slot) = self.get_mut(&key) {
            return Some(std::mem::replace(slot, value));
        }
        self.entries.push((key, value));
        None
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Json> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    /// Renames the field `from` to `to`, keeping its value and position.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), UpcastError> {
        if self.get(to).is_some() {
            return Err(UpcastError::new(format!("cannot rename `{from}` to `{to}`: `{to}` already exists")));
        }
        let entry = self
            .entries
            .iter_mut()
            .find(|(k, _)| k == from)
            .ok_or_else(|| UpcastError::new(format!("cannot rename `{from}`: no such field")))?;
        to.clone_into(&mut entry.0);
        Ok(())
    }

    /// The keys and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many fields the object has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the object has no fields.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(value) => serializer.serialize_bool(*value),
            Json::Number(number) => {
                let raw = RawValue::from_string(number.0.clone()).map_err(serde::ser::Error::custom)?;
                raw.serialize(serializer)
            }
            Json::String(text) => serializer.serialize_str(text),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(object) => {
                let mut map = serializer.serialize_map(Some(object.len()))?;
                for (key, value) in &object.entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Numbers are read through `RawValue` so that their text, not a lossy
        // `u64`/`f64`, is kept. Everything else is walked as usual.
        let raw: Box<RawValue> = Deserialize::deserialize(deserializer)?;
        from_raw(&raw).map_err(de::Error::custom)
    }
}

fn from_raw(raw: &RawValue) -> Result<Json, serde_json::Error> {
    let text = raw.get().trim_start();
    Ok(match text.as_bytes().first() {
        Some(b'{') => Json::Object(serde_json::from_str::<RawObject>(text)?.0),
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(text)?;
            Json::Array(items.iter().map(|item| from_raw(item)).collect::<Result<_, _>>()?)
        }
        Some(b'"') => Json::String(serde_json::from_str(text)?),
        Some(b't' | b'f') => Json::Bool(serde_json::from_str(text)?),
        Some(b'n') => Json::Null,
        _ => Json::Number(JsonNumber(text.trim_end().to_owned())),
    })
}

/// An object read key by key, keeping order and exact values.
struct RawObject(JsonObject);

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut object = JsonObject::default();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    let value = from_raw(&value).map_err(de::Error::custom)?;
                    object.insert(key, value);
                }
                Ok(RawObject(object))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<RawObject, A::Error> {
                Err(de::Error::custom("expected a JSON object"))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_survive_exactly() {
        let text = r#"{"big":340282366920938463463374607431768211455,"neg":-170141183460469231731687303715884105728,"f":0.1,"e":1e-300,"s":"é\n","a":[1,2.5,null,true],"o":{}}"#;
        let json = Json::parse(text).unwrap();
        assert_eq!(json.to_json_string(), text);
        let big = json.as_object().unwrap().get("big").unwrap().as_number().unwrap();
        assert_eq!(big.as_u128(), Some(u128::MAX));
    }

    #[test]
    fn object_edits_keep_order() {
        let mut json = Json::parse(r#"{"a":1,"b":2}"#).unwrap();
        let object = json.as_object_mut().unwrap();
        object.rename("a", "z").unwrap();
        object.insert("c", 3u8);
        assert_eq!(object.remove("b"), Some(Json::from(2u8)));
        assert!(object.rename("nope", "x").is_err());
        assert_eq!(json.to_json_string(), r#"{"z":1,"c":3}"#);
    }

    #[test]
    fn floats_from_rust_are_exact() {
        for value in [0.1, 1.0 / 3.0, f64::MAX, f64::MIN_POSITIVE, -0.0] {
            let json = Json::from(value);
            assert_eq!(json.as_number().unwrap().as_f64().unwrap().to_bits(), value.to_bits());
        }
    }
}
