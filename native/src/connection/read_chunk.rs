//! How many bytes the next socket read asks room for.
//!
//! A read buffer reserved at its largest for every connection costs each
//! idle one the pages the allocator touched for it, long after it was
//! freed (2,000 idle connections held ~8 MB of freed 16 KiB HTTP buffers
//! in the engine's heap). Sized to what the server sends, an idle
//! connection keeps a small buffer and a busy one reaches the largest in
//! a few reads.

/// The room the next read asks for, between a floor and a ceiling.
#[derive(Debug, Clone, Copy)]
pub struct ReadChunk {
    size: usize,
    floor: usize,
    ceiling: usize,
}

impl ReadChunk {
    /// Starts at `floor`.
    pub fn new(floor: usize, ceiling: usize) -> Self {
        ReadChunk {
            size: floor,
            floor,
            ceiling: ceiling.max(floor),
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Readies `buf` for the next read: room for a chunk, and an emptied
    /// buffer that grew past twice the chunk given back first (a body's
    /// or a burst's room is not kept for an idle connection).
    pub fn prepare(&self, buf: &mut Vec<u8>) {
        if buf.is_empty() && buf.capacity() > 2 * self.size {
            *buf = Vec::new();
        }
        buf.reserve(self.size);
    }

    /// After a read of `read` bytes: doubles after one that filled the
    /// chunk, halves after one that used less than a quarter of it.
    pub fn after_read(&mut self, read: usize) {
        self.size = if read >= self.size {
            (self.size * 2).min(self.ceiling)
        } else if read < self.size / 4 {
            (self.size / 2).max(self.floor)
        } else {
            self.size
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOR: usize = 512;
    const CEILING: usize = 64 * 1024;

    fn at(size: usize) -> ReadChunk {
        ReadChunk {
            size,
            ..ReadChunk::new(FLOOR, CEILING)
        }
    }

    #[test]
    fn a_full_read_doubles_the_chunk_up_to_its_ceiling() {
        let mut chunk = at(FLOOR);
        chunk.after_read(FLOOR);
        assert_eq!(chunk.size(), 2 * FLOOR);
        let mut chunk = at(CEILING / 2);
        chunk.after_read(CEILING / 2);
        assert_eq!(chunk.size(), CEILING);
        chunk.after_read(CEILING);
        assert_eq!(chunk.size(), CEILING);
    }

    #[test]
    fn a_small_read_halves_the_chunk_down_to_its_floor() {
        let mut chunk = at(4096);
        chunk.after_read(1023);
        assert_eq!(chunk.size(), 2048);
        let mut chunk = at(FLOOR);
        chunk.after_read(1);
        assert_eq!(chunk.size(), FLOOR);
    }

    #[test]
    fn a_read_between_a_quarter_and_full_keeps_the_chunk() {
        let mut chunk = at(4096);
        chunk.after_read(1024);
        assert_eq!(chunk.size(), 4096);
        chunk.after_read(4095);
        assert_eq!(chunk.size(), 4096);
    }

    #[test]
    fn prepare_gives_back_an_emptied_buffer_grown_past_twice_the_chunk() {
        let chunk = ReadChunk::new(FLOOR, CEILING);
        let mut buf = Vec::with_capacity(4 * FLOOR);
        chunk.prepare(&mut buf);
        assert!(buf.capacity() >= FLOOR && buf.capacity() < 4 * FLOOR);
        let mut kept = Vec::with_capacity(4 * FLOOR);
        kept.push(1u8);
        chunk.prepare(&mut kept);
        assert!(kept.capacity() >= 4 * FLOOR);
        assert!(kept.capacity() - kept.len() >= FLOOR);
    }

    #[test]
    fn a_burst_reaches_the_ceiling_and_quiet_returns_to_the_floor() {
        let mut chunk = ReadChunk::new(FLOOR, CEILING);
        for _ in 0..16 {
            chunk.after_read(chunk.size());
        }
        assert_eq!(chunk.size(), CEILING);
        for _ in 0..16 {
            chunk.after_read(0);
        }
        assert_eq!(chunk.size(), FLOOR);
    }
}
