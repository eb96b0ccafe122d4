//! How an event's content is written to and read from its stored JSON payload.
//!
//! The payload of an enum variant is the variant's content alone: the type name is
//! stored beside it, so decoding goes straight to the right variant (by index) with
//! no tag to search for, and stored payloads do not repeat the name.
//!
//! Writing refuses what JSON cannot give back: a NaN or infinite float would be
//! written as `null` and never decode again, so it is an error before anything is
//! stored.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize, Serializer};

/// Writes `event`'s payload as JSON text.
pub(crate) fn write<E: Serialize + ?Sized>(event: &E) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    event.serialize(Unwrapped(Finite(&mut serde_json::Serializer::new(&mut out))))?;
    String::from_utf8(out).map_err(|_| ser::Error::custom("payload is not valid UTF-8"))
}

/// Writes a state (a snapshot) as ordinary serde JSON, with the same refusal of what
/// JSON cannot give back as event payloads.
pub(crate) fn write_state<T: Serialize + ?Sized>(state: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    state.serialize(Finite(&mut serde_json::Serializer::new(&mut out)))?;
    String::from_utf8(out).map_err(|_| ser::Error::custom("state is not valid UTF-8"))
}

/// Reads a payload into the variant `variant` of `E`, or into `E` itself when
/// `variant` is `None` (a struct event).
pub(crate) fn read<E: DeserializeOwned>(variant: Option<u32>, payload: &str) -> Result<E, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(payload);
    let value = match variant {
        None => E::deserialize(&mut deserializer)?,
        Some(index) => E::deserialize(VariantOf { index, payload: &mut deserializer })?,
    };
    deserializer.end()?;
    Ok(value)
}

// ---------------------------------------------------------------------------------
// Reading: present "variant `index` with this payload" to the enum's Deserialize.

type JsonDeserializer<'a, 'de> = &'a mut serde_json::Deserializer<serde_json::de::StrRead<'de>>;

struct VariantOf<'a, 'de> {
    index: u32,
    payload: JsonDeserializer<'a, 'de>,
}

impl<'de> de::Deserializer<'de> for VariantOf<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de> de::EnumAccess<'de> for VariantOf<'_, 'de> {
    type Error = serde_json::Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Self::Error> {
        // serde's derived variant identifiers accept the variant's index.
        let variant = seed.deserialize(IntoDeserializer::<serde_json::Error>::into_deserializer(self.index))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantOf<'_, 'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        de::Deserialize::deserialize(self.payload)
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Self::Error> {
        seed.deserialize(self.payload)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_tuple(self.payload, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_struct(self.payload, "", fields, visitor)
    }
}

// ---------------------------------------------------------------------------------
// Writing, outer layer: an enum variant as its content alone.

/// Forwards serializer methods that take plain values to the inner serializer,
/// through `$wrap`.
macro_rules! forward_values {
    ($wrap:path; $($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.0.$method($($arg),*)
        }
    )*};
}

struct Unwrapped<S>(S);

impl<S: Serializer> Serializer for Unwrapped<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = S::SerializeSeq;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = VariantAs<S::SerializeTuple>;
    type SerializeMap = S::SerializeMap;
    type SerializeStruct = S::SerializeStruct;
    type SerializeStructVariant = VariantAs<S::SerializeStruct>;

    forward_values! { Unwrapped;
        serialize_bool(v: bool); serialize_i8(v: i8); serialize_i16(v: i16); serialize_i32(v: i32);
        serialize_i64(v: i64); serialize_i128(v: i128); serialize_u8(v: u8); serialize_u16(v: u16);
        serialize_u32(v: u32); serialize_u64(v: u64); serialize_u128(v: u128); serialize_f32(v: f32);
        serialize_f64(v: f64); serialize_char(v: char); serialize_str(v: &str); serialize_bytes(v: &[u8]);
        serialize_none(); serialize_unit(); serialize_unit_struct(name: &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(value)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, name: &'static str, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len)
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(self.0)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Ok(VariantAs(self.0.serialize_tuple(len)?))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Ok(VariantAs(self.0.serialize_struct(name, len)?))
    }
}

/// A tuple or struct variant written as a plain tuple or struct.
struct VariantAs<C>(C);

impl<C: ser::SerializeTuple> ser::SerializeTupleVariant for VariantAs<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), C::Error> {
        self.0.serialize_element(value)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: ser::SerializeStruct> ser::SerializeStructVariant for VariantAs<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), C::Error> {
        self.0.serialize_field(key, value)
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.0.skip_field(key)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

// ---------------------------------------------------------------------------------
// Writing, every layer: refuse floats that JSON cannot give back.

/// A serializer that fails on NaN and infinite floats, at any depth.
struct Finite<S>(S);

/// A value whose serialization goes through [`Finite`].
struct Checked<'a, T: ?Sized>(&'a T);

impl<T: ?Sized + Serialize> Serialize for Checked<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Finite(serializer))
    }
}

fn finite<E: ser::Error>(value: f64) -> Result<(), E> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(E::custom(format_args!(
            "cannot record the float {value}: JSON has no form for it, so it would read back as null"
        )))
    }
}

impl<S: Serializer> Serializer for Finite<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<S::SerializeSeq>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = Compound<S::SerializeMap>;
    type SerializeStruct = Compound<S::SerializeStruct>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    forward_values! { Finite;
        serialize_bool(v: bool); serialize_i8(v: i8); serialize_i16(v: i16); serialize_i32(v: i32);
        serialize_i64(v: i64); serialize_i128(v: i128); serialize_u8(v: u8); serialize_u16(v: u16);
        serialize_u32(v: u32); serialize_u64(v: u64); serialize_u128(v: u128);
        serialize_char(v: char); serialize_str(v: &str); serialize_bytes(v: &[u8]);
        serialize_none(); serialize_unit(); serialize_unit_struct(name: &'static str);
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        finite(f64::from(v))?;
        self.0.serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        finite(v)?;
        self.0.serialize_f64(v)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Checked(value))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, name: &'static str, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Checked(value))
    }
    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_variant(name, index, variant, &Checked(value))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Compound)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Compound)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Compound)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple_variant(name, index, variant, len).map(Compound)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Compound)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Compound)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0.serialize_struct_variant(name, index, variant, len).map(Compound)
    }
}

/// A compound value whose elements are written through [`Finite`].
struct Compound<C>(C);

macro_rules! compound {
    ($($trait:ident :: $method:ident),*) => {$(
        impl<C: ser::$trait> ser::$trait for Compound<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), C::Error> {
                self.0.$method(&Checked(value))
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}
compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

macro_rules! compound_with_keys {
    ($($trait:ident),*) => {$(
        impl<C: ser::$trait> ser::$trait for Compound<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), C::Error> {
                self.0.serialize_field(key, &Checked(value))
            }
            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.0.skip_field(key)
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}
compound_with_keys!(SerializeStruct, SerializeStructVariant);

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), C::Error> {
        self.0.serialize_key(&Checked(key))
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&Checked(value))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Sample {
        Unit,
        Newtype(u128),
        Tuple(i8, String),
        Struct { ratio: f64, nested: Vec<Option<f32>> },
    }

    #[test]
    fn variants_are_written_without_their_tag_and_read_back_by_index() {
        let cases = [
            (0, Sample::Unit, "null"),
            (1, Sample::Newtype(u128::MAX), "340282366920938463463374607431768211455"),
            (2, Sample::Tuple(-1, "é".into()), r#"[-1,"é"]"#),
            (3, Sample::Struct { ratio: 0.1, nested: vec![Some(1.5), None] }, r#"{"ratio":0.1,"nested":[1.5,null]}"#),
        ];
        for (index, value, json) in cases {
            assert_eq!(super::write(&value).unwrap(), json);
            assert_eq!(super::read::<Sample>(Some(index), json).unwrap(), value);
        }
    }

    #[test]
    fn non_finite_floats_are_refused_at_any_depth() {
        let nested = Sample::Struct { ratio: 1.0, nested: vec![Some(f32::INFINITY)] };
        let error = super::write(&nested).unwrap_err().to_string();
        assert!(error.contains("cannot record the float inf"), "{error}");
        assert!(super::write(&Sample::Struct { ratio: f64::NAN, nested: vec![] }).is_err());
    }

    #[test]
    fn trailing_garbage_and_wrong_shapes_are_errors() {
        assert!(super::read::<Sample>(Some(1), "1 2").is_err());
        assert!(super::read::<Sample>(Some(3), "[1]").is_err());
        assert!(super::read::<Sample>(Some(9), "null").is_err());
    }
}
