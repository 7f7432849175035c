//! JSON text in and out where serde_json's general path costs more than the work:
//! reading bytes (their UTF-8 checked once, not string by string), and writing documents
//! field by field (keys as literals, plain strings copied) from one list of fields that
//! their `Serialize` follows too ([`Fields`]).
//!
//! Read from bytes, serde_json checks each string on its own, a call per key and per value
//! (~1.4k instructions of a 200-byte chat body); read from a `str`, it checks none. Both
//! accept exactly the same texts, since every byte outside a string must be ASCII JSON and
//! every string must be UTF-8. A text that is not UTF-8 is read from bytes, so that its
//! error is serde_json's own, with its line and column.

use serde::{Deserialize, Serialize};

/// Read `raw` as a `T`: the same value, or the same error, as `serde_json::from_slice`.
pub(crate) fn from_slice<'de, T: Deserialize<'de>>(raw: &'de [u8]) -> Result<T, serde_json::Error> {
    match std::str::from_utf8(raw) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(raw),
    }
}

/// Appends `value` as compact JSON, as `serde_json::to_writer` writes it.
pub(crate) fn write(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    // Writing to a `Vec` cannot fail, and neither can serializing the strings, numbers,
    // `Value`s and records the gateway writes (their keys are strings).
    let _ = serde_json::to_writer(out, value);
}

/// Appends `text` as a JSON string, byte for byte as serde_json writes it. Most strings
/// need no escape, and are copied whole: serde_json looks each byte up in its escape table
/// and writes the quotes apart, ~12 instructions a byte for the short strings of a record.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    if needs_no_escape(text.as_bytes()) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        write(out, text);
    }
}

/// Whether no byte of `text` is one JSON escapes (a control character, `"` or `\`),
/// looked at eight bytes at a time.
fn needs_no_escape(text: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Non-zero exactly when some byte of `x` is below `n` (for n <= 128): the classic
    // bit trick, its false positives only ever above a true one.
    let any_below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let plain = |word: &[u8]| {
        let Ok(bytes) = <[u8; 8]>::try_from(word) else { return false };
        let x = u64::from_le_bytes(bytes);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        any_below(x, 0x20) | any_below(quote, 1) | any_below(backslash, 1) == 0
    };
    let mut words = text.chunks_exact(8);
    if !words.all(plain) {
        return false;
    }
    match text.len() {
        _ if words.remainder().is_empty() => true,
        // The last eight bytes, overlapping the last word: one more word, not a byte loop.
        len if len >= 8 => plain(&text[len - 8..]),
        _ => text.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\'),
    }
}

/// A JSON object whose fields are listed once, in [`Fields::fields`]. Its `Serialize`
/// ([`serialize_fields`]) and its writer ([`write_fields`]) both walk that one list, so the
/// two cannot disagree on a name or an order; the writer puts each key down as one literal
/// and each value through [`Field::write_json`].
pub(crate) trait Fields {
    /// Hands every field, in order, to `sink`.
    fn fields<S: FieldSink>(&self, sink: &mut S) -> Result<(), S::Error>;
}

/// Where [`Fields::fields`] puts each field.
pub(crate) trait FieldSink {
    type Error;
    fn field<T: Field + ?Sized>(&mut self, key: Key, value: &T) -> Result<(), Self::Error>;
}

/// A field's name, and the name as the writer puts it after an earlier field (`,"name":`),
/// both made at compile time by [`key!`].
#[derive(Clone, Copy)]
pub(crate) struct Key {
    pub name: &'static str,
    pub after_comma: &'static str,
}

/// The [`Key`] of a field named by a plain literal (no character JSON escapes).
macro_rules! key {
    ($name:literal) => {
        $crate::json::Key { name: $name, after_comma: concat!(",\"", $name, "\":") }
    };
}
pub(crate) use key;

/// A value a [`Fields`] list holds: written as serde_json writes it, by serde_json unless
/// the type knows a shorter way.
pub(crate) trait Field: Serialize {
    fn write_json(&self, out: &mut Vec<u8>) {
        write(out, self);
    }
}

impl Field for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl Field for String {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl Field for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl<T: Field> Field for Option<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

impl<T: Field + ?Sized> Field for &T {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl Field for u16 {}
impl Field for i32 {}
impl Field for u64 {}
impl Field for f64 {}
impl Field for serde_json::Value {}
impl Field for Vec<String> {}

/// `value` through a serializer: a struct named `name` with the fields of its list.
pub(crate) fn serialize_fields<T: Fields, S: serde::Serializer>(
    value: &T,
    name: &'static str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;

    struct Count(usize);
    impl FieldSink for Count {
        type Error = std::convert::Infallible;
        fn field<T: Field + ?Sized>(&mut self, _: Key, _: &T) -> Result<(), Self::Error> {
            self.0 += 1;
            Ok(())
        }
    }
    struct Serde<S>(S);
    impl<S: SerializeStruct> FieldSink for Serde<S> {
        type Error = S::Error;
        fn field<T: Field + ?Sized>(&mut self, key: Key, value: &T) -> Result<(), Self::Error> {
            self.0.serialize_field(key.name, value)
        }
    }

    // Formats that write a map's length first (MessagePack) need the true count: optional
    // fields are left out, so the list is counted before it is written.
    let mut count = Count(0);
    let Ok(()) = value.fields(&mut count);
    let mut sink = Serde(serializer.serialize_struct(name, count.0)?);
    value.fields(&mut sink)?;
    sink.0.end()
}

/// Appends `value` as a JSON object: the bytes serde_json writes for its
/// [`serialize_fields`], a test of each list holds the two equal.
pub(crate) fn write_fields(out: &mut Vec<u8>, value: &impl Fields) {
    struct Writer<'a> {
        out: &'a mut Vec<u8>,
        empty: bool,
    }
    impl FieldSink for Writer<'_> {
        type Error = std::convert::Infallible;
        // Inlined into each list, the key is a constant of known length: copied by a few
        // moves, not a call to `memcpy` (~1k instructions of a record's line).
        #[inline(always)]
        fn field<T: Field + ?Sized>(&mut self, key: Key, value: &T) -> Result<(), Self::Error> {
            let key = key.after_comma.as_bytes();
            if std::mem::take(&mut self.empty) {
                self.out.push(b'{');
                self.out.extend_from_slice(&key[1..]);
            } else {
                self.out.extend_from_slice(key);
            }
            value.write_json(self.out);
            Ok(())
        }
    }

    let mut writer = Writer { out, empty: true };
    let Ok(()) = value.fields(&mut writer);
    if writer.empty {
        writer.out.push(b'{');
    }
    writer.out.push(b'}');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let texts = ["", "plain", "caf\u{e9} \u{2603}", "a\"b", "back\\slash", "tab\there", "\u{0}\u{1f}", "\u{7f}"];
        for text in texts {
            let mut out = Vec::new();
            write_str(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
        // Every escaped byte, and bytes next to them in value, at every place in a word.
        for special in ['\u{0}', '\u{1f}', '"', '\\', ' ', '!', '#', '[', ']', '\u{7f}', '\u{80}', '\u{ff}', '\u{2603}']
        {
            for at in 0..20 {
                let text: String =
                    "abcdefghijklmnopqrst".chars().take(at).chain([special]).chain("xyz".chars()).collect();
                let mut out = Vec::new();
                write_str(&mut out, &text);
                assert_eq!(out, serde_json::to_vec(&text).unwrap(), "{text:?}");
            }
        }
    }
}
