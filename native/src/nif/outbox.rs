//! Bursts of messages for the owner, sent from a scheduler.
//!
//! An `enif_send` from a thread ERTS does not manage costs a
//! thread-progress delay, the allocator instance all such threads share
//! and a contended lock on the receiver's queue: such a thread delivers
//! at most a third of what a process does (`bench/results.md`, the
//! push_small floors). So when one read yields many messages, the
//! engine's thread builds them into a [`Batch`] and queues it here, and
//! the process behind ConnPid, told once by `'$gun_drain'` when the
//! outbox goes from idle to active, sends them from its scheduler
//! (`gun_nif:drain/1`), at most 200 us per call, each call a timeslice.
//!
//! Order, the one guarantee: from the first batch queued until a drain
//! finds nothing left, the outbox is *active*, and every message of the
//! connection (to the owner or to ConnPid itself: the owner-queue check,
//! the exit order) goes through it, in order. It turns idle only inside
//! a drain, after that drain's last send and under the lock a push
//! takes: a message sent directly from the engine's thread is sent after
//! every queued one, never before. ConnPid's death drops what is queued,
//! as if the owner had never read it, and everything after it.
//!
//! Memory: an idle outbox holds no batch, no env and no buffer.

use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustler::sys::{enif_send, ErlNifTerm};
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Term};

use crate::call_cost::{percent, roll};

use super::kept_term::{Decoded, KeptTerm};

/// Messages sent between two charges of the caller's timeslice (~5 us).
const CHARGE_EVERY: usize = 16;
/// The longest one drain call runs. A call that stops short of the end
/// uses up the caller's timeslice, so ConnPid yields after each call and
/// holds its scheduler no longer than this: with the engine's thread,
/// the owner and the server busy too, a longer hold is more often
/// stretched past a millisecond by the OS preempting the scheduler
/// (push_small's long_schedule events halved against 250 us of charged
/// time per call, for the same throughput; `bench/results.md`).
const CALL_BUDGET: Duration = Duration::from_micros(200);

/// Room made in a batch for messages at once.
const BATCH_MESSAGES: usize = 64;

/// Messages built on the engine's thread, in one env, waiting to be sent.
pub struct Batch {
    env: OwnedEnv,
    messages: Vec<Queued>,
    sent: usize,
    bytes: usize,
    /// The stream the batch's messages name, decoded in `env` once.
    stream: Decoded,
}

struct Queued {
    to: LocalPid,
    term: ErlNifTerm,
}

impl Batch {
    pub fn new() -> Self {
        Batch {
            env: OwnedEnv::new(),
            // One allocation for the batch rather than a doubling per
            // few messages: a burst's batches fill up.
            messages: Vec::with_capacity(BATCH_MESSAGES),
            sent: 0,
            bytes: 0,
            stream: Decoded::default(),
        }
    }

    /// Builds what `build` makes (given the env and ConnPid) for `to`.
    pub fn push<F>(&mut self, to: LocalPid, conn_pid: LocalPid, bytes: usize, build: F)
    where
        F: for<'a> FnOnce(Env<'a>, Term<'a>) -> Term<'a>,
    {
        self.push_with(to, bytes, |env, _| build(env, conn_pid.encode(env)));
    }

    /// As [`push`](Self::push), for a message that names `stream`,
    /// given to `build` as its third argument.
    pub fn push_naming<F>(
        &mut self,
        to: LocalPid,
        conn_pid: LocalPid,
        bytes: usize,
        stream: &KeptTerm,
        build: F,
    ) where
        F: for<'a> FnOnce(Env<'a>, Term<'a>, Term<'a>) -> Term<'a>,
    {
        self.push_with(to, bytes, |env, decoded| {
            // SAFETY: always this batch's env, never cleared: it is
            // dropped with the batch.
            let stream = unsafe { decoded.load(env, stream) };
            build(env, conn_pid.encode(env), stream)
        });
    }

    fn push_with<F>(&mut self, to: LocalPid, bytes: usize, build: F)
    where
        F: for<'a> FnOnce(Env<'a>, &mut Decoded) -> Term<'a>,
    {
        let Batch {
            env,
            messages,
            stream: decoded,
            ..
        } = self;
        // The term stays valid in `env` until the batch is dropped.
        let term = env.run(|env| build(env, decoded).as_c_arg());
        messages.push(Queued { to, term });
        self.bytes += bytes;
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Sends the next message from the calling process (`env`); `false`
    /// when there is none left.
    fn send_next(&mut self, env: Env) -> bool {
        let Some(next) = self.messages.get(self.sent) else {
            return false;
        };
        self.sent += 1;
        // SAFETY: `env` is the calling process's env on its scheduler;
        // the term lives in this batch's env, alive until the batch is
        // dropped, and a NULL message env makes enif_send copy it. A dead
        // recipient is no error: its monitor ends the connection.
        unsafe {
            enif_send(
                env.as_c_arg(),
                next.to.as_c_arg(),
                ptr::null_mut(),
                next.term,
            )
        };
        true
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

/// One connection's outbox, shared by its task (which pushes) and the
/// process behind ConnPid (which drains).
#[derive(Default)]
pub struct Outbox {
    /// While true, nothing of the connection may be sent directly.
    active: AtomicBool,
    shared: Mutex<Shared>,
    /// What a drain took and has not sent yet; only the process behind
    /// ConnPid, one call at a time, touches it.
    sending: Mutex<VecDeque<Batch>>,
}

#[derive(Default)]
struct Shared {
    queued: VecDeque<Batch>,
    /// ConnPid is gone: nothing will drain.
    closed: bool,
    /// The last drain found nothing queued and kept the outbox active
    /// (beside `closed`: no room added to an idle connection).
    waited: bool,
}

/// What a drain call left.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Nothing: the outbox is idle.
    Done,
    /// The call's budget was spent first: call again.
    More,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        // A panic while holding it left plain data: nothing half-updated
        // that the next holder could misread.
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Outbox {
    /// Whether a message may be sent directly now: nothing is queued or
    /// being sent.
    pub fn idle(&self) -> bool {
        !self.active.load(Ordering::Acquire)
    }

    /// Queues `batch` behind everything queued; `true` when the outbox
    /// was idle, and ConnPid must be told.
    pub fn push(&self, batch: Batch) -> bool {
        let mut shared = lock(&self.shared);
        if shared.closed {
            return false;
        }
        shared.queued.push_back(batch);
        !self.active.swap(true, Ordering::AcqRel)
    }

    /// Sends queued messages from the calling process (`env`, ConnPid's)
    /// until none is left or the call's budget is spent, charging the
    /// caller's timeslice for the time taken.
    pub fn drain(&self, env: Env) -> Drained {
        let started = Instant::now();
        let mut charged_at = started;
        let mut sending = lock(&self.sending);
        loop {
            let Some(batch) = sending.front_mut() else {
                let mut shared = lock(&self.shared);
                if shared.queued.is_empty() {
                    if !shared.waited {
                        // A burst's reads come a little apart: one more
                        // turn of ConnPid's scheduler usually finds the
                        // next one, which then costs no '$gun_drain' from
                        // the engine's thread and no wake-up from
                        // hibernation.
                        shared.waited = true;
                        drop(shared);
                        charge(env, charged_at);
                        let _ = rustler::schedule::consume_timeslice(env, 100);
                        return Drained::More;
                    }
                    shared.waited = false;
                    // Under the lock a push takes: a push after this sees
                    // the outbox idle and tells ConnPid again.
                    self.active.store(false, Ordering::Release);
                    drop(shared);
                    charge(env, charged_at);
                    return Drained::Done;
                }
                shared.waited = false;
                std::mem::swap(&mut *sending, &mut shared.queued);
                continue;
            };
            let mut emptied = false;
            for _ in 0..CHARGE_EVERY {
                if !batch.send_next(env) {
                    emptied = true;
                    break;
                }
            }
            if emptied {
                // Freed here, on the scheduler, once sent: the copies are
                // the owner's.
                sending.pop_front();
            }
            let now = Instant::now();
            let slice_used = charge(env, charged_at);
            charged_at = now;
            if slice_used || now.duration_since(started) >= CALL_BUDGET {
                // The rest of the slice: the caller yields before its
                // next call, and the owner gets its scheduler's turn.
                let _ = rustler::schedule::consume_timeslice(env, 100);
                return Drained::More;
            }
        }
    }

    /// ConnPid is gone: what is queued is dropped, and so is what would
    /// be queued after it.
    pub fn close(&self) {
        let dropped = {
            let mut shared = lock(&self.shared);
            shared.closed = true;
            // Never idle again: nothing is sent directly either.
            self.active.store(true, Ordering::Release);
            std::mem::take(&mut shared.queued)
        };
        drop(dropped);
        lock(&self.sending).clear();
    }
}

/// Charges the caller for the time since `since`; `true` when its
/// timeslice is used up.
fn charge(env: Env, since: Instant) -> bool {
    let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let percent = percent(nanos, roll());
    percent > 0 && rustler::schedule::consume_timeslice(env, percent)
}
