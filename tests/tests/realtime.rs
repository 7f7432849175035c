//! Realtime sessions through the real server: `GET /v1/realtime` upgraded to a WebSocket,
//! routed by config to a mock realtime provider over loopback, relayed both ways, and
//! logged with its usage when it ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use gateway_http::telemetry::{LogFormat, RequestLog, Telemetry};
use gateway_tests::log_lines::Lines;
use gateway_tests::mock::{Gateway, GatewayOptions, hello, start_gateway};
use gateway_tests::realtime_mock::MockRealtime;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const SECRET: &str = "sk-realtime-secret-0123";

type Caller = WebSocketStream<TcpStream>;
type Handshake = http::Response<Option<Vec<u8>>>;

/// Open a session on the gateway with these headers (and `?query`), as an SDK does.
async fn connect(gateway: &Gateway, query: &str, headers: &[(&str, String)]) -> Result<(Caller, Handshake), WsError> {
    let url = format!("{}/v1/realtime?{query}", gateway.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    let stream = TcpStream::connect(gateway.base.trim_start_matches("http://")).await.unwrap();
    tokio_tungstenite::client_async(request, stream).await
}

/// The next text event from the gateway, parsed.
async fn next_event(caller: &mut Caller) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), caller.next()).await.unwrap().unwrap().unwrap();
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text event, got {other:?}"),
        }
    }
}

fn refusal_status(result: Result<(Caller, Handshake), WsError>) -> (u16, Value) {
    match result {
        Err(WsError::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            (response.status().as_u16(), serde_json::from_slice(body).unwrap_or(Value::Null))
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, the session opened"),
    }
}

/// Straight to `up` as `openai`, with the caller's own key.
fn direct_to(up: &MockRealtime) -> Vec<(&'static str, String)> {
    vec![
        ("x-portkey-provider", "openai".to_owned()),
        ("x-portkey-custom-host", up.v1()),
        ("authorization", "Bearer sk-caller".to_owned()),
    ]
}

fn log_telemetry() -> (Telemetry, Lines) {
    let lines = Lines::default();
    let log = RequestLog::to_writer(LogFormat::Json, false, lines.clone()).unwrap();
    (Telemetry { log: Some(log), ..Telemetry::default() }, lines)
}

#[tokio::test]
async fn a_session_is_routed_by_config_relayed_both_ways_and_logged_with_its_usage() {
    let down = MockRealtime::refusing(503).await;
    let up = MockRealtime::start().await;
    let (telemetry, lines) = log_telemetry();
    let gateway = start_gateway(GatewayOptions { telemetry, ..GatewayOptions::default() }).await;
    let config = json!({
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai", "api_key": SECRET, "custom_host": down.v1()},
            {"provider": "openai", "api_key": SECRET, "custom_host": up.v1()}
        ]
    });
    let headers = [
        ("x-portkey-config", config.to_string()),
        ("x-portkey-trace-id", "t-realtime".to_owned()),
        ("openai-beta", "realtime=v1".to_owned()),
        ("sec-websocket-protocol", "realtime".to_owned()),
        ("authorization", "Bearer sk-callers-own".to_owned()),
    ];
    let (mut caller, handshake) = connect(&gateway, "model=gpt-4o-realtime-preview", &headers).await.unwrap();
    assert_eq!(handshake.status(), 101);
    let header = |name: &str| handshake.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("x-portkey-provider").as_deref(), Some("openai"));
    assert_eq!(header("x-portkey-last-used-option-index").as_deref(), Some("config.targets[1]"));
    assert_eq!(header("x-portkey-trace-id").as_deref(), Some("t-realtime"));
    assert_eq!(header("sec-websocket-protocol").as_deref(), Some("realtime"), "the upstream's choice, offered by us");
    assert_eq!(header("x-request-id").as_deref(), Some("req_mock_realtime"), "upstream headers pass");

    let created = next_event(&mut caller).await;
    assert_eq!(created["type"], "session.created");
    assert_eq!(created["session"]["model"], "gpt-4o-realtime-preview");
    let update = json!({"type": "session.update", "session": {"instructions": "be brief"}});
    caller.send(Message::text(update.to_string())).await.unwrap();
    assert_eq!(next_event(&mut caller).await, json!({"type": "echo", "received": update}));
    caller.send(Message::binary(vec![0u8, 1, 2, 255])).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(10), caller.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(echoed, Message::binary(vec![0u8, 1, 2, 255]), "binary messages pass as they are");
    for n in 1..=2 {
        caller.send(Message::text(json!({"type": "response.create"}).to_string())).await.unwrap();
        let done = next_event(&mut caller).await;
        assert_eq!((&done["type"], &done["response"]["id"]), (&json!("response.done"), &json!(format!("resp_{n}"))));
    }
    caller.close(None).await.unwrap();

    // The fallback was taken on the first upstream's refusal.
    let [refused] = &down.handshakes()[..] else { panic!("one handshake: {:?}", down.handshakes()) };
    assert_eq!(refused.uri, "/v1/realtime?model=gpt-4o-realtime-preview");
    let [accepted] = &up.handshakes()[..] else { panic!("one handshake: {:?}", up.handshakes()) };
    assert_eq!(accepted.uri, "/v1/realtime?model=gpt-4o-realtime-preview", "path and query as the caller sent");
    assert_eq!(accepted.header("authorization"), Some(format!("Bearer {SECRET}").as_str()), "the config's key");
    assert_eq!(accepted.header("openai-beta"), Some("realtime=v1"), "the SDK's headers pass");
    assert_eq!(accepted.header("sec-websocket-protocol"), Some("realtime"));
    assert!(accepted.headers.keys().all(|k| !k.as_str().starts_with("x-portkey-")), "{:?}", accepted.headers);
    assert_ne!(accepted.header("sec-websocket-key"), None, "the gateway's own handshake");

    let record = &lines.records(1).await[0];
    assert_eq!((&record["trace_id"], &record["status"]), (&json!("t-realtime"), &json!(101)));
    assert_eq!(record["endpoint"], "/v1/realtime");
    assert_eq!((&record["provider"], &record["model"]), (&json!("openai"), &json!("gpt-4o-realtime-preview")));
    assert_eq!(record["option_index"], "config.targets[1]");
    let statuses: Vec<&Value> = record["attempts"].as_array().unwrap().iter().map(|a| &a["status"]).collect();
    assert_eq!(statuses, [&json!(503), &json!(101)]);
    assert_eq!(
        record["usage"],
        json!({"input_tokens": 240, "output_tokens": 120, "total_tokens": 360, "cached_input_tokens": 40,
               "reasoning_tokens": 0, "cache_write_input_tokens": 0}),
        "two responses' usage, summed"
    );
    assert_eq!(record["error_code"], Value::Null);
    assert!(!lines.text().contains(SECRET), "no key in the log");
}

#[tokio::test]
async fn azure_gets_its_deployment_and_api_version_and_a_target_can_override_the_model() {
    let up = MockRealtime::start().await;
    let gateway = start_gateway(GatewayOptions::default()).await;
    let azure = json!({"provider": "azure-openai", "api_key": SECRET, "custom_host": format!("{}/openai", up.v1()),
                       "resource_name": "unused", "deployment_id": "rt deploy"});
    let headers = [("x-portkey-config", azure.to_string())];
    let (mut caller, _) = connect(&gateway, "model=gpt-4o-realtime-preview&voice=alloy", &headers).await.unwrap();
    assert_eq!(next_event(&mut caller).await["type"], "session.created");
    caller.close(None).await.unwrap();
    let sent = &up.handshakes()[0];
    assert_eq!(sent.uri, "/v1/openai/realtime?voice=alloy&api-version=2025-04-01-preview&deployment=rt%20deploy");
    assert_eq!(sent.header("api-key"), Some(SECRET));
    assert_eq!(sent.header("authorization"), None);

    let openai = json!({"provider": "openai", "api_key": SECRET, "custom_host": up.v1(),
                        "override_params": {"model": "gpt-realtime-mini"}});
    let headers = [("x-portkey-config", openai.to_string())];
    let (mut caller, _) = connect(&gateway, "model=gpt-4o-realtime-preview&voice=alloy", &headers).await.unwrap();
    assert_eq!(next_event(&mut caller).await["session"]["model"], "gpt-realtime-mini");
    caller.close(None).await.unwrap();
    assert_eq!(up.handshakes()[1].uri, "/v1/realtime?voice=alloy&model=gpt-realtime-mini");
}

#[tokio::test]
async fn a_browsers_key_in_a_subprotocol_is_its_bearer_and_never_goes_upstream() {
    let up = MockRealtime::start().await;
    let gateway = start_gateway(GatewayOptions::default()).await;
    let mut headers = direct_to(&up);
    headers.pop(); // no authorization: a browser cannot send one
    let protocols = "realtime, openai-insecure-api-key.sk-browser-key, openai-beta.realtime-v1";
    headers.push(("sec-websocket-protocol", protocols.to_owned()));
    let (mut caller, handshake) = connect(&gateway, "model=gpt-realtime", &headers).await.unwrap();
    assert_eq!(handshake.headers()["sec-websocket-protocol"], "realtime");
    assert_eq!(next_event(&mut caller).await["type"], "session.created");
    caller.close(None).await.unwrap();
    let sent = &up.handshakes()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer sk-browser-key"));
    assert_eq!(sent.header("sec-websocket-protocol"), Some("realtime, openai-beta.realtime-v1"));
}

#[tokio::test]
async fn an_upstream_close_reaches_the_caller_with_its_code() {
    let up = MockRealtime::start().await;
    let gateway = start_gateway(GatewayOptions::default()).await;
    let headers = direct_to(&up);
    let (mut caller, _) = connect(&gateway, "model=gpt-realtime", &headers).await.unwrap();
    next_event(&mut caller).await;
    caller.send(Message::text(json!({"type": "test.close"}).to_string())).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), caller.next()).await.unwrap().unwrap().unwrap();
    let Message::Close(Some(frame)) = closed else { panic!("expected a close frame, got {closed:?}") };
    assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::Normal, "bye"));
}

#[tokio::test]
async fn handshakes_the_gateway_cannot_serve_are_refused_with_a_clear_error() {
    let up = MockRealtime::start().await;
    let gateway = start_gateway(GatewayOptions::default()).await;
    let client = reqwest::Client::new();
    // A plain GET, no upgrade.
    let plain = client.get(format!("{}/v1/realtime?model=m", gateway.base)).send().await.unwrap();
    assert_eq!(plain.status(), 400);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_endpoint", "{body}");

    // A provider without a Realtime API.
    let anthropic = [("x-portkey-provider", "anthropic".to_owned()), ("authorization", "Bearer sk-ant".to_owned())];
    let (status, body) = refusal_status(connect(&gateway, "model=claude", &anthropic).await);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "unsupported_endpoint", "{body}");

    // An upstream refusal reaches the caller as that status, with no key in it.
    let down = MockRealtime::refusing(401).await;
    let config = json!({"provider": "openai", "api_key": SECRET, "custom_host": down.v1()});
    let (status, body) =
        refusal_status(connect(&gateway, "model=m", &[("x-portkey-config", config.to_string())]).await);
    assert_eq!(status, 401);
    assert!(!body.to_string().contains(SECRET), "{body}");
    assert!(up.handshakes().is_empty());
}

#[tokio::test]
async fn a_session_holds_its_connection_against_the_servers_cap_until_it_ends() {
    let up = MockRealtime::start().await;
    let gateway = start_gateway(GatewayOptions { max_connections: Some(1), ..GatewayOptions::default() }).await;
    let headers = direct_to(&up);
    let (mut caller, _) = connect(&gateway, "model=gpt-realtime", &headers).await.unwrap();
    next_event(&mut caller).await;
    let chat = || async {
        reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", gateway.base))
            .header("x-portkey-provider", "openai")
            .header("x-portkey-custom-host", "http://127.0.0.1:9/v1")
            .header("authorization", "Bearer sk-caller")
            .json(&hello())
            .send()
            .await
            .unwrap()
    };
    let busy = chat().await;
    assert_eq!(busy.status(), 503, "the session's connection still counts");
    caller.close(None).await.unwrap();
    drop(caller);
    // Once the session has ended, a new connection is served (the upstream here refuses
    // connections: a 502, not the cap's 503).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = chat().await.status();
        if status != 503 {
            assert_eq!(status, 502);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the connection was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_server_shutting_down_closes_its_sessions_with_going_away() {
    let up = MockRealtime::start().await;
    let mut gateway = start_gateway(GatewayOptions::default()).await;
    let (mut caller, _) = connect(&gateway, "model=gpt-realtime", &direct_to(&up)).await.unwrap();
    next_event(&mut caller).await;
    gateway.shutdown.take().unwrap().send(()).unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), caller.next()).await.unwrap().unwrap().unwrap();
    let Message::Close(Some(frame)) = closed else { panic!("expected a close frame, got {closed:?}") };
    assert_eq!(frame.code, CloseCode::Away);
    // The server finishes stopping once its sessions have closed.
    tokio::time::timeout(Duration::from_secs(10), gateway.task).await.unwrap().unwrap();
}
