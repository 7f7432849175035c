//! JSON paths as users read them: `targets[1].strategy.mode`, `query["metadata.a"].$in`.
//!
//! Built only on the error path, so plain `String` pushing is fine.

/// A JSON value's kind as error messages name it (`a string`, `an array`, ...), for
/// messages that must not quote the value itself.
pub fn kind_of(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A growable JSON path. Keys that are not simple identifiers are quoted in brackets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(String);

impl JsonPath {
    /// The root path (renders as the empty string).
    pub fn root() -> Self {
        Self(String::new())
    }

    /// Parse-free constructor from an already rendered path.
    pub fn from_rendered(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// This path extended by an object key.
    pub fn key(&self, key: &str) -> Self {
        let mut s = self.0.clone();
        push_key(&mut s, key);
        Self(s)
    }

    /// This path extended by an array index.
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    /// This path followed by another, relative, rendered path.
    pub fn join(&self, rel: &str) -> Self {
        if rel.is_empty() {
            return self.clone();
        }
        if self.0.is_empty() || rel.starts_with('[') {
            return Self(format!("{}{rel}", self.0));
        }
        Self(format!("{}.{rel}", self.0))
    }

    /// The rendered path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'-')
}

fn push_key(s: &mut String, key: &str) {
    if is_plain(key) {
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(key);
    } else {
        s.push('[');
        s.push_str(&serde_json::Value::from(key).to_string());
        s.push(']');
    }
}

/// Render an RFC 6901 JSON pointer (`/targets/1/strategy/mode`) in our notation.
/// Numeric segments become indices; that is right for the config schema, where no
/// object has numeric keys.
pub fn from_pointer(pointer: &str) -> JsonPath {
    let mut s = String::new();
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        match seg.parse::<usize>() {
            Ok(i) => s.push_str(&format!("[{i}]")),
            Err(_) => push_key(&mut s, &seg),
        }
    }
    JsonPath(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_indices_and_quoted_keys() {
        let p = JsonPath::root().key("strategy").key("conditions").index(0).key("query").key("metadata.a").key("$in");
        assert_eq!(p.as_str(), r#"strategy.conditions[0].query["metadata.a"].$in"#);
        assert_eq!(from_pointer("/targets/1/strategy/mode").as_str(), "targets[1].strategy.mode");
        assert_eq!(JsonPath::root().key("a.b").as_str(), r#"["a.b"]"#);
        assert_eq!(JsonPath::root().join("x").join(r#"["a.b"]"#).as_str(), r#"x["a.b"]"#);
    }
}
