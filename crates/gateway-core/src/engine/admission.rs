//! Rate limits and budgets on the request's path: reserve an estimate before a request
//! (its gateway key's and metadata's limits) or a target (its provider entry's) is let
//! through, and settle the real figures when the answer has ended, streams included.
//!
//! Every replica checks and reserves against the same counters in one atomic step, so
//! the replica count cannot multiply a limit. What can go over: requests are exact; tokens
//! and dollars can go over by what the requests in flight use beyond their estimates.

use std::sync::{Arc, Mutex};

use http::HeaderMap;

use crate::error::{ErrorCode, GatewayError};
use crate::pricing;
use crate::request::{GatewayRequest, RequestBody};
use crate::state::{Adjustment, Charge, Estimate, LimitKind, LimitScope, SharedState, epoch_ms, micro_usd};
use crate::usage::Usage;

use super::record::{RequestObserver, RequestRecord};

/// What happens to a request while the shared state cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenStateDown {
    /// Let it through uncounted (the backend says so, loudly, in the server's log).
    #[default]
    Allow,
    /// Refuse it: 503 `limits_unavailable`.
    Refuse,
}

/// Output tokens reserved for a request that sets no `max_tokens`.
const DEFAULT_OUTPUT_ESTIMATE: i64 = 256;
/// The most output tokens reserved for one request, whatever `max_tokens` says.
const MAX_OUTPUT_ESTIMATE: i64 = 4096;

/// What a request made reserves, to be settled once its answer has ended.
#[derive(Debug, Default)]
pub(crate) struct Reservations(Mutex<Vec<Reservation>>);

#[derive(Debug)]
struct Reservation {
    charges: Vec<Charge>,
    /// The leaf whose provider entry it was made for (`None`: the whole request's).
    option_index: Option<String>,
}

impl Reservations {
    fn push(&self, reservation: Reservation) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(reservation);
    }

    /// An observer that settles them, or `None` when nothing needs settling (a request
    /// count is what it is: only tokens and dollars are estimates).
    pub(crate) fn settlement(self, state: &Arc<dyn SharedState>) -> Option<Arc<dyn RequestObserver>> {
        let mut reservations = self.0.into_inner().unwrap_or_else(|p| p.into_inner());
        for reservation in &mut reservations {
            reservation.charges.retain(|charge| charge.kind != LimitKind::RequestsPerMinute);
        }
        reservations.retain(|reservation| !reservation.charges.is_empty());
        (!reservations.is_empty())
            .then(|| Arc::new(Settlement { state: state.clone(), reservations }) as Arc<dyn RequestObserver>)
    }
}

/// A refusal: the error, its `Retry-After`, and the limit that refused.
pub(crate) struct Refusal {
    pub(crate) error: GatewayError,
    pub(crate) headers: HeaderMap,
    /// The limit that refused (`None`: none did; the limits could not be checked).
    pub(crate) limit: Option<String>,
}

/// Check `scopes` for one request (or one target, `option_index`) and reserve the
/// estimate on all of them, or say which limit refused.
pub(crate) async fn admit(
    state: &dyn SharedState,
    when_down: WhenStateDown,
    scopes: &[LimitScope],
    estimate: impl FnOnce() -> Estimate,
    option_index: Option<&str>,
    now: std::time::SystemTime,
    reservations: &Reservations,
) -> Result<(), Refusal> {
    let now_ms = epoch_ms(now);
    // Only token and dollar limits need the estimate, which reads the body.
    let estimate = if scopes.iter().any(|s| s.limits.needs_estimate()) { estimate() } else { Estimate::default() };
    let mut charges = Vec::with_capacity(scopes.len() * 2);
    for (i, scope) in scopes.iter().enumerate() {
        scope.charges(i, estimate, now_ms, &mut charges);
    }
    if charges.is_empty() {
        return Ok(());
    }
    match state.reserve(&charges).await {
        Ok(None) => {
            reservations.push(Reservation { charges, option_index: option_index.map(str::to_owned) });
            Ok(())
        }
        Ok(Some(i)) => Err(refusal(&charges[i], &scopes[charges[i].scope])),
        Err(_) if when_down == WhenStateDown::Allow => Ok(()),
        Err(e) => Err(Refusal {
            error: GatewayError::new(
                ErrorCode::LimitsUnavailable,
                format!("rate limits cannot be checked ({e}), and this gateway refuses requests it cannot count"),
            ),
            headers: retry_after(1),
            limit: None,
        }),
    }
}

fn refusal(charge: &Charge, scope: &LimitScope) -> Refusal {
    let kind = charge.kind;
    let limit = format!("{}: {}", scope.name, kind.as_str());
    let shown = match kind {
        LimitKind::UsdPerDay | LimitKind::UsdPerMonth => format!("{} USD", charge.limit as f64 / 1_000_000.0),
        LimitKind::RequestsPerMinute => format!("{} requests", charge.limit),
        LimitKind::TokensPerMinute => format!("{} tokens", charge.limit),
    };
    let (code, what) =
        if kind.is_budget() { (ErrorCode::BudgetExceeded, "budget") } else { (ErrorCode::RateLimited, "rate limit") };
    let seconds = charge.retry_after.as_secs() + u64::from(charge.retry_after.subsec_nanos() > 0);
    let error = GatewayError::new(code, format!("the {what} `{limit}` ({shown}) is used up; retry after {seconds} s"))
        .with_param(kind.as_str());
    Refusal { error, headers: retry_after(seconds.max(1)), limit: Some(limit) }
}

fn retry_after(seconds: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    headers
}

/// What a request is expected to use: its input (a token per four bytes of body, the
/// usual rule of thumb) and its output (`max_tokens`, at most [`MAX_OUTPUT_ESTIMATE`]),
/// priced at `provider`'s price for the model when it is known.
pub(crate) fn estimate(
    request: &GatewayRequest,
    provider: Option<&str>,
    own_prices: Option<&pricing::ModelPrices>,
) -> Estimate {
    let bytes = match &request.body {
        RequestBody::Json { raw, .. } | RequestBody::Opaque { raw, .. } => raw.len(),
        RequestBody::Empty => 0,
    };
    let input = i64::try_from(bytes / 4).unwrap_or(i64::MAX);
    let body = request.body.value();
    let output = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|field| body?.get(*field)?.as_i64())
        .map_or(DEFAULT_OUTPUT_ESTIMATE, |n| n.clamp(0, MAX_OUTPUT_ESTIMATE));
    let model = request.body.shape().and_then(|shape| shape.model_name.as_deref());
    let micro_usd = match (provider, model) {
        (Some(provider), Some(model)) => pricing::price(provider, model, own_prices).map_or(0, |price| {
            let usage = Usage {
                input_tokens: u64::try_from(input).unwrap_or(0),
                output_tokens: u64::try_from(output).unwrap_or(0),
                ..Usage::default()
            };
            self::micro_usd(price.cost(&usage))
        }),
        _ => 0,
    };
    Estimate { tokens: input.saturating_add(output), micro_usd }
}

/// Settles a request's reservations from its record: the answer's tokens and cost
/// replace the estimate (a target that did not answer gives its estimate back; its
/// request still counts).
#[derive(Debug)]
struct Settlement {
    state: Arc<dyn SharedState>,
    reservations: Vec<Reservation>,
}

impl RequestObserver for Settlement {
    fn record(&self, record: &RequestRecord) {
        // A stream's figures are in its totals once it has ended.
        let route = &record.route;
        let totals = route.stream_totals.as_ref().and_then(super::StreamTotals::get);
        let (usage, cost) = match totals {
            Some(totals) => (totals.usage, totals.cost),
            None => (route.usage, route.cost),
        };
        let mut adjustments = Vec::new();
        for reservation in &self.reservations {
            let answered = match &reservation.option_index {
                None => true,
                Some(leaf) => route.option_index.as_ref() == Some(leaf) && record.error.is_none(),
            };
            for charge in &reservation.charges {
                let real = match charge.kind {
                    LimitKind::RequestsPerMinute => continue,
                    // A stream the caller left is still paid for upstream: without its
                    // figures, the estimate stands.
                    _ if record.cancelled && usage.is_none() => continue,
                    LimitKind::TokensPerMinute => match (&usage, answered) {
                        (Some(usage), true) => i64::try_from(usage.total_tokens).unwrap_or(i64::MAX),
                        _ => 0,
                    },
                    LimitKind::UsdPerDay | LimitKind::UsdPerMonth => match (cost, answered) {
                        (Some(cost), true) => micro_usd(cost),
                        // No price known: what was reserved stays counted.
                        (None, true) if usage.is_some() => continue,
                        _ => 0,
                    },
                };
                if real != charge.amount {
                    adjustments.push(Adjustment { key: charge.key.clone(), delta: real - charge.amount });
                }
            }
        }
        if !adjustments.is_empty() {
            self.state.settle(adjustments);
        }
    }
}
