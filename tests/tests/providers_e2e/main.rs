//! Every provider end to end: the real server (engine + hyper transport) over loopback
//! against a mock on 127.0.0.1:0 that checks each request the way the real API does and
//! answers in the provider's own wire format (JSON, SSE, AWS binary event-stream). One
//! module per provider family; one test binary, so the crates are linked once.
//!
//! A request the real API would refuse gets the real API's refusal (400/401/403 in the
//! provider's error shape), so a broken transform fails these tests with the upstream's
//! own message. Per provider: a non-streamed chat, a streamed chat that must end with
//! `data: [DONE]`, and a 429 that must come back as a 429 naming the provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Return `Err($reply)` from a check unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $reply:expr) => {
        if !$cond {
            return Err($reply);
        }
    };
}

mod anthropic;
mod awkward;
mod bedrock;
mod cohere;
mod common;
mod google;
mod openai;
mod validators;
mod vertex;
