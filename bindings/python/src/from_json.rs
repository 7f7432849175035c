//! JSON text → Python values, for answers and stream chunks: what `json.loads` gives, built
//! straight from the parse with no scanner object in between. Reading a chat completion
//! this way took 22k instructions off a 115k call (`benches/load/instructions.sh`):
//! `json.loads`, with its Python-level wrapper and decode, cost ~40k; this costs ~19k,
//! most of it making the Python objects.
//!
//! Whatever this parse does not take exactly as `json.loads` would goes to `json.loads`
//! itself, whole, so its result and its errors stay Python's: text that is not UTF-8 (it
//! reads UTF-16 and UTF-32 too), `NaN` and `Infinity`, a lone surrogate escape, numbers
//! beyond a float's range, nesting deeper than serde_json's 128 levels, and an integer
//! past 64 bits (serde_json reads those as floats; `json.loads` keeps them exact).
//! Floats are read correctly rounded (serde_json's `float_roundtrip`), as Python's are.

use std::cell::RefCell;
use std::fmt;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyNone, PyString};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The Python value of a JSON document.
pub fn loads<'py>(py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // Read from a `str`, serde_json does not check each string's UTF-8 again (a call per key
    // and per value): checking the whole text once costs a tenth of that.
    let Ok(text_str) = std::str::from_utf8(text) else { return python_loads(py, text) };
    let mut parser = serde_json::Deserializer::from_str(text_str);
    if let Ok(value) = PyValue(py).deserialize(&mut parser)
        && parser.end().is_ok()
    {
        return Ok(value);
    }
    python_loads(py, text)
}

fn python_loads<'py>(py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOADS.import(py, "json", "loads")?.call1((pyo3::types::PyBytes::new(py, text),))
}

/// A float this large with no fraction may have been an integer literal past 64 bits.
const INTEGER_RANGE: f64 = 9_223_372_036_854_775_808.0; // 2^63

/// Builds the Python value of whatever the parser reads next.
#[derive(Clone, Copy)]
struct PyValue<'py>(Python<'py>);

impl<'de, 'py> DeserializeSeed<'de> for PyValue<'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn python_error<E: de::Error>(e: PyErr) -> E {
    E::custom(e)
}

impl<'de, 'py> Visitor<'de> for PyValue<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(PyNone::get(self.0).to_owned().into_any())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0, v).to_owned().into_any())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        let Ok(int) = v.into_pyobject(self.0);
        Ok(int.into_any())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let Ok(int) = v.into_pyobject(self.0);
        Ok(int.into_any())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.fract() == 0.0 && v.abs() >= INTEGER_RANGE {
            return Err(E::custom("maybe an integer past 64 bits"));
        }
        Ok(PyFloat::new(self.0, v).into_any())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0, v).into_any())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.0);
        while let Some(item) = items.next_element_seed(self)? {
            list.append(item).map_err(python_error)?;
        }
        Ok(list.into_any())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0);
        // A repeated key keeps its first place and takes its last value, as in `json.loads`.
        while let Some(key) = entries.next_key_seed(PyKey(self.0))? {
            let value = entries.next_value_seed(self)?;
            dict.set_item(key, value).map_err(python_error)?;
        }
        Ok(dict.into_any())
    }
}

/// Builds an object key: from the cache of keys met before when it is there.
#[derive(Clone, Copy)]
struct PyKey<'py>(Python<'py>);

impl<'de, 'py> DeserializeSeed<'de> for PyKey<'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'py> Visitor<'de> for PyKey<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(cached_key(self.0, key).into_any())
    }
}

/// A key's text and its Python string.
type CachedKey = (Box<str>, Py<PyString>);

/// Slots of the key cache; a power of two.
const KEY_SLOTS: usize = 64;
/// Longer keys are made afresh: the vocabulary worth caching is short words.
const MAX_CACHED_KEY: usize = 32;

thread_local! {
    /// The keys of answers and chunks are a small vocabulary met again in every chunk
    /// (`id`, `choices`, `delta`, `content`, ...). Handing out the same string object saves
    /// making and freeing one per key, and Python hashes it once, when it first goes into a
    /// dict (it keeps a string's hash), where a new string is hashed at every insert.
    /// Direct-mapped and fixed in size, so an upstream sending endless new keys only
    /// replaces slots. Per thread, so no lock; keys are immutable, so sharing them between
    /// answers is invisible to the caller. The slots live on the heap: a module loaded
    /// with `dlopen` gets only a few hundred bytes of static TLS in all.
    static KEYS: RefCell<Vec<Option<CachedKey>>> = const { RefCell::new(Vec::new()) };
}

fn cached_key<'py>(py: Python<'py>, key: &str) -> Bound<'py, PyString> {
    if key.len() > MAX_CACHED_KEY {
        return PyString::new(py, key);
    }
    // FNV-1a: a few instructions a byte, and keys are short.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let slot = (hash as usize) & (KEY_SLOTS - 1);
    let hit = KEYS.with(|keys| {
        let keys = keys.try_borrow().ok()?;
        keys.get(slot)?.as_ref().filter(|(cached, _)| &**cached == key).map(|(_, string)| string.clone_ref(py))
    });
    if let Some(string) = hit {
        return string.into_bound(py);
    }
    // Made outside the borrow: making a Python object may run the garbage collector, and
    // with it code that reads JSON again. A busy cache just skips the store.
    let string = PyString::new(py, key);
    let replaced = KEYS.with(|keys| {
        let mut keys = keys.try_borrow_mut().ok()?;
        if keys.is_empty() {
            keys.resize_with(KEY_SLOTS, || None);
        }
        keys[slot].replace((key.into(), string.clone().unbind()))
    });
    // The replaced key is released after the borrow, for the same reason.
    drop(replaced);
    string
}
