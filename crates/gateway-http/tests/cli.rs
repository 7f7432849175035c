//! The `gatewise` binary: validate, route (dry run), schema, --help.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::{Value, json};

fn gatewise(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatewise")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, value: &Value) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn validate_lists_every_error_with_its_path_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        &dir,
        "bad.json",
        &json!({"strategy": {"mode": "roundrobin"}, "targets": [{"provider": "openai", "api_key": "k", "weight": -1}], "retries": 1}),
    );
    let (code, _, err) = gatewise(&["validate", &bad]);
    assert_eq!(code, 1);
    assert!(err.contains("strategy.mode: \"roundrobin\" is not one of"), "{err}");
    assert!(err.contains("targets[0].weight:"), "{err}");
    assert!(err.contains("retries: unknown field"), "{err}");
    let good = write(&dir, "good.json", &json!({"provider": "openai", "api_key": "k"}));
    let (code, out, _) = gatewise(&["validate", &good]);
    assert_eq!((code, out.trim().ends_with("valid")), (0, true));
}

#[test]
fn route_prints_the_plan_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        &dir,
        "config.json",
        &json!({
            "strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.plan": "pro"}, "then": "pro"}], "default": "base"},
            "targets": [
                {"name": "base", "strategy": {"mode": "fallback"}, "targets": [
                    {"provider": "openai", "api_key": "sk-secret", "custom_host": "http://127.0.0.1:9/v1"},
                    {"provider": "anthropic", "api_key": "sk-ant-secret"}
                ]},
                {"name": "pro", "provider": "openai", "api_key": "sk-secret", "override_params": {"model": "gpt-4o"}}
            ]
        }),
    );
    let request =
        write(&dir, "request.json", &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}));
    let (code, out, err) = gatewise(&["route", "--config", &config, "--request", &request, "--seed", "1"]);
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let targets = plan["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["option_index"], "config.targets[0].targets[0]");
    assert_eq!(targets[0]["url"], "http://127.0.0.1:9/v1/chat/completions");
    assert_eq!(targets[1]["provider"], "anthropic");
    assert_eq!(targets[1]["url"], "https://api.anthropic.com/v1/messages");
    assert_eq!(targets[1]["body"]["messages"][0]["content"], "hi");
    assert!(!out.contains("secret"), "credentials are redacted");

    let (code, out, _) =
        gatewise(&["route", "--config", &config, "--request", &request, "--metadata", r#"{"plan":"pro"}"#]);
    assert_eq!(code, 0);
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["targets"][0]["option_index"], "config.targets[1]");
    assert_eq!(plan["targets"][0]["body"]["model"], "gpt-4o");
}

#[test]
fn schema_prints_the_published_json_schema_and_help_works() {
    let (code, out, _) = gatewise(&["schema"]);
    assert_eq!(code, 0);
    let schema: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(schema["title"], "Gatewise gateway config");
    for args in [vec!["--help"], vec!["serve", "--help"], vec!["route", "--help"], vec!["validate", "--help"]] {
        let (code, out, _) = gatewise(&args);
        assert_eq!(code, 0);
        assert!(out.contains("Usage:"));
    }
}
