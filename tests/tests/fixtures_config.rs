//! The config vectors in tests/fixtures/config/*.json: valid ones compile, invalid ones
//! report exactly the expected JSON paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gateway_core::Config;
use gateway_tests::json_files;

#[test]
fn every_config_vector_validates_as_recorded() {
    let cases = json_files("config");
    assert!(cases.len() >= 30, "the corpus shrank to {}", cases.len());
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let result = Config::from_json(&case["config"]);
        match (case["valid"].as_bool().unwrap(), result) {
            (true, Ok(_)) => {}
            (true, Err(e)) => failures.push(format!("{name}: rejected: {e}")),
            (false, Ok(_)) => failures.push(format!("{name}: accepted")),
            (false, Err(e)) => {
                let mut got: Vec<String> = e.0.iter().map(|e| e.param.clone().unwrap_or_default()).collect();
                let mut want: Vec<String> =
                    case["errors"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
                got.sort();
                want.sort();
                if got != want {
                    failures.push(format!("{name}: paths {got:?}, expected {want:?} ({e})"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn the_published_schema_is_valid_json_and_lists_exactly_the_four_strategy_modes() {
    let schema: serde_json::Value = serde_json::from_str(gateway_core::config::CONFIG_SCHEMA).unwrap();
    let modes = &schema["$defs"]["target"]["properties"]["strategy"]["properties"]["mode"]["enum"];
    assert_eq!(modes, &serde_json::json!(["single", "fallback", "loadbalance", "conditional"]));
}
