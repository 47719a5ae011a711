//! What a NIF call that copies frames or bodies costs the scheduler that
//! runs it, so that the call stays short and the caller is charged for it.
//!
//! A NIF call counts as one reduction however long it runs: a process
//! that calls `gun:ws_send/2` with lists of frames in a loop would hold
//! its scheduler for tens of milliseconds before being preempted.

use rustler::Env;

use super::decode::WalkLimits;

/// Measured on the benchmark machine (`gun:ws_send/2` calls timed in a
/// loop): ~0.15-0.25 us per frame and ~0.5 ns per payload byte.
const NANOS_PER_FRAME: u64 = 250;
const BYTES_PER_NANO: u64 = 2;

/// A normal scheduler's timeslice, and the part of it one call may take
/// before the work goes to a dirty scheduler instead.
const TIMESLICE_NANOS: u64 = 1_000_000;
const NORMAL_CALL_NANOS: u64 = TIMESLICE_NANOS / 2;

/// What a normal scheduler's call may walk (more goes to a dirty one),
/// checked while decoding so that a huge list is not walked at all:
/// frames, and cells of iolist payloads (each to walk, size and
/// flatten: measured ~25 ns; binaries are sized for free).
pub const NORMAL_CALL_WALK: WalkLimits = WalkLimits {
    frames: (NORMAL_CALL_NANOS / NANOS_PER_FRAME) as usize,
    iolist_cells: (NORMAL_CALL_NANOS / 2 / NANOS_PER_IOLIST_CELL) as usize,
};
const NANOS_PER_IOLIST_CELL: u64 = 25;

/// Whether copying this much fits in a normal scheduler's call.
pub fn fits_normal_call(frames: usize, bytes: usize) -> bool {
    cost_nanos(frames, bytes) <= NORMAL_CALL_NANOS
}

fn cost_nanos(frames: usize, bytes: usize) -> u64 {
    frames as u64 * NANOS_PER_FRAME + bytes as u64 / BYTES_PER_NANO
}

/// Percent of a timeslice, rounded to the nearest; calls under half a
/// percent are charged nothing (their one reduction covers them).
fn percent(frames: usize, bytes: usize) -> i32 {
    let hundredth = TIMESLICE_NANOS / 100;
    let rounded = (cost_nanos(frames, bytes) + hundredth / 2) / hundredth;
    rounded.min(100) as i32
}

/// Charges the calling process for copying `frames` frames of `bytes`
/// payload bytes on a normal scheduler.
pub fn charge(env: Env, frames: usize, bytes: usize) {
    let percent = percent(frames, bytes);
    if percent > 0 {
        // Whether the slice is used up does not matter: the call is done
        // and the scheduler preempts the process on its own.
        let _ = rustler::schedule::consume_timeslice(env, percent);
    }
}
