//! A call's params (Python values) → the JSON text the engine takes as the request body.
//!
//! Written here rather than by `json.dumps`: for the values a request holds (dicts, lists,
//! tuples, strings, ints, finite floats, booleans, `None`) this walk costs ~9k instructions,
//! where `json.dumps` builds an encoder object on every call; the change took 32k off a
//! 147k call (`benches/load/instructions.sh`).
//!
//! Anything else goes to `json.dumps` itself, whole, so its output and its errors stay
//! Python's: a key that is not a string, a string with a lone surrogate, NaN or infinity,
//! an int beyond 64 bits, a type `json` does not know (a `TypeError`, as before), nesting
//! deeper than [`MAX_DEPTH`] (which also ends a walk of a dict that contains itself:
//! `json.dumps` then reports the circular reference).
//!
//! The text is compact, as `json.dumps(params, separators=(",", ":"))` wrote it, with two
//! differences that no JSON reader sees: strings keep their UTF-8 (as `JSON.stringify`, the
//! OpenAI SDKs and httpx write them) rather than `\u` escapes, and floats are written by
//! serde_json's shortest round-trip form (`1e16`, not `1e+16`).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytesMethods, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Deeper than this, the walk hands the value to `json.dumps`. Requests nest a handful of
/// levels (messages → content parts → ...); a JSON schema in a tool may nest a few dozen.
const MAX_DEPTH: usize = 100;

/// `params` as compact JSON text.
pub fn dumps(params: &Bound<'_, PyAny>) -> PyResult<String> {
    let mut out = Vec::with_capacity(512);
    if write(params, &mut out, 0) {
        // Only `str` text, ASCII punctuation and digits were written.
        if let Ok(text) = String::from_utf8(out) {
            return Ok(text);
        }
    }
    python_dumps(params)
}

/// `json.dumps(params, separators=(",", ":"))`.
fn python_dumps(params: &Bound<'_, PyAny>) -> PyResult<String> {
    static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = params.py();
    let dumps = DUMPS.import(py, "json", "dumps")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("separators", (",", ":"))?;
    dumps.call((params,), Some(&kwargs))?.extract()
}

/// Writes `value`, or returns false (with `out` part written) for anything the walk leaves
/// to `json.dumps`.
fn write(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> bool {
    // The order of `json`'s own encoder: str, None, booleans, int, float, list and tuple,
    // dict. Subclasses count as their base (an `IntEnum` is written as its number, a
    // `StrEnum` as its text), as there.
    if let Ok(text) = value.cast::<PyString>() {
        return string(text, out);
    }
    if value.is_none() {
        out.extend_from_slice(b"null");
        return true;
    }
    if let Ok(boolean) = value.cast::<PyBool>() {
        out.extend_from_slice(if boolean.is_true() { b"true" } else { b"false" });
        return true;
    }
    if let Ok(int) = value.cast::<PyInt>() {
        return int.extract::<i64>().is_ok_and(|n| serde_json::to_writer(&mut *out, &n).is_ok());
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        let x = float.value();
        return x.is_finite() && serde_json::to_writer(&mut *out, &x).is_ok();
    }
    if depth == MAX_DEPTH {
        return false;
    }
    if let Ok(list) = value.cast::<PyList>() {
        return array(list.iter(), out, depth);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return array(tuple.iter(), out, depth);
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        out.push(b'{');
        for (i, (key, item)) in dict.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let Ok(key) = key.cast::<PyString>() else { return false };
            if !string(key, out) {
                return false;
            }
            out.push(b':');
            if !write(&item, out, depth + 1) {
                return false;
            }
        }
        out.push(b'}');
        return true;
    }
    false
}

fn array<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>, out: &mut Vec<u8>, depth: usize) -> bool {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !write(&item, out, depth + 1) {
            return false;
        }
    }
    out.push(b']');
    true
}

/// A JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8;
/// false for a string UTF-8 cannot hold (a lone surrogate).
fn string(text: &Bound<'_, PyString>, out: &mut Vec<u8>) -> bool {
    // The UTF-8 bytes object, read in place: `to_cow` would copy it into a `String` as well
    // (the stable ABI before 3.10 has no borrowed UTF-8 view of a `str`).
    let Ok(utf8) = text.encode_utf8() else { return false };
    std::str::from_utf8(utf8.as_bytes()).is_ok_and(|text| serde_json::to_writer(&mut *out, text).is_ok())
}
