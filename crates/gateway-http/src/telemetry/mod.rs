//! What a running gateway tells its operators: the request log ([`log`]), Prometheus
//! metrics ([`metrics`]) and OpenTelemetry traces ([`traces`]). Each is a
//! [`RequestObserver`] fed the engine's record of every request; each is off unless asked
//! for, and an engine with none of them makes no record at all.

pub mod log;
pub mod metrics;
mod shards;
pub mod traces;

use std::sync::Arc;

use gateway_core::engine::{Observers, RequestObserver, RequestRecord};

pub use log::{LogFormat, RequestLog};
pub use metrics::Metrics;
pub use traces::Traces;

/// The server's observers.
#[derive(Debug, Default, Clone)]
pub struct Telemetry {
    /// The request log.
    pub log: Option<Arc<RequestLog>>,
    /// `GET /metrics`.
    pub metrics: Option<Arc<Metrics>>,
    /// OTLP span export.
    pub traces: Option<Arc<Traces>>,
}

impl Telemetry {
    /// The observer the engine should be given, if any is on.
    pub fn observer(&self) -> Option<Arc<dyn RequestObserver>> {
        let mut all: Vec<Arc<dyn RequestObserver>> = Vec::new();
        if let Some(log) = &self.log {
            all.push(log.clone());
        }
        if let Some(metrics) = &self.metrics {
            all.push(metrics.clone());
        }
        if let Some(traces) = &self.traces {
            all.push(traces.clone());
        }
        match all.len() {
            0 => None,
            1 => all.pop(),
            _ => Some(Arc::new(Observers(all))),
        }
    }

    /// A request has arrived (the in-flight gauge).
    pub fn started(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.started();
        }
    }

    /// Write out what is buffered (the log's last lines, the last spans): at shutdown.
    pub fn shutdown(&self) {
        if let Some(log) = &self.log {
            log.flush();
        }
        if let Some(traces) = &self.traces {
            traces.shutdown();
        }
    }

    /// A request refused before it reached the engine.
    pub fn refused(&self, record: &RequestRecord) {
        if let Some(observer) = self.observer() {
            observer.record(record);
        }
    }
}
