//! The request log: one line per request on stdout, as JSON (`--log-format json`, the
//! default when stdout is not a terminal) or as readable text.
//!
//! A line is made on the thread that finished the request and written by a thread of its
//! own, which writes whatever has queued up in one go: a request never waits on stdout.
//! If stdout cannot keep up and the queue is full, lines are dropped and counted rather
//! than slowing every request down.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use gateway_core::engine::{RequestObserver, RequestRecord, rfc3339};

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// One readable line per request.
    Text,
    /// No request log.
    None,
}

impl LogFormat {
    /// JSON when stdout is not a terminal (a log shipper reads it), text when it is.
    pub fn default_for_stdout() -> Self {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() { Self::Text } else { Self::Json }
    }
}

/// Lines waiting for the writer thread, at most.
const QUEUE: usize = 16 * 1024;

/// The request log.
#[derive(Debug)]
pub struct RequestLog {
    format: LogFormat,
    bodies: bool,
    lines: SyncSender<String>,
    dropped: AtomicU64,
}

impl RequestLog {
    /// A log writing to stdout from a thread of its own.
    pub fn stdout(format: LogFormat, bodies: bool) -> std::io::Result<Self> {
        Self::to_writer(format, bodies, std::io::stdout())
    }

    /// A log writing to `out` from a thread of its own.
    pub fn to_writer(format: LogFormat, bodies: bool, out: impl Write + Send + 'static) -> std::io::Result<Self> {
        let (lines, queued) = sync_channel(QUEUE);
        std::thread::Builder::new().name("gatewise-log".into()).spawn(move || write_lines(queued, out))?;
        Ok(Self { format, bodies, lines, dropped: AtomicU64::new(0) })
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl RequestObserver for RequestLog {
    fn record(&self, record: &RequestRecord) {
        let line = match self.format {
            LogFormat::Json => record.to_json_line(),
            LogFormat::Text => text_line(record),
            LogFormat::None => return,
        };
        if let Err(TrySendError::Full(_)) = self.lines.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn wants_bodies(&self) -> bool {
        self.bodies
    }
}

/// Write lines as they come, flushing once the queue is empty.
fn write_lines(queued: Receiver<String>, out: impl Write) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = queued.recv() {
        let mut next = Some(line);
        while let Some(line) = next {
            if out.write_all(line.as_bytes()).and_then(|()| out.write_all(b"\n")).is_err() {
                return;
            }
            next = queued.try_recv().ok();
        }
        if out.flush().is_err() {
            return;
        }
    }
}

/// `2026-12-01T04:51:05.123Z gw-1 200 openai/gpt-4o 12.3ms tokens=10+5 cost=$0.000075 cache=MISS retries=0 key=ci`
fn text_line(record: &RequestRecord) -> String {
    let route = &record.route;
    let mut line = format!(
        "{} {} {} {}/{} {:.1}ms",
        rfc3339(record.started),
        route.trace_id.as_deref().unwrap_or("-"),
        record.status,
        route.provider.as_deref().unwrap_or("-"),
        route.model.as_deref().unwrap_or("-"),
        record.latency.as_secs_f64() * 1000.0,
    );
    if let Some(ttft) = route.ttft {
        let _ = write!(line, " ttft={:.1}ms", ttft.as_secs_f64() * 1000.0);
    }
    if let Some(usage) = &route.usage {
        let _ = write!(line, " tokens={}+{}", usage.input_tokens, usage.output_tokens);
    }
    if let Some(cost) = route.cost {
        let _ = write!(line, " cost=${cost:.6}");
    }
    let _ = write!(line, " cache={} retries={}", route.cache_status.as_str(), route.retry_count);
    if let Some(key) = &record.key {
        let _ = write!(line, " key={key}");
    }
    if let Some((code, message)) = &record.error {
        let _ = write!(line, " error={} {message:?}", code.as_str());
    }
    if record.cancelled {
        line.push_str(" cancelled");
    }
    line
}
