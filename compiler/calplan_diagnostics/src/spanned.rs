//! `Spanned<T>`: a deserialized value together with where it was written.

use crate::Span;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// A value and the span of the YAML node it came from.
///
/// Only calplan's own YAML deserializer (`calplan_syntax::de`) knows how to fill the span; it
/// recognises the struct name below, as `toml`'s `Spanned` does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Spanned<T> {
        Spanned { value, span }
    }

    pub fn as_ref(&self) -> Spanned<&T> {
        Spanned { value: &self.value, span: self.span }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned { value: f(self.value), span: self.span }
    }
}

/// The names of the protocol between `Spanned` and a deserializer that can fill spans.
pub mod protocol {
    pub use super::{END, FIELDS, FILE, NAME, START, VALUE};
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

pub const NAME: &str = "$calplan::Spanned";
pub const FILE: &str = "$calplan::file";
pub const START: &str = "$calplan::start";
pub const END: &str = "$calplan::end";
pub const VALUE: &str = "$calplan::value";
pub const FIELDS: &[&str] = &[FILE, START, END, VALUE];

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a spanned value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut read = |name: &'static str| -> Result<u32, A::Error> {
                    match map.next_key::<&str>()? {
                        Some(key) if key == name => map.next_value::<u32>(),
                        _ => Err(de::Error::custom("spanned values need calplan's YAML deserializer")),
                    }
                };
                let file = read(FILE)?;
                let start = read(START)?;
                let end = read(END)?;
                match map.next_key::<&str>()? {
                    Some(key) if key == VALUE => {}
                    _ => return Err(de::Error::custom("spanned values need calplan's YAML deserializer")),
                }
                let value = map.next_value()?;
                let span = Span { file: crate::FileId(file), start, end };
                Ok(Spanned { value, span })
            }
        }

        deserializer.deserialize_struct(NAME, FIELDS, SpannedVisitor(std::marker::PhantomData))
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

/// The schema of a spanned value is the schema of the value: spans are invisible in YAML.
impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}
