//! permessage-deflate (RFC 7692), sans-IO like the rest of the core:
//! [`negotiation`] turns our offer and the server's answer into
//! [`DeflateParams`]; [`codec`] compresses and decompresses messages
//! under them.

pub mod codec;
pub mod negotiation;

pub use codec::{Deflater, Inflater};
pub use negotiation::{
    negotiate, DeflateConfig, DeflateParamError, DeflateParams, EXTENSION, MAX_WINDOW_BITS,
    MIN_WINDOW_BITS,
};
