//! The request log: one line per request on stdout, as JSON (`--log-format json`, the
//! default when stdout is not a terminal) or as readable text.
//!
//! A line is written into the buffer of the thread that finished the request
//! (`shards`); a thread of the log's own writes every buffer out every
//! [`FLUSH_EVERY`], in one write per buffer, and once more at shutdown. A request never
//! waits on stdout and never wakes a thread. If stdout cannot keep up, a thread's buffer
//! stops at [`MAX_PENDING_BYTES`] and later lines are dropped and counted, rather than
//! slowing every request down or growing without bound.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use gateway_core::engine::{RequestObserver, RequestRecord, rfc3339};

use super::shards::Shards;

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

/// How often buffered lines are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Most bytes one thread's buffer holds before lines are dropped.
pub const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;

/// The request log.
pub struct RequestLog {
    format: LogFormat,
    bodies: bool,
    pending: Shards<Vec<u8>>,
    out: Mutex<Output>,
    dropped: AtomicU64,
}

/// Where lines go, and the emptied buffers kept for reuse.
struct Output {
    writer: Box<dyn Write + Send>,
    spares: Vec<Vec<u8>>,
    /// A write failed (stdout closed): later lines are counted as dropped.
    broken: bool,
    /// Dropped lines already reported on stderr.
    reported: u64,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog").field("format", &self.format).field("bodies", &self.bodies).finish()
    }
}

impl RequestLog {
    /// A log writing to stdout.
    pub fn stdout(format: LogFormat, bodies: bool) -> std::io::Result<Arc<Self>> {
        Self::to_writer(format, bodies, std::io::stdout())
    }

    /// A log writing to `out`, from a thread that lives as long as the log.
    pub fn to_writer(format: LogFormat, bodies: bool, out: impl Write + Send + 'static) -> std::io::Result<Arc<Self>> {
        let log = Arc::new(Self {
            format,
            bodies,
            pending: Shards::default(),
            out: Mutex::new(Output { writer: Box::new(out), spares: Vec::new(), broken: false, reported: 0 }),
            dropped: AtomicU64::new(0),
        });
        let weak: Weak<Self> = Arc::downgrade(&log);
        std::thread::Builder::new().name("gatewise-log".into()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                let Some(log) = weak.upgrade() else { return };
                log.flush();
            }
        })?;
        Ok(log)
    }

    /// Write out every buffered line now (the writer thread does so every
    /// [`FLUSH_EVERY`]; the server once more when it stops).
    pub fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let Output { writer, spares, broken, reported } = &mut *out;
        // Each thread's buffer is swapped for an empty one under its lock and written
        // after, so a slow stdout never holds up a request.
        let mut full = Vec::new();
        self.pending.each(|buffer| {
            if !buffer.is_empty() {
                full.push(std::mem::replace(buffer, spares.pop().unwrap_or_default()));
            }
        });
        for mut batch in full {
            if !*broken && writer.write_all(&batch).is_err() {
                *broken = true;
            }
            if *broken {
                let lines = batch.iter().filter(|b| **b == b'\n').count();
                self.dropped.fetch_add(lines as u64, Ordering::Relaxed);
            }
            batch.clear();
            spares.push(batch);
        }
        if !*broken && writer.flush().is_err() {
            *broken = true;
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > *reported {
            tracing::warn!("{} request log lines dropped: the log's output fell behind or closed", dropped - *reported);
            *reported = dropped;
        }
    }

    /// Lines dropped because the output fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl RequestObserver for RequestLog {
    fn record(&self, record: &RequestRecord) {
        let mut buffer = self.pending.mine();
        if buffer.len() >= MAX_PENDING_BYTES {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.format {
            LogFormat::Json => record.write_json_line(&mut buffer),
            LogFormat::Text => buffer.extend_from_slice(text_line(record).as_bytes()),
            LogFormat::None => return,
        }
        buffer.push(b'\n');
    }

    fn wants_bodies(&self) -> bool {
        self.bodies
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
