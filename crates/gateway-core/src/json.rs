//! JSON read from bytes: `serde_json::from_slice`, with the UTF-8 of the whole text checked
//! once up front.
//!
//! Read from bytes, serde_json checks each string on its own, a call per key and per value
//! (~1.4k instructions of a 200-byte chat body); read from a `str`, it checks none. Both
//! accept exactly the same texts, since every byte outside a string must be ASCII JSON and
//! every string must be UTF-8. A text that is not UTF-8 is read from bytes, so that its
//! error is serde_json's own, with its line and column.

use serde::Deserialize;

/// Read `raw` as a `T`: the same value, or the same error, as `serde_json::from_slice`.
pub fn from_slice<'de, T: Deserialize<'de>>(raw: &'de [u8]) -> Result<T, serde_json::Error> {
    match std::str::from_utf8(raw) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(raw),
    }
}
