//! Personal data and secrets in text: found by pattern, confirmed by checksum where the
//! kind has one (card numbers by Luhn, IBANs by ISO 13616's mod 97), and redacted.
//!
//! The patterns are plain `regex` ones (linear time): a text of any size is scanned once
//! per kind, never backtracked over.

use std::sync::LazyLock;

use regex::Regex;

/// A kind of personal data or secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number (9 to 15 digits, with the usual separators).
    Phone,
    /// A payment card number that passes the Luhn check.
    CreditCard,
    /// An IBAN whose check digits are right.
    Iban,
    /// A string that looks like an API key or token of a known service.
    ApiKey,
}

impl PiiKind {
    /// Every kind, in the order they are looked for (cards and IBANs before phones, whose
    /// pattern would otherwise take their digits).
    pub const ALL: [PiiKind; 5] = [Self::ApiKey, Self::Email, Self::CreditCard, Self::Iban, Self::Phone];

    /// The name in check parameters and results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::CreditCard => "credit_card",
            Self::Iban => "iban",
            Self::ApiKey => "api_key",
        }
    }

    /// The kind a parameter names: ours, or the names of Portkey's PII plugin.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "email" | "email_address" => Some(Self::Email),
            "phone" | "phone_number" => Some(Self::Phone),
            "credit_card" | "card" | "credit_card_number" => Some(Self::CreditCard),
            "iban" | "iban_code" => Some(Self::Iban),
            "api_key" | "secret" | "api_keys" => Some(Self::ApiKey),
            _ => None,
        }
    }

    /// What a redacted match is replaced with.
    pub fn placeholder(self) -> &'static str {
        match self {
            Self::Email => "[REDACTED_EMAIL]",
            Self::Phone => "[REDACTED_PHONE]",
            Self::CreditCard => "[REDACTED_CREDIT_CARD]",
            Self::Iban => "[REDACTED_IBAN]",
            Self::ApiKey => "[REDACTED_API_KEY]",
        }
    }

    fn pattern(self) -> &'static Regex {
        static EMAIL: LazyLock<Regex> =
            LazyLock::new(|| fixed(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"));
        static PHONE: LazyLock<Regex> = LazyLock::new(|| {
            fixed(r"(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{2,4}(?:[ .-]?[0-9]{2,4}){2,4}")
        });
        static CARD: LazyLock<Regex> = LazyLock::new(|| fixed(r"\b[0-9](?:[ -]?[0-9]){12,18}\b"));
        static IBAN: LazyLock<Regex> = LazyLock::new(|| fixed(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b"));
        static API_KEY: LazyLock<Regex> = LazyLock::new(|| {
            fixed(concat!(
                r"\b(?:",
                r"sk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{20,}",
                r"|(?:AKIA|ASIA)[0-9A-Z]{16}",
                r"|gh[pousr]_[A-Za-z0-9]{36,}",
                r"|github_pat_[A-Za-z0-9_]{40,}",
                r"|xox[abposr]-[A-Za-z0-9-]{10,}",
                r"|AIza[0-9A-Za-z_-]{35}",
                r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,}",
                r"|glpat-[A-Za-z0-9_-]{20,}",
                r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
                r")"
            ))
        });
        match self {
            Self::Email => &EMAIL,
            Self::Phone => &PHONE,
            Self::CreditCard => &CARD,
            Self::Iban => &IBAN,
            Self::ApiKey => &API_KEY,
        }
    }

    /// Whether a pattern match really is this kind (a checksum, a digit count).
    fn confirms(self, found: &str) -> bool {
        match self {
            Self::CreditCard => luhn(found),
            Self::Iban => iban_checksum(found),
            Self::Phone => {
                let digits = found.bytes().filter(u8::is_ascii_digit).count();
                (9..=15).contains(&digits)
            }
            Self::Email | Self::ApiKey => true,
        }
    }
}

/// A pattern written in this module, compiled on first use. The tests compile every one,
/// so the `expect` cannot fire in a build that passed them.
#[allow(clippy::expect_used)]
pub(super) fn fixed(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a pattern of this module compiles")
}

/// One match: where, and what kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The kind.
    pub kind: PiiKind,
    /// Byte range in the text.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
}

/// Every match of `kinds` in `text`, in text order, none overlapping (a kind looked for
/// earlier in [`PiiKind::ALL`] keeps its span).
pub fn find(text: &str, kinds: &[PiiKind]) -> Vec<Found> {
    // Kept sorted and non-overlapping, so each new match is checked against its two
    // neighbours only: linear-logarithmic however many matches a text holds.
    let mut found: Vec<Found> = Vec::new();
    // What each kind needs at least, counted in one pass: most prose has no `@` and few
    // digits, and then most patterns need not run at all.
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let possible = |kind: PiiKind| match kind {
        PiiKind::Email => memchr::memchr(b'@', text.as_bytes()).is_some(),
        PiiKind::Phone => digits >= 9,
        PiiKind::CreditCard => digits >= 13,
        PiiKind::Iban => digits >= 2,
        PiiKind::ApiKey => true,
    };
    for kind in PiiKind::ALL.into_iter().filter(|k| kinds.contains(k) && possible(*k)) {
        let mut new = Vec::new();
        for m in kind.pattern().find_iter(text) {
            let at = found.partition_point(|f| f.start < m.start());
            let overlaps = found.get(at).is_some_and(|next| next.start < m.end())
                || at.checked_sub(1).and_then(|i| found.get(i)).is_some_and(|prev| prev.end > m.start());
            if !overlaps && kind.confirms(m.as_str()) {
                new.push(Found { kind, start: m.start(), end: m.end() });
            }
        }
        found.extend(new);
        found.sort_by_key(|f| f.start);
    }
    found
}

/// `text` with every match of `kinds` replaced by its placeholder; `None` when there is
/// nothing to redact.
pub fn redact(text: &str, kinds: &[PiiKind]) -> Option<String> {
    let found = find(text, kinds);
    if found.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in found {
        out.push_str(&text[at..f.start]);
        out.push_str(f.kind.placeholder());
        at = f.end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// The Luhn checksum of the digits in `s`.
fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616: move the first four characters to the end, letters to numbers (A = 10),
/// and the number mod 97 is 1.
fn iban_checksum(s: &str) -> bool {
    let compact: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let mut remainder: u32 = 0;
    for c in compact[4..].iter().chain(&compact[..4]) {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        let width = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * width + value) % 97;
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kinds(text: &str) -> Vec<&'static str> {
        find(text, &PiiKind::ALL).into_iter().map(|f| f.kind.name()).collect()
    }

    #[test]
    fn each_kind_is_found_and_lookalikes_are_not() {
        assert_eq!(kinds("write to jane.doe+x@mail.example.co.uk today"), ["email"]);
        assert_eq!(kinds("call +44 20 7946 0958 or (555) 123-4567"), ["phone", "phone"]);
        assert_eq!(kinds("card 4111 1111 1111 1111, exp 12/30"), ["credit_card"]);
        // Sixteen digits that fail Luhn are not a card (they may still be read as a phone).
        assert!(!kinds("order 4111 1111 1111 1112").contains(&"credit_card"));
        assert_eq!(kinds("IBAN GB82 WEST 1234 5698 7654 32 please"), ["iban"]);
        assert_eq!(kinds("IBAN DE89370400440532013000"), ["iban"]);
        assert!(kinds("GB82 WEST 1234 5698 7654 33").iter().all(|k| *k != "iban"));
        assert_eq!(kinds("key sk-proj-abcdefghijklmnopqrstuvwx1234 ok"), ["api_key"]);
        assert_eq!(kinds("aws AKIAIOSFODNN7EXAMPLE"), ["api_key"]);
        assert_eq!(kinds("token ghp_abcdefghijklmnopqrstuvwxyz0123456789"), ["api_key"]);
        assert!(kinds("the year 2024 had 365 days and version 1.2.3").is_empty());
    }

    #[test]
    fn redaction_replaces_each_match_with_its_placeholder() {
        let text = "mail a@b.io, card 5500-0000-0000-0004, key AKIAIOSFODNN7EXAMPLE.";
        assert_eq!(
            redact(text, &PiiKind::ALL).unwrap(),
            "mail [REDACTED_EMAIL], card [REDACTED_CREDIT_CARD], key [REDACTED_API_KEY]."
        );
        assert_eq!(redact(text, &[PiiKind::Email]).unwrap(), text.replace("a@b.io", "[REDACTED_EMAIL]"));
        assert_eq!(redact("nothing here", &PiiKind::ALL), None);
    }

    #[test]
    fn checksums() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("378282246310005"));
        assert!(!luhn("4111111111111112"));
        assert!(iban_checksum("GB82WEST12345698765432"));
        assert!(iban_checksum("FR1420041010050500013M02606"));
        assert!(!iban_checksum("GB82WEST12345698765433"));
    }
}
