//! RFC 6455 §5.3 payload masking.

/// XORs `buf` in place with `key` repeated, its first byte with `key[0]`
/// (RFC 6455 §5.3); masking twice with the same key restores `buf`. Eight
/// bytes are masked per step, so the cost is about a load and a store
/// per word.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    // Native byte order on both sides keeps the key bytes lined up with the
    // buffer bytes whatever the endianness, since XOR is bytewise.
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // The tail starts at a multiple of 8, hence at key offset 0.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(buf: &mut [u8], key: [u8; 4]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }

    #[test]
    fn rfc6455_example() {
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn empty_buffer() {
        let mut data: [u8; 0] = [];
        apply_mask(&mut data, [1, 2, 3, 4]);
    }

    proptest! {
        #[test]
        fn twice_is_identity(data in proptest::collection::vec(any::<u8>(), 0..300), key in any::<[u8; 4]>()) {
            let mut buf = data.clone();
            apply_mask(&mut buf, key);
            apply_mask(&mut buf, key);
            prop_assert_eq!(buf, data);
        }

        #[test]
        fn word_path_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..64), key in any::<[u8; 4]>()) {
            let mut fast = data.clone();
            let mut slow = data;
            apply_mask(&mut fast, key);
            naive(&mut slow, key);
            prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn every_length_below_64_matches_naive() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        for len in 0..64u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            let mut fast = data.clone();
            let mut slow = data;
            apply_mask(&mut fast, key);
            naive(&mut slow, key);
            assert_eq!(fast, slow, "len {len}");
        }
    }
}
