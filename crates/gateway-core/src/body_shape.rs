//! What request validation needs to know about a JSON body, read in one pass over its
//! bytes without building a `serde_json::Value`.
//!
//! Building the `Value` of a chat request (an `IndexMap` per object, a `String` per key
//! and text) costs more than everything else the engine does for it, and the OpenAI
//! family forwards the caller's bytes untouched. So a body is checked here (well-formed
//! JSON, an object, the field types SPEC.md requires) and parsed into a `Value` only when
//! something reads it: a transform, `override_params`, a `params.*` query, the cache key.
//!
//! The pass reads every value of the document through serde_json's `deserialize_any`,
//! as a `Value` parse does (not its faster skipping, which checks less: lone surrogates,
//! depth), so it accepts exactly the texts that `serde_json::from_slice::<Value>`
//! accepts, duplicate keys included (the last one counts, as in a `Value`).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The JSON type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// The top-level fields validation looks at; `None` where the key is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyShape {
    /// `model`
    pub model: Option<Kind>,
    /// `model`, when it is a string: routing reads it when it names a registry entry
    /// (`@slug/model`), and the request log and pricing read it.
    pub model_name: Option<String>,
    /// `stream`
    pub stream: Option<Kind>,
    /// `stream_options`: when absent, the gateway can ask for a stream's usage by adding
    /// it to the caller's bytes, without parsing them.
    pub stream_options: Option<Kind>,
    /// `prompt`
    pub prompt: Option<Kind>,
    /// `input`
    pub input: Option<Kind>,
    /// `messages`
    pub messages: Option<Messages>,
}

impl BodyShape {
    /// `model`, when it names a registry entry (`@slug/model`).
    pub fn model_entry(&self) -> Option<&str> {
        self.model_name.as_deref().filter(|m| m.starts_with('@'))
    }
}

/// The `messages` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Messages {
    /// Not an array.
    Other(Kind),
    /// An array; one entry per element.
    Array(Vec<Message>),
}

/// One element of `messages`; `None` fields are absent keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Not an object.
    Other(Kind),
    /// An object with these `role` and `content` types.
    Object {
        /// `role`
        role: Option<Kind>,
        /// `content`
        content: Option<Kind>,
    },
}

/// Read `raw`: the body's shape if it is a JSON object, `Ok(None)` if it is well-formed
/// JSON of another type, and serde_json's error if it is not JSON.
pub fn read(raw: &[u8]) -> Result<Option<BodyShape>, serde_json::Error> {
    match crate::json::from_slice::<TopLevel>(raw)? {
        TopLevel::Object(shape) => Ok(Some(shape)),
        TopLevel::Other => Ok(None),
    }
}

enum TopLevel {
    Object(BodyShape),
    Other,
}

/// The keys of interest, matched without allocating.
enum Field {
    Model,
    Stream,
    StreamOptions,
    Prompt,
    Input,
    Messages,
    Role,
    Content,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
                Ok(match key {
                    "model" => Field::Model,
                    "stream" => Field::Stream,
                    "stream_options" => Field::StreamOptions,
                    "prompt" => Field::Prompt,
                    "input" => Field::Input,
                    "messages" => Field::Messages,
                    "role" => Field::Role,
                    "content" => Field::Content,
                    _ => Field::Other,
                })
            }
        }
        deserializer.deserialize_str(FieldVisitor)
    }
}

/// The scalar visits of a visitor that accepts any value: each reports the value's kind
/// through `$kind`.
macro_rules! scalar_visits {
    ($kind:expr) => {
        scalar_visits!($kind, |_: &str| $kind(Kind::String));
    };
    // `$string` makes the value of a string (the one scalar whose content may matter).
    ($kind:expr, $string:expr) => {
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
            Ok($kind(Kind::Bool(b)))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($kind(Kind::Number))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($kind(Kind::Number))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($kind(Kind::Number))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok($string(s))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($kind(Kind::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($kind(Kind::Null))
        }
    };
}

/// `model`'s kind, and the value itself when it is a string.
struct ModelField(Kind, Option<String>);

impl<'de> Deserialize<'de> for ModelField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModelVisitor;
        impl<'de> Visitor<'de> for ModelVisitor {
            type Value = ModelField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalar_visits!(|kind| ModelField(kind, None), |s: &str| { ModelField(Kind::String, Some(s.to_owned())) });
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ModelField, A::Error> {
                skip_seq(seq).map(|()| ModelField(Kind::Array, None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ModelField, A::Error> {
                skip_map(map).map(|()| ModelField(Kind::Object, None))
            }
        }
        deserializer.deserialize_any(ModelVisitor)
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Kind>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<Field, Kind>()?.is_some() {}
    Ok(())
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KindVisitor;
        impl<'de> Visitor<'de> for KindVisitor {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalar_visits!(std::convert::identity);
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Kind, A::Error> {
                skip_seq(seq).map(|()| Kind::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
                skip_map(map).map(|()| Kind::Object)
            }
        }
        deserializer.deserialize_any(KindVisitor)
    }
}

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopVisitor;
        impl<'de> Visitor<'de> for TopVisitor {
            type Value = TopLevel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalar_visits!(|_| TopLevel::Other);
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TopLevel, A::Error> {
                skip_seq(seq).map(|()| TopLevel::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
                let mut shape = BodyShape::default();
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Model => {
                            let ModelField(kind, name) = map.next_value()?;
                            shape.model = Some(kind);
                            shape.model_name = name;
                        }
                        Field::Stream => shape.stream = Some(map.next_value()?),
                        Field::StreamOptions => shape.stream_options = Some(map.next_value()?),
                        Field::Prompt => shape.prompt = Some(map.next_value()?),
                        Field::Input => shape.input = Some(map.next_value()?),
                        Field::Messages => shape.messages = Some(map.next_value()?),
                        _ => {
                            map.next_value::<Kind>()?;
                        }
                    }
                }
                Ok(TopLevel::Object(shape))
            }
        }
        deserializer.deserialize_any(TopVisitor)
    }
}

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessagesVisitor;
        impl<'de> Visitor<'de> for MessagesVisitor {
            type Value = Messages;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalar_visits!(Messages::Other);
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Messages::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Messages, A::Error> {
                skip_map(map).map(|()| Messages::Other(Kind::Object))
            }
        }
        deserializer.deserialize_any(MessagesVisitor)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessageVisitor;
        impl<'de> Visitor<'de> for MessageVisitor {
            type Value = Message;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalar_visits!(Message::Other);
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Message, A::Error> {
                skip_seq(seq).map(|()| Message::Other(Kind::Array))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
                let (mut role, mut content) = (None, None);
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Role => role = Some(map.next_value()?),
                        Field::Content => content = Some(map.next_value()?),
                        _ => {
                            map.next_value::<Kind>()?;
                        }
                    }
                }
                Ok(Message::Object { role, content })
            }
        }
        deserializer.deserialize_any(MessageVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_fields_validation_needs() {
        let raw = br#"{"model":"m","stream":true,"x":{"deep":[1,{"model":2}]},
            "messages":[{"role":"user","content":"hi","name":"n"},3,{"content":[{"type":"text"}]}]}"#;
        let shape = read(raw).unwrap().unwrap();
        assert_eq!(shape.model, Some(Kind::String));
        assert_eq!(shape.stream, Some(Kind::Bool(true)));
        assert_eq!(shape.prompt, None);
        assert_eq!(
            shape.messages,
            Some(Messages::Array(vec![
                Message::Object { role: Some(Kind::String), content: Some(Kind::String) },
                Message::Other(Kind::Number),
                Message::Object { role: None, content: Some(Kind::Array) },
            ]))
        );
    }

    #[test]
    fn the_last_of_duplicate_keys_counts_as_in_a_value() {
        let shape = read(br#"{"model": 1, "model": "m"}"#).unwrap().unwrap();
        assert_eq!(shape.model, Some(Kind::String));
    }

    #[test]
    fn accepts_and_rejects_exactly_what_a_value_parse_does() {
        let texts: [&[u8]; 16] = [
            br#"{}"#,
            br#"[1, 2]"#,
            br#""text""#,
            b"null",
            br#"{"a": 1,}"#,
            br#"{"a": 1} trailing"#,
            br#"{"a": "\ud800"}"#,
            br#"{"a\n": "\u00e9\"", "b": -1.5e300, "c": 18446744073709551616}"#,
            b"{\"a\": \"\xff\"}",
            b"{\"a\": 1, \"b\": \"\xc3\"}",
            b"{\"a\xff\": 1}",
            br#"{"a": 01}"#,
            b"  {\"a\": [true, false, null]}  ",
            b"",
            br#"{"messages": [{"role": "user", "content": "x"}"#,
            br#"{"nested": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
        ];
        for text in texts {
            let value = serde_json::from_slice::<serde_json::Value>(text);
            let shape = read(text);
            assert_eq!(value.is_ok(), shape.is_ok(), "{}", String::from_utf8_lossy(text));
            // The same message too, with the same line and column, UTF-8 or not.
            assert_eq!(
                value.as_ref().err().map(ToString::to_string),
                shape.as_ref().err().map(ToString::to_string),
                "{}",
                String::from_utf8_lossy(text)
            );
            if let (Ok(value), Ok(shape)) = (value, shape) {
                assert_eq!(value.is_object(), shape.is_some(), "{}", String::from_utf8_lossy(text));
            }
        }
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&deep).is_ok(),
            read(deep.as_bytes()).is_ok(),
            "the recursion limit is the same"
        );
    }
}
