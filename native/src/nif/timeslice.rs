//! What a NIF call that copies frames or bodies costs the scheduler that
//! runs it: whether it fits a normal scheduler's call, and what the
//! caller is charged for it.
//!
//! A NIF call counts as one reduction however long it runs: a process
//! that calls `gun:ws_send/2` with lists of frames in a loop would hold
//! its scheduler for tens of milliseconds before being preempted.

use std::cell::Cell;
use std::time::Instant;

use rustler::Env;

use super::decode::WalkLimits;

/// Measured on the benchmark machine (`gun:ws_send/2` calls timed in a
/// loop): ~0.15-0.25 us per frame and ~0.5 ns per payload byte. Only to
/// decide, before the work, where it is done.
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
    iolist_cells: (IOLIST_WALK_NANOS / NANOS_PER_IOLIST_CELL) as usize,
};
const NANOS_PER_IOLIST_CELL: u64 = 25;
/// What walking iolist cells up to their limit costs.
pub const IOLIST_WALK_NANOS: u64 = NORMAL_CALL_NANOS / 2;

/// Whether copying this much fits in a normal scheduler's call.
pub fn fits_normal_call(frames: usize, bytes: usize) -> bool {
    cost_nanos(frames, bytes) <= NORMAL_CALL_NANOS
}

/// The cost model's estimate for copying `frames` frames of `bytes` bytes.
pub fn cost_nanos(frames: usize, bytes: usize) -> u64 {
    frames as u64 * NANOS_PER_FRAME + bytes as u64 / BYTES_PER_NANO
}

/// What a charged call's time is counted as: a timeslice is taken as
/// half a millisecond, so that a process whose time goes into these calls
/// is preempted well within the millisecond a scheduler may be held.
const NANOS_PER_PERCENT: u64 = 5_000;

/// What the caller of a normal scheduler's call is charged for: the time
/// the call took, or for a call too small to be worth two clock reads
/// (~70 ns, a third of a one-frame `ws_send`), the cost model's estimate.
/// Timed calls are charged what they cost on this machine under its load,
/// which the model, measured elsewhere, can underestimate several times.
pub enum Meter {
    Timed(Instant),
    Estimated,
}

impl Meter {
    pub fn timed() -> Self {
        Meter::Timed(Instant::now())
    }

    /// Charges the calling process for the call: its time, or for an
    /// estimated call `estimate` (nanoseconds, from the cost model).
    pub fn charge(self, env: Env, estimate: u64) {
        let nanos = match self {
            Meter::Timed(started) => {
                u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
            }
            Meter::Estimated => estimate,
        };
        let percent = percent(nanos, roll());
        if percent > 0 {
            // Whether the slice is used up does not matter: the call is done
            // and the scheduler preempts the process on its own.
            let _ = rustler::schedule::consume_timeslice(env, percent);
        }
    }
}

/// `nanos` in percents of a timeslice, the fraction rounded up with its
/// own probability (`dice` is uniform): most calls of a sending loop take
/// less than a percent, and rounding each one down would charge the loop
/// nothing, rounding each one up many times its cost.
fn percent(nanos: u64, dice: u64) -> i32 {
    let whole = nanos / NANOS_PER_PERCENT;
    let round_up = dice % NANOS_PER_PERCENT < nanos % NANOS_PER_PERCENT;
    (whole + u64::from(round_up)).min(100) as i32
}

thread_local! {
    static DICE: Cell<u64> = Cell::new(rand::random());
}

/// A uniform u64 (splitmix64): a few instructions, where the thread's
/// `rand` generator costs more than the rest of a small call's charging.
fn roll() -> u64 {
    DICE.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}
