//! Shared state for one process: counters and circuits in memory, behind a lock each.
//! Bounded: counters expire with their window, and a caller's metadata cannot grow the
//! maps past [`MAX_ENTRIES`] (a new counter past it is not kept, so its limit passes).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::{Adjustment, CircuitPolicy, CircuitState, CircuitView, SharedState, StateUnavailable, epoch_ms};
use crate::state::Charge;

/// Most counters (and, separately, circuits) kept.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Counters and circuits of one process.
#[derive(Debug, Default)]
pub struct InMemoryState {
    counters: Mutex<Counters>,
    circuits: Mutex<HashMap<String, CircuitState>>,
}

#[derive(Debug, Default)]
struct Counters {
    map: HashMap<String, (i64, Instant)>,
    /// Sweep expired counters when the map reaches this size.
    sweep_at: usize,
}

impl Counters {
    fn get(&self, key: &str, now: Instant) -> i64 {
        self.map.get(key).filter(|(_, expires)| *expires > now).map_or(0, |(value, _)| *value)
    }

    fn add(&mut self, key: &str, amount: i64, ttl: Duration, now: Instant) {
        if !self.map.contains_key(key) && !self.make_room(now) {
            return;
        }
        let entry = self.map.entry(key.to_owned()).or_insert((0, now + ttl));
        if entry.1 <= now {
            *entry = (0, now + ttl);
        }
        entry.0 = entry.0.saturating_add(amount);
    }

    /// Room for one more counter: expired ones go when the map has doubled since the last
    /// sweep, so a sweep costs O(1) per insert on average.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.map.len() >= self.sweep_at.max(1024) {
            self.map.retain(|_, (_, expires)| *expires > now);
            self.sweep_at = self.map.len() * 2;
        }
        self.map.len() < MAX_ENTRIES
    }
}

/// The part of the previous window's count that still counts, rounded up: at a minute's
/// turn the whole of it (a request just before the turn is still inside the last 60 s).
fn charge_share(count: i64, weight: f64) -> i64 {
    (count as f64 * weight).ceil() as i64
}

impl InMemoryState {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl SharedState for InMemoryState {
    async fn reserve(&self, charges: &[Charge]) -> Result<Option<usize>, StateUnavailable> {
        let now = Instant::now();
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for (i, charge) in charges.iter().enumerate() {
            let previous =
                charge.previous.as_ref().map_or(0, |(key, weight)| charge_share(counters.get(key, now), *weight));
            if charge.refuses(counters.get(&charge.key, now).saturating_add(previous)) {
                return Ok(Some(i));
            }
        }
        for charge in charges {
            counters.add(&charge.key, charge.amount, charge.ttl, now);
        }
        Ok(None)
    }

    fn settle(&self, adjustments: Vec<Adjustment>) {
        let now = Instant::now();
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for Adjustment { key, delta } in adjustments {
            // A counter whose window has gone needs no correction.
            if let Some((value, expires)) = counters.map.get_mut(&key)
                && *expires > now
            {
                *value = value.saturating_add(delta);
            }
        }
    }

    async fn circuit(&self, target: &str, policy: &CircuitPolicy, now: SystemTime) -> CircuitView {
        let mut circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        circuits.get_mut(target).map_or(CircuitView::Closed, |state| state.admit(policy, epoch_ms(now)))
    }

    fn report(
        &self,
        target: &str,
        policy: &CircuitPolicy,
        failed: bool,
        retry_after: Option<Duration>,
        now: SystemTime,
    ) {
        let now = epoch_ms(now);
        let mut circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        if !circuits.contains_key(target) && circuits.len() >= MAX_ENTRIES {
            circuits.retain(|_, state| !state.is_idle(now));
            if circuits.len() >= MAX_ENTRIES {
                return;
            }
        }
        circuits.entry(target.to_owned()).or_default().report(policy, failed, retry_after, now);
    }
}
