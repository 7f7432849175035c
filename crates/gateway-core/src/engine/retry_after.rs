//! Reading `Retry-After` and its millisecond cousins.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// The delay an upstream asked for, from `retry-after-ms`, `x-ms-retry-after-ms` or
/// `retry-after` (delta-seconds or an HTTP-date), first present wins.
pub fn requested_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(v) = text(name) {
            return v
                .parse::<f64>()
                .ok()
                .filter(|ms| *ms >= 0.0 && ms.is_finite())
                .map(|ms| Duration::from_micros((ms * 1000.0) as u64));
        }
    }
    let v = text("retry-after")?;
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parse an HTTP-date in any of the three forms RFC 9110 (section 5.6.7) requires a
/// recipient to accept: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete
/// RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn reads_all_three_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06T08:49:37Z
        let mut h = HeaderMap::new();
        h.insert("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT".parse().unwrap());
        assert_eq!(requested_delay(&h, now), Some(Duration::from_secs(3)));
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(requested_delay(&h, now), Some(Duration::from_secs(2)));
        h.insert("x-ms-retry-after-ms", "250".parse().unwrap());
        assert_eq!(requested_delay(&h, now), Some(Duration::from_millis(250)));
        h.insert("retry-after-ms", "10".parse().unwrap());
        assert_eq!(requested_delay(&h, now), Some(Duration::from_millis(10)));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(UNIX_EPOCH));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn an_http_date_may_come_in_any_of_the_three_forms_rfc_9110_names() {
        let at = UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06T08:49:37Z
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse_http_date(form), Some(at), "{form}");
            let mut h = HeaderMap::new();
            h.insert("retry-after", form.parse().unwrap());
            assert_eq!(requested_delay(&h, at - Duration::from_secs(5)), Some(Duration::from_secs(5)), "{form}");
        }
    }
}
