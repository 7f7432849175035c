//! The shared-state backend for replicas: rate-limit and budget counters, provider
//! circuits and the response cache in Redis (or Valkey), so N gateways behind a load
//! balancer hold one limit, one budget and one cache between them.
//!
//! - On the request's path a request pays at most one round trip per feature it uses: one
//!   script for its limits, one `GET` for a cache lookup. Circuit state is read from a
//!   local mirror of the open circuits, refreshed every [`MIRROR_REFRESH`], so a healthy
//!   target costs no round trip at all; only the request that probes a cooled-down target
//!   asks Redis.
//! - Everything after the answer (settling limits, circuit reports, cache stores) is queued
//!   and sent by a background task; the multiplexed connection pipelines what is in flight.
//! - Redis unavailable: a cache lookup is a miss, a circuit is closed, and limits follow
//!   the engine's [`gateway_core::engine::WhenStateDown`]. Every call is bounded by
//!   [`RESPONSE_TIMEOUT`], failures are logged (at most once per `WARN_EVERY`), and
//!   the connection is re-established by itself.
//!
//! The backend owns a one-thread runtime for its connection and background work, so it
//! serves a thread-per-core server and the bindings' runtimes alike.

mod scripts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gateway_core::cache::{Cache, CachedResponse};
use gateway_core::state::{
    Adjustment, CIRCUIT_WINDOW, Charge, CircuitPolicy, CircuitView, SharedState, StateUnavailable, epoch_ms,
};
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

/// Longest wait for any Redis answer.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the mirror of open circuits is refreshed.
pub const MIRROR_REFRESH: Duration = Duration::from_millis(250);
/// At most one warning about Redis this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Updates waiting for the background task; past it, new ones are dropped (and counted).
const QUEUE: usize = 65_536;
/// Updates sent at once; the rest wait in the queue.
const IN_FLIGHT: usize = 256;

/// Keys of limits and circuits share one hash tag, so a script sees all of its keys on
/// one node.
const STATE_PREFIX: &str = "gatewise:{state}:";
const OPEN_CIRCUITS: &str = "gatewise:{state}:circuits:open";
const CACHE_PREFIX: &str = "gatewise:cache:";

/// Redis as [`SharedState`] and [`Cache`].
pub struct RedisState {
    inner: Arc<Inner>,
    queue: mpsc::Sender<Update>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Inner {
    connection: ConnectionManager,
    /// Open circuits as last read: target → when its cool-down ends (ms).
    open: Mutex<HashMap<String, i64>>,
    reserve: redis::Script,
    settle: redis::Script,
    admit: redis::Script,
    report: redis::Script,
    last_warning: AtomicI64,
    dropped: AtomicU64,
    /// Whether the last call failed (to log the recovery once).
    down: std::sync::atomic::AtomicBool,
}

/// Work for the background task.
enum Update {
    Settle(Vec<Adjustment>),
    Report { target: String, policy: CircuitPolicy, failed: bool, cooldown: Duration, now: i64 },
    Store { key: String, body: Bytes, ttl: Duration },
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState").finish_non_exhaustive()
    }
}

impl RedisState {
    /// A backend for `url` (`redis://[user:password@]host:port/db`, `rediss://` for TLS).
    /// The connection is made lazily: a gateway starts while Redis is down, and connects
    /// when it comes up.
    pub fn open(url: &str) -> Result<Arc<Self>, crate::error::HttpError> {
        let bad = |e: redis::RedisError| crate::error::HttpError::Config {
            path: "--redis".into(),
            // The URL may hold a password: say what is wrong, not what was given.
            message: format!("not a usable Redis URL ({:?})", e.kind()),
        };
        let client = redis::Client::open(url).map_err(bad)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gatewise-redis")
            .enable_all()
            .build()?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = {
            let _entered = runtime.enter();
            ConnectionManager::new_lazy_with_config(client, config).map_err(bad)?
        };
        let inner = Arc::new(Inner {
            connection,
            open: Mutex::default(),
            reserve: redis::Script::new(scripts::RESERVE),
            settle: redis::Script::new(scripts::SETTLE),
            admit: redis::Script::new(scripts::ADMIT),
            report: redis::Script::new(scripts::REPORT),
            last_warning: AtomicI64::new(i64::MIN / 2),
            dropped: AtomicU64::new(0),
            down: std::sync::atomic::AtomicBool::new(false),
        });
        let (queue, updates) = mpsc::channel(QUEUE);
        runtime.spawn(apply_updates(inner.clone(), updates));
        runtime.spawn(refresh_mirror(Arc::downgrade(&inner)));
        Ok(Arc::new(Self { inner, queue, runtime: Some(runtime) }))
    }

    /// The backend for `url`, shared by every client of the process that names it (one
    /// connection and one background thread, however many clients).
    pub fn shared(url: &str) -> Result<Arc<Self>, crate::error::HttpError> {
        static OPEN: Mutex<Vec<(String, std::sync::Weak<RedisState>)>> = Mutex::new(Vec::new());
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(_, backend)| backend.strong_count() > 0);
        if let Some(backend) = open.iter().find(|(u, _)| u == url).and_then(|(_, backend)| backend.upgrade()) {
            return Ok(backend);
        }
        let backend = Self::open(url)?;
        open.push((url.to_owned(), Arc::downgrade(&backend)));
        Ok(backend)
    }

    fn enqueue(&self, update: Update) {
        if self.queue.try_send(update).is_err() {
            let dropped = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.inner.warn(&format!("{dropped} updates dropped: the queue to Redis is full"));
        }
    }

    /// Whether the last call to Redis failed.
    pub fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::Relaxed)
    }
}

impl Drop for RedisState {
    fn drop(&mut self) {
        // Dropping a runtime from inside another would panic; this never blocks.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Inner {
    /// The connection, for one call.
    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Note a call's result: log a failure loudly (at most once per [`WARN_EVERY`]) and
    /// the recovery once.
    fn observe<T>(&self, what: &str, result: redis::RedisResult<T>) -> Result<T, StateUnavailable> {
        match result {
            Ok(value) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::warn!("Redis is reachable again: limits, circuits and the cache are shared again");
                }
                Ok(value)
            }
            Err(e) => {
                self.down.store(true, Ordering::Relaxed);
                let why = e.to_string();
                self.warn(&format!("Redis {what} failed ({why})"));
                Err(StateUnavailable(why))
            }
        }
    }

    fn warn(&self, message: &str) {
        let now = epoch_ms(SystemTime::now());
        let last = self.last_warning.load(Ordering::Relaxed);
        let every = i64::try_from(WARN_EVERY.as_millis()).unwrap_or(i64::MAX);
        if now - last >= every
            && self.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::error!(
                "{message}; until it answers, cache lookups miss, circuits stay closed and rate limits \
                 follow --redis-down"
            );
        }
    }
}

fn state_key(key: &str) -> String {
    format!("{STATE_PREFIX}{key}")
}

fn circuit_key(target: &str) -> String {
    format!("{STATE_PREFIX}circuit:{target}")
}

#[async_trait::async_trait]
impl SharedState for RedisState {
    async fn reserve(&self, charges: &[Charge]) -> Result<Option<usize>, StateUnavailable> {
        let mut invocation = self.inner.reserve.prepare_invoke();
        for charge in charges {
            let key = state_key(&charge.key);
            let (previous, weight) = match &charge.previous {
                Some((previous, weight)) => (state_key(previous), *weight),
                None => (key.clone(), 0.0),
            };
            invocation.key(key).key(previous);
            let ttl = u64::try_from(charge.ttl.as_millis()).unwrap_or(u64::MAX);
            invocation.arg(charge.limit).arg(charge.amount).arg(weight).arg(ttl);
        }
        let result: redis::RedisResult<usize> = invocation.invoke_async(&mut self.inner.connection()).await;
        let refused = self.inner.observe("rate-limit check", result)?;
        Ok(refused.checked_sub(1))
    }

    fn settle(&self, adjustments: Vec<Adjustment>) {
        self.enqueue(Update::Settle(adjustments));
    }

    async fn circuit(&self, target: &str, policy: &CircuitPolicy, now: SystemTime) -> CircuitView {
        let now = epoch_ms(now);
        let until = self.inner.open.lock().unwrap_or_else(|p| p.into_inner()).get(target).copied();
        match until {
            None => CircuitView::Closed,
            Some(until_ms) if now < until_ms => CircuitView::Open { until_ms },
            // The cool-down has passed: ask who probes.
            Some(_) => {
                let claim = u64::try_from(policy.cooldown.as_millis()).unwrap_or(u64::MAX);
                let result: redis::RedisResult<Vec<i64>> = self
                    .inner
                    .admit
                    .key(circuit_key(target))
                    .key(OPEN_CIRCUITS)
                    .arg(target)
                    .arg(now)
                    .arg(claim)
                    .invoke_async(&mut self.inner.connection())
                    .await;
                match self.inner.observe("circuit check", result).as_deref() {
                    Ok([2]) => CircuitView::Probe,
                    Ok([1, until_ms]) => CircuitView::Open { until_ms: *until_ms },
                    _ => {
                        self.inner.open.lock().unwrap_or_else(|p| p.into_inner()).remove(target);
                        CircuitView::Closed
                    }
                }
            }
        }
    }

    fn report(
        &self,
        target: &str,
        policy: &CircuitPolicy,
        failed: bool,
        retry_after: Option<Duration>,
        now: SystemTime,
    ) {
        self.enqueue(Update::Report {
            target: target.to_owned(),
            policy: policy.clone(),
            failed,
            cooldown: policy.cooldown_after(retry_after),
            now: epoch_ms(now),
        });
    }
}

#[async_trait::async_trait]
impl Cache for RedisState {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        let result: redis::RedisResult<Option<Vec<u8>>> =
            redis::cmd("GET").arg(format!("{CACHE_PREFIX}{key}")).query_async(&mut self.inner.connection()).await;
        self.inner.observe("cache lookup", result).ok().flatten().map(|body| CachedResponse { body: body.into() })
    }

    async fn put(&self, key: &str, value: CachedResponse, ttl: Duration) {
        self.enqueue(Update::Store { key: format!("{CACHE_PREFIX}{key}"), body: value.body, ttl });
    }
}

/// The background task: applies queued updates, each as soon as it comes; the
/// multiplexed connection pipelines the ones in flight together.
async fn apply_updates(inner: Arc<Inner>, mut updates: mpsc::Receiver<Update>) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    while let Some(update) = updates.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let inner = inner.clone();
        tokio::spawn(async move {
            apply(&inner, update).await;
            drop(permit);
        });
    }
}

async fn apply(inner: &Inner, update: Update) {
    let mut connection = inner.connection();
    match update {
        Update::Settle(adjustments) => {
            let mut invocation = inner.settle.prepare_invoke();
            for Adjustment { key, delta } in adjustments {
                invocation.key(state_key(&key)).arg(delta);
            }
            let result: redis::RedisResult<i64> = invocation.invoke_async(&mut connection).await;
            let _ = inner.observe("limit settlement", result);
        }
        Update::Report { target, policy, failed, cooldown, now } => {
            let result: redis::RedisResult<i64> = inner
                .report
                .key(circuit_key(&target))
                .key(OPEN_CIRCUITS)
                .arg(&target)
                .arg(now)
                .arg(i64::from(failed))
                .arg(u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX))
                .arg(policy.failure_threshold.map_or(-1, i64::from))
                .arg(policy.failure_threshold_percentage.unwrap_or(-1.0))
                .arg(policy.minimum_requests)
                .arg(u64::try_from(CIRCUIT_WINDOW.as_millis()).unwrap_or(u64::MAX))
                .invoke_async(&mut connection)
                .await;
            if let Ok(until) = inner.observe("circuit report", result) {
                let mut open = inner.open.lock().unwrap_or_else(|p| p.into_inner());
                if until > 0 {
                    open.insert(target, until);
                } else {
                    open.remove(&target);
                }
            }
        }
        Update::Store { key, body, ttl } => {
            let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).clamp(1, i64::MAX as u64);
            let result: redis::RedisResult<()> =
                redis::cmd("SET").arg(key).arg(body.as_ref()).arg("PX").arg(ttl).query_async(&mut connection).await;
            let _ = inner.observe("cache store", result);
        }
    }
}

/// Keeps the mirror of open circuits current, so every replica skips a target another
/// one opened within [`MIRROR_REFRESH`].
async fn refresh_mirror(inner: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(MIRROR_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let result: redis::RedisResult<HashMap<String, i64>> =
            redis::cmd("HGETALL").arg(OPEN_CIRCUITS).query_async(&mut inner.connection()).await;
        if let Ok(open) = inner.observe("circuit refresh", result) {
            *inner.open.lock().unwrap_or_else(|p| p.into_inner()) = open;
        }
    }
}
