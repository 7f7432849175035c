//! Provider health on the request's path: a target whose circuit is open is skipped
//! (recorded in the route), and every attempt's outcome is reported to the shared state,
//! so every replica stops sending to a failing provider together.

use std::time::Duration;

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::{Engine, Outcome, RouteInfo, Skipped, requested_delay};
use crate::config::Leaf;
use crate::error::{ErrorCode, GatewayError};
use crate::providers::ProviderTarget;
use crate::state::{CircuitPolicy, CircuitView};

/// A leaf's circuit while it is being tried.
pub(super) struct Circuit<'a> {
    policy: &'a CircuitPolicy,
    /// The target's name in the shared state.
    id: String,
    /// This request is the one let through after the cool-down.
    probe: bool,
}

impl Engine {
    /// The circuit of `target`, or the skip outcome when it is open.
    pub(super) async fn circuit_check<'a>(
        &self,
        policy: &'a CircuitPolicy,
        target: &ProviderTarget,
        host: Option<&str>,
        leaf: &Leaf,
        route: &mut RouteInfo,
    ) -> Result<Circuit<'a>, Outcome> {
        let id = circuit_id(target, host);
        let now = self.transport.wall_clock();
        let probe = match self.state.circuit(&id, policy, now).await {
            CircuitView::Closed => false,
            CircuitView::Probe => true,
            CircuitView::Open { until_ms } => {
                let slug = target.provider.slug();
                route.skipped.push(Skipped { option_index: leaf.option_index.clone(), provider: slug.to_owned() });
                let left =
                    Duration::from_millis(u64::try_from(until_ms - crate::state::epoch_ms(now)).unwrap_or(0).max(1000));
                let error = GatewayError::new(
                    ErrorCode::CircuitOpen,
                    format!(
                        "{slug} at {} failed too often and is skipped for {} s more (its circuit is open)",
                        leaf.option_index,
                        left.as_secs()
                    ),
                )
                .with_provider(slug);
                let mut headers = HeaderMap::new();
                headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(left.as_secs().max(1)));
                return Err(Outcome::error_with_headers(error, headers));
            }
        };
        Ok(Circuit { policy, id, probe })
    }

    /// Count one attempt's outcome. A success only matters to a percentage threshold or
    /// to a probe, so a count threshold costs nothing while all is well.
    pub(super) fn circuit_report(&self, circuit: &Circuit<'_>, status: u16, headers: &HeaderMap) {
        let failed = circuit.policy.counts(status);
        if !failed && !circuit.probe && circuit.policy.failure_threshold_percentage.is_none() {
            return;
        }
        let now = self.transport.wall_clock();
        let retry_after = if failed { requested_delay(headers, now) } else { None };
        self.state.report(&circuit.id, circuit.policy, failed, retry_after, now);
    }
}

/// A target's name in the shared state: its registry entry (`entry:openai-prod`), or a
/// hash of its provider, host and credentials, so a key never reaches the store and two
/// callers' keys for one provider are two circuits.
fn circuit_id(target: &ProviderTarget, host: Option<&str>) -> String {
    if let Some(entry) = target.held.as_ref().and_then(|held| held.entry.as_deref()) {
        return format!("entry:{entry}");
    }
    let mut h = Sha256::new();
    h.update(target.provider.slug().as_bytes());
    h.update([0]);
    h.update(host.unwrap_or("").as_bytes());
    h.update([0]);
    for (name, value) in &target.options {
        h.update(name.as_bytes());
        h.update([0]);
        match value {
            serde_json::Value::String(text) => h.update(text.as_bytes()),
            other => h.update(other.to_string().as_bytes()),
        }
        h.update([0]);
    }
    format!("target:{}", hex::encode(&h.finalize()[..16]))
}
