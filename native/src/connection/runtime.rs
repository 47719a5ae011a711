//! The one tokio runtime shared by every connection.

use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The BEAM already runs one scheduler per core: the runtime takes half the
/// cores so the two do not fight over all of them.
fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
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
