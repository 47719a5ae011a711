//! Floors under push_small: how fast `{gun_ws, Conn, {text, Payload}}`
//! tuples can reach an Erlang process, with nothing else to do.
//!
//! * From a thread ERTS does not manage (`send_from_thread`): build and
//!   `enif_send` each tuple, the way the engine's tokio threads do (one env,
//!   cleared every 1,024 messages). What is left is what ERTS charges such
//!   a thread for each message.
//! * From a scheduler thread (`deliver_*`): a normal NIF call made by an
//!   Erlang process sends a batch of tuples and returns; the process calls
//!   again until everything is sent. Each call charges the time it took to
//!   the caller's timeslice (`enif_consume_timeslice`, 1 ms = 100%). Three
//!   ways to have the tuples ready, each prepared beforehand by `prepare_*`
//!   (not timed by the driver):
//!   - `built`: the payloads wait natively (a `Vec` of byte buffers in a
//!     resource) and the scheduler builds each tuple in the caller's env;
//!     `enif_send` copies it to the receiver;
//!   - `handover`: a native thread built each tuple in an env of its own;
//!     the scheduler hands that env to `enif_send` (no copy);
//!   - `copy`: a native thread built a batch of tuples in one env; the
//!     scheduler copies each into the caller's env (`enif_make_copy`) and
//!     sends it (a second copy);
//!   - `sent`: the same batches, each tuple sent straight from the batch's
//!     env (`enif_send` with no message env copies it once): what the
//!     engine's outbox does.

use std::sync::Mutex;
use std::time::Instant;

use rustler::sys::{enif_make_copy, enif_send, ErlNifTerm};
use rustler::types::tuple::make_tuple;
use rustler::{Encoder, Env, LocalPid, NewBinary, OwnedEnv, Resource, ResourceArc, Term};

mod atoms {
    rustler::atoms! { ok, gun_ws, text, more, done }
}

const CLEAR_EVERY: u64 = 1024;
/// A batch of 0 means: send until the timeslice is used up, checking
/// after every this many messages.
const SLICE_STEP: usize = 64;

fn gun_ws<'a>(env: Env<'a>, conn: &LocalPid, payload: &[u8]) -> Term<'a> {
    let mut binary = NewBinary::new(env, payload.len());
    binary.as_mut_slice().copy_from_slice(payload);
    let frame = (atoms::text(), rustler::Binary::from(binary)).encode(env);
    make_tuple(env, &[atoms::gun_ws().encode(env), conn.encode(env), frame])
}

#[rustler::nif]
fn send_from_thread(to: LocalPid, conn: LocalPid, n: u64, size: usize) -> rustler::Atom {
    std::thread::spawn(move || {
        let payload = vec![b'a'; size];
        let mut env = OwnedEnv::new();
        for sent in 1..=n {
            env.run(|env| {
                let message = gun_ws(env, &conn, &payload);
                let _ = env.send(&to, message);
            });
            if sent % CLEAR_EVERY == 0 {
                env.clear();
            }
        }
    });
    atoms::ok()
}

// ---------------------------------------------------------------- scheduler side

/// Charges the caller for the time since `t0`: 10 us = 1% of a timeslice.
/// True when the timeslice is used up.
fn charge(env: Env, t0: Instant) -> bool {
    let percent = (t0.elapsed().as_micros() / 10).clamp(1, 100) as i32;
    rustler::schedule::consume_timeslice(env, percent)
}

/// Sends up to `batch` messages (0: until the timeslice is used up) by
/// calling `send_one` for each, which says whether there was one to send.
/// Returns how many it sent and whether `send_one` ran dry.
fn deliver(env: Env, batch: usize, mut send_one: impl FnMut() -> bool) -> (usize, bool) {
    let t0 = Instant::now();
    let mut sent = 0usize;
    let mut exhausted = false;
    if batch > 0 {
        while sent < batch {
            if !send_one() {
                exhausted = true;
                break;
            }
            sent += 1;
        }
        charge(env, t0);
    } else {
        'slice: loop {
            for _ in 0..SLICE_STEP {
                if !send_one() {
                    exhausted = true;
                    break 'slice;
                }
                sent += 1;
            }
            if charge(env, t0) {
                break;
            }
        }
    }
    (sent, exhausted)
}

/// `{more | done, Sent}`, what every `deliver_*` returns.
fn status(env: Env, sent: usize, done: bool) -> Term {
    let status = if done { atoms::done() } else { atoms::more() };
    (status, sent).encode(env)
}

/// Payloads waiting natively, as a read would leave them.
pub struct Payloads {
    conn: LocalPid,
    queue: Mutex<std::vec::IntoIter<Vec<u8>>>,
}

#[rustler::resource_impl]
impl Resource for Payloads {}

#[rustler::nif(schedule = "DirtyCpu")]
fn prepare_built(conn: LocalPid, n: usize, size: usize) -> ResourceArc<Payloads> {
    let bufs: Vec<Vec<u8>> = (0..n).map(|_| vec![b'a'; size]).collect();
    ResourceArc::new(Payloads {
        conn,
        queue: Mutex::new(bufs.into_iter()),
    })
}

#[rustler::nif]
fn deliver_built<'a>(
    env: Env<'a>,
    to: LocalPid,
    res: ResourceArc<Payloads>,
    batch: usize,
) -> Term<'a> {
    let Ok(mut queue) = res.queue.lock() else {
        return status(env, 0, true);
    };
    let (sent, done) = deliver(env, batch, || match queue.next() {
        Some(payload) => {
            let _ = env.send(&to, gun_ws(env, &res.conn, &payload));
            true
        }
        None => false,
    });
    status(env, sent, done)
}

/// Tuples built on a native thread, one env each.
pub struct Handover {
    queue: Mutex<std::vec::IntoIter<(OwnedEnv, ErlNifTerm)>>,
}

#[rustler::resource_impl]
impl Resource for Handover {}

/// Runs `build` on a fresh native thread (where the engine's threads would
/// build) and returns what it built with the microseconds it took.
fn on_native_thread<T: Send + 'static>(build: impl FnOnce() -> T + Send + 'static) -> (T, u64) {
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let built = build();
        (built, t0.elapsed().as_micros() as u64)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn prepare_handover(conn: LocalPid, n: usize, size: usize) -> (ResourceArc<Handover>, u64) {
    let (envs, micros) = on_native_thread(move || {
        let payload = vec![b'a'; size];
        (0..n)
            .map(|_| {
                let env = OwnedEnv::new();
                let term = env.run(|e| gun_ws(e, &conn, &payload).as_c_arg());
                (env, term)
            })
            .collect::<Vec<_>>()
    });
    let queue = Mutex::new(envs.into_iter());
    (ResourceArc::new(Handover { queue }), micros)
}

#[rustler::nif]
fn deliver_handover<'a>(
    env: Env<'a>,
    to: LocalPid,
    res: ResourceArc<Handover>,
    batch: usize,
) -> Term<'a> {
    let Ok(mut queue) = res.queue.lock() else {
        return status(env, 0, true);
    };
    let (sent, done) = deliver(env, batch, || match queue.next() {
        Some((msg_env, term)) => {
            let msg_env_ptr = msg_env.run(|e| e.as_c_arg());
            // SAFETY: `term` lives in `msg_env`, a process-independent env
            // this thread owns; enif_send takes its contents over and
            // leaves it cleared, freed when `msg_env` drops.
            unsafe { enif_send(env.as_c_arg(), to.as_c_arg(), msg_env_ptr, term) };
            true
        }
        None => false,
    });
    status(env, sent, done)
}

/// Batches of tuples built on a native thread, one env per batch.
pub struct Copied {
    queue: Mutex<std::vec::IntoIter<(OwnedEnv, Vec<ErlNifTerm>)>>,
}

#[rustler::resource_impl]
impl Resource for Copied {}

#[rustler::nif(schedule = "DirtyCpu")]
fn prepare_copy(conn: LocalPid, n: usize, size: usize, batch: usize) -> (ResourceArc<Copied>, u64) {
    let batch = batch.max(1);
    let (envs, micros) = on_native_thread(move || {
        let payload = vec![b'a'; size];
        (0..n.div_ceil(batch))
            .map(|i| {
                let env = OwnedEnv::new();
                let k = batch.min(n - i * batch);
                let terms = env.run(|e| {
                    (0..k)
                        .map(|_| gun_ws(e, &conn, &payload).as_c_arg())
                        .collect()
                });
                (env, terms)
            })
            .collect::<Vec<_>>()
    });
    let queue = Mutex::new(envs.into_iter());
    (ResourceArc::new(Copied { queue }), micros)
}

/// Sends the next batch that a native thread built: one call per batch.
#[rustler::nif]
fn deliver_copy<'a>(env: Env<'a>, to: LocalPid, res: ResourceArc<Copied>) -> Term<'a> {
    let next = res.queue.lock().ok().and_then(|mut queue| queue.next());
    let Some((batch_env, terms)) = next else {
        return status(env, 0, true);
    };
    let mut terms = terms.into_iter();
    let (sent, _) = deliver(env, usize::MAX, || match terms.next() {
        Some(term) => {
            // SAFETY: `term` lives in `batch_env`, alive until the end of
            // this call; enif_make_copy copies it into the caller's env.
            let copy = unsafe { Term::new(env, enif_make_copy(env.as_c_arg(), term)) };
            let _ = env.send(&to, copy);
            true
        }
        None => false,
    });
    drop(batch_env);
    let done = res.queue.lock().map(|q| q.len() == 0).unwrap_or(true);
    status(env, sent, done)
}

/// Sends the next batch that a native thread built, each tuple copied
/// once, by `enif_send`, from the batch's env: one call per batch.
#[rustler::nif]
fn deliver_sent<'a>(env: Env<'a>, to: LocalPid, res: ResourceArc<Copied>) -> Term<'a> {
    let next = res.queue.lock().ok().and_then(|mut queue| queue.next());
    let Some((batch_env, terms)) = next else {
        return status(env, 0, true);
    };
    let mut terms = terms.into_iter();
    let (sent, _) = deliver(env, usize::MAX, || match terms.next() {
        Some(term) => {
            // SAFETY: `term` lives in `batch_env`, alive until the end of
            // this call; a NULL message env makes enif_send copy it.
            unsafe { enif_send(env.as_c_arg(), to.as_c_arg(), std::ptr::null_mut(), term) };
            true
        }
        None => false,
    });
    drop(batch_env);
    let done = res.queue.lock().map(|q| q.len() == 0).unwrap_or(true);
    status(env, sent, done)
}

rustler::init!("gun_bench_floor");
