//! AWS Signature Version 4, written out by hand.
//!
//! The whole algorithm is four string-building steps and a chain of HMACs; a signing crate
//! would bring its own HTTP types and async credential providers into a core that must stay
//! free of I/O. Checked against the published AWS SigV4 test-suite vectors (see the tests).
//!
//! Paths are canonicalised the way AWS does for every service except S3: the path as sent
//! (already percent-encoded) is URI-encoded once more, so a Bedrock model id sent as
//! `v1%3A0` is signed as `v1%253A0`.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Static AWS credentials.
#[derive(Clone, Copy)]
pub(crate) struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// The parts of a request that SigV4 covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signable<'a> {
    pub method: &'a str,
    /// The path as it goes on the wire (percent-encoded where the URL needs it).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Headers to sign; must include `host` and `x-amz-date`.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body.
    pub payload_hash: &'a str,
}

/// Where and when the signature is valid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the same value as the `x-amz-date` header.
    pub amz_date: &'a str,
}

impl Scope<'_> {
    fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or(self.amz_date)
    }

    fn credential_scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date(), self.region, self.service)
    }
}

/// The canonical request and the `SignedHeaders` list.
pub(crate) fn canonical_request(req: &Signable<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(req.headers.len());
    for (name, value) in req.headers {
        let name = name.to_ascii_lowercase();
        let value = collapse_spaces(value);
        // Repeated headers are signed as one, values joined by commas in order.
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&value);
            }
            None => headers.push((name, value)),
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let signed = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&uri_encode(if req.path.is_empty() { "/" } else { req.path }, false));
    out.push('\n');
    out.push_str(&canonical_query(req.query));
    out.push('\n');
    for (name, value) in &headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed);
    out.push('\n');
    out.push_str(req.payload_hash);
    (out, signed)
}

/// The string to sign for a canonical request.
pub(crate) fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        scope.amz_date,
        scope.credential_scope(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The hex signature of `string_to_sign`.
pub(crate) fn signature(secret_access_key: &str, scope: &Scope<'_>, string_to_sign: &str) -> String {
    let k_date = hmac_sha256(format!("AWS4{secret_access_key}").as_bytes(), scope.date().as_bytes());
    let k_region = hmac_sha256(&k_date, scope.region.as_bytes());
    let k_service = hmac_sha256(&k_region, scope.service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()))
}

/// The `Authorization` header value for `req`.
pub(crate) fn authorization(creds: &Credentials<'_>, scope: &Scope<'_>, req: &Signable<'_>) -> String {
    let (creq, signed_headers) = canonical_request(req);
    let sts = string_to_sign(scope, &creq);
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}",
        creds.access_key_id,
        scope.credential_scope(),
        signed_headers,
        signature(creds.secret_access_key, scope, &sts)
    )
}

/// `YYYYMMDDTHHMMSSZ` for `now` (UTC).
pub(crate) fn amz_date(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Lower-case hex SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// HMAC-SHA256 (RFC 2104).
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac as _;
    // Any key length is valid for HMAC, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(key) else { return [0; 32] };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// AWS URI encoding: everything but `A-Z a-z 0-9 - _ . ~` becomes `%XX` (upper-case hex);
/// `/` is kept unless `encode_slash`.
pub(crate) fn uri_encode(s: &str, encode_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (b == b'/' && !encode_slash) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
    out
}

/// Decode `%XX` escapes (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&crate::request::percent_decode(s)).into_owned()
}

/// Query parameters decoded, re-encoded strictly and sorted by name, then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), true), uri_encode(&percent_decode(v), true))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Trim a header value and collapse runs of spaces to one, as SigV4 requires.
fn collapse_spaces(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    //! Vectors from the AWS SigV4 test suite (`aws-sig-v4-test-suite`, as shipped in
    //! awslabs/aws-c-auth `tests/aws-signing-test-suite/v4/*`): key id `AKIDEXAMPLE`, secret
    //! `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, `20150830T123600Z`, `us-east-1`,
    //! service `service`.
    use super::*;

    const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
    const DATE: (&str, &str) = ("X-Amz-Date", "20150830T123600Z");
    const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const CREDS: Credentials<'static> = Credentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };
    const SCOPE: Scope<'static> = Scope { region: "us-east-1", service: "service", amz_date: "20150830T123600Z" };

    fn authz(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
        let hash = sha256_hex(body);
        authorization(&CREDS, &SCOPE, &Signable { method, path, query, headers, payload_hash: &hash })
    }

    fn expect(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    #[test]
    fn get_vanilla() {
        let req = Signable { method: "GET", path: "/", query: "", headers: &[HOST, DATE], payload_hash: EMPTY_HASH };
        let (creq, _) = canonical_request(&req);
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            authz("GET", "/", "", &[HOST, DATE], b""),
            expect("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
    }

    #[test]
    fn post_vanilla_string_to_sign() {
        let req = Signable { method: "POST", path: "/", query: "", headers: &[HOST, DATE], payload_hash: EMPTY_HASH };
        let (creq, _) = canonical_request(&req);
        assert_eq!(
            string_to_sign(&SCOPE, &creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"
        );
        assert_eq!(
            authz("POST", "/", "", &[HOST, DATE], b""),
            expect("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
    }

    #[test]
    fn post_with_body() {
        // post-x-www-form-urlencoded: a body and a signed content-type.
        let headers = [("Content-Type", "application/x-www-form-urlencoded"), HOST, DATE];
        let hash = sha256_hex(b"Param1=value1");
        assert_eq!(hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
        let (creq, _) = canonical_request(&Signable {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            payload_hash: &hash,
        });
        assert_eq!(
            string_to_sign(&SCOPE, &creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"
        );
        assert_eq!(
            authz("POST", "/", "", &headers, b"Param1=value1"),
            expect("content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
        );
    }

    #[test]
    fn query_sorted_by_key() {
        // get-vanilla-query-order-key-case.
        assert_eq!(
            authz("GET", "/", "Param2=value2&Param1=value1", &[HOST, DATE], b""),
            expect("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        );
    }

    #[test]
    fn header_values_trimmed_and_collapsed() {
        // get-header-value-trim.
        let headers = [HOST, ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""), DATE];
        assert_eq!(
            authz("GET", "/", "", &headers, b""),
            expect(
                "host;my-header1;my-header2;x-amz-date",
                "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
            )
        );
    }

    #[test]
    fn unreserved_and_utf8_paths() {
        // get-unreserved and get-utf8 (the UTF-8 path is encoded once: /%E1%88%B4).
        assert_eq!(
            authz("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "", &[HOST, DATE], b""),
            expect("host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f")
        );
        assert_eq!(
            authz("GET", "/ሴ", "", &[HOST, DATE], b""),
            expect("host;x-amz-date", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85")
        );
    }

    #[test]
    fn session_token_is_a_signed_header() {
        // post-sts-header-before.
        let token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        assert_eq!(
            authz("POST", "/", "", &[HOST, DATE, ("X-Amz-Security-Token", token)], b""),
            expect(
                "host;x-amz-date;x-amz-security-token",
                "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
            )
        );
    }

    #[test]
    fn already_encoded_path_is_encoded_again() {
        let req = Signable {
            method: "POST",
            path: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            query: "",
            headers: &[HOST, DATE],
            payload_hash: EMPTY_HASH,
        };
        let (creq, _) = canonical_request(&req);
        assert!(creq.starts_with("POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\n"), "{creq}");
    }

    #[test]
    fn hmac_rfc4231() {
        // RFC 4231 test cases 2 and 6 (a key longer than the block size).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn amz_dates() {
        assert_eq!(amz_date(UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)), "20231114T221320Z");
        assert_eq!(amz_date(UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)), "20150830T123600Z");
        assert_eq!(amz_date(UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)), "20000229T000000Z");
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
    }
}
