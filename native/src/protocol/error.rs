//! Errors raised while reading frames from the server.

use crate::protocol::close_code;

/// A violation of RFC 6455 by the peer (or of our configured limits); the
/// connection must be failed with [`ProtocolError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("frame from the server is masked")]
    MaskedServerFrame,
    #[error("control frame payload of {0} bytes exceeds 125 bytes")]
    ControlFrameTooLong(u64),
    #[error("control frame is fragmented")]
    FragmentedControlFrame,
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    #[error("new data frame while a fragmented message is in progress")]
    ExpectedContinuation,
    #[error("64-bit payload length has its most significant bit set")]
    PayloadLengthTooLarge,
    #[error("frame payload of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { size: u64, max: u64 },
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    #[error("close frame payload of a single byte")]
    InvalidClosePayload,
    #[error("compressed message does not inflate")]
    BadCompressedData,
    #[error("frame inflates to more than the limit of {max} bytes")]
    InflatedTooLarge { max: u64 },
    #[error("message exceeds the limit of {max} bytes")]
    MessageTooLarge { max: u64 },
    #[error("message in more than {max} frames")]
    TooManyFragments { max: u32 },
}

impl ProtocolError {
    /// RFC 6455 close code to send: 1002 for framing errors, 1007 for bad
    /// UTF-8 (text or close reason), 1009 for anything over a limit.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::InvalidUtf8 => close_code::INVALID_PAYLOAD,
            // The inflated size is what a frame costs the receiver.
            // Too many fragments is a message too big to process too: its
            // cost is in the frames rather than the bytes.
            Self::FrameTooLarge { .. }
            | Self::InflatedTooLarge { .. }
            | Self::MessageTooLarge { .. }
            | Self::TooManyFragments { .. } => close_code::MESSAGE_TOO_BIG,
            Self::ReservedBits
            | Self::ReservedOpcode(_)
            | Self::MaskedServerFrame
            | Self::ControlFrameTooLong(_)
            | Self::FragmentedControlFrame
            | Self::UnexpectedContinuation
            | Self::ExpectedContinuation
            | Self::PayloadLengthTooLarge
            | Self::InvalidCloseCode(_)
            | Self::InvalidClosePayload
            // A payload the negotiated extension cannot decode is a bad
            // frame, as Python's websockets treats it.
            | Self::BadCompressedData => close_code::PROTOCOL_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_errors_map_to_protocol_error() {
        let framing = [
            ProtocolError::ReservedBits,
            ProtocolError::ReservedOpcode(3),
            ProtocolError::MaskedServerFrame,
            ProtocolError::ControlFrameTooLong(126),
            ProtocolError::FragmentedControlFrame,
            ProtocolError::UnexpectedContinuation,
            ProtocolError::ExpectedContinuation,
            ProtocolError::PayloadLengthTooLarge,
            ProtocolError::InvalidCloseCode(1005),
            ProtocolError::InvalidClosePayload,
            ProtocolError::BadCompressedData,
        ];
        for e in framing {
            assert_eq!(e.close_code(), 1002, "{e:?}");
        }
    }

    #[test]
    fn encoding_and_size_errors() {
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), 1007);
        let too_large = ProtocolError::FrameTooLarge { size: 11, max: 10 };
        assert_eq!(too_large.close_code(), 1009);
        let bomb = ProtocolError::InflatedTooLarge { max: 10 };
        assert_eq!(bomb.close_code(), 1009);
        for over in [
            ProtocolError::MessageTooLarge { max: 10 },
            ProtocolError::TooManyFragments { max: 10 },
        ] {
            assert_eq!(over.close_code(), 1009, "{over:?}");
        }
        assert_eq!(
            too_large.to_string(),
            "frame payload of 11 bytes exceeds the limit of 10 bytes"
        );
    }
}
