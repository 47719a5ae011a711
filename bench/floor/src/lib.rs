//! The floor under push_small: a native thread that does nothing but build
//! `{gun_ws, Pid, {text, Payload}}` and send it with `enif_send`, the way
//! the engine's tokio threads do (one env, cleared every 1,024 messages).
//! No socket, no parsing: what is left is what ERTS charges a thread it
//! does not manage for each message.

use rustler::types::tuple::make_tuple;
use rustler::{Encoder, LocalPid, NewBinary, OwnedEnv};

mod atoms {
    rustler::atoms! { ok, gun_ws, text }
}

const CLEAR_EVERY: u64 = 1024;

#[rustler::nif]
fn send_from_thread(to: LocalPid, conn: LocalPid, n: u64, size: usize) -> rustler::Atom {
    std::thread::spawn(move || {
        let payload = vec![b'a'; size];
        let mut env = OwnedEnv::new();
        for sent in 1..=n {
            env.run(|env| {
                let mut binary = NewBinary::new(env, payload.len());
                binary.as_mut_slice().copy_from_slice(&payload);
                let frame = (atoms::text(), rustler::Binary::from(binary)).encode(env);
                let message = make_tuple(env, &[atoms::gun_ws().encode(env), conn.encode(env), frame]);
                let _ = env.send(&to, message);
            });
            if sent % CLEAR_EVERY == 0 {
                env.clear();
            }
        }
    });
    atoms::ok()
}

rustler::init!("gun_bench_floor");
