//! Reading `Retry-After` and its millisecond cousins.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Parse an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 requires
/// senders to use.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || day == 0 || day > 31 || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
}
