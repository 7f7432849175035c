//! The router vectors in tests/fixtures/router/*.json: the dry-run plan for a request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gateway_core::Config;
use gateway_core::query::QueryContext;
use gateway_core::rng::SplitMix64;
use gateway_core::router::plan;
use gateway_tests::json_files;

#[test]
fn every_router_vector_plans_as_recorded() {
    let cases = json_files("router");
    assert!(cases.len() >= 12, "the corpus shrank to {}", cases.len());
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let config = match Config::from_json(&case["config"]) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: config rejected: {e}"));
                continue;
            }
        };
        let req = &case["request"];
        let ctx = QueryContext {
            metadata: &req["metadata"],
            params: &req["params"],
            pathname: req["path"].as_str().unwrap(),
        };
        let rng = SplitMix64::new(case.get("seed").and_then(|s| s.as_u64()).unwrap_or(7));
        match (plan(&config, &ctx, &rng), case.get("plan"), case.get("error")) {
            (Ok(leaves), Some(want), _) => {
                let got: Vec<&str> = leaves.iter().map(|l| l.option_index.as_str()).collect();
                let want: Vec<&str> = want.as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
                if got != want {
                    failures.push(format!("{name}: plan {got:?}, expected {want:?}"));
                }
            }
            (Err(e), _, Some(code)) if e.code.as_str() == code.as_str().unwrap() => {}
            (got, _, _) => failures.push(format!("{name}: unexpected {:?}", got.map(|l| l.len()))),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
