//! The query vectors in tests/fixtures/query/cases.json.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gateway_core::query::{Query, QueryContext};
use gateway_tests::read_json;

#[test]
fn every_query_vector_matches_or_fails_as_recorded() {
    let cases = read_json("query/cases.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 60, "the corpus shrank to {}", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let compiled = Query::compile(&case["query"]);
        match (case.get("error_path"), compiled) {
            (Some(expected), Err(e)) => {
                if e.param.as_deref() != expected.as_str() {
                    failures.push(format!("{name}: error at {:?}, expected {expected}", e.param));
                }
            }
            (Some(expected), Ok(_)) => failures.push(format!("{name}: compiled, expected an error at {expected}")),
            (None, Err(e)) => failures.push(format!("{name}: failed to compile: {} at {:?}", e.message, e.param)),
            (None, Ok(q)) => {
                let ctx = &case["context"];
                let got = q.matches(&QueryContext {
                    metadata: &ctx["metadata"],
                    params: &ctx["params"],
                    pathname: ctx["path"].as_str().unwrap(),
                });
                if got != case["expect"].as_bool().unwrap() {
                    failures.push(format!("{name}: matched = {got}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
