//! The bodies of the fuzz targets, as plain functions: libFuzzer calls them
//! from `fuzz_targets/`, and the stable smoke runner (`src/bin/smoke.rs`)
//! calls the same ones, so a short run needs neither nightly nor cargo-fuzz.
//!
//! Every target is differential rather than "does not panic": a stream fed
//! whole and the same stream cut into pieces must read the same, and the
//! frame decoder must agree with an independent model of RFC 6455.

pub mod model;
pub mod rng;

mod targets;

pub use targets::{frame_decoder, handshake_response, message_reassembler};

/// A target's body: panics on a failed check.
pub type Target = fn(&[u8]);

/// The targets by name, for the smoke runner and the scripts.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame_decoder", frame_decoder),
    ("message_reassembler", message_reassembler),
    ("handshake_response", handshake_response),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed corpus passes, and the model reads the seeds as
    /// their names say (a model that reads nothing would agree with a
    /// reader that reads nothing).
    #[test]
    fn corpus_passes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for (name, target) in TARGETS {
            let entries = std::fs::read_dir(root.join(name)).expect("corpus dir");
            for entry in entries {
                let path = entry.expect("entry").path();
                target(&std::fs::read(&path).expect("readable"));
            }
        }
    }

    #[test]
    fn model_reads_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/frame_decoder");
        let read = |seed: &str| {
            let data = std::fs::read(root.join(seed)).expect("seed");
            model::read(&data[2..], Default::default())
        };
        let controls = read("seed-controls");
        assert_eq!((controls.messages.len(), controls.end), (4, Ok(())));
        let text = read("seed-fragmented-text-utf8-cut");
        assert_eq!(text.messages.len(), 3);
        assert_eq!(text.fragments, [4]);
        assert!(read("seed-masked").end.is_err());
    }
}
