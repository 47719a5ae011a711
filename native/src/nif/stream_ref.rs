//! A StreamRef as the engine holds it: the term, to put in messages, and
//! its external encoding, to tell which stream a later call names.

use rustler::{Env, Term};

use super::kept_term::KeptTerm;

pub struct StreamRef {
    // References are equal exactly when their external encodings are.
    identity: Vec<u8>,
    term: KeptTerm,
}

impl StreamRef {
    pub fn new(term: Term) -> Self {
        StreamRef {
            identity: term.to_binary().as_slice().to_vec(),
            term: KeptTerm::new(term),
        }
    }

    pub fn load<'a>(&self, env: Env<'a>) -> Term<'a> {
        self.term.load(env)
    }
}

impl PartialEq for StreamRef {
    fn eq(&self, other: &Self) -> bool {
        self.identity == other.identity
    }
}
