//! JSON Schema → the Gemini `Schema` subset (tool parameters and `responseSchema`).
//!
//! Gemini's `Schema` is a proto message (an OpenAPI 3.0 subset), not JSON Schema: an
//! unknown field such as `additionalProperties` or `$schema` fails the whole request with
//! a 400, `type` must be one string, `enum` holds strings, and there is no `$ref`. Callers
//! send what Pydantic, Zod and the OpenAI SDKs generate, so we inline `$ref`s, turn
//! JSON-Schema nullability into `nullable`, and drop what the proto cannot hold.

use serde_json::{Map, Value};

/// Fields of Gemini's `Schema` message (Gemini API v1beta and Vertex v1) that we keep as
/// they are. Everything else is dropped unless rewritten below.
const KEEP: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "required",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "pattern",
    "minimum",
    "maximum",
    "example",
    "default",
    "propertyOrdering",
];

/// Refs nested deeper than this are rejected (a guard, not a real-world limit).
const MAX_REF_DEPTH: usize = 32;
/// Output nodes allowed after inlining: shared refs can blow up exponentially.
const MAX_NODES: usize = 20_000;

/// Clean `schema` for Gemini. `Err` is a message for the caller, e.g. a recursive `$ref`
/// (Gemini's schema has no references, so a recursive type cannot be expressed).
pub fn clean_schema(schema: &Value) -> Result<Value, String> {
    let mut cleaner = Cleaner { root: schema, stack: Vec::new(), nodes: 0 };
    cleaner.clean(schema)
}

struct Cleaner<'a> {
    root: &'a Value,
    /// `$ref`s being expanded, outermost first: a ref met again is recursive.
    stack: Vec<String>,
    nodes: usize,
}

impl Cleaner<'_> {
    fn clean(&mut self, node: &Value) -> Result<Value, String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!("the schema is too large after inlining `$ref`s (over {MAX_NODES} nodes)"));
        }
        // `true` / `{}` (anything goes) have no Gemini form beyond an empty schema.
        let Value::Object(obj) = node else { return Ok(Value::Object(Map::new())) };
        if let Some(reference) = obj.get("$ref") {
            return self.expand_ref(reference, obj);
        }
        let mut out = Map::new();
        let mut nullable = false;
        // The node's own keywords first; members of `anyOf`/`allOf` are merged in after,
        // without overriding them (a field's `description` beats the shared type's).
        let (combinators, own): (Vec<_>, Vec<_>) =
            obj.iter().partition(|(k, _)| matches!(k.as_str(), "anyOf" | "oneOf" | "allOf"));
        for (key, value) in own.into_iter().chain(combinators) {
            match key.as_str() {
                "type" => match value {
                    Value::Array(types) => {
                        let named: Vec<&Value> = types.iter().filter(|t| t.as_str() != Some("null")).collect();
                        nullable |= named.len() < types.len();
                        match named.as_slice() {
                            [] => {}
                            [one] => {
                                out.insert("type".into(), (*one).clone());
                            }
                            many => {
                                let any: Vec<Value> =
                                    many.iter().map(|t| Value::Object(single("type", (*t).clone()))).collect();
                                out.insert("anyOf".into(), Value::Array(any));
                            }
                        }
                    }
                    Value::String(t) if t == "null" => nullable = true,
                    other => {
                        out.insert("type".into(), other.clone());
                    }
                },
                "properties" => {
                    if let Value::Object(props) = value {
                        let mut cleaned = Map::new();
                        for (name, prop) in props {
                            cleaned.insert(name.clone(), self.clean(prop)?);
                        }
                        out.insert("properties".into(), Value::Object(cleaned));
                    }
                }
                "items" => {
                    let items = match value {
                        // Tuple form: Gemini has no prefixItems; accept any of the members.
                        Value::Array(members) => {
                            let any = members.iter().map(|m| self.clean(m)).collect::<Result<Vec<_>, _>>()?;
                            Value::Object(single("anyOf", Value::Array(any)))
                        }
                        v => self.clean(v)?,
                    };
                    out.insert("items".into(), items);
                }
                "enum" => {
                    if let Value::Array(values) = value {
                        nullable |= values.iter().any(Value::is_null);
                        out.insert("enum".into(), Value::Array(values.iter().filter_map(enum_string).collect()));
                    }
                }
                "const" if !obj.contains_key("enum") => {
                    nullable |= value.is_null();
                    if let Some(v) = enum_string(value) {
                        out.insert("enum".into(), Value::Array(vec![v]));
                    }
                }
                // `oneOf` is stricter than `anyOf`; Gemini has only the latter, and a
                // slightly looser schema beats dropping the alternatives altogether.
                "anyOf" | "oneOf" => {
                    if let Value::Array(members) = value {
                        let mut kept = Vec::new();
                        for m in members {
                            let c = self.clean(m)?;
                            if is_null_schema(&c) {
                                nullable = true;
                            } else {
                                kept.push(c);
                            }
                        }
                        match kept.len() {
                            0 => {}
                            // `anyOf: [X, null]` is how Pydantic spells `Optional[X]`.
                            1 => {
                                if let Some(Value::Object(member)) = kept.pop() {
                                    for (k, v) in member {
                                        out.entry(k).or_insert(v);
                                    }
                                }
                            }
                            _ => {
                                out.insert("anyOf".into(), Value::Array(kept));
                            }
                        }
                    }
                }
                "allOf" => {
                    if let Value::Array(members) = value {
                        for m in members {
                            if let Value::Object(member) = self.clean(m)? {
                                merge_all_of(&mut out, member);
                            }
                        }
                    }
                }
                k if KEEP.contains(&k) => {
                    out.insert(key.clone(), value.clone());
                }
                // additionalProperties, $schema, $id, $defs, definitions, strict,
                // exclusiveMinimum, multipleOf, not, if/then/else, examples, ...
                _ => {}
            }
        }
        if nullable {
            out.insert("nullable".into(), Value::Bool(true));
        }
        Ok(Value::Object(out))
    }

    fn expand_ref(&mut self, reference: &Value, node: &Map<String, Value>) -> Result<Value, String> {
        let Some(reference) = reference.as_str() else {
            return Err("`$ref` must be a string".into());
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(format!(
                "`$ref` `{reference}` points outside the schema; only local refs (`#/$defs/...`) can be inlined"
            ));
        };
        if self.stack.iter().any(|r| r == reference) {
            return Err(format!("`$ref` `{reference}` is recursive; Gemini schemas cannot express recursive types"));
        }
        if self.stack.len() >= MAX_REF_DEPTH {
            return Err(format!("`$ref`s nest deeper than {MAX_REF_DEPTH} levels"));
        }
        let target = self.root.pointer(pointer).ok_or_else(|| format!("`$ref` `{reference}` does not resolve"))?;
        self.stack.push(reference.to_owned());
        let resolved = self.clean(target);
        self.stack.pop();
        let mut resolved = match resolved? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        // Keywords next to `$ref` (a field's own `description`) refine the shared type.
        let siblings: Map<String, Value> =
            node.iter().filter(|(k, _)| k.as_str() != "$ref").map(|(k, v)| (k.clone(), v.clone())).collect();
        if !siblings.is_empty()
            && let Value::Object(extra) = self.clean(&Value::Object(siblings))?
        {
            resolved.extend(extra);
        }
        Ok(Value::Object(resolved))
    }
}

fn single(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.to_owned(), value);
    m
}

/// Gemini's `enum` is a list of strings (`{type: INTEGER, format: enum, enum: ["1"]}`).
fn enum_string(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::String(_) => Some(v.clone()),
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        other => Some(Value::String(other.to_string())),
    }
}

fn is_null_schema(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.get("nullable") == Some(&Value::Bool(true)) && m.len() == 1
                || m.get("type").and_then(Value::as_str) == Some("null")
        }
        _ => false,
    }
}

/// `allOf` members describe one value: union the properties and required names, and
/// take other keywords from the first member that sets them.
fn merge_all_of(out: &mut Map<String, Value>, member: Map<String, Value>) {
    for (k, v) in member {
        match (k.as_str(), out.get_mut(&k), v) {
            ("properties", Some(Value::Object(have)), Value::Object(add)) => {
                for (name, prop) in add {
                    have.entry(name).or_insert(prop);
                }
            }
            ("required", Some(Value::Array(have)), Value::Array(add)) => {
                for name in add {
                    if !have.contains(&name) {
                        have.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, v) => {
                out.insert(k, v);
            }
        }
    }
}

/// Whether a cleaned tool-parameter schema describes no arguments at all. Gemini
/// rejects an OBJECT schema with empty `properties`, so such `parameters` are left out.
pub fn is_empty_object(schema: &Value) -> bool {
    let Some(obj) = schema.as_object() else { return true };
    let no_props = obj.get("properties").and_then(Value::as_object).is_none_or(Map::is_empty);
    let object_type = obj.get("type").and_then(Value::as_str).is_none_or(|t| t.eq_ignore_ascii_case("object"));
    no_props && object_type && !obj.contains_key("anyOf")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_unsupported_keywords_at_every_level() {
        let got = clean_schema(&json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "strict": true,
            "properties": {
                "a": {"type": "integer", "exclusiveMinimum": 0, "default": 3, "minimum": 1},
                "additionalProperties": {"type": "string", "additionalProperties": false},
                "list": {"type": "array", "items": {"type": "object", "additionalProperties": false, "properties": {"x": {"type": "string"}}}}
            },
            "required": ["a"]
        }))
        .unwrap();
        assert_eq!(
            got,
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "default": 3, "minimum": 1},
                    "additionalProperties": {"type": "string"},
                    "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}}
                },
                "required": ["a"]
            })
        );
    }

    #[test]
    fn inlines_refs_with_sibling_keywords() {
        let got = clean_schema(&json!({
            "type": "object",
            "$defs": {
                "City": {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": false},
                "Unit": {"enum": ["c", "f"], "type": "string"}
            },
            "definitions": {"Legacy": {"type": "boolean"}},
            "properties": {
                "city": {"$ref": "#/$defs/City", "description": "where"},
                "unit": {"$ref": "#/$defs/Unit"},
                "old": {"$ref": "#/definitions/Legacy"},
                "cities": {"type": "array", "items": {"$ref": "#/$defs/City"}}
            }
        }))
        .unwrap();
        let city = json!({"type": "object", "properties": {"name": {"type": "string"}}});
        assert_eq!(
            got,
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "object", "properties": {"name": {"type": "string"}}, "description": "where"},
                    "unit": {"enum": ["c", "f"], "type": "string"},
                    "old": {"type": "boolean"},
                    "cities": {"type": "array", "items": city}
                }
            })
        );
    }

    #[test]
    fn recursive_refs_fail_clearly() {
        let direct = json!({
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            "$ref": "#/$defs/Node"
        });
        let err = clean_schema(&direct).unwrap_err();
        assert!(err.contains("recursive") && err.contains("#/$defs/Node"), "{err}");
        let mutual = json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/A"}},
            "$defs": {
                "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}},
                "B": {"type": "array", "items": {"$ref": "#/$defs/A"}}
            }
        });
        assert!(clean_schema(&mutual).unwrap_err().contains("recursive"));
        let root = json!({"type": "object", "properties": {"self": {"$ref": "#"}}});
        assert!(clean_schema(&root).unwrap_err().contains("recursive"));
    }

    #[test]
    fn a_shared_non_recursive_ref_is_fine() {
        let got = clean_schema(&json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/X"}, "b": {"$ref": "#/$defs/X"}},
            "$defs": {"X": {"type": "string"}}
        }))
        .unwrap();
        assert_eq!(got["properties"], json!({"a": {"type": "string"}, "b": {"type": "string"}}));
    }

    #[test]
    fn unresolvable_and_remote_refs_fail() {
        assert!(clean_schema(&json!({"$ref": "#/$defs/Missing"})).unwrap_err().contains("does not resolve"));
        assert!(clean_schema(&json!({"$ref": "https://x/s.json"})).unwrap_err().contains("outside"));
    }

    #[test]
    fn exponential_sharing_is_bounded() {
        let mut defs = serde_json::Map::new();
        for i in 0..30 {
            defs.insert(
                format!("D{i}"),
                json!({"type": "object", "properties": {
                    "l": {"$ref": format!("#/$defs/D{}", i + 1)},
                    "r": {"$ref": format!("#/$defs/D{}", i + 1)}
                }}),
            );
        }
        defs.insert("D30".into(), json!({"type": "string"}));
        let schema = json!({"$ref": "#/$defs/D0", "$defs": defs});
        assert!(clean_schema(&schema).unwrap_err().contains("too large"));
    }

    #[test]
    fn nullability_becomes_nullable() {
        let got = clean_schema(&json!({
            "type": "object",
            "properties": {
                "a": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "opt", "default": null},
                "b": {"type": ["integer", "null"]},
                "c": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "d": {"type": ["string", "number"]},
                "e": {"enum": [1, 2, null], "type": "integer"},
                "f": {"const": "fixed"}
            }
        }))
        .unwrap();
        assert_eq!(
            got["properties"],
            json!({
                "a": {"type": "string", "description": "opt", "default": null, "nullable": true},
                "b": {"type": "integer", "nullable": true},
                "c": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "d": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "e": {"enum": ["1", "2"], "type": "integer", "nullable": true},
                "f": {"enum": ["fixed"]}
            })
        );
    }

    #[test]
    fn all_of_members_merge() {
        let got = clean_schema(&json!({
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}, "required": ["b"], "additionalProperties": false}
            ],
            "description": "both"
        }))
        .unwrap();
        assert_eq!(
            got,
            json!({
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "description": "both"
            })
        );
    }

    #[test]
    fn empty_object_detection() {
        assert!(is_empty_object(&json!({"type": "object", "properties": {}})));
        assert!(is_empty_object(&json!({"type": "object"})));
        assert!(is_empty_object(&json!({})));
        assert!(!is_empty_object(&json!({"type": "object", "properties": {"a": {"type": "string"}}})));
        assert!(!is_empty_object(&json!({"type": "string"})));
    }
}
