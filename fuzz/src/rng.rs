//! A tiny seedable generator: the harnesses draw split points from it, and
//! the smoke runner its mutations, so any run can be replayed from a seed.

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // A zero state would make xorshift stick at zero.
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// SplitMix64: good enough spread from any seed, including small ones.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// A seed taken from the bytes themselves, for inputs that carry none.
pub fn hash(data: &[u8]) -> u64 {
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Sizes of the pieces `len` bytes are cut into, all non-zero, summing to
/// `len`. The seed picks the style as well as the points, since the bugs
/// of a one-byte-at-a-time reader differ from those of two halves.
pub fn split_sizes(len: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut sizes = Vec::new();
    let mut left = len;
    match seed % 4 {
        0 => {
            let at = rng.below(len + 1);
            sizes.extend([at, len - at]);
        }
        1 => {
            while left > 0 {
                let n = (1 + rng.below(8)).min(left);
                sizes.push(n);
                left -= n;
            }
        }
        2 => {
            while left > 0 {
                let n = (1 + rng.below(left)).min(left);
                sizes.push(n);
                left -= n;
            }
        }
        _ => {
            // Header-sized pieces around the 2/4/10/14-byte header forms.
            while left > 0 {
                let n = [1, 2, 3, 4, 9, 10, 13, 14, 125, 126][rng.below(10)].min(left);
                sizes.push(n);
                left -= n;
            }
        }
    }
    sizes.retain(|&n| n > 0);
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_cover_the_input() {
        for len in [0, 1, 2, 7, 100, 5000] {
            for seed in 0..64 {
                let sizes = split_sizes(len, seed);
                assert_eq!(sizes.iter().sum::<usize>(), len);
                assert!(sizes.iter().all(|&n| n > 0));
            }
        }
    }
}
