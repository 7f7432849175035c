//! Every transform fixture, with stream bytes fed whole, byte by byte and in random splits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gateway_tests::transforms::{cases, run};

#[test]
fn every_transform_fixture_holds() {
    let cases = cases();
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in &cases {
        let mut splittings: Vec<Vec<usize>> = vec![vec![]];
        if let Some(stream) = &case.stream {
            splittings.push((1..stream.len()).collect());
            let mut seed = 0x9e37_79b9_u64;
            for _ in 0..20 {
                let mut s: Vec<usize> = (0..6)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        (seed >> 33) as usize % (stream.len() + 1)
                    })
                    .collect();
                s.sort_unstable();
                splittings.push(s);
            }
        }
        for splits in &splittings {
            if let Err(e) = run(case, splits) {
                failures.push(format!("{} (split into {} pieces): {e}", case.name, splits.len() + 1));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn every_native_provider_has_its_usage_and_cost_checked_for_answers_and_streams() {
    let cases = cases();
    for provider in ["anthropic", "google", "vertex-ai", "bedrock", "cohere", "openai"] {
        let with_usage: Vec<_> = cases
            .iter()
            .filter(|c| c.name.starts_with(&format!("{provider}/")) && c.spec.get("usage").is_some())
            .collect();
        assert!(with_usage.iter().any(|c| c.stream.is_none()), "{provider}: no answer with usage checked");
        if provider != "openai" {
            assert!(with_usage.iter().any(|c| c.stream.is_some()), "{provider}: no stream with usage checked");
        }
        assert!(
            with_usage.iter().any(|c| c.spec["usage"]["cost"].as_f64().is_some_and(|c| c > 0.0)),
            "{provider}: no priced answer"
        );
    }
}
