//! An optional deadline as a select arm.

use std::future::pending;

use tokio::time::{sleep_until, Instant};

/// The earlier of two optional deadlines: several share one select arm,
/// as each arm's state is part of every connection's task.
pub(super) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Whether `deadline` is set and past.
pub(super) fn is_due(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|deadline| deadline <= Instant::now())
}

/// Completes at `deadline`, never without one. The timer is boxed and only
/// made once the future is polled, so a session that has no deadline, or
/// only disables the arm, holds no timer in its future.
pub(super) async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => Box::pin(sleep_until(deadline)).await,
        None => pending().await,
    }
}
