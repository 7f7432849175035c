//! What hooks concluded, in the shape Portkey returns as `hook_results`.

use serde::Serialize;
use serde_json::Value;

use super::{CheckRun, Hook, Rewrite};

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The check id.
    pub id: String,
    /// Whether it passed.
    pub verdict: bool,
    /// What the check saw.
    pub data: Value,
    /// Why it could not decide (`{"name": "Check error", "message"}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Milliseconds it took.
    pub execution_time: u64,
    /// Whether it changed the request or answer.
    pub transformed: bool,
    /// When it ran (RFC 3339).
    pub created_at: String,
    /// Portkey's field for a check's log; always null here.
    pub log: Value,
    /// Whether an error fails the hook.
    pub fail_on_error: bool,
}

impl CheckResult {
    /// The result of `run` for the check `id`.
    pub fn new(id: &str, fail_on_error: bool, run: &CheckRun, execution_time: u64, created_at: String) -> Self {
        Self {
            id: id.to_owned(),
            verdict: run.verdict,
            data: run.data.clone(),
            error: run.error.as_ref().map(|m| serde_json::json!({"name": "Check error", "message": m})),
            execution_time,
            transformed: run.rewrite.is_some(),
            created_at,
            log: Value::Null,
            fail_on_error,
        }
    }

    /// Whether the check counts as passed: it passed, or it errored and errors pass.
    pub fn passes(&self) -> bool {
        self.verdict || (self.error.is_some() && !self.fail_on_error)
    }
}

/// One hook's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookResult {
    /// Every enabled check passed (an erroring check passes unless `fail_on_error`).
    pub verdict: bool,
    /// The hook id.
    pub id: String,
    /// Whether a check changed the request or answer.
    pub transformed: bool,
    /// The checks' results.
    pub checks: Vec<CheckResult>,
    /// `on_fail` / `on_success` feedback, with the checks that passed, failed and errored.
    pub feedback: Option<Value>,
    /// Milliseconds the hook took.
    pub execution_time: u64,
    /// Always false: async hooks are refused by the config.
    #[serde(rename = "async")]
    pub is_async: bool,
    /// Always `guardrail`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it ran (RFC 3339).
    pub created_at: String,
    /// Whether this result refuses the request (a failed hook with `deny`).
    pub deny: bool,
}

impl HookResult {
    /// The result of `hook` from its checks' results.
    pub fn new(hook: &Hook, checks: Vec<CheckResult>, execution_time: u64, created_at: String) -> Self {
        let verdict = checks.iter().all(CheckResult::passes);
        let ids = |f: &dyn Fn(&CheckResult) -> bool| {
            checks.iter().filter(|c| f(c)).map(|c| c.id.as_str()).collect::<Vec<_>>().join(",")
        };
        let feedback = if verdict { &hook.on_success } else { &hook.on_fail }.as_ref().map(|feedback| {
            let mut metadata = feedback.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
            metadata.insert("successfulChecks".into(), ids(&|c| c.verdict).into());
            metadata.insert("failedChecks".into(), ids(&|c| !c.verdict && c.error.is_none()).into());
            metadata.insert("erroredChecks".into(), ids(&|c| c.error.is_some()).into());
            serde_json::json!({
                "value": feedback.get("value").cloned().unwrap_or(Value::Null),
                "weight": feedback.get("weight").cloned().unwrap_or(Value::Null),
                "metadata": metadata,
            })
        });
        Self {
            verdict,
            id: hook.id.clone(),
            transformed: checks.iter().any(|c| c.transformed),
            checks,
            feedback,
            execution_time,
            is_async: false,
            kind: "guardrail",
            created_at,
            deny: hook.deny && !verdict,
        }
    }
}

/// A phase's hooks, run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseOutcome {
    /// One result per hook, in config order.
    pub results: Vec<HookResult>,
    /// The rewrites the checks asked for, in order.
    pub rewrites: Vec<Rewrite>,
}

impl PhaseOutcome {
    /// Whether a hook refuses the request.
    pub fn denied(&self) -> bool {
        self.results.iter().any(|r| r.deny)
    }

    /// Whether any hook failed (with or without deny).
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| !r.verdict)
    }
}

/// `hook_results`: both phases' results.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HookReport {
    /// Before-request hooks of the leaf that answered (or refused).
    pub before_request_hooks: Vec<HookResult>,
    /// After-request hooks on its answer.
    pub after_request_hooks: Vec<HookResult>,
}

impl HookReport {
    /// Whether any hook failed.
    pub fn failed(&self) -> bool {
        self.before_request_hooks.iter().chain(&self.after_request_hooks).any(|r| !r.verdict)
    }

    /// Whether no hook ran.
    pub fn is_empty(&self) -> bool {
        self.before_request_hooks.is_empty() && self.after_request_hooks.is_empty()
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
