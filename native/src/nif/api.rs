//! The NIF functions behind `gun_nif`. Each one decodes its arguments,
//! queues a command and returns: none waits on the network.

use std::sync::Arc;

use rustler::types::tuple::make_tuple;
use rustler::{Binary, Encoder, Env, LocalPid, NifResult, ResourceArc, Term};

use crate::call_cost;
use crate::connection::{self, Api, Body, Command, Protocol, Request, Transport, Upgrade};

use super::atoms;
use super::decode;
use super::kept_term::KeptTerm;
use super::messages::{protocol_term, ErlangSink};
use super::outbox::{Drained, Outbox};
use super::owner_slot::OwnerSlot;
use super::registry::{self, Conn};
use super::resource::ConnResource;
use super::stream_ref::StreamRef;
use super::stream_table::{StreamState, StreamTable};
use super::timeslice;

/// Called by the process behind ConnPid, which becomes the connection.
#[rustler::nif]
fn open<'a>(
    env: Env<'a>,
    owner: LocalPid,
    host: Term<'a>,
    port: u16,
    opts: Term<'a>,
) -> NifResult<ResourceArc<ConnResource>> {
    let conn_pid = env.pid();
    let unix_path = decode::unix_path(host)?;
    let (cfg, host) = match unix_path {
        // The host header and gun:info/1 name a Unix socket's peer localhost.
        Some(path) => {
            let mut cfg = decode::conn_config("localhost".into(), 0, opts)?;
            cfg.unix_path = Some(path);
            (cfg, super::messages::binary_term(env, b"localhost"))
        }
        None => (decode::conn_config(decode::host(host)?, port, opts)?, host),
    };
    let ws_defaults = cfg.ws.clone();
    let transport = cfg.transport;
    let api = cfg.api;
    let http_flow = cfg.http_flow;
    let owner_slot = Arc::new(OwnerSlot::new(owner));
    let streams = (api == Api::Gun2).then(|| Arc::new(StreamTable::default()));
    let outbox = Arc::new(Outbox::default());
    let sink = ErlangSink::new(
        owner_slot.clone(),
        conn_pid,
        api,
        streams.clone(),
        outbox.clone(),
    );
    let handle = connection::spawn(cfg, sink);
    let conn = Arc::new(Conn {
        handle,
        ws_defaults,
        api,
        http_flow,
        owner: owner_slot,
        erlang_opts: opts.map_get(atoms::erlang_opts()).ok().map(KeptTerm::new),
        streams,
        origin_host: KeptTerm::new(host),
        origin_port: port,
        transport,
    });
    registry::insert(conn_pid, conn.clone());
    let resource = ResourceArc::new(ConnResource {
        conn_pid,
        conn,
        owner_monitor: std::sync::Mutex::new(None),
        outbox,
    });
    watch_owner(env, &resource, owner);
    Ok(resource)
}

/// Mode 1's engine monitors the owner itself. In mode 2 the process
/// behind ConnPid does (it needs the exit reason, and sees a
/// `gun:set_owner/2` the old owner sent before dying ahead of its
/// 'DOWN') and calls `gun_nif:owner_down/1`.
fn watch_owner(env: Env, resource: &ResourceArc<ConnResource>, owner: LocalPid) {
    if resource.conn.api == Api::Gun2 {
        return;
    }
    match resource.monitor(Some(env), &owner) {
        Some(monitor) => *lock(&resource.owner_monitor) = Some(monitor),
        None => {
            resource.conn.handle.send(Command::OwnerDown);
        }
    }
}

/// Mode 2: the owner died, as the process behind ConnPid saw.
#[rustler::nif]
fn owner_down(resource: ResourceArc<ConnResource>) -> rustler::Atom {
    resource.conn.handle.send(Command::OwnerDown);
    atoms::ok()
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `gun:set_owner/2`, called by the process behind ConnPid with its
/// resource: the new owner is monitored, the old one forgotten.
#[rustler::nif]
fn set_owner(env: Env, resource: ResourceArc<ConnResource>, new_owner: LocalPid) -> rustler::Atom {
    if let Some(old) = lock(&resource.owner_monitor).take() {
        resource.demonitor(Some(env), &old);
    }
    resource.conn.owner.set(new_owner);
    watch_owner(env, &resource, new_owner);
    atoms::ok()
}

/// The API mode of ConnPid's connection: 1 or 2, or `{Api, ErlangOpts}`
/// when it was opened with `erlang_opts`; `undefined` when it is over.
#[rustler::nif]
fn api(env: Env, conn_pid: LocalPid) -> Term {
    let Some(conn) = registry::lookup(&conn_pid) else {
        return atoms::undefined().encode(env);
    };
    let api = match conn.api {
        Api::Guide => 1.encode(env),
        Api::Gun2 => 2.encode(env),
    };
    match &conn.erlang_opts {
        Some(opts) => (api, opts.load(env)).encode(env),
        None => api,
    }
}

/// `gun:ping/1,2`: HTTP/1.1 has no ping, which ends a Gun 2 connection.
#[rustler::nif]
fn ping(conn_pid: LocalPid, ping_ref: Term) -> rustler::Atom {
    registry::send(&conn_pid, Command::Ping(StreamRef::new(ping_ref)));
    atoms::ok()
}

#[rustler::nif]
fn ws_upgrade<'a>(
    conn_pid: LocalPid,
    stream_ref: Term<'a>,
    path: Term<'a>,
    headers: Term<'a>,
    ws_opts: Term<'a>,
) -> NifResult<rustler::Atom> {
    let path = decode::iodata(path)?.as_slice().to_vec();
    let mut headers = decode::headers(headers)?;
    let stream_opts = decode::stream_opts(ws_opts)?;
    let protocols = decode::ws_protocols(ws_opts)?;
    let offered = b"sec-websocket-protocol";
    if !protocols.is_empty() && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(offered)) {
        headers.push((offered.to_vec(), protocols.join(&b", "[..])));
    }
    if let Some(conn) = registry::lookup(&conn_pid) {
        let ws = decode::ws_config(ws_opts, &conn.ws_defaults)?;
        let stream = StreamRef::with_reply_to(stream_ref, stream_opts.reply_to);
        conn.stream_opened(&stream);
        conn.handle.send(Command::WsUpgrade(Box::new(Upgrade {
            stream,
            path,
            headers,
            ws,
        })));
    }
    Ok(atoms::ok())
}

#[rustler::nif]
fn ws_send<'a>(env: Env<'a>, conn_pid: LocalPid, frames: Term<'a>) -> NifResult<rustler::Atom> {
    // One frame is the call a tight loop makes: estimated, not timed.
    let meter = if frames.is_list() {
        timeslice::Meter::timed()
    } else {
        timeslice::Meter::Estimated
    };
    // Malformed frames are a badarg even when ConnPid is gone.
    let Some(frames) = decode::frames(frames, call_cost::NORMAL_CALL_WALK)? else {
        // One frame only stops short for its iolist payload.
        meter.charge(env, call_cost::IOLIST_WALK_NANOS);
        return Ok(atoms::dirty());
    };
    let frames = frames.as_slice();
    let bytes = frames.iter().map(|f| f.payload_len()).sum();
    if !call_cost::fits_normal_call(frames.len(), bytes) {
        meter.charge(env, call_cost::cost_nanos(frames.len(), 0));
        return Ok(atoms::dirty());
    }
    queue_frames(conn_pid, frames, bytes);
    meter.charge(env, call_cost::cost_nanos(frames.len(), bytes));
    Ok(atoms::ok())
}

/// Too many frames or bytes for a normal scheduler's call.
#[rustler::nif(schedule = "DirtyCpu")]
fn ws_send_dirty<'a>(conn_pid: LocalPid, frames: Term<'a>) -> NifResult<rustler::Atom> {
    // Unlimited: the walk only ends at the last frame.
    let frames =
        decode::frames(frames, call_cost::WalkLimits::NONE)?.ok_or(rustler::Error::BadArg)?;
    let frames = frames.as_slice();
    let bytes = frames.iter().map(|f| f.payload_len()).sum();
    queue_frames(conn_pid, frames, bytes);
    Ok(atoms::ok())
}

/// A call's payloads up to this many bytes are copied into the batch of
/// small calls queued last, under the queue's lock (~1 us at most, which
/// is what the task may wait for it); larger ones get buffers of their
/// own, copied before the lock. 16 KiB takes lists of a hundred small
/// frames (send_batch: 1.5-2x against 4 KiB).
const BATCHED_CALL_BYTES: usize = 16 * 1024;

fn queue_frames(conn_pid: LocalPid, frames: &[decode::FrameTerm], bytes: usize) {
    let Some(conn) = registry::lookup(&conn_pid) else {
        return;
    };
    if bytes <= BATCHED_CALL_BYTES && frames.len() <= BATCHED_CALL_BYTES {
        let room = bytes + connection::CALL_OVERHEAD + frames.len() * connection::FRAME_OVERHEAD;
        conn.handle.send_frames(room, |batch| {
            batch.push_call(frames.iter().map(decode::FrameTerm::as_frame_ref))
        });
    } else {
        let frames = frames.iter().map(|f| f.to_out_frame()).collect();
        conn.handle.send(Command::WsSend(frames));
    }
}

/// `Body` is `none`, `streamed` (gun:data/4 follows) or iodata.
#[rustler::nif]
fn request<'a>(
    env: Env<'a>,
    conn_pid: LocalPid,
    stream_ref: Term<'a>,
    method: Term<'a>,
    path: Term<'a>,
    headers: Term<'a>,
    body: Term<'a>,
) -> NifResult<rustler::Atom> {
    let meter = timeslice::Meter::timed();
    let result = queue_request(
        conn_pid, stream_ref, None, method, path, headers, body, true,
    );
    meter.charge(env, 0);
    result
}

#[rustler::nif(schedule = "DirtyCpu")]
fn request_dirty<'a>(
    conn_pid: LocalPid,
    stream_ref: Term<'a>,
    method: Term<'a>,
    path: Term<'a>,
    headers: Term<'a>,
    body: Term<'a>,
) -> NifResult<rustler::Atom> {
    queue_request(
        conn_pid, stream_ref, None, method, path, headers, body, false,
    )
}

/// A request with its own options (Gun 2's ReqOpts: `reply_to`, `flow`).
#[rustler::nif(name = "request")]
#[allow(clippy::too_many_arguments)]
fn request_with_opts<'a>(
    env: Env<'a>,
    conn_pid: LocalPid,
    stream_ref: Term<'a>,
    req_opts: Term<'a>,
    method: Term<'a>,
    path: Term<'a>,
    headers: Term<'a>,
    body: Term<'a>,
) -> NifResult<rustler::Atom> {
    let meter = timeslice::Meter::timed();
    let opts = Some(decode::stream_opts(req_opts)?);
    let result = queue_request(
        conn_pid, stream_ref, opts, method, path, headers, body, true,
    );
    meter.charge(env, 0);
    result
}

#[rustler::nif(name = "request_dirty", schedule = "DirtyCpu")]
#[allow(clippy::too_many_arguments)]
fn request_with_opts_dirty<'a>(
    conn_pid: LocalPid,
    stream_ref: Term<'a>,
    req_opts: Term<'a>,
    method: Term<'a>,
    path: Term<'a>,
    headers: Term<'a>,
    body: Term<'a>,
) -> NifResult<rustler::Atom> {
    let opts = Some(decode::stream_opts(req_opts)?);
    queue_request(
        conn_pid, stream_ref, opts, method, path, headers, body, false,
    )
}

#[allow(clippy::too_many_arguments)]
fn queue_request(
    conn_pid: LocalPid,
    stream_ref: Term,
    opts: Option<decode::StreamOpts>,
    method: Term,
    path: Term,
    headers: Term,
    body: Term,
    normal: bool,
) -> NifResult<rustler::Atom> {
    let method = decode::iodata(method)?.as_slice().to_vec();
    let path = decode::iodata(path)?.as_slice().to_vec();
    let headers = decode::headers(headers)?;
    let body = match body.decode::<rustler::Atom>() {
        Ok(atom) if atom == atoms::streamed() => Body::Streamed,
        Ok(_) => Body::None,
        Err(_) => {
            let Some(body) = payload_here(body, normal)? else {
                return Ok(atoms::dirty());
            };
            Body::Full(body.as_slice().to_vec())
        }
    };
    if let Some(conn) = registry::lookup(&conn_pid) {
        let (reply_to, flow) = match opts {
            Some(opts) => (opts.reply_to, opts.flow.unwrap_or(conn.http_flow)),
            None => (None, conn.http_flow),
        };
        let stream = StreamRef::with_reply_to(stream_ref, reply_to);
        conn.stream_opened(&stream);
        conn.handle.send(Command::Request(Box::new(Request {
            stream,
            method,
            path,
            headers,
            body,
            flow,
        })));
    }
    Ok(atoms::ok())
}

/// A body to copy in this call; on a normal scheduler (`normal`), `None`
/// when it is too much for one and the call must go to a dirty scheduler.
fn payload_here(term: Term, normal: bool) -> NifResult<Option<Binary>> {
    if !normal {
        return decode::iodata(term).map(Some);
    }
    let mut cells = call_cost::NORMAL_CALL_WALK.iolist_cells;
    match decode::iodata_within(term, &mut cells)? {
        Some(payload) if call_cost::fits_normal_call(0, payload.len()) => Ok(Some(payload)),
        _ => Ok(None),
    }
}

#[rustler::nif]
fn data<'a>(
    env: Env<'a>,
    conn_pid: LocalPid,
    stream_ref: Term<'a>,
    is_fin: rustler::Atom,
    payload: Term<'a>,
) -> NifResult<rustler::Atom> {
    let meter = timeslice::Meter::timed();
    let result = queue_data(conn_pid, stream_ref, is_fin, payload, true);
    meter.charge(env, 0);
    result
}

#[rustler::nif(schedule = "DirtyCpu")]
fn data_dirty<'a>(
    conn_pid: LocalPid,
    stream_ref: Term<'a>,
    is_fin: rustler::Atom,
    payload: Term<'a>,
) -> NifResult<rustler::Atom> {
    queue_data(conn_pid, stream_ref, is_fin, payload, false)
}

fn queue_data(
    conn_pid: LocalPid,
    stream_ref: Term,
    is_fin: rustler::Atom,
    data: Term,
    normal: bool,
) -> NifResult<rustler::Atom> {
    let fin = if is_fin == atoms::fin() {
        true
    } else if is_fin == atoms::nofin() {
        false
    } else {
        return Err(rustler::Error::BadArg);
    };
    let Some(data) = payload_here(data, normal)? else {
        return Ok(atoms::dirty());
    };
    registry::send(
        &conn_pid,
        Command::Data {
            stream: StreamRef::new(stream_ref),
            fin,
            data: data.as_slice().to_vec(),
        },
    );
    Ok(atoms::ok())
}

#[rustler::nif]
fn update_flow(conn_pid: LocalPid, stream_ref: Term, increment: u64) -> rustler::Atom {
    registry::send(
        &conn_pid,
        Command::UpdateFlow {
            stream: StreamRef::new(stream_ref),
            increment,
        },
    );
    atoms::ok()
}

/// The process behind ConnPid's answer to `{'$gun_retry', Retries}`:
/// what `retry_fun` said.
#[rustler::nif]
fn retry(conn_pid: LocalPid, retries: u32, timeout: u64) -> rustler::Atom {
    let timeout = std::time::Duration::from_millis(timeout);
    registry::send(&conn_pid, Command::Retry { retries, timeout });
    atoms::ok()
}

/// The process behind ConnPid's answer to `$gun_owner_check`.
#[rustler::nif]
fn owner_queue(conn_pid: LocalPid, queued_bytes: u64) -> rustler::Atom {
    registry::send(&conn_pid, Command::OwnerQueue(queued_bytes));
    atoms::ok()
}

/// The process behind ConnPid's answer to `'$gun_drain'`: sends what its
/// outbox holds to the owner, a timeslice's worth per call; `more` when
/// there is more. Only that process may drain its outbox.
#[rustler::nif]
fn drain(env: Env, conn: ResourceArc<ConnResource>) -> NifResult<rustler::Atom> {
    if env.pid() != conn.conn_pid {
        return Err(rustler::Error::BadArg);
    }
    Ok(match conn.outbox.drain(env) {
        Drained::Done => atoms::done(),
        Drained::More => atoms::more(),
    })
}

/// A test hook: the connection's task panics.
#[rustler::nif]
fn inject_panic(conn_pid: LocalPid) -> rustler::Atom {
    registry::send(&conn_pid, Command::InjectPanic);
    atoms::ok()
}

/// What the engine holds, for leak checks: `#{connections, tasks}`.
#[rustler::nif]
fn resources(env: Env) -> NifResult<Term> {
    let pairs = [
        (atoms::connections(), registry::len()),
        (atoms::tasks(), connection::live_tasks()),
    ];
    Term::map_from_pairs(env, &pairs.map(|(k, v)| (k.encode(env), v.encode(env))))
}

#[rustler::nif]
fn cancel(conn_pid: LocalPid, stream_ref: Term) -> rustler::Atom {
    if let Some(conn) = registry::lookup(&conn_pid) {
        let stream = StreamRef::new(stream_ref);
        // An HTTP stream is stopping until the engine is done with it
        // (`EventSink::cancelled_over`). An upgraded connection's stream
        // goes on whatever a cancel says: it stays running.
        if let Some(streams) = &conn.streams {
            if conn.handle.live_info().protocol == Protocol::Http {
                streams.stop(stream.kept());
            }
        }
        conn.handle.send(Command::Cancel(stream));
    }
    atoms::ok()
}

/// Gun 2's `gun:stream_info/2` for HTTP/1.1 and WebSocket: `{ok, #{ref,
/// reply_to, state}}` for a stream the connection knows (`running`, or
/// `stopping` once cancelled), `{ok, undefined}` for any other, and
/// `{error, not_connected}` while there is no connection, as Gun 2 says
/// between its retries.
#[rustler::nif]
fn stream_info<'a>(env: Env<'a>, conn_pid: LocalPid, stream_ref: Term<'a>) -> NifResult<Term<'a>> {
    let Some(conn) = registry::lookup(&conn_pid) else {
        return Ok((atoms::ok(), atoms::undefined()).encode(env));
    };
    let Some(streams) = conn.streams.as_ref() else {
        return Ok((atoms::ok(), atoms::undefined()).encode(env));
    };
    if !conn.handle.live_info().connected {
        return Ok((atoms::error(), atoms::not_connected()).encode(env));
    }
    let info = match streams.info(StreamRef::new(stream_ref).kept()) {
        Some((reply_to, state)) => {
            let state = match state {
                StreamState::Running => atoms::running(),
                StreamState::Stopping => atoms::stopping(),
            };
            Term::map_from_pairs(
                env,
                &[
                    (atoms::ref_().encode(env), stream_ref),
                    (atoms::reply_to().encode(env), reply_to.encode(env)),
                    (atoms::state().encode(env), state.encode(env)),
                ],
            )?
        }
        None => atoms::undefined().encode(env),
    };
    Ok((atoms::ok(), info).encode(env))
}

#[rustler::nif]
fn shutdown(conn_pid: LocalPid) -> rustler::Atom {
    registry::send(&conn_pid, Command::Shutdown);
    atoms::ok()
}

#[rustler::nif]
fn close(conn_pid: LocalPid) -> rustler::Atom {
    registry::send(&conn_pid, Command::Close);
    atoms::ok()
}

#[rustler::nif]
fn info(env: Env, conn_pid: LocalPid) -> NifResult<Term> {
    let Some(conn) = registry::lookup(&conn_pid) else {
        return Ok(atoms::undefined().encode(env));
    };
    let live = conn.handle.live_info();
    let (sock_ip, sock_port) = match live.sock {
        Some(addr) => (ip_term(env, addr.ip()), addr.port().encode(env)),
        None => (
            atoms::undefined().encode(env),
            atoms::undefined().encode(env),
        ),
    };
    let origin_host = conn.origin_host.load(env);
    let transport = match conn.transport {
        Transport::Tcp => atoms::tcp(),
        Transport::Tls => atoms::tls(),
    };
    let connected = live.connected;
    let mut pairs = vec![
        (atoms::sock_ip().encode(env), sock_ip),
        (atoms::sock_port().encode(env), sock_port),
        (atoms::origin_host().encode(env), origin_host),
        (
            atoms::origin_port().encode(env),
            conn.origin_port.encode(env),
        ),
        (atoms::transport().encode(env), transport.encode(env)),
        (
            atoms::protocol().encode(env),
            protocol_term(env, live.protocol),
        ),
        (atoms::owner().encode(env), conn.owner.get().encode(env)),
    ];
    if conn.api == Api::Gun2 {
        let state = if connected {
            atoms::connected()
        } else {
            atoms::not_connected()
        };
        pairs.push((atoms::state_name().encode(env), state.encode(env)));
    }
    Term::map_from_pairs(env, &pairs)
}

fn ip_term(env: Env, ip: std::net::IpAddr) -> Term {
    let parts: Vec<Term> = match ip {
        std::net::IpAddr::V4(v4) => v4.octets().iter().map(|o| o.encode(env)).collect(),
        std::net::IpAddr::V6(v6) => v6.segments().iter().map(|s| s.encode(env)).collect(),
    };
    make_tuple(env, &parts)
}
