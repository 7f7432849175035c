//! How many connections the server holds at once. Past the cap a connection is still
//! served, but only `GET /health` gets a real answer; everything else gets 503
//! `server_busy` with `Retry-After` and the connection is closed, so a flood of clients
//! cannot use up the file descriptors that upstream calls, health checks and the
//! clients already being served need. Past the cap plus a margin, a new connection is
//! closed at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The connection count, shared by every worker of a server.
#[derive(Debug)]
pub struct ConnectionGate {
    open: AtomicUsize,
    max: usize,
}

/// What a new connection gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Served normally.
    Served,
    /// Served with 503s (and `/health`), then closed.
    Busy,
    /// Closed at once.
    Refused,
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct Admitted(Arc<ConnectionGate>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectionGate {
    /// A gate for at most `max` connections served normally.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { open: AtomicUsize::new(0), max: max.max(1) })
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Count a new connection and say how it is to be served.
    pub fn admit(self: &Arc<Self>) -> (Admission, Option<Admitted>) {
        let before = self.open.fetch_add(1, Ordering::Relaxed);
        let admitted = Admitted(self.clone());
        let margin = (self.max / 8).max(16);
        if before < self.max {
            (Admission::Served, Some(admitted))
        } else if before < self.max + margin {
            (Admission::Busy, Some(admitted))
        } else {
            (Admission::Refused, None)
        }
    }
}

/// The default cap: half of what the file-descriptor limit leaves after a reserve (each
/// served connection may hold one upstream connection too). The soft limit is raised to
/// the hard one first, as most servers do at start.
pub fn default_max_connections() -> usize {
    const RESERVE: u64 = 128;
    let limit = raise_fd_limit().unwrap_or(1024);
    let usable = limit.saturating_sub(RESERVE) / 2;
    usize::try_from(usable).unwrap_or(usize::MAX).clamp(64, 1 << 20)
}

#[cfg(unix)]
fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    // `None` is "unlimited".
    Some(limit.current.unwrap_or(u64::MAX))
}

#[cfg(not(unix))]
fn raise_fd_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_connections_are_busy_then_refused_and_leaving_frees_a_place() {
        let gate = ConnectionGate::new(2);
        let (a, first) = gate.admit();
        let (b, _second) = gate.admit();
        assert_eq!((a, b), (Admission::Served, Admission::Served));
        let busy: Vec<_> = (0..16).map(|_| gate.admit()).collect();
        assert!(busy.iter().all(|(admission, _)| *admission == Admission::Busy));
        assert_eq!(gate.admit().0, Admission::Refused);
        drop(busy);
        drop(first);
        assert_eq!(gate.admit().0, Admission::Served);
        assert!(default_max_connections() >= 64);
    }
}
