//! What a NIF call that copies frames or bodies costs the scheduler that
//! runs it: whether it fits a normal scheduler's call, how much of it may
//! be walked there, and what share of a timeslice the caller is charged.
//! Pure arithmetic, apart from the BEAM: the NIF layer applies it.

use std::cell::Cell;

/// What one call may walk before its work goes to a dirty scheduler:
/// frames, and cells of the payloads' iolists (binaries cost nothing to
/// look at; a list must be walked to be sized, and flattened to be sent).
#[derive(Clone, Copy)]
pub struct WalkLimits {
    pub frames: usize,
    pub iolist_cells: usize,
}

impl WalkLimits {
    pub const NONE: WalkLimits = WalkLimits {
        frames: usize::MAX,
        iolist_cells: usize::MAX,
    };
}

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

/// `nanos` in percents of a timeslice, the fraction rounded up with its
/// own probability (`dice` is uniform): most calls of a sending loop take
/// less than a percent, and rounding each one down would charge the loop
/// nothing, rounding each one up many times its cost.
pub fn percent(nanos: u64, dice: u64) -> i32 {
    let whole = nanos / NANOS_PER_PERCENT;
    let round_up = dice % NANOS_PER_PERCENT < nanos % NANOS_PER_PERCENT;
    (whole + u64::from(round_up)).min(100) as i32
}

thread_local! {
    static DICE: Cell<u64> = Cell::new(rand::random());
}

/// A uniform u64 (splitmix64): a few instructions, where the thread's
/// `rand` generator costs more than the rest of a small call's charging.
pub fn roll() -> u64 {
    DICE.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_grows_with_frames_and_bytes() {
        assert_eq!(cost_nanos(0, 0), 0);
        assert_eq!(cost_nanos(1, 0), NANOS_PER_FRAME);
        assert_eq!(cost_nanos(0, 1000), 1000 / BYTES_PER_NANO);
        assert_eq!(cost_nanos(4, 1000), 4 * NANOS_PER_FRAME + 500);
    }

    #[test]
    fn a_normal_call_takes_up_to_half_a_timeslice() {
        let frames = (NORMAL_CALL_NANOS / NANOS_PER_FRAME) as usize;
        assert!(fits_normal_call(frames, 0));
        assert!(!fits_normal_call(frames + 1, 0));
        let bytes = (NORMAL_CALL_NANOS * BYTES_PER_NANO) as usize;
        assert!(fits_normal_call(0, bytes));
        assert!(!fits_normal_call(0, bytes + BYTES_PER_NANO as usize));
    }

    #[test]
    fn walking_to_the_limits_fits_a_normal_call() {
        assert!(fits_normal_call(NORMAL_CALL_WALK.frames, 0));
        assert!(!fits_normal_call(NORMAL_CALL_WALK.frames + 1, 0));
        assert_eq!(
            NORMAL_CALL_WALK.iolist_cells as u64 * NANOS_PER_IOLIST_CELL,
            IOLIST_WALK_NANOS
        );
    }

    #[test]
    fn no_limits_are_never_reached() {
        assert_eq!(WalkLimits::NONE.frames, usize::MAX);
        assert_eq!(WalkLimits::NONE.iolist_cells, usize::MAX);
    }

    #[test]
    fn whole_percents_are_charged_and_capped_at_a_timeslice() {
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(NANOS_PER_PERCENT, 0), 1);
        assert_eq!(percent(37 * NANOS_PER_PERCENT, u64::MAX), 37);
        assert_eq!(percent(1000 * NANOS_PER_PERCENT, 0), 100);
        assert_eq!(percent(u64::MAX, 0), 100);
    }

    #[test]
    fn a_fraction_is_rounded_up_with_its_own_probability() {
        // Over every dice value modulo a percent, a charge of 2.3 percents
        // is rounded up for three tenths of them: 2.3 on average.
        let nanos = 2 * NANOS_PER_PERCENT + 3 * NANOS_PER_PERCENT / 10;
        let total: u64 = (0..NANOS_PER_PERCENT)
            .map(|dice| percent(nanos, dice) as u64)
            .sum();
        assert_eq!(total, nanos);
        assert_eq!(percent(nanos, 0), 3);
        assert_eq!(percent(nanos, NANOS_PER_PERCENT - 1), 2);
    }

    #[test]
    fn rolls_differ_and_spread_over_the_range() {
        let rolls: Vec<u64> = (0..64).map(|_| roll()).collect();
        let mut distinct = rolls.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), rolls.len());
        assert!(rolls.iter().any(|r| r >> 63 == 1));
        assert!(rolls.iter().any(|r| r >> 63 == 0));
    }
}
