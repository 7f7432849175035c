//! Answers that switch protocols: a realtime WebSocket session.
//!
//! The engine routes the handshake like any request (configs, retries on the handshake's
//! status, fallbacks, limits) and answers with the upstream connection the transport
//! opened. Relaying the session is the edge's work (the server's); the engine keeps
//! what it owns: the session's usage, read off the provider's `response.done` events,
//! and one record for the observers when the session ends.

use std::any::Any;
use std::sync::Arc;

use memchr::memmem;

use super::metering::Pricing;
use super::record::{RequestObserver, RequestRecord};
use super::route_info::StreamTotals;
use super::transport::Transport;
use crate::error::GatewayError;
use crate::usage::{self, Usage};

/// An upstream connection that switched protocols, as the transport made it. Opaque to
/// the engine (it holds no I/O types of its own); the edge that relays the session
/// knows the transport it runs on and takes the connection back out.
pub struct Upgraded(Box<dyn Any + Send>);

impl Upgraded {
    /// Wrap a transport's connection.
    pub fn new<T: Any + Send>(connection: T) -> Self {
        Self(Box::new(connection))
    }

    /// The connection, if it is a `T`.
    pub fn downcast<T: Any>(self) -> Result<T, Self> {
        self.0.downcast::<T>().map(|b| *b).map_err(Self)
    }
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upgraded(..)")
    }
}

/// A routed realtime session: the upstream connection, and the meter and record that
/// travel with it until it ends. Dropping it ends the session's record too.
pub struct Session {
    upstream: Option<Upgraded>,
    meter: Option<Meter>,
    report: Option<Report>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("upstream", &self.upstream).finish_non_exhaustive()
    }
}

/// Sums the usage of every response of the session.
struct Meter {
    pricing: Pricing,
    totals: StreamTotals,
    usage: Option<Usage>,
}

/// The record handed to the observer when the session ends.
struct Report {
    record: RequestRecord,
    observer: Arc<dyn RequestObserver>,
    clock: Arc<dyn Transport>,
    started: std::time::Instant,
}

/// Realtime events are JSON objects with a `type`; only a finished response carries
/// usage (`response.done`, with `response.usage`).
const RESPONSE_DONE: &[u8] = b"\"response.done\"";

impl Session {
    pub(crate) fn new(upstream: Upgraded) -> Self {
        Self { upstream: Some(upstream), meter: None, report: None }
    }

    /// The upstream connection, taken once by the edge that relays the session.
    pub fn take_upstream(&mut self) -> Option<Upgraded> {
        self.upstream.take()
    }

    /// Look at one event the provider sent (a text message): a finished response's
    /// usage is added to the session's.
    pub fn provider_event(&mut self, event: &[u8]) {
        let Some(meter) = &mut self.meter else { return };
        if memmem::find(event, RESPONSE_DONE).is_none() {
            return;
        }
        if let Some(used) = usage::usage_in(event) {
            meter.usage = Some(meter.usage.map_or(used, |before| before.plus(used)));
        }
    }

    /// The session is over: settle its totals and hand its record to the observer.
    /// `error`: why it broke, if it did not end with a close from either side.
    pub fn end(mut self, error: Option<&GatewayError>) {
        self.finish(error);
    }

    fn finish(&mut self, error: Option<&GatewayError>) {
        if let Some(meter) = self.meter.take() {
            meter.totals.set(meter.pricing.totals(meter.usage, None));
        }
        let Some(Report { mut record, observer, clock, started }) = self.report.take() else { return };
        record.latency = clock.now().saturating_duration_since(started);
        record.route = record.route.settled();
        record.error = error.map(|e| (e.code, e.message.clone()));
        observer.record(&record);
    }

    pub(crate) fn meter(&mut self, pricing: Pricing, totals: StreamTotals) {
        self.meter = Some(Meter { pricing, totals, usage: None });
    }

    pub(crate) fn report(
        &mut self,
        record: RequestRecord,
        observer: Arc<dyn RequestObserver>,
        clock: Arc<dyn Transport>,
        started: std::time::Instant,
    ) {
        self.report = Some(Report { record, observer, clock, started });
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.finish(None);
    }
}
