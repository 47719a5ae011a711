//! The thin Erlang layer: terms in, commands to the connection tasks;
//! events out, as the documented `gun_*` messages.

mod api;
mod atoms;
mod decode;
mod kept_term;
mod messages;
mod outbox;
mod owner_slot;
mod reasons;
mod registry;
mod resource;
mod stream_ref;
mod stream_table;
mod timeslice;

use rustler::{Env, Term};

fn load(_env: Env, _info: Term) -> bool {
    // Start the runtime now rather than inside the first gun:open/3.
    crate::connection::runtime::handle();
    true
}

rustler::init!("gun_nif", load = load);
