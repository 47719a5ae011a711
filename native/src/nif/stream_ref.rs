//! A StreamRef as the engine holds it: enough to put it in messages and
//! to tell which stream a later call names.

use rustler::{Env, Term};

use super::kept_term::KeptTerm;

/// References are equal exactly when their external encodings are.
#[derive(PartialEq, Eq)]
pub struct StreamRef(KeptTerm);

impl StreamRef {
    pub fn new(term: Term) -> Self {
        StreamRef(KeptTerm::new(term))
    }

    pub fn load<'a>(&self, env: Env<'a>) -> Term<'a> {
        self.0.load(env)
    }
}
