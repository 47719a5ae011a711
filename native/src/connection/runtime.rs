//! The one tokio runtime shared by every connection.

use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Overrides the number of the runtime's threads, read once when the
/// runtime starts (the NIF's load).
pub const WORKER_THREADS_VAR: &str = "GUN_NIF_WORKER_THREADS";
/// More threads than this is a typo, not a configuration.
const MAX_WORKER_THREADS: usize = 256;

/// The BEAM already runs one scheduler per core: by default the runtime
/// takes half the cores so the two do not fight over all of them.
fn default_worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

/// The value of [`WORKER_THREADS_VAR`], if set: a count from 1 to
/// [`MAX_WORKER_THREADS`], or why it is refused.
fn parse_worker_threads(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_WORKER_THREADS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{WORKER_THREADS_VAR}={value:?} is not a thread count from 1 to {MAX_WORKER_THREADS}"
        )),
    }
}

/// The runtime's thread count. A value that cannot be used is refused
/// with a warning on the VM's standard error (the runtime starts while
/// the NIF loads, before anything could return an error), and the
/// default is used: a library that failed to load would serve no one.
fn worker_threads() -> usize {
    let default = default_worker_threads();
    match std::env::var(WORKER_THREADS_VAR) {
        Err(std::env::VarError::NotPresent) => default,
        Err(std::env::VarError::NotUnicode(raw)) => {
            eprintln!("gun_nif: {WORKER_THREADS_VAR}={raw:?} refused; using {default} threads");
            default
        }
        Ok(value) => parse_worker_threads(&value).unwrap_or_else(|why| {
            eprintln!("gun_nif: {why}: refused; using {default} threads");
            default
        }),
    }
}

pub fn handle() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .thread_name("gun-nif")
            .enable_all()
            .build()
            // Without its runtime the library cannot do anything at all;
            // this only fails when the OS refuses to create threads.
            .expect("gun_nif: cannot start the tokio runtime")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_in_range_is_taken() {
        assert_eq!(parse_worker_threads("1"), Ok(1));
        assert_eq!(parse_worker_threads(" 2\n"), Ok(2));
        assert_eq!(
            parse_worker_threads(&MAX_WORKER_THREADS.to_string()),
            Ok(MAX_WORKER_THREADS)
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in ["", "0", "-1", "two", "1.5", "257", "99999999999999999999"] {
            assert!(parse_worker_threads(bad).is_err(), "{bad:?} accepted");
        }
    }
}
