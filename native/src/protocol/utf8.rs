//! Incremental UTF-8 validation for text messages that arrive in fragments.

use crate::protocol::ProtocolError;

/// Incremental UTF-8 validator for a text message split across fragments.
/// It fails as soon as the bytes seen so far can be the start of no valid
/// text (so a bad message fails at its first bad byte, not at its end),
/// accepts the same texts as `std::str::from_utf8` however they are split,
/// and holds at most the 3 bytes of a code point cut by a boundary.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// Leading bytes of a code point cut by a chunk boundary.
    partial: [u8; 3],
    partial_len: u8,
}

impl Utf8Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        let rest = self.complete_partial(chunk)?;
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            // `error_len() == None` means the input ended inside a sequence
            // that is still a valid prefix; std already rejects prefixes that
            // no continuation could fix (e.g. ED A0), which is what makes
            // this fail fast.
            Err(e) if e.error_len().is_none() => {
                self.store(rest.get(e.valid_up_to()..).unwrap_or_default())
            }
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let incomplete = self.partial_len != 0;
        self.partial_len = 0;
        if incomplete {
            Err(ProtocolError::InvalidUtf8)
        } else {
            Ok(())
        }
    }

    /// Extends the pending partial code point with the head of `chunk` and
    /// returns the part of `chunk` left to validate.
    fn complete_partial<'c>(&mut self, chunk: &'c [u8]) -> Result<&'c [u8], ProtocolError> {
        let have = usize::from(self.partial_len);
        if have == 0 {
            return Ok(chunk);
        }
        let need = sequence_len(self.partial[0]);
        if need <= have {
            return Err(ProtocolError::InvalidUtf8);
        }
        let take = (need - have).min(chunk.len());
        let mut seq = [0u8; 4];
        seq[..have].copy_from_slice(&self.partial[..have]);
        seq[have..have + take].copy_from_slice(&chunk[..take]);
        let seq = &seq[..have + take];
        match std::str::from_utf8(seq) {
            Ok(_) => {
                self.partial_len = 0;
                Ok(&chunk[take..])
            }
            // Still short of a whole code point: `chunk` was fully consumed.
            Err(e) if e.error_len().is_none() && seq.len() < need => {
                self.store(seq)?;
                Ok(&chunk[take..])
            }
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    fn store(&mut self, tail: &[u8]) -> Result<(), ProtocolError> {
        let Some(slot) = self.partial.get_mut(..tail.len()) else {
            return Err(ProtocolError::InvalidUtf8);
        };
        slot.copy_from_slice(tail);
        // At most 3, checked by the `get_mut` above.
        self.partial_len = tail.len() as u8;
        Ok(())
    }
}

/// Length of the sequence a lead byte announces; only ever called on lead
/// bytes std accepted as the start of an incomplete sequence.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn validate_chunks(chunks: &[&[u8]]) -> Result<(), ProtocolError> {
        let mut v = Utf8Validator::new();
        for chunk in chunks {
            v.feed(chunk)?;
        }
        v.finish()
    }

    const SAMPLES: &[&str] = &[
        "",
        "hello",
        "κόσμε",
        "€ and 𝄞 and ü",
        "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}",
        "日本語のテキスト",
    ];

    #[test]
    fn valid_split_in_two_at_every_boundary() {
        for s in SAMPLES {
            let b = s.as_bytes();
            for i in 0..=b.len() {
                assert_eq!(validate_chunks(&[&b[..i], &b[i..]]), Ok(()), "{s:?} at {i}");
            }
        }
    }

    #[test]
    fn valid_split_in_three_at_every_boundary() {
        for s in SAMPLES {
            let b = s.as_bytes();
            for i in 0..=b.len() {
                for j in i..=b.len() {
                    assert_eq!(
                        validate_chunks(&[&b[..i], &b[i..j], &b[j..]]),
                        Ok(()),
                        "{s:?} at {i},{j}"
                    );
                }
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        for s in SAMPLES {
            let mut v = Utf8Validator::new();
            for b in s.as_bytes() {
                assert_eq!(v.feed(std::slice::from_ref(b)), Ok(()));
            }
            assert_eq!(v.finish(), Ok(()));
        }
    }

    #[test]
    fn surrogate_fails_fast() {
        let bytes =
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";
        let surrogate_second_byte = 12;
        // Fed whole: fails in feed, not in finish.
        assert_eq!(
            Utf8Validator::new().feed(bytes),
            Err(ProtocolError::InvalidUtf8)
        );
        // Fed byte by byte: fails exactly at the byte that rules out a valid sequence.
        let mut v = Utf8Validator::new();
        for (i, b) in bytes.iter().enumerate() {
            let r = v.feed(std::slice::from_ref(b));
            if i < surrogate_second_byte {
                assert_eq!(r, Ok(()), "byte {i}");
            } else {
                assert_eq!(r, Err(ProtocolError::InvalidUtf8), "byte {i}");
                return;
            }
        }
        panic!("surrogate not detected");
    }

    #[test]
    fn invalid_bytes_fail_in_feed() {
        let cases: &[&[u8]] = &[
            b"\xff",
            b"\xc0\x80",
            b"\xe0\x80",
            b"\xf4\x90",
            b"\xf5",
            b"\x80",
            b"a\xc3(",
        ];
        for case in cases {
            assert_eq!(
                Utf8Validator::new().feed(case),
                Err(ProtocolError::InvalidUtf8),
                "{case:?}"
            );
        }
    }

    #[test]
    fn truncated_sequence_fails_at_finish() {
        for case in [&b"\xc3"[..], b"\xe2\x82", b"\xf0\x9d\x84", b"abc\xe2"] {
            let mut v = Utf8Validator::new();
            assert_eq!(v.feed(case), Ok(()), "{case:?}");
            assert_eq!(v.finish(), Err(ProtocolError::InvalidUtf8), "{case:?}");
            // finish() resets, so the validator is reusable.
            assert_eq!(v.feed(b"ok"), Ok(()));
            assert_eq!(v.finish(), Ok(()));
        }
    }

    #[test]
    fn partial_then_invalid_continuation() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2"), Ok(()));
        assert_eq!(v.feed(b"\x82"), Ok(()));
        assert_eq!(v.feed(b"A"), Err(ProtocolError::InvalidUtf8));
    }

    fn split_points(len: usize, cuts: &[prop::sample::Index]) -> Vec<usize> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
        points.sort_unstable();
        points
    }

    proptest! {
        #[test]
        fn matches_std(data in proptest::collection::vec(any::<u8>(), 0..64),
                       cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5)) {
            let points = split_points(data.len(), &cuts);
            let mut chunks = Vec::new();
            let mut start = 0;
            for p in points {
                chunks.push(&data[start..p]);
                start = p;
            }
            chunks.push(&data[start..]);
            prop_assert_eq!(validate_chunks(&chunks).is_ok(), std::str::from_utf8(&data).is_ok());
        }

        #[test]
        fn matches_std_on_mostly_valid_text(s in "\\PC{0,20}", junk in any::<u8>(), at in any::<prop::sample::Index>(),
                                            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5)) {
            let mut data = s.into_bytes();
            let pos = at.index(data.len() + 1);
            data.insert(pos, junk);
            let points = split_points(data.len(), &cuts);
            let mut chunks = Vec::new();
            let mut start = 0;
            for p in points {
                chunks.push(&data[start..p]);
                start = p;
            }
            chunks.push(&data[start..]);
            prop_assert_eq!(validate_chunks(&chunks).is_ok(), std::str::from_utf8(&data).is_ok());
        }

        /// Fail fast: after any prefix, feed has failed exactly when std
        /// reports a definite (not end-of-input) error on that prefix.
        #[test]
        fn fails_as_early_as_std(data in proptest::collection::vec(any::<u8>(), 0..48),
                                 sizes in proptest::collection::vec(1usize..5, 1..10)) {
            let mut v = Utf8Validator::new();
            let mut fed = 0;
            let mut sizes = sizes.iter().cycle();
            while fed < data.len() {
                let n = sizes.next().copied().unwrap_or(1).min(data.len() - fed);
                let result = v.feed(&data[fed..fed + n]);
                fed += n;
                let definite = matches!(std::str::from_utf8(&data[..fed]), Err(e) if e.error_len().is_some());
                prop_assert_eq!(result.is_err(), definite, "after {} bytes", fed);
                if definite {
                    break;
                }
            }
        }
    }
}
