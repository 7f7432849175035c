//! Credentials that take I/O to obtain: Google service-account access tokens.
//!
//! The service-account flow (RFC 7523): sign a JWT with the account's RSA key (RS256),
//! exchange it at the account's `token_uri` for an access token, and reuse that token
//! until a minute before it expires. Keys never leave the process; tokens are cached per
//! account and scope.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gateway_core::engine::{HttpResponse, Transport, TransportError, TransportErrorKind};
use gateway_core::providers::HttpRequest;
use serde_json::Value;

const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// Tokens are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A cache of access tokens by (account, scope).
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, String), (Instant, String)>>,
}

impl std::fmt::Debug for TokenCache {
    // Never print tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").field("entries", &lock(&self.tokens).len()).finish()
    }
}

fn refused(message: impl Into<String>) -> TransportError {
    TransportError::new(TransportErrorKind::Forbidden, message)
}

impl TokenCache {
    /// An access token for the service account `account` with `scope`.
    pub async fn google_token(
        &self,
        transport: &dyn Transport,
        account: &Value,
        scope: &str,
    ) -> Result<String, TransportError> {
        let account = match account {
            Value::String(text) => serde_json::from_str(text)
                .map_err(|e| refused(format!("vertex_service_account_json is not JSON: {e}")))?,
            other => other.clone(),
        };
        let field = |name: &str| {
            account
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| refused(format!("the service account JSON has no `{name}`")))
        };
        let email = field("client_email")?;
        let private_key = field("private_key")?;
        let token_uri = account.get("token_uri").and_then(Value::as_str).unwrap_or(DEFAULT_TOKEN_URI);
        // Keyed by the private key too (hashed): a rotated or different key for the same
        // account must never be served a token minted for another.
        let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, private_key.as_bytes());
        let fingerprint = hex::encode(&fingerprint.as_ref()[..16]);
        let key = (format!("{email}\n{token_uri}\n{fingerprint}"), scope.to_owned());
        if let Some((_, token)) = lock(&self.tokens).get(&key).filter(|(until, _)| *until > Instant::now()) {
            return Ok(token.clone());
        }

        let assertion = signed_jwt(email, private_key, token_uri, scope, SystemTime::now())?;
        let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-www-form-urlencoded"));
        let exchange = HttpRequest {
            method: http::Method::POST,
            url: token_uri.to_owned(),
            headers,
            body: body.into(),
            stream: false,
            dropped_params: Vec::new(),
        };
        let response = transport.send(exchange).await.map_err(|e| {
            let kind = if e.kind == TransportErrorKind::Forbidden { e.kind } else { TransportErrorKind::Other };
            TransportError::new(kind, format!("token endpoint {token_uri}: {}", e.message))
        })?;
        let (status, text) = read_text(response).await?;
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        if !status.is_success() {
            // 4xx: the key or account was rejected (config problem); 5xx: try again later.
            let kind = if status.is_client_error() { TransportErrorKind::Forbidden } else { TransportErrorKind::Other };
            return Err(TransportError::new(kind, format!("token endpoint answered {status}: {}", text.trim())));
        }
        let answer: Value = serde_json::from_str(&text).map_err(|e| refused(format!("token endpoint answer: {e}")))?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| refused("the token endpoint's answer has no access_token"))?
            .to_owned();
        let lifetime = Duration::from_secs(answer.get("expires_in").and_then(Value::as_u64).unwrap_or(3600));
        let until = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN);
        lock(&self.tokens).insert(key, (until, token.clone()));
        Ok(token)
    }
}

/// The RS256-signed JWT assertion for the token exchange.
pub fn signed_jwt(
    email: &str,
    private_key_pem: &str,
    audience: &str,
    scope: &str,
    now: SystemTime,
) -> Result<String, TransportError> {
    let iat = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({"iss": email, "scope": scope, "aud": audience, "iat": iat, "exp": iat + 3600});
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let key = RsaKeyPair::from_pkcs8(&pem_to_der(private_key_pem)?)
        .map_err(|e| refused(format!("the service account private_key is not a PKCS#8 RSA key: {e}")))?;
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
        .map_err(|e| refused(format!("signing the service account JWT failed: {e}")))?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The DER bytes of a `-----BEGIN PRIVATE KEY-----` PEM block.
fn pem_to_der(pem: &str) -> Result<Vec<u8>, TransportError> {
    let body: String = pem.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("-----")).collect();
    STANDARD.decode(body).map_err(|e| refused(format!("the service account private_key is not valid PEM: {e}")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Largest control-plane answer read (a token exchange answers a few hundred bytes).
const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// A whole body as text, for small control-plane answers (token exchanges).
async fn read_text(response: HttpResponse) -> Result<(u16, String), TransportError> {
    let body = gateway_core::engine::collect_body(response.body, MAX_TEXT_BYTES).await?;
    Ok((response.status, String::from_utf8_lossy(&body).into_owned()))
}
