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

#[test]
fn config_errors_never_echo_a_secret() {
    let secret = "sk-live-do-not-print-0123456789";
    for config in [
        serde_json::json!({"provider": "openai", "api_key": [secret]}),
        serde_json::json!({"provider": "openai", "api_key": {"value": secret}}),
        serde_json::json!({"provider": "bedrock", "aws_secret_access_key": [secret], "aws_session_token": {"t": secret}}),
        serde_json::json!({"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai", "api_key": [secret, 1]}]}),
    ] {
        let e = Config::from_json(&config).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("do-not-print"), "the secret was echoed: {text}");
        assert!(!e.0.is_empty());
    }
    // Other values are still quoted, where they help.
    let e = Config::from_json(&serde_json::json!({"strategy": {"mode": "roundrobin"}, "targets": []})).unwrap_err();
    assert!(e.to_string().contains("\"roundrobin\""), "{e}");
}
