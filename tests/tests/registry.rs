//! The registry through the real server: provider entries named every way a Portkey user
//! names them (`x-portkey-virtual-key`, `provider: "@slug"`, `model: "@slug/model"`, a
//! config's `virtual_key`), configs by id, gateway keys and their scopes, `${VAR}`s, and
//! reloading on edit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use gateway_core::registry::key_hash;
use gateway_tests::mock::{Gateway, GatewayOptions, MockReply, MockUpstream, answer, hello, start_gateway};
use serde_json::{Value, json};

async fn post(base: &str, headers: &[(&str, String)], body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{base}/v1/chat/completions")).json(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

fn write(name: &str, registry: &Value) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatewise-registry-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("registry.json");
    std::fs::write(&path, registry.to_string()).unwrap();
    path
}

async fn serve(path: PathBuf) -> Gateway {
    start_gateway(GatewayOptions { registry: Some(path), ..GatewayOptions::default() }).await
}

fn providers(openai: &MockUpstream, claude: &MockUpstream) -> Value {
    json!({
        "openai-prod": {"provider": "openai", "api_key": "${HOME}", "custom_host": openai.v1()},
        "claude": {"provider": "anthropic", "api_key": "sk-ant", "custom_host": claude.v1(), "models": ["claude-sonnet-4-5"]}
    })
}

fn anthropic_answer() -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "text", "text": "from claude"}], "stop_reason": "end_turn",
           "usage": {"input_tokens": 1, "output_tokens": 2}})
}

#[tokio::test]
async fn every_way_of_naming_an_entry_routes_with_its_credentials() {
    let openai = MockUpstream::start((0..5).map(|_| MockReply::ok(answer("from openai")))).await;
    let claude = MockUpstream::start([MockReply::ok(anthropic_answer())]).await;
    let registry = json!({
        "providers": providers(&openai, &claude),
        "configs": {"pc-support": {"strategy": {"mode": "fallback"},
                                    "targets": [{"virtual_key": "openai-prod"}, {"provider": "@claude"}]}}
    });
    let gw = serve(write("names", &registry)).await;
    let home = std::env::var("HOME").unwrap();

    let ways: Vec<(Vec<(&str, String)>, Value)> = vec![
        (vec![("x-portkey-virtual-key", "openai-prod".into())], hello()),
        (vec![("x-portkey-provider", "@openai-prod".into())], hello()),
        (vec![], json!({"model": "@openai-prod/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})),
        (vec![("x-portkey-config", "pc-support".into())], hello()),
        (vec![("x-portkey-config", json!({"virtual_key": "openai-prod"}).to_string())], hello()),
    ];
    for (headers, body) in &ways {
        let (status, answer) = post(&gw.base, headers, body).await;
        assert_eq!(status, 200, "{headers:?}: {answer}");
    }
    let received = openai.received();
    assert_eq!(received.len(), 5);
    assert!(
        received.iter().all(|r| r.header("authorization") == Some(&format!("Bearer {home}")[..])),
        "${{HOME}} was filled"
    );
    assert_eq!(received[2].json()["model"], "gpt-4o", "`@slug/` is taken off the model");

    // The entry's allow-list, by model.
    let body = json!({"model": "@claude/claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post(&gw.base, &[], &body).await.0, 200);
    let body = json!({"model": "@claude/claude-opus-4", "messages": [{"role": "user", "content": "hi"}]});
    let (status, answer) = post(&gw.base, &[], &body).await;
    assert_eq!((status, answer["error"]["param"].as_str()), (400, Some("model")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("claude-opus-4"), "{answer}");
}

#[tokio::test]
async fn unknown_names_are_400s_and_an_entry_never_goes_elsewhere() {
    let openai = MockUpstream::start([]).await;
    let claude = MockUpstream::start([]).await;
    let elsewhere = MockUpstream::start([]).await;
    let gw = serve(write("unknown", &json!({"providers": providers(&openai, &claude)}))).await;

    let (status, body) = post(&gw.base, &[("x-portkey-virtual-key", "nope".into())], &hello()).await;
    assert_eq!((status, code(&body)), (400, "unknown_virtual_key"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("claude, openai-prod"));
    let (status, body) = post(&gw.base, &[("x-portkey-config", "pc-nope".into())], &hello()).await;
    assert_eq!((status, code(&body)), (400, "unknown_config"), "{body}");
    let (status, body) = post(&gw.base, &[], &json!({"model": "@nope/m", "messages": []})).await;
    assert_eq!((status, code(&body)), (400, "unknown_virtual_key"), "{body}");

    for headers in [
        vec![("x-portkey-virtual-key", "openai-prod".to_owned()), ("x-portkey-custom-host", elsewhere.v1())],
        vec![("x-portkey-config", json!({"virtual_key": "openai-prod", "custom_host": elsewhere.v1()}).to_string())],
    ] {
        let (status, body) = post(&gw.base, &headers, &hello()).await;
        assert_eq!((status, code(&body)), (403, "forbidden_custom_host"), "{body}");
    }
    let own_key = json!({"virtual_key": "openai-prod", "api_key": "sk-mine"});
    let (status, body) = post(&gw.base, &[("x-portkey-config", own_key.to_string())], &hello()).await;
    assert_eq!((status, code(&body)), (400, "invalid_config"), "{body}");
    assert!(elsewhere.received().is_empty() && openai.received().is_empty());
}

#[tokio::test]
async fn gateway_keys_authenticate_and_scope_every_request() {
    let openai = MockUpstream::start((0..4).map(|_| MockReply::ok(answer("ok")))).await;
    let claude = MockUpstream::start([]).await;
    let registry = json!({
        "providers": providers(&openai, &claude),
        "configs": {"pc-support": {"virtual_key": "openai-prod"},
                    "by-team": {"strategy": {"mode": "conditional", "default": "a",
                                              "conditions": [{"query": {"metadata.team": "b"}, "then": "b"}]},
                                "targets": [{"name": "a", "virtual_key": "openai-prod"}, {"name": "b", "provider": "@claude"}]}},
        "keys": {"team-a": {"hash": key_hash("gw-team-a"), "providers": ["openai-prod"], "configs": ["pc-support", "by-team"],
                            "metadata": {"team": "a"}},
                 "admin": {"hash": key_hash("gw-admin")}}
    });
    let gw = serve(write("keys", &registry)).await;
    let vk = ("x-portkey-virtual-key", "openai-prod".to_owned());

    let (status, body) = post(&gw.base, std::slice::from_ref(&vk), &hello()).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let (status, body) = post(&gw.base, &[vk.clone(), ("x-portkey-api-key", "gw-wrong".into())], &hello()).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    assert!(!body.to_string().contains("gw-wrong"), "a key is never echoed");

    // The OpenAI SDK's api_key is the gateway key; the provider key is the entry's.
    let sdk = [("authorization", "Bearer gw-team-a".to_owned())];
    let body = json!({"model": "@openai-prod/gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post(&gw.base, &sdk, &body).await.0, 200);
    let home = std::env::var("HOME").unwrap();
    assert_eq!(openai.received()[0].header("authorization"), Some(&format!("Bearer {home}")[..]));

    // Scope: another entry, a config outside the list; the key's metadata routes.
    let team_a = ("x-portkey-api-key", "gw-team-a".to_owned());
    let (status, body) = post(&gw.base, &[team_a.clone(), ("x-portkey-virtual-key", "claude".into())], &hello()).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`claude`"));
    let (status, _) = post(&gw.base, &[team_a.clone(), ("x-portkey-config", "pc-support".into())], &hello()).await;
    assert_eq!(status, 200);
    let (status, _) = post(&gw.base, &[team_a.clone(), ("x-portkey-config", "by-team".into())], &hello()).await;
    assert_eq!(status, 200, "team a's metadata picks target a");
    let (status, _) = post(&gw.base, &[("x-portkey-api-key", "gw-admin".into()), vk], &hello()).await;
    assert_eq!(status, 200);
    assert_eq!(openai.received().len(), 4);
    assert!(claude.received().is_empty());
}

#[tokio::test]
async fn an_edited_registry_takes_effect_and_a_bad_edit_keeps_the_last_good_one() {
    let openai = MockUpstream::start((0..3).map(|_| MockReply::ok(answer("ok")))).await;
    let claude = MockUpstream::start([]).await;
    let path = write("reload", &json!({"providers": {}}));
    let gw = serve(path.clone()).await;
    let vk = [("x-portkey-virtual-key", "openai-prod".to_owned())];
    assert_eq!(post(&gw.base, &vk, &hello()).await.0, 400);

    std::fs::write(&path, json!({"providers": providers(&openai, &claude)}).to_string()).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post(&gw.base, &vk, &hello()).await.0, 200);

    std::fs::write(&path, r#"{"providers": {"openai-prod": {"provider": "nope"}}}"#).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post(&gw.base, &vk, &hello()).await.0, 200, "the last good registry stays");
}

#[test]
fn yaml_registries_load_and_errors_name_every_path() {
    let dir = std::env::temp_dir().join(format!("gatewise-registry-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("registry.yaml");
    std::fs::write(&path, "providers:\n  openai-prod:\n    provider: openai\n    api_key: ${HOME}\nconfigs:\n  c:\n    virtual_key: openai-prod\n").unwrap();
    assert!(gateway_http::registry::RegistrySource::open(&path).is_ok());
    std::fs::write(&path, "providers:\n  a:\n    provider: openai\n    api_key: ${GATEWISE_SURELY_UNSET_VAR}\n")
        .unwrap();
    let e = gateway_http::registry::RegistrySource::open(&path).unwrap_err();
    assert_eq!(e.0[0].param.as_deref(), Some("providers.a.api_key"));
    assert!(e.0[0].message.contains("GATEWISE_SURELY_UNSET_VAR is not set"));
}

#[tokio::test]
async fn config_dir_files_fill_their_variables_and_inline_configs_never_do() {
    let mock = MockUpstream::start([MockReply::ok(answer("ok")), MockReply::ok(answer("ok"))]).await;
    let dir = std::env::temp_dir().join(format!("gatewise-interp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = json!({"provider": "openai", "api_key": "${HOME}", "custom_host": mock.v1()});
    std::fs::write(dir.join("prod.json"), config.to_string()).unwrap();
    let gw = start_gateway(GatewayOptions { config_dir: Some(dir), ..GatewayOptions::default() }).await;
    assert_eq!(post(&gw.base, &[("x-portkey-config", "prod".into())], &hello()).await.0, 200);
    assert_eq!(post(&gw.base, &[("x-portkey-config", config.to_string())], &hello()).await.0, 200);
    let home = std::env::var("HOME").unwrap();
    let keys: Vec<_> = mock.received().iter().map(|r| r.header("authorization").unwrap().to_owned()).collect();
    assert_eq!(
        keys,
        [format!("Bearer {home}"), "Bearer ${HOME}".to_owned()],
        "a caller cannot read the server's environment"
    );
}
