//! JSON text in and out where serde_json's general path costs more than the work:
//! reading bytes (their UTF-8 checked once, not string by string), and writing documents
//! field by field (keys as literals, plain strings copied).
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
    let mut words = text.chunks_exact(8);
    for word in &mut words {
        let Ok(bytes) = <[u8; 8]>::try_from(word) else { return false };
        let x = u64::from_le_bytes(bytes);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        if any_below(x, 0x20) | any_below(quote, 1) | any_below(backslash, 1) != 0 {
            return false;
        }
    }
    words.remainder().iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// Appends `text` as a JSON string, or `null`.
pub(crate) fn write_opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => write_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
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
        let mut out = Vec::new();
        write_opt_str(&mut out, None);
        assert_eq!(out, b"null");
    }
}
