//! The process-wide cache of large payload buffers: a buffer given back
//! once its message is done with is kept for the next large message (of
//! any connection). Its interface is three calls: [`take`], [`give_back`]
//! and [`free_idle`]; buffers under [`POOLED_FROM`] bytes pass through to
//! the allocator.
//!
//! Why: inside the BEAM, the C allocator serves every allocation from
//! 128 KiB up with a fresh `mmap` (ERTS sets its own trim threshold, which
//! turns off glibc's adaptive one), so each large message paid for a new
//! mapping, a page fault per 4 KiB while it was filled, and an `munmap`
//! with its TLB shootdown: most of the time of a 1 MiB message. The pool
//! is bounded in bytes, and what sits unused in it for a while is freed
//! (at the pool's next use, or at any connection's keepalive tick).

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Buffers smaller than this come from the allocator and go back to it.
pub const POOLED_FROM: usize = 64 * 1024;
/// The most the pool holds, all buffers together.
const POOL_BYTES: usize = 16 << 20;
/// A buffer unused for this long is freed at the pool's next use.
const IDLE_FOR: Duration = Duration::from_secs(10);

static POOL: Mutex<Pool> = Mutex::new(Pool::new(POOL_BYTES, IDLE_FOR));

fn pool() -> MutexGuard<'static, Pool> {
    // The pool holds buffers only; a panic under its lock leaves it usable.
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An empty buffer with room for at least `capacity` bytes.
pub fn take(capacity: usize) -> Vec<u8> {
    if capacity < POOLED_FROM {
        return Vec::with_capacity(capacity);
    }
    let (found, expired) = pool().take(capacity, Instant::now());
    drop(expired);
    found.unwrap_or_else(|| Vec::with_capacity(capacity))
}

/// A buffer whose bytes are no longer needed.
pub fn give_back(buffer: Vec<u8>) {
    if buffer.capacity() < POOLED_FROM {
        return;
    }
    // Freed outside the lock: an `munmap` can take a while.
    let freed = pool().give_back(buffer, Instant::now());
    drop(freed);
}

/// Frees what has been idle too long now rather than at the pool's next
/// use, which may never come: for the quiet moments of any connection.
pub fn free_idle() {
    let expired = pool().expire(Instant::now());
    drop(expired);
}

struct Pool {
    /// With the time each was given back, oldest first.
    buffers: Vec<(Vec<u8>, Instant)>,
    bytes: usize,
    max_bytes: usize,
    idle_for: Duration,
}

impl Pool {
    const fn new(max_bytes: usize, idle_for: Duration) -> Self {
        Pool {
            buffers: Vec::new(),
            bytes: 0,
            max_bytes,
            idle_for,
        }
    }

    /// The smallest buffer of `capacity` to twice that, so that a small
    /// message does not hold on to a much larger buffer; and the buffers
    /// that have been idle too long, for the caller to free.
    fn take(&mut self, capacity: usize, now: Instant) -> (Option<Vec<u8>>, Vec<Vec<u8>>) {
        let expired = self.expire(now);
        let best = self
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, (b, _))| b.capacity() >= capacity && b.capacity() / 2 <= capacity)
            .min_by_key(|(_, (b, _))| b.capacity())
            .map(|(i, _)| i);
        let found = best.map(|i| {
            let (buffer, _) = self.buffers.remove(i);
            self.bytes -= buffer.capacity();
            buffer
        });
        (found, expired)
    }

    /// Keeps `buffer`, making room by freeing the oldest; returns what the
    /// caller must free (`buffer` itself if it alone is over the bound).
    fn give_back(&mut self, mut buffer: Vec<u8>, now: Instant) -> Vec<Vec<u8>> {
        let mut freed = self.expire(now);
        let size = buffer.capacity();
        if size > self.max_bytes {
            freed.push(buffer);
            return freed;
        }
        while self.bytes + size > self.max_bytes {
            let (oldest, _) = self.buffers.remove(0);
            self.bytes -= oldest.capacity();
            freed.push(oldest);
        }
        buffer.clear();
        self.bytes += size;
        self.buffers.push((buffer, now));
        freed
    }

    fn expire(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let fresh_from = self
            .buffers
            .iter()
            .position(|(_, since)| now.duration_since(*since) < self.idle_for)
            .unwrap_or(self.buffers.len());
        let expired: Vec<Vec<u8>> = self.buffers.drain(..fresh_from).map(|(b, _)| b).collect();
        self.bytes -= expired.iter().map(Vec::capacity).sum::<usize>();
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    fn buffer(capacity: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(capacity);
        b.extend_from_slice(b"old bytes");
        b
    }

    #[test]
    fn a_buffer_given_back_is_taken_again_empty() {
        let mut pool = Pool::new(16 * MIB, IDLE_FOR);
        let now = Instant::now();
        let given = buffer(MIB);
        let address = given.as_ptr();
        assert!(pool.give_back(given, now).is_empty());
        let (taken, _) = pool.take(MIB, now);
        let taken = taken.expect("the buffer given back");
        assert_eq!(taken.as_ptr(), address);
        assert!(taken.is_empty());
        assert_eq!(pool.bytes, 0);
    }

    #[test]
    fn the_smallest_fit_within_twice_the_request() {
        let mut pool = Pool::new(16 * MIB, IDLE_FOR);
        let now = Instant::now();
        for capacity in [4 * MIB, MIB, 2 * MIB] {
            pool.give_back(buffer(capacity), now);
        }
        let (taken, _) = pool.take(MIB + 1, now);
        assert_eq!(taken.map(|b| b.capacity()), Some(2 * MIB));
        // 4 MiB is more than twice 1 MiB: not given for it.
        let (taken, _) = pool.take(MIB, now);
        assert_eq!(taken.map(|b| b.capacity()), Some(MIB));
        assert!(pool.take(MIB, now).0.is_none());
        assert_eq!(pool.bytes, 4 * MIB);
    }

    #[test]
    fn the_bound_frees_the_oldest_first() {
        let mut pool = Pool::new(3 * MIB, IDLE_FOR);
        let now = Instant::now();
        let first = buffer(MIB);
        let first_address = first.as_ptr();
        pool.give_back(first, now);
        pool.give_back(buffer(MIB), now);
        pool.give_back(buffer(MIB), now);
        let freed = pool.give_back(buffer(MIB), now);
        assert_eq!(freed.len(), 1);
        assert_eq!(freed[0].as_ptr(), first_address);
        assert_eq!(pool.bytes, 3 * MIB);
        // Larger than the whole bound: not kept at all.
        let freed = pool.give_back(buffer(4 * MIB), now);
        assert_eq!(freed.len(), 1);
        assert_eq!(pool.bytes, 3 * MIB);
    }

    #[test]
    fn idle_buffers_are_freed_at_the_next_use() {
        let mut pool = Pool::new(16 * MIB, IDLE_FOR);
        let then = Instant::now();
        pool.give_back(buffer(MIB), then);
        pool.give_back(buffer(2 * MIB), then + IDLE_FOR / 2);
        let (taken, expired) = pool.take(8 * MIB, then + IDLE_FOR);
        assert!(taken.is_none());
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].capacity(), MIB);
        assert_eq!(pool.bytes, 2 * MIB);
    }

    #[test]
    fn small_buffers_bypass_the_pool() {
        let small = take(POOLED_FROM - 1);
        assert!(small.capacity() >= POOLED_FROM - 1);
        give_back(small);
        assert_eq!(
            pool()
                .buffers
                .iter()
                .filter(|(b, _)| b.capacity() < POOLED_FROM)
                .count(),
            0
        );
    }
}
