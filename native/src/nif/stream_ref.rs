//! A StreamRef as the engine holds it: enough to put it in messages, to
//! tell which stream a later call names, and where its messages go.

use rustler::{Env, LocalPid, Term};

use super::kept_term::KeptTerm;

#[derive(Clone)]
pub struct StreamRef {
    term: KeptTerm,
    /// The stream's own recipient (Gun 2's `reply_to`); `None` is the owner.
    reply_to: Option<LocalPid>,
}

/// References are equal exactly when their external encodings are; the
/// recipient does not name the stream.
impl PartialEq for StreamRef {
    fn eq(&self, other: &Self) -> bool {
        self.term == other.term
    }
}

impl StreamRef {
    pub fn new(term: Term) -> Self {
        StreamRef {
            term: KeptTerm::new(term),
            reply_to: None,
        }
    }

    pub fn with_reply_to(term: Term, reply_to: Option<LocalPid>) -> Self {
        StreamRef {
            term: KeptTerm::new(term),
            reply_to,
        }
    }

    pub fn reply_to(&self) -> Option<LocalPid> {
        self.reply_to
    }

    pub fn load<'a>(&self, env: Env<'a>) -> Term<'a> {
        self.term.load(env)
    }

    pub fn kept(&self) -> &KeptTerm {
        &self.term
    }
}
