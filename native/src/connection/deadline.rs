//! An optional deadline as a select arm.

use std::future::pending;

use tokio::time::{sleep_until, Instant};

/// Completes at `deadline`, never without one. The timer is boxed and only
/// made once the future is polled, so a session that has no deadline, or
/// only disables the arm, holds no timer in its future.
pub(super) async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => Box::pin(sleep_until(deadline)).await,
        None => pending().await,
    }
}
