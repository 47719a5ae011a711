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
