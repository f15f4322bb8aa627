//! A serde deserializer over the spanned YAML tree.
//!
//! calplan deserializes from its own tree rather than from text so that it can first report
//! every tag, unknown field and type error with a position, drop or repair the offending nodes,
//! and still deserialize the rest: one run reports every problem. It also fills
//! [`Spanned`](crate::Spanned) values with the span of the node they came from.

use crate::yaml::{Entry, Node, NodeKind, Scalar};
use calplan_diagnostics::Span;
use calplan_diagnostics::spanned_protocol as spanned;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use std::fmt;

/// A deserialization failure, at the node that caused it.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub span: Option<Span>,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Error {
        Error { span: None, message: message.to_string() }
    }
}

/// Deserializes `T` from a node of the tree.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, Error> {
    T::deserialize(NodeDeserializer(node))
}

#[derive(Clone, Copy)]
pub struct NodeDeserializer<'de>(pub &'de Node);

impl<'de> NodeDeserializer<'de> {
    fn at<T>(self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|mut error| {
            error.span.get_or_insert(self.0.span);
            error
        })
    }

    fn invalid(self, expected: &str) -> Error {
        Error { span: Some(self.0.span), message: format!("expected {expected}, found {}", self.0.describe()) }
    }

    fn scalar_text(self) -> Option<&'de str> {
        match &self.0.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

macro_rules! deserialize_integer {
    ($($method:ident => $visit:ident as $ty:ty,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.scalar() {
                Some(Scalar::Int(int)) => match <$ty>::try_from(int) {
                    Ok(value) => self.at(visitor.$visit(value)),
                    Err(_) => Err(Error { span: Some(self.0.span), message: format!("{int} is out of range") }),
                },
                _ => Err(self.invalid("an integer")),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.0.kind {
            NodeKind::Sequence(items) => visitor.visit_seq(Sequence { items: items.iter() }),
            NodeKind::Mapping(entries) => visitor.visit_map(Mapping { entries: entries.iter(), value: None }),
            NodeKind::Scalar { .. } => match self.0.scalar().expect("scalar") {
                Scalar::Null => visitor.visit_unit(),
                Scalar::Bool(value) => visitor.visit_bool(value),
                Scalar::Int(value) => match i64::try_from(value) {
                    Ok(value) => visitor.visit_i64(value),
                    Err(_) => visitor.visit_i128(value),
                },
                Scalar::Float(value) => visitor.visit_f64(value),
                Scalar::String(value) => visitor.visit_borrowed_str(value),
            },
        };
        self.at(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.scalar() {
            Some(Scalar::Bool(value)) => self.at(visitor.visit_bool(value)),
            _ => Err(self.invalid("`true` or `false`")),
        }
    }

    deserialize_integer! {
        deserialize_i8 => visit_i8 as i8,
        deserialize_i16 => visit_i16 as i16,
        deserialize_i32 => visit_i32 as i32,
        deserialize_i64 => visit_i64 as i64,
        deserialize_i128 => visit_i128 as i128,
        deserialize_u8 => visit_u8 as u8,
        deserialize_u16 => visit_u16 as u16,
        deserialize_u32 => visit_u32 as u32,
        deserialize_u64 => visit_u64 as u64,
        deserialize_u128 => visit_u128 as u128,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.scalar() {
            Some(Scalar::Float(value)) => self.at(visitor.visit_f64(value)),
            Some(Scalar::Int(value)) => self.at(visitor.visit_f64(value as f64)),
            _ => Err(self.invalid("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    /// Any scalar reads as its text: `asNumber: "1.10"` and `asNumber: 63400` can both reach a
    /// string field. The schema pass has already flagged scalars of the wrong kind.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar_text() {
            Some(text) => self.at(visitor.visit_borrowed_str(text)),
            None => Err(self.invalid("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.scalar() {
            Some(Scalar::Null) => self.at(visitor.visit_none()),
            _ => self.at(visitor.visit_some(self)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.scalar() {
            Some(Scalar::Null) => self.at(visitor.visit_unit()),
            _ => Err(self.invalid("an empty value")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.at(visitor.visit_newtype_struct(self))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.kind {
            NodeKind::Sequence(items) => self.at(visitor.visit_seq(Sequence { items: items.iter() })),
            _ => Err(self.invalid("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _name: &'static str, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.kind {
            NodeKind::Mapping(entries) => self.at(visitor.visit_map(Mapping { entries: entries.iter(), value: None })),
            _ => Err(self.invalid("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == spanned::NAME {
            return visitor.visit_map(SpannedAccess { node: self.0, field: 0 });
        }
        let _ = fields;
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.0.kind {
            NodeKind::Scalar { value, .. } => self.at(visitor.visit_enum(value.as_str().into_deserializer())),
            NodeKind::Mapping(entries) if entries.len() == 1 => self.at(visitor.visit_enum(Variant { entry: &entries[0] })),
            _ => Err(self.invalid("a name or a one-key mapping")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct Sequence<'de> {
    items: std::slice::Iter<'de, Node>,
}

impl<'de> SeqAccess<'de> for Sequence<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(item) => NodeDeserializer(item).at(seed.deserialize(NodeDeserializer(item))).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Mapping<'de> {
    entries: std::slice::Iter<'de, Entry>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for Mapping<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some(entry) => {
                self.value = Some(&entry.value);
                let key = NodeDeserializer(&entry.key);
                key.at(seed.deserialize(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = NodeDeserializer(self.value.take().expect("value follows its key"));
        value.at(seed.deserialize(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Feeds a [`Spanned`](crate::Spanned) visitor the node's span and then the node itself.
struct SpannedAccess<'de> {
    node: &'de Node,
    field: usize,
}

impl<'de> MapAccess<'de> for SpannedAccess<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some(name) = spanned::FIELDS.get(self.field) else { return Ok(None) };
        seed.deserialize(BorrowedStr(name)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let span = self.node.span;
        let field = self.field;
        self.field += 1;
        match field {
            0 => seed.deserialize(span.file.0.into_deserializer()),
            1 => seed.deserialize(span.start.into_deserializer()),
            2 => seed.deserialize(span.end.into_deserializer()),
            _ => seed.deserialize(NodeDeserializer(self.node)),
        }
    }
}

struct BorrowedStr(&'static str);

impl<'de> Deserializer<'de> for BorrowedStr {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct Variant<'de> {
    entry: &'de Entry,
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = Error;
    type Variant = NodeDeserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), Error> {
        let key = NodeDeserializer(&self.entry.key);
        let variant = key.at(seed.deserialize(key))?;
        Ok((variant, NodeDeserializer(&self.entry.value)))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDeserializer<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        self.at(seed.deserialize(self))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Spanned;
    use calplan_diagnostics::FileId;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Pool {
        cidr: Spanned<String>,
        block_size: Option<Spanned<u8>>,
        nat_outgoing: Option<bool>,
        mode: Option<Mode>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    enum Mode {
        Never,
        Always,
    }

    #[test]
    fn spans_reach_spanned_fields() {
        let text = "cidr: 10.0.0.0/16\nblockSize: 26\nnatOutgoing: true\nmode: Always\n";
        let root = crate::yaml::parse(FileId(3), text).unwrap().remove(0);
        let pool: Pool = from_node(&root).unwrap();
        assert_eq!(pool.cidr.value, "10.0.0.0/16");
        assert_eq!(pool.cidr.span, Span::new(FileId(3), 6, 17));
        assert_eq!(pool.block_size.unwrap().value, 26);
        assert_eq!(pool.nat_outgoing, Some(true));
        assert_eq!(pool.mode, Some(Mode::Always));
    }

    #[test]
    fn errors_carry_the_offending_span() {
        let text = "cidr: x\nblockSize: big\n";
        let root = crate::yaml::parse(FileId(0), text).unwrap().remove(0);
        let error = from_node::<Pool>(&root).unwrap_err();
        assert_eq!(&text[error.span.unwrap().start as usize..error.span.unwrap().end as usize], "big");
    }
}
