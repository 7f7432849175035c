//! Response cache: key derivation, the [`Cache`] trait, and the in-memory default.
//!
//! Keys bind an answer to everything that could change it *and* to who asked: provider,
//! upstream URL, the exact body sent, the namespace, and a hash of the credential, so two
//! tenants never share an entry unless they share a namespace (Portkey OSS keys on the
//! body alone, so an OpenAI answer can be served to a Groq request).

use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::providers::HttpRequest;
use crate::request::Endpoint;

/// A stored answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedResponse {
    /// The OpenAI-shaped body.
    pub body: Bytes,
}

/// A response cache. Implementations: [`InMemoryCache`] here; a shared store for
/// several replicas plugs in through this trait.
#[async_trait::async_trait]
pub trait Cache: Send + Sync {
    /// The entry under `key`, if present and fresh.
    async fn get(&self, key: &str) -> Option<CachedResponse>;
    /// Store an entry for `ttl`.
    async fn put(&self, key: &str, value: CachedResponse, ttl: Duration);
}

/// Derive the key for an upstream request. `credential` is hashed, never stored.
pub fn cache_key(provider: &str, answers: Endpoint, request: &HttpRequest, namespace: Option<&str>) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length-prefix every field so no two different inputs concatenate alike.
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"gatewise-cache-v1");
    field(provider.as_bytes());
    // The same upstream request answers a chat caller and a Messages caller (translated
    // through chat) in different shapes.
    field(answers.openai_path().as_bytes());
    field(request.method.as_str().as_bytes());
    field(request.url.as_bytes());
    field(&canonical_body(&request.body));
    field(namespace.unwrap_or("").as_bytes());
    let mut credential = Sha256::new();
    for name in ["authorization", "api-key", "x-api-key", "x-goog-api-key"] {
        if let Some(v) = request.headers.get(name) {
            credential.update(name.as_bytes());
            credential.update(v.as_bytes());
        }
    }
    field(&credential.finalize());
    hex::encode(h.finalize())
}

/// The body as the key sees it: `stream` and `stream_options` removed, so a streamed and
/// a non-streamed request share one entry (the answer is the same; a stream is replayed
/// from it) and `stream: false` is cached like an absent `stream`.
fn canonical_body(body: &Bytes) -> std::borrow::Cow<'_, [u8]> {
    let Ok(serde_json::Value::Object(mut map)) = crate::json::from_slice::<serde_json::Value>(body) else {
        return std::borrow::Cow::Borrowed(body);
    };
    if map.shift_remove("stream").is_none() & map.shift_remove("stream_options").is_none() {
        return std::borrow::Cow::Borrowed(body);
    }
    std::borrow::Cow::Owned(serde_json::Value::Object(map).to_string().into_bytes())
}

/// A bounded in-process cache: entries expire by TTL, and past `capacity` entries or
/// `max_bytes` of keys and bodies the least useful ones are evicted by `quick_cache`'s
/// S3-FIFO-like policy, in constant time per insert and behind sharded locks (Portkey's OSS
/// cache grows without bound). An answer larger than an eighth of `max_bytes` is not
/// stored at all, so one huge answer cannot empty the cache.
pub struct InMemoryCache {
    entries: quick_cache::sync::Cache<String, Entry, EntryWeight>,
    capacity: usize,
    max_bytes: usize,
    clock: Clock,
}

/// A stored answer and when it expires.
#[derive(Clone)]
struct Entry {
    expires: Instant,
    value: CachedResponse,
}

/// An entry weighs its bytes, and never less than its share of the entry bound, so one
/// weight limit bounds both the bytes and the number of entries.
#[derive(Clone)]
struct EntryWeight {
    floor: u64,
}

impl quick_cache::Weighter<String, Entry> for EntryWeight {
    fn weight(&self, key: &String, entry: &Entry) -> u64 {
        ((key.len() + entry.value.body.len()) as u64).max(self.floor)
    }
}

fn entry_size(key: &str, value: &CachedResponse) -> usize {
    key.len() + value.body.len()
}

/// Where the cache reads the time: the monotonic clock, or a test's virtual one.
pub type Clock = std::sync::Arc<dyn Fn() -> Instant + Send + Sync>;

impl std::fmt::Debug for InMemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryCache")
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl InMemoryCache {
    /// A cache holding at most `capacity` entries and [`DEFAULT_MAX_BYTES`].
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, std::sync::Arc::new(Instant::now))
    }

    /// The same, reading the time from `clock` (tests expire entries without waiting).
    pub fn with_clock(capacity: usize, clock: Clock) -> Self {
        Self::build(capacity.max(1), DEFAULT_MAX_BYTES, clock)
    }

    /// Hold at most `max_bytes` of keys and bodies.
    pub fn with_max_bytes(self, max_bytes: usize) -> Self {
        Self::build(self.capacity, max_bytes, self.clock)
    }

    fn build(capacity: usize, max_bytes: usize, clock: Clock) -> Self {
        let floor = (max_bytes / capacity).max(1) as u64;
        let entries = quick_cache::sync::Cache::with_weighter(capacity, max_bytes as u64, EntryWeight { floor });
        Self { entries, capacity, max_bytes, clock }
    }

    /// Bytes held now (keys and bodies, each entry counted at least at its share of the
    /// entry bound).
    pub fn bytes(&self) -> usize {
        usize::try_from(self.entries.weight()).unwrap_or(usize::MAX)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The default byte bound of [`InMemoryCache`]: 256 MiB.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;

impl Default for InMemoryCache {
    fn default() -> Self {
        Self::new(10_000)
    }
}

#[async_trait::async_trait]
impl Cache for InMemoryCache {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        let entry = self.entries.get(key)?;
        if entry.expires > (self.clock)() {
            return Some(entry.value);
        }
        self.entries.remove(key);
        None
    }

    async fn put(&self, key: &str, value: CachedResponse, ttl: Duration) {
        if entry_size(key, &value) > self.max_bytes / 8 {
            return;
        }
        let now = (self.clock)();
        // A TTL past what the clock can count means "until evicted", never a panic.
        let expires = now.checked_add(ttl).unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        self.entries.insert(key.to_owned(), Entry { expires, value });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_ttl_past_what_the_clock_can_count_is_kept_not_a_panic() {
        let cache = InMemoryCache::new(4);
        let put = cache.put("k", CachedResponse { body: Bytes::from_static(b"x") }, Duration::MAX);
        futures::executor::block_on(put);
        assert!(futures::executor::block_on(cache.get("k")).is_some());
    }

    #[test]
    fn the_cache_is_bounded_in_entries_and_keeps_recent_ones_under_churn() {
        let cache = InMemoryCache::new(100);
        for i in 0..10_000 {
            let key = format!("k{i}");
            futures::executor::block_on(cache.put(
                &key,
                CachedResponse { body: Bytes::from_static(b"{}") },
                Duration::MAX,
            ));
        }
        assert!(cache.len() <= 100, "{}", cache.len());
        assert!(futures::executor::block_on(cache.get("k9999")).is_some());
    }

    #[test]
    fn the_cache_is_bounded_in_bytes_and_skips_answers_too_big_for_it() {
        let cache = InMemoryCache::new(1000).with_max_bytes(8 * 1024);
        let body = |n: usize| CachedResponse { body: Bytes::from(vec![b'x'; n]) };
        let put = |key: &str, n: usize, ttl: u64| {
            futures::executor::block_on(cache.put(key, body(n), Duration::from_secs(ttl)));
        };
        for i in 0..20 {
            put(&format!("k{i}"), 900, 100 + i);
        }
        assert!(cache.bytes() <= 8 * 1024, "{}", cache.bytes());
        // Entries were evicted to stay in bounds; the latest is kept.
        let kept = (0..20).filter(|i| futures::executor::block_on(cache.get(&format!("k{i}"))).is_some()).count();
        assert!(kept <= 9, "{kept} entries of 900 bytes in 8 KiB");
        assert!(futures::executor::block_on(cache.get("k19")).is_some());
        // One answer over an eighth of the bound is not stored, and evicts nothing.
        put("huge", 2000, 1000);
        assert!(futures::executor::block_on(cache.get("huge")).is_none());
        assert!(futures::executor::block_on(cache.get("k19")).is_some());
        // Replacing an entry does not count it twice.
        let before = cache.bytes();
        put("k19", 900, 500);
        assert_eq!(cache.bytes(), before);
    }
}
