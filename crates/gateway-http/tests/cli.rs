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

/// A one-shot upstream on 127.0.0.1:0: it reports when a request has arrived, holds it for
/// `hold`, then answers with an OpenAI chat completion.
fn slow_upstream(hold: std::time::Duration) -> (String, std::sync::mpsc::Receiver<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let (arrived, on_arrival) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\"messages\"") {
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "the request ended early");
            seen.extend_from_slice(&buf[..n]);
        }
        arrived.send(()).unwrap();
        std::thread::sleep(hold);
        let body = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "finished"}, "finish_reason": "stop"}]})
        .to_string();
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
        socket.write_all(head.as_bytes()).unwrap();
        socket.write_all(body.as_bytes()).unwrap();
    });
    (base, on_arrival)
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_the_server_exits_0_with_its_log_line_written() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let (upstream, on_arrival) = slow_upstream(Duration::from_millis(300));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // stdout is a pipe, not a terminal: the request log is JSON lines by default.
    let mut server = Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut socket = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(socket) => break socket,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("gatewise serve never listened: {e}"),
        }
    };
    let config = json!({"provider": "openai", "api_key": "k", "custom_host": upstream}).to_string();
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nconnection: close\r\ncontent-type: application/json\r\n\
         x-portkey-config: {config}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).unwrap();
    on_arrival.recv_timeout(Duration::from_secs(10)).expect("the request reached the upstream");

    // A real signal to the real process, while the request is in flight.
    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("finished"), "{answer}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "a clean exit");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "no longer accepting");
    let mut log = String::new();
    server.stdout.take().unwrap().read_to_string(&mut log).unwrap();
    let records: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 1, "the finished request's line is written before the exit: {log}");
    assert_eq!((&records[0]["status"], &records[0]["provider"]), (&json!(200), &json!("openai")));
    assert!(!log.contains("\"k\""), "no key");
}

#[test]
fn on_a_non_loopback_bind_a_name_that_resolves_to_a_private_address_is_refused() {
    // Everything runs in a network namespace made here (only `lo`, plus 10.9.9.9 on it for
    // the non-loopback bind) with its own /etc/hosts: no packet and no DNS query leaves.
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 upstream.example.test\n").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/egress_netns/run.py");
    let inside = format!(
        "ip link set lo up && ip addr add 10.9.9.9/32 dev lo && mount --bind {} /etc/hosts && exec python3 {} {}",
        hosts.display(),
        script,
        env!("CARGO_BIN_EXE_gatewise")
    );
    let out = Command::new("unshare").args(["--net", "--mount", "sh", "-c", &inside]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["refused_status"], 400, "{result}");
    assert_eq!(result["refused"]["error"]["param"], "custom_host", "{result}");
    assert!(result["refused"]["error"]["message"].as_str().unwrap().contains("upstream.example.test"), "{result}");
    assert_eq!(result["reached_before_allow"], json!([]), "nothing reached the private address");
    assert_eq!(result["allowed_status"], 200, "--allow-host lets the named host through: {result}");
    assert_eq!(result["allowed"]["choices"][0]["message"]["content"], "reached");
}

#[test]
fn a_server_refusing_a_bad_config_does_not_print_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(&dir, "bad.json", &json!({"provider": "openai", "api_key": ["sk-live-never-printed"], "retry": 9}));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let (code, out, err) = gatewise(&["serve", "--port", &port, "--config", &bad]);
    assert_ne!(code, 0, "it refuses to start");
    assert!(err.contains("api_key"), "the bad field is named: {err}");
    assert!(!format!("{out}{err}").contains("never-printed"), "the key was printed: {err}");
    let (code, _, err) = gatewise(&["validate", &bad]);
    assert_eq!(code, 1);
    assert!(!err.contains("never-printed"), "{err}");
}

#[test]
fn keys_new_prints_a_key_and_its_registry_hash_and_validate_checks_registries() {
    let (code, out, _) = gatewise(&["keys", "new", "--name", "team-a"]);
    assert_eq!(code, 0);
    let key = out.lines().find_map(|l| l.strip_prefix("key (shown once): ")).unwrap().to_owned();
    assert!(key.starts_with("gw-") && key.len() == 67, "{key}");
    let entry: Value =
        serde_json::from_str(out.lines().find_map(|l| l.strip_prefix("registry \"keys\" entry: ")).unwrap()).unwrap();
    assert_eq!(entry["team-a"]["hash"], gateway_core::registry::key_hash(&key));
    let (_, again, _) = gatewise(&["keys", "new", "--name", "team-a"]);
    assert_ne!(out, again, "every key is fresh");

    let dir = tempfile::tempdir().unwrap();
    let registry = json!({"providers": {"p": {"provider": "openai", "api_key": "k"}},
                          "keys": {"team-a": entry["team-a"].clone()}});
    assert_eq!(gatewise(&["validate", &write(&dir, "ok.json", &registry)]).0, 0);
    let bad = json!({"providers": {"p": {"provider": "nope"}}, "keys": {"k": {"hash": "x"}}});
    let (code, _, err) = gatewise(&["validate", &write(&dir, "bad.json", &bad)]);
    assert_eq!(code, 1);
    assert!(err.contains("providers.p.provider") && err.contains("keys.k.hash"), "{err}");
}

#[test]
fn a_public_bind_with_credentials_and_no_gateway_keys_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let registry = write(&dir, "registry.json", &json!({"providers": {"p": {"provider": "openai", "api_key": "k"}}}));
    // 10.9.9.9 is not an address of this machine: past the check, binding it fails.
    let (code, _, err) = gatewise(&["serve", "--host", "10.9.9.9", "--port", "1", "--registry", &registry]);
    assert_ne!(code, 0);
    assert!(err.contains("refusing to serve") && err.contains("--allow-unauthenticated"), "{err}");
    let (code, _, err) =
        gatewise(&["serve", "--host", "10.9.9.9", "--port", "1", "--registry", &registry, "--allow-unauthenticated"]);
    assert_ne!(code, 0);
    assert!(!err.contains("refusing to serve"), "allowed past the check, then the bind fails: {err}");
}

#[test]
fn route_resolves_registry_entries_and_redacts_their_keys_and_schema_prints_the_registrys() {
    let dir = tempfile::tempdir().unwrap();
    let registry = write(
        &dir,
        "registry.json",
        &json!({"providers": {"openai-prod": {"provider": "openai", "api_key": "sk-registry-secret",
                                              "custom_host": "http://127.0.0.1:9/v1"}}}),
    );
    let config = write(&dir, "config.json", &json!({"virtual_key": "openai-prod"}));
    let request =
        write(&dir, "request.json", &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}));
    let (code, out, err) = gatewise(&["route", "--config", &config, "--request", &request, "--registry", &registry]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("http://127.0.0.1:9/v1/chat/completions"), "{out}");
    assert!(!out.contains("sk-registry-secret"), "{out}");
    let (code, out, _) = gatewise(&["schema", "--registry"]);
    assert_eq!(code, 0);
    let schema: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(schema["title"], "Gatewise registry");
}
