//! Charging the caller of a NIF call that copies frames or bodies for
//! the time it took, by [`crate::call_cost`]'s model.
//!
//! A NIF call counts as one reduction however long it runs: a process
//! that calls `gun:ws_send/2` with lists of frames in a loop would hold
//! its scheduler for tens of milliseconds before being preempted.

use std::time::Instant;

use rustler::Env;

use crate::call_cost::{percent, roll};

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
