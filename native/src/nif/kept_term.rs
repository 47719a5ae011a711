//! An Erlang term kept by the native side for as long as it needs it
//! (a StreamRef, the origin host), copied into each message that uses it.

use std::sync::Mutex;

use rustler::env::SavedTerm;
use rustler::{Env, OwnedEnv, Term};

/// Each kept term has its own env: the connection's message env is
/// cleared regularly, which would invalidate anything saved in it. The
/// mutex makes it shareable: an env must never be used by two threads at once.
pub struct KeptTerm(Mutex<(OwnedEnv, SavedTerm)>);

impl KeptTerm {
    pub fn new(term: Term) -> Self {
        let env = OwnedEnv::new();
        let saved = env.save(term);
        KeptTerm(Mutex::new((env, saved)))
    }

    pub fn load<'a>(&self, into: Env<'a>) -> Term<'a> {
        let kept = match self.0.lock() {
            Ok(kept) => kept,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (env, saved) = &*kept;
        env.run(|own| saved.load(own).in_env(into))
    }
}
