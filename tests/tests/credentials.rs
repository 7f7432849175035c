//! Google service-account token exchange against a mock token endpoint that verifies the
//! JWT the way Google's does: RS256 signature over header.claims with the account's key,
//! issuer, audience, scope and lifetime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gateway_core::engine::{Transport, TransportErrorKind};
use gateway_core::providers::CredentialRequest;
use gateway_http::{HyperTransport, TransportOptions};
use serde_json::{Value, json};

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

fn private_key_pem() -> String {
    std::fs::read_to_string(gateway_tests::fixture_path("keys/test-service-account.pem")).unwrap()
}

fn public_key() -> Vec<u8> {
    let pem = private_key_pem();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let pair = RsaKeyPair::from_pkcs8(&STANDARD.decode(der).unwrap()).unwrap();
    pair.public_key().as_ref().to_vec()
}

/// A token endpoint that checks the assertion and counts exchanges; its tokens live one
/// hour. The first token is `ya29.mock-token`, later ones `ya29.mock-token-<n>`.
async fn token_endpoint(exchanges: Arc<Mutex<Vec<Value>>>) -> String {
    token_endpoint_lasting(exchanges, 3599).await
}

/// The same with tokens that live `expires_in` seconds.
async fn token_endpoint_lasting(exchanges: Arc<Mutex<Vec<Value>>>, expires_in: u64) -> String {
    let public = public_key();
    let app = Router::new().route(
        "/token",
        post(move |body: String| {
            let exchanges = exchanges.clone();
            let public = public.clone();
            async move {
                let form: Vec<(&str, &str)> = body.split('&').filter_map(|kv| kv.split_once('=')).collect();
                let grant = form.iter().find(|(k, _)| *k == "grant_type").map(|(_, v)| *v);
                let assertion = form.iter().find(|(k, _)| *k == "assertion").map(|(_, v)| *v).unwrap_or("");
                let parts: Vec<&str> = assertion.split('.').collect();
                let bad = |why: &str| {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        json!({"error": "invalid_grant", "error_description": why}).to_string(),
                    )
                };
                if grant != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") || parts.len() != 3 {
                    return bad("malformed request");
                }
                let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
                let signed = format!("{}.{}", parts[0], parts[1]);
                if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
                    .verify(signed.as_bytes(), &signature)
                    .is_err()
                {
                    return bad("Invalid JWT Signature.");
                }
                let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
                let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
                assert_eq!(header["alg"], "RS256");
                let n = {
                    let mut exchanges = exchanges.lock().unwrap();
                    exchanges.push(claims);
                    exchanges.len()
                };
                let token = if n == 1 { "ya29.mock-token".to_owned() } else { format!("ya29.mock-token-{n}") };
                (
                    axum::http::StatusCode::OK,
                    json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}).to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/token")
}

fn account(token_uri: &str, key: &str) -> Value {
    json!({"type": "service_account", "project_id": "p", "client_email": "gw@p.iam.gserviceaccount.com",
           "private_key": key, "token_uri": token_uri})
}

#[tokio::test]
async fn a_service_account_token_is_exchanged_once_and_cached() {
    let exchanges = Arc::new(Mutex::new(Vec::new()));
    let token_uri = token_endpoint(exchanges.clone()).await;
    let transport = HyperTransport::new(TransportOptions::default()).unwrap();
    let request =
        CredentialRequest::GoogleServiceAccount { account: account(&token_uri, &private_key_pem()), scope: SCOPE };
    assert_eq!(transport.credential(&request).await.unwrap(), "ya29.mock-token");
    assert_eq!(transport.credential(&request).await.unwrap(), "ya29.mock-token");
    let seen = exchanges.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "the second call used the cached token");
    let claims = &seen[0];
    assert_eq!(claims["iss"], "gw@p.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], token_uri.as_str());
    assert_eq!(claims["scope"], SCOPE);
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
}

#[tokio::test]
async fn a_token_about_to_expire_is_exchanged_again() {
    // Tokens are refreshed a minute before they expire: one that lives 30 s is already
    // due, so each use exchanges the assertion again and gets the new token.
    let exchanges = Arc::new(Mutex::new(Vec::new()));
    let token_uri = token_endpoint_lasting(exchanges.clone(), 30).await;
    let transport = HyperTransport::new(TransportOptions::default()).unwrap();
    let request =
        CredentialRequest::GoogleServiceAccount { account: account(&token_uri, &private_key_pem()), scope: SCOPE };
    assert_eq!(transport.credential(&request).await.unwrap(), "ya29.mock-token");
    assert_eq!(transport.credential(&request).await.unwrap(), "ya29.mock-token-2");
    assert_eq!(exchanges.lock().unwrap().len(), 2, "the stale token was not reused");
}

#[tokio::test]
async fn a_key_the_endpoint_rejects_or_cannot_parse_is_refused() {
    let exchanges = Arc::new(Mutex::new(Vec::new()));
    let token_uri = token_endpoint(exchanges.clone()).await;
    let transport = HyperTransport::new(TransportOptions::default()).unwrap();

    // A different (valid) key: the signature does not verify, the endpoint says 400.
    let other = std::fs::read_to_string(gateway_tests::fixture_path("keys/other-key.pem")).unwrap();
    let request = CredentialRequest::GoogleServiceAccount { account: account(&token_uri, &other), scope: SCOPE };
    let e = transport.credential(&request).await.unwrap_err();
    assert_eq!(e.kind, TransportErrorKind::Forbidden);
    assert!(e.message.contains("Invalid JWT Signature"), "{}", e.message);

    let request = CredentialRequest::GoogleServiceAccount { account: account(&token_uri, "not a key"), scope: SCOPE };
    assert_eq!(transport.credential(&request).await.unwrap_err().kind, TransportErrorKind::Forbidden);
    assert!(exchanges.lock().unwrap().is_empty());
}

#[tokio::test]
async fn vertex_with_a_service_account_calls_upstream_with_the_exchanged_token() {
    use gateway_tests::mock::{MockReply, MockUpstream};
    let exchanges = Arc::new(Mutex::new(Vec::new()));
    let token_uri = token_endpoint(exchanges.clone()).await;
    let gemini_answer = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
                               "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}});
    let vertex = MockUpstream::start([MockReply::ok(gemini_answer.clone()), MockReply::ok(gemini_answer)]).await;
    let config = json!({
        "provider": "vertex-ai", "vertex_project_id": "p", "vertex_region": "us-central1",
        "vertex_service_account_json": account(&token_uri, &private_key_pem()),
        "custom_host": format!("{}/v1", vertex.base)
    });
    let engine = gateway_http::engine(TransportOptions::default()).unwrap();
    let options = gateway_core::RequestOptions {
        config: Some(Arc::new(gateway_core::Config::from_json(&config).unwrap())),
        ..Default::default()
    };
    let body = json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hello"}]});
    let request = gateway_core::GatewayRequest::json(
        gateway_core::Endpoint::ChatCompletions,
        gateway_core::RequestBody::json(body.to_string().into()).unwrap(),
    );
    for _ in 0..2 {
        let r = engine.handle(&request, &options).await;
        assert_eq!(r.status, 200, "{:?}", r.error());
    }
    let received = vertex.received();
    assert_eq!(received.len(), 2);
    for r in &received {
        assert_eq!(r.header("authorization"), Some("Bearer ya29.mock-token"));
        assert!(!String::from_utf8_lossy(&r.body).contains("PRIVATE KEY"), "the key never goes upstream");
    }
    assert_eq!(exchanges.lock().unwrap().len(), 1, "one exchange serves both calls");

    // A key the token endpoint rejects is the caller's config problem: 400, nothing sent.
    let mut bad = config.clone();
    bad["vertex_service_account_json"]["private_key"] =
        json!(std::fs::read_to_string(gateway_tests::fixture_path("keys/other-key.pem")).unwrap());
    let options = gateway_core::RequestOptions {
        config: Some(Arc::new(gateway_core::Config::from_json(&bad).unwrap())),
        ..Default::default()
    };
    let r = engine.handle(&request, &options).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.result.unwrap_err().code, gateway_core::ErrorCode::InvalidConfig);
    assert_eq!(vertex.received().len(), 2);
}
