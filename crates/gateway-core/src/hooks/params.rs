//! A check's parameters, read with the path of each (errors name where the bad value is).

use serde_json::{Map, Value};

use super::checks::{Operator, Range};
use crate::json_path::JsonPath;

/// A check's parameters, read with their paths.
pub(super) struct Params<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) at: &'a JsonPath,
}

impl Params<'_> {
    pub(super) fn path(&self, name: &str) -> JsonPath {
        self.at.key(name)
    }

    pub(super) fn bool(&self, name: &str) -> Result<bool, (JsonPath, String)> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err((self.path(name), format!("`{name}` must be true or false"))),
        }
    }

    pub(super) fn required_str(&self, name: &str) -> Result<&str, (JsonPath, String)> {
        match self.map.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            _ => Err((self.path(name), format!("`{name}` is required: a non-empty string"))),
        }
    }

    pub(super) fn strings(&self, name: &str, required: bool) -> Result<Vec<String>, (JsonPath, String)> {
        match self.map.get(name) {
            Some(Value::Array(items)) if items.iter().all(Value::is_string) && !(required && items.is_empty()) => {
                Ok(items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            }
            None if !required => Ok(Vec::new()),
            _ => Err((self.path(name), format!("`{name}` must be a non-empty list of strings"))),
        }
    }

    pub(super) fn list_or_csv(&self, name: &str) -> Result<Option<Vec<String>>, (JsonPath, String)> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                Ok(Some(s.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()))
            }
            Some(_) => self.strings(name, false).map(Some),
        }
    }

    pub(super) fn operator(&self) -> Result<Operator, (JsonPath, String)> {
        self.operator_or(Operator::Any)
    }

    pub(super) fn operator_or(&self, default: Operator) -> Result<Operator, (JsonPath, String)> {
        match self.map.get("operator").and_then(Value::as_str) {
            None if self.map.get("operator").is_none_or(Value::is_null) => Ok(default),
            Some("any") => Ok(Operator::Any),
            Some("all") => Ok(Operator::All),
            Some("none") => Ok(Operator::None),
            _ => Err((self.path("operator"), "`operator` is `any`, `all` or `none`".to_owned())),
        }
    }

    /// A range from two optional bounds; at least one must be given.
    pub(super) fn range(&self, min: &str, max: &str, not: bool) -> Result<Range, (JsonPath, String)> {
        let bound = |name: &str| -> Result<Option<u64>, (JsonPath, String)> {
            match self.map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    v.as_u64().map(Some).ok_or_else(|| (self.path(name), format!("`{name}` must be a whole number")))
                }
            }
        };
        let (lo, hi) = (bound(min)?, bound(max)?);
        if lo.is_none() && hi.is_none() {
            return Err((self.path(min), format!("give `{min}`, `{max}` or both")));
        }
        let range = Range { min: lo.unwrap_or(0), max: hi.unwrap_or(u64::MAX), not };
        if range.min > range.max {
            return Err((self.path(min), format!("`{min}` is above `{max}`")));
        }
        Ok(range)
    }
}
