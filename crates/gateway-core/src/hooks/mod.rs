//! Guardrail hooks (SPEC.md "Guardrail hooks"; Portkey's behaviour in
//! shared/reference/portkey-gateway.md section 9): checks run on a request before it
//! leaves and on the answer before it is returned. A failed hook with `deny` refuses the
//! request (446); any other failure lets the answer through with status 246. Every result
//! goes back to the caller as `hook_results` and into the request's record.
//!
//! Pure: hooks are parsed and compiled here with the config (a bad check is a config
//! error), the checks that need no I/O run here; the engine runs the phases and the
//! webhook checks through its transport.

mod checks;
mod params;
mod parse;
pub mod pii;
mod results;
pub mod text;
pub mod webhook;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use checks::{CHECK_IDS, Check, CheckRun, Operator, Rewrite};
pub use parse::{Guardrails, MAX_CHECKS, MAX_HOOKS, NodeHooks, load_guardrails, node_hooks};
pub use results::{CheckResult, HookReport, HookResult, PhaseOutcome};
pub use webhook::{MAX_WEBHOOK_TIMEOUT, Webhook};

use crate::request::Endpoint;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// On the request, before it is sent (`before_request_hooks`, `input_guardrails`).
    Before,
    /// On the answer, before it is returned (`after_request_hooks`, `output_guardrails`).
    After,
}

impl Phase {
    /// The name Portkey's webhooks receive as `eventType`.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Before => "beforeRequestHook",
            Self::After => "afterRequestHook",
        }
    }

    /// The name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Before => "before_request",
            Self::After => "after_request",
        }
    }
}

/// A compiled guardrail hook.
#[derive(Debug)]
pub struct Hook {
    /// The hook's id (given, the registry's, or made up as Portkey does).
    pub id: String,
    /// Whether a failure refuses the request.
    pub deny: bool,
    /// Run the checks one after another rather than together.
    pub sequential: bool,
    /// The enabled checks.
    pub checks: Vec<CheckSpec>,
    /// Feedback reported when a check failed (Portkey's `on_fail.feedback`).
    pub on_fail: Option<Value>,
    /// Feedback reported when every check passed (`on_success.feedback`).
    pub on_success: Option<Value>,
}

/// One check of a hook.
#[derive(Debug)]
pub struct CheckSpec {
    /// The check id (`default.regexMatch`).
    pub id: String,
    /// An error fails the hook instead of passing (`failOnError`).
    pub fail_on_error: bool,
    /// The compiled check.
    pub check: Check,
}

/// The hooks a leaf runs (inherited down the config tree; a node that sets a phase's
/// hooks replaces its parent's).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Before the request is sent.
    pub before: Vec<Arc<Hook>>,
    /// On the answer.
    pub after: Vec<Arc<Hook>>,
}

impl Hooks {
    /// Whether there are no hooks at all.
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }

    /// Whether an after-request hook can refuse the answer (then a stream is held until
    /// the checks have run on it).
    pub fn after_can_deny(&self) -> bool {
        self.after.iter().any(|h| h.deny)
    }
}

/// What a check looks at.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The phase.
    pub phase: Phase,
    /// The endpoint the request is for.
    pub endpoint: Endpoint,
    /// The request body, `override_params` applied.
    pub request: &'a Value,
    /// The answer (after-request checks on a complete answer).
    pub response: Option<&'a Value>,
    /// The text checked: the request's last message, or the answer's text.
    pub text: &'a str,
    /// The request's metadata.
    pub metadata: &'a Map<String, Value>,
    /// The provider the leaf calls.
    pub provider: &'a str,
}

/// Whether hooks of `phase` run for requests to `endpoint` (as Portkey: text generation,
/// and embeddings before the request only).
pub fn runs_for(endpoint: Endpoint, phase: Phase) -> bool {
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Messages | Endpoint::Responses => true,
        Endpoint::Embeddings => phase == Phase::Before,
        _ => false,
    }
}

/// Apply the rewrites of a phase's checks to the request (before) or answer (after).
/// Only texts change: a rewrite never touches the model or any other field.
pub fn apply_rewrites(value: &mut Value, phase: Phase, rewrites: &[Rewrite]) {
    for rewrite in rewrites {
        let mut apply = |f: &mut dyn FnMut(&str) -> Option<String>| match phase {
            Phase::Before => text::rewrite_request_texts(value, f),
            Phase::After => text::rewrite_answer_texts(value, f),
        };
        match rewrite {
            Rewrite::Redact(kinds) => apply(&mut |s| pii::redact(s, kinds)),
            Rewrite::Texts(replacement) => {
                // The texts of the service's JSON, in the order they occur, over ours.
                let mut texts = Vec::new();
                let mut replacement = replacement.clone();
                let mut collect = |s: &str| {
                    texts.push(s.to_owned());
                    None
                };
                match phase {
                    Phase::Before => text::rewrite_request_texts(&mut replacement, &mut collect),
                    Phase::After => text::rewrite_answer_texts(&mut replacement, &mut collect),
                }
                let mut texts = texts.into_iter();
                apply(&mut |_| texts.next());
            }
        }
    }
}
