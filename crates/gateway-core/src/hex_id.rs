//! Ids made of a prefix and zero-padded hex serials (`gw-1a2b3c4d-00000000002a`).
//!
//! Every request gets one (a trace id, a fallback completion id), and `format!` with
//! padding costs more instructions than the rest of building the id: this writes the
//! digits directly.

/// Append `value` as at least `width` lowercase hex digits (zero-padded; a wider value
/// keeps all its digits), as `write!(out, "{value:0width$x}")` would.
pub fn push_hex(out: &mut String, value: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let needed = ((64 - value.leading_zeros() as usize).div_ceil(4)).max(1);
    for _ in needed..width {
        out.push('0');
    }
    for shift in (0..needed).rev() {
        out.push(char::from(DIGITS[((value >> (shift * 4)) & 0xf) as usize]));
    }
}

/// `prefix` then `value` as at least `width` hex digits.
pub fn hex_id(prefix: &str, value: u64, width: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + width.max(16));
    id.push_str(prefix);
    push_hex(&mut id, value, width);
    id
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn matches_format_for_every_width_and_magnitude() {
        for value in [0, 1, 0xf, 0x10, 0xabc, 0xdead_beef, u64::from(u32::MAX) + 1, u64::MAX] {
            for width in [0, 1, 8, 12, 16, 20] {
                assert_eq!(hex_id("p-", value, width), format!("p-{value:0width$x}"), "{value} {width}");
            }
        }
    }
}
