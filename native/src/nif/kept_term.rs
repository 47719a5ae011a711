//! An Erlang term the engine keeps after the call that gave it (a
//! StreamRef, the origin host), as its external encoding: an env per kept
//! term would cost a heap each, and decoding into the message being built
//! is cheap for the small terms kept here.

use rustler::{Encoder, Env, Term};

use super::atoms;

/// Equal for equal terms of the kinds kept here (references, strings,
/// atoms, IP tuples), whose encodings are unique.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeptTerm(Vec<u8>);

impl KeptTerm {
    pub fn new(term: Term) -> Self {
        KeptTerm(term.to_binary().as_slice().to_vec())
    }

    pub fn load<'a>(&self, env: Env<'a>) -> Term<'a> {
        match env.binary_to_term(&self.0) {
            Some((term, _)) => term,
            // It was encoded by this VM: decoding cannot fail.
            None => atoms::undefined().encode(env),
        }
    }
}

/// A kept term decoded into one env, for every message built in that env
/// after it: a Gun 2 burst names one StreamRef per message, and decoding
/// it costs more than the rest of the message. Valid until the env is
/// cleared, which must [`forget`](Self::forget) it.
#[derive(Default)]
pub struct Decoded(Option<(KeptTerm, rustler::sys::ErlNifTerm)>);

impl Decoded {
    /// `kept` as a term of `env`, decoded once while `env` lives on.
    ///
    /// # Safety
    /// Every call on one `Decoded` passes the same env, not cleared since
    /// the last [`forget`](Self::forget).
    pub unsafe fn load<'a>(&mut self, env: Env<'a>, kept: &KeptTerm) -> Term<'a> {
        if let Some((decoded, term)) = &self.0 {
            if decoded == kept {
                // SAFETY: decoded into this same env, which is not cleared.
                return unsafe { Term::new(env, *term) };
            }
        }
        let term = kept.load(env);
        self.0 = Some((kept.clone(), term.as_c_arg()));
        term
    }

    /// The env was cleared: its terms are gone.
    pub fn forget(&mut self) {
        self.0 = None;
    }
}
