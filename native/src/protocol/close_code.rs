//! RFC 6455 §7.4 close status codes.

pub const NORMAL: u16 = 1000;
pub const GOING_AWAY: u16 = 1001;
pub const PROTOCOL_ERROR: u16 = 1002;
pub const INVALID_PAYLOAD: u16 = 1007;
pub const POLICY_VIOLATION: u16 = 1008;
pub const MESSAGE_TOO_BIG: u16 = 1009;

/// Whether a close code may appear in a close frame received from the
/// peer: 1000-1003, 1007-1014 and 3000-4999 may; 1004, 1005, 1006, 1015,
/// codes under 1000, 1016-2999 and from 5000 on may not.
pub fn is_valid_received(code: u16) -> bool {
    // 1004 is reserved, 1005/1006/1015 are local-only pseudo codes that must
    // never travel on the wire, 1016-2999 are unassigned IANA space.
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges() {
        for code in (1000..=1003).chain(1007..=1014).chain(3000..=4999) {
            assert!(is_valid_received(code), "{code}");
        }
    }

    #[test]
    fn invalid_codes() {
        for code in [
            0,
            999,
            1004,
            1005,
            1006,
            1015,
            1016,
            2000,
            2999,
            5000,
            u16::MAX,
        ] {
            assert!(!is_valid_received(code), "{code}");
        }
    }

    #[test]
    fn constants_are_valid_to_receive() {
        for code in [
            NORMAL,
            GOING_AWAY,
            PROTOCOL_ERROR,
            INVALID_PAYLOAD,
            MESSAGE_TOO_BIG,
        ] {
            assert!(is_valid_received(code));
        }
    }
}
