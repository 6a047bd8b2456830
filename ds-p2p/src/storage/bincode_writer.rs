//! A serde serializer that writes exactly the bytes of `bincode::serde` with
//! `bincode::config::standard()` (little-endian, variable-length integers), straight into a
//! `Vec<u8>`.
//!
//! Why: openmls rewrites its secret tree after every message it reads, and its secrets are
//! `VLBytes`, which serde hands over one byte at a time. Through bincode's generic encoder
//! each byte was a call of its own (`perf` of `chorus-sim bench`: the secret tree's encoding
//! was a fifth of the run). Here a byte is a `push`. The output is bincode's — the tests
//! compare the two on the values openmls stores — so stored values still read back with
//! bincode, and nothing about the layout changes.

use serde::Serialize;
use serde::ser;

/// Bincode's variable-length integer markers: below `U16` a value is its own byte.
const U16: u8 = 251;
const U32: u8 = 252;
const U64: u8 = 253;
const U128: u8 = 254;

/// Why a value could not be written (a sequence or map without a known length, as in
/// bincode, or an error a value's own `Serialize` raised).
#[derive(Debug)]
pub struct WriteError(String);

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteError {}

impl ser::Error for WriteError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        WriteError(msg.to_string())
    }
}

/// Appends the bincode (standard configuration) encoding of `value` to `out`.
pub fn write_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), WriteError> {
    value.serialize(&mut Writer { out })
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    #[inline]
    fn varint(&mut self, v: u64) {
        if v < u64::from(U16) {
            self.out.push(v as u8);
        } else if v <= u64::from(u16::MAX) {
            self.out.push(U16);
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if v <= u64::from(u32::MAX) {
            self.out.push(U32);
            self.out.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            self.out.push(U64);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn varint128(&mut self, v: u128) {
        match u64::try_from(v) {
            Ok(small) => self.varint(small),
            Err(_) => {
                self.out.push(U128);
                self.out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }

    fn length(&mut self, len: Option<usize>) -> Result<(), WriteError> {
        let len = len.ok_or_else(|| WriteError("a sequence must have a length".into()))?;
        self.varint(len as u64);
        Ok(())
    }
}

/// Zigzag: small magnitudes of either sign stay small.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn zigzag128(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

impl ser::Serializer for &mut Writer<'_> {
    type Ok = ();
    type Error = WriteError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), WriteError> {
        self.out.push(u8::from(v));
        Ok(())
    }

    #[inline(always)]
    fn serialize_u8(self, v: u8) -> Result<(), WriteError> {
        self.out.push(v);
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), WriteError> {
        self.out.push(v as u8);
        Ok(())
    }

    fn serialize_u16(self, v: u16) -> Result<(), WriteError> {
        self.varint(u64::from(v));
        Ok(())
    }

    fn serialize_u32(self, v: u32) -> Result<(), WriteError> {
        self.varint(u64::from(v));
        Ok(())
    }

    fn serialize_u64(self, v: u64) -> Result<(), WriteError> {
        self.varint(v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), WriteError> {
        self.varint128(v);
        Ok(())
    }

    fn serialize_i16(self, v: i16) -> Result<(), WriteError> {
        self.varint(zigzag(i64::from(v)));
        Ok(())
    }

    fn serialize_i32(self, v: i32) -> Result<(), WriteError> {
        self.varint(zigzag(i64::from(v)));
        Ok(())
    }

    fn serialize_i64(self, v: i64) -> Result<(), WriteError> {
        self.varint(zigzag(v));
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), WriteError> {
        self.varint128(zigzag128(v));
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), WriteError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), WriteError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), WriteError> {
        let mut buf = [0u8; 4];
        self.out
            .extend_from_slice(v.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), WriteError> {
        self.serialize_bytes(v.as_bytes())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), WriteError> {
        self.varint(v.len() as u64);
        self.out.extend_from_slice(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), WriteError> {
        self.out.push(0);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), WriteError> {
        self.out.push(1);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), WriteError> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), WriteError> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Result<(), WriteError> {
        self.varint(u64::from(index));
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        self.varint(u64::from(index));
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self, WriteError> {
        self.length(len)?;
        Ok(self)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self, WriteError> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, WriteError> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, WriteError> {
        self.varint(u64::from(index));
        Ok(self)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self, WriteError> {
        self.length(len)?;
        Ok(self)
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, WriteError> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, WriteError> {
        self.varint(u64::from(index));
        Ok(self)
    }
}

/// The compound serializers: bincode writes a compound's parts one after the other, with no
/// framing beyond what `serialize_seq` / `serialize_map` / the variant index already wrote.
macro_rules! compound {
    ($trait:ident, $method:ident $(, $key:ident: $key_ty:ty)?) => {
        impl ser::$trait for &mut Writer<'_> {
            type Ok = ();
            type Error = WriteError;

            #[inline(always)]
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $($key: $key_ty,)?
                value: &T,
            ) -> Result<(), WriteError> {
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), WriteError> {
                Ok(())
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, serialize_field, _key: &'static str);
compound!(SerializeStructVariant, serialize_field, _key: &'static str);

impl ser::SerializeMap for &mut Writer<'_> {
    type Ok = ();
    type Error = WriteError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), WriteError> {
        key.serialize(&mut **self)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), WriteError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::write_into;

    fn bincode_bytes<T: Serialize>(value: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap()
    }

    fn ours<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        write_into(value, &mut out).unwrap();
        out
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(Vec<u8>),
        Tuple(u16, i32),
        Struct { a: Option<u64>, b: char },
    }

    #[derive(Serialize)]
    struct Everything {
        flags: (bool, bool),
        small: (u8, i8, u16, i16),
        ints: Vec<u64>,
        signed: Vec<i64>,
        wide: (u128, i128, u128),
        floats: (f32, f64),
        text: String,
        chars: Vec<char>,
        shapes: Vec<Shape>,
        map: BTreeMap<String, Option<u32>>,
        unit: (),
        time: std::time::SystemTime,
    }

    #[test]
    fn writes_the_bytes_bincode_writes() {
        // Every boundary of the variable-length integers, both signs, every serde shape.
        let edges = [
            0u64,
            250,
            251,
            255,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ];
        let value = Everything {
            flags: (true, false),
            small: (255, -128, 251, -300),
            ints: edges.to_vec(),
            signed: edges
                .iter()
                .flat_map(|e| [*e as i64, -(*e as i64), i64::MIN, i64::MAX])
                .collect(),
            wide: (u128::MAX, i128::MIN, 7),
            floats: (1.5, -0.25),
            text: "chorus ✓".into(),
            chars: vec!['a', 'é', '✓', '🦀'],
            shapes: vec![
                Shape::Unit,
                Shape::Newtype((0..=255).collect()),
                Shape::Tuple(65_535, -1),
                Shape::Struct {
                    a: Some(1 << 40),
                    b: 'z',
                },
                Shape::Struct { a: None, b: '\0' },
            ],
            map: [("x".to_string(), Some(3)), ("y".to_string(), None)]
                .into_iter()
                .collect(),
            unit: (),
            time: std::time::UNIX_EPOCH + std::time::Duration::from_nanos(1_234_567_891),
        };
        assert_eq!(ours(&value), bincode_bytes(&value));
    }

    #[test]
    fn a_sequence_of_unknown_length_is_an_error_as_in_bincode() {
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                s.serialize_seq(None)?.end()
            }
        }
        let mut out = Vec::new();
        assert!(write_into(&Unsized, &mut out).is_err());
        assert!(bincode::serde::encode_to_vec(Unsized, bincode::config::standard()).is_err());
    }
}
