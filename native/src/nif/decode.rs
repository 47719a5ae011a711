//! Erlang terms into the connection layer's types. The Erlang side has
//! already checked the options (Gun's way, one clause per option), so a
//! term that does not decode here is a `badarg`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use rustler::types::tuple::get_tuple;
use rustler::{Atom, Binary, Error, MapIterator, NifResult, Term};

use crate::buffers;
use crate::call_cost::WalkLimits;
use crate::connection::{
    Api, ConnConfig, Family, FrameRef, HttpVersion, LocalAddr, OutFrame, RawSockOpt,
    ServerNameIndication, TcpOptions, TlsConfig, TlsVersion, Transport, WsConfig,
};

use super::atoms;

/// RFC 6455 §5.5: control frame payloads are at most 125 bytes.
const MAX_CONTROL_PAYLOAD: usize = 125;

fn get<'a>(map: Term<'a>, key: Atom) -> Option<Term<'a>> {
    map.map_get(key).ok()
}

fn millis(term: Term) -> NifResult<Duration> {
    Ok(Duration::from_millis(term.decode::<u64>()?))
}

/// `infinity` is `None`.
fn or_infinity<'a, T: rustler::Decoder<'a>>(term: Term<'a>) -> NifResult<Option<T>> {
    if term.decode::<Atom>().ok() == Some(atoms::infinity()) {
        Ok(None)
    } else {
        term.decode().map(Some)
    }
}

/// Milliseconds, `infinity` is `None`.
fn millis_or_infinity(term: Term) -> NifResult<Option<Duration>> {
    Ok(or_infinity::<u64>(term)?.map(Duration::from_millis))
}

/// The host as a name for the lookup and the `host` header.
pub fn host(term: Term) -> NifResult<String> {
    if let Ok(atom) = term.decode::<Atom>() {
        return atom.to_term(term.get_env()).atom_to_string();
    }
    if term.is_tuple() {
        return ip_address(term).map(|ip| ip.to_string());
    }
    string(term)
}

/// The path of a `{local, Path}` host, Gun 2's Unix domain socket.
pub fn unix_path(term: Term) -> NifResult<Option<PathBuf>> {
    if !term.is_tuple() {
        return Ok(None);
    }
    match get_tuple(term)?.as_slice() {
        [tag, path] if tag.decode::<Atom>().ok() == Some(tcp_atoms::local()) => {
            Ok(Some(self::path(*path)?))
        }
        _ => Ok(None),
    }
}

fn ip_address(term: Term) -> NifResult<IpAddr> {
    let parts = get_tuple(term)?;
    match parts.len() {
        4 => {
            let o: Vec<u8> = parts.iter().map(|p| p.decode()).collect::<NifResult<_>>()?;
            Ok(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])))
        }
        8 => {
            let s: Vec<u16> = parts.iter().map(|p| p.decode()).collect::<NifResult<_>>()?;
            Ok(IpAddr::V6(Ipv6Addr::new(
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
            )))
        }
        _ => Err(Error::BadArg),
    }
}

/// The mode-2 names, kept beside their only decoder.
mod gun2_atoms {
    rustler::atoms! {
        max_header_block_size,
        max_trailer_block_size,
        domain_lookup_timeout,
        tls_handshake_timeout,
    }
}

/// Gun 2's defaults for its header and trailer block limits.
const GUN2_MAX_HEADER_BLOCK: usize = 100_000;
const GUN2_MAX_TRAILER_BLOCK: usize = 10_000;

pub fn conn_config(host: String, port: u16, opts: Term) -> NifResult<ConnConfig> {
    let mut cfg = ConnConfig::new(host, port);
    if let Some(api) = get(opts, atoms::api()) {
        cfg.api = match api.decode::<u32>()? {
            1 => Api::Guide,
            2 => Api::Gun2,
            _ => return Err(Error::BadArg),
        };
    }
    if cfg.api == Api::Gun2 {
        cfg.head_limits.max_head_size = GUN2_MAX_HEADER_BLOCK;
        cfg.head_limits.max_trailer_size = GUN2_MAX_TRAILER_BLOCK;
    }
    if let Some(t) = get(opts, atoms::transport()) {
        let t: Atom = t.decode()?;
        cfg.transport = if t == atoms::tcp() {
            Transport::Tcp
        } else {
            Transport::Tls
        };
    }
    if let Some(r) = get(opts, atoms::retry()) {
        cfg.retry = r.decode()?;
    }
    if let Some(t) = get(opts, atoms::retry_timeout()) {
        cfg.retry_timeout = millis(t)?;
    }
    // The fun stays with the process behind ConnPid, which answers.
    cfg.retry_fun = get(opts, atoms::retry_fun()).is_some();
    if let Some(t) = get(opts, atoms::connect_timeout()) {
        cfg.connect_timeout = millis_or_infinity(t)?;
    }
    if let Some(t) = get(opts, gun2_atoms::domain_lookup_timeout()) {
        cfg.domain_lookup_timeout = millis_or_infinity(t)?;
    }
    if let Some(t) = get(opts, gun2_atoms::tls_handshake_timeout()) {
        cfg.tls_handshake_timeout = millis_or_infinity(t)?;
    }
    if let Some(http) = get(opts, atoms::http_opts()) {
        if let Some(version) = get(http, atoms::version()) {
            let version: Atom = version.decode()?;
            if version.to_term(opts.get_env()).atom_to_string()? == "HTTP/1.0" {
                cfg.http_version = HttpVersion::Http10;
            }
        }
        if let Some(n) = get(http, atoms::max_headers()) {
            cfg.head_limits.max_headers = n.decode()?;
        }
        if let Some(n) = get(http, atoms::max_head_size()) {
            cfg.head_limits.max_head_size = n.decode()?;
        }
        if let Some(n) = get(http, gun2_atoms::max_header_block_size()) {
            cfg.head_limits.max_head_size = n.decode()?;
        }
        if let Some(n) = get(http, gun2_atoms::max_trailer_block_size()) {
            cfg.head_limits.max_trailer_size = n.decode()?;
        }
        if let Some(t) = get(http, atoms::closing_timeout()) {
            cfg.http_closing_timeout = millis_or_infinity(t)?;
        }
        if let Some(n) = get(http, atoms::flow()) {
            cfg.http_flow = or_infinity(n)?;
        }
        if let Some(t) = get(http, atoms::keepalive()) {
            cfg.http_keepalive = millis_or_infinity(t)?;
        }
        if let Some(n) = get(http, atoms::send_queue_limit()) {
            cfg.http_send_queue_limit = or_infinity(n)?;
        }
    }
    if let Some(tcp_opts) = get(opts, atoms::tcp_opts()) {
        cfg.set_tcp(tcp_options(tcp_opts)?);
    }
    if let Some(tls_opts) = get(opts, atoms::tls_opts()) {
        cfg.tls = tls_config(tls_opts)?;
    }
    if let Some(ws) = get(opts, atoms::ws_opts()) {
        cfg.ws = ws_config(ws, &cfg.ws)?;
    }
    Ok(cfg)
}

/// The `tcp_opts` names, kept beside their only decoder.
mod tcp_atoms {
    rustler::atoms! {
        inet,
        inet6,
        local,
        ip,
        ifaddr,
        addr,
        family,
        any,
        loopback,
        port,
        reuseaddr,
        reuseport,
        reuseport_lb,
        ipv6_v6only,
        dontroute,
        nopush,
        recbuf,
        sndbuf,
        linger,
        tos,
        tclass,
        ttl,
        priority,
        bind_to_device,
        netns,
        raw,
        send_timeout,
        send_timeout_close,
        list,
        mode,
        active,
        packet,
    }
}

/// `tcp_opts` in order, a later option overriding an earlier one as in
/// gen_tcp. gun:open/3 took only what is decoded here; the options Gun
/// itself overrides (`binary`, `list`, `mode`, `active`, `packet`) and
/// `send_timeout_close` (a connection whose write timed out is closed
/// either way, as Gun closes it on a failed send) have no effect.
fn tcp_options(list: Term) -> NifResult<TcpOptions> {
    let mut tcp = TcpOptions::default();
    for opt in list_cells(list)? {
        let opt = opt?;
        if let Ok(atom) = opt.decode::<Atom>() {
            if atom == tcp_atoms::inet() {
                tcp.family = Some(Family::Inet);
            } else if atom == tcp_atoms::inet6() {
                tcp.family = Some(Family::Inet6);
            } else if atom != atoms::binary() && atom != tcp_atoms::list() {
                return Err(Error::BadArg);
            }
            continue;
        }
        let parts = get_tuple(opt)?;
        match parts.as_slice() {
            [key, value] => tcp_option(&mut tcp, key.decode()?, *value)?,
            [key, level, name, value] if key.decode::<Atom>()? == tcp_atoms::raw() => {
                tcp.raw.push(RawSockOpt {
                    level: level.decode()?,
                    name: name.decode()?,
                    value: value.decode::<Binary>()?.as_slice().to_vec(),
                });
            }
            _ => return Err(Error::BadArg),
        }
    }
    Ok(tcp)
}

/// An IP tuple, `any` or `loopback`.
fn local_addr(term: Term) -> NifResult<LocalAddr> {
    Ok(match term.decode::<Atom>() {
        Ok(a) if a == tcp_atoms::any() => LocalAddr::Any,
        Ok(a) if a == tcp_atoms::loopback() => LocalAddr::Loopback,
        _ => LocalAddr::Ip(ip_address(term)?),
    })
}

fn tcp_option(tcp: &mut TcpOptions, key: Atom, value: Term) -> NifResult<()> {
    if key == tcp_atoms::ifaddr() && value.is_map() {
        // A socket:sockaddr_in() or sockaddr_in6(): the address, and the port if given.
        tcp.local_addr = Some(local_addr(
            get(value, tcp_atoms::addr()).ok_or(Error::BadArg)?,
        )?);
        if let Some(port) = get(value, tcp_atoms::port()) {
            tcp.local_port = port.decode()?;
        }
        let family: Atom = get(value, tcp_atoms::family())
            .ok_or(Error::BadArg)?
            .decode()?;
        tcp.family = Some(if family == tcp_atoms::inet6() {
            Family::Inet6
        } else {
            Family::Inet
        });
    } else if key == tcp_atoms::ip() || key == tcp_atoms::ifaddr() {
        tcp.local_addr = Some(local_addr(value)?);
    } else if key == tcp_atoms::port() {
        tcp.local_port = value.decode()?;
    } else if key == atoms::nodelay() {
        tcp.nodelay = value.decode()?;
    } else if key == atoms::keepalive() {
        tcp.keepalive = Some(value.decode()?);
    } else if key == tcp_atoms::reuseaddr() {
        tcp.reuseaddr = Some(value.decode()?);
    } else if key == tcp_atoms::reuseport() || key == tcp_atoms::reuseport_lb() {
        tcp.reuseport = Some(value.decode()?);
    } else if key == tcp_atoms::ipv6_v6only() {
        tcp.ipv6_v6only = Some(value.decode()?);
    } else if key == tcp_atoms::dontroute() {
        tcp.dontroute = Some(value.decode()?);
    } else if key == tcp_atoms::nopush() {
        tcp.nopush = Some(value.decode()?);
    } else if key == tcp_atoms::recbuf() {
        tcp.recbuf = Some(bounded(value, 0, i32::MAX as u32)?);
    } else if key == tcp_atoms::sndbuf() {
        tcp.sndbuf = Some(bounded(value, 0, i32::MAX as u32)?);
    } else if key == tcp_atoms::linger() {
        let (on, secs): (bool, u64) = value.decode()?;
        tcp.linger = Some(on.then(|| Duration::from_secs(secs)));
    } else if key == tcp_atoms::tos() {
        tcp.tos = Some(bounded(value, 0, 255)?);
    } else if key == tcp_atoms::tclass() {
        tcp.tclass = Some(bounded(value, 0, 255)?);
    } else if key == tcp_atoms::ttl() {
        tcp.ttl = Some(bounded(value, 1, 255)?);
    } else if key == tcp_atoms::priority() {
        tcp.priority = Some(bounded(value, 0, i32::MAX)?);
    } else if key == tcp_atoms::bind_to_device() {
        tcp.bind_to_device = Some(value.decode::<Binary>()?.as_slice().to_vec());
    } else if key == tcp_atoms::netns() {
        tcp.netns = Some(path(value)?);
    } else if key == tcp_atoms::send_timeout() {
        tcp.send_timeout = millis_or_infinity(value)?;
    } else if key != tcp_atoms::send_timeout_close()
        && key != tcp_atoms::mode()
        && key != tcp_atoms::active()
        && key != tcp_atoms::packet()
    {
        return Err(Error::BadArg);
    }
    Ok(())
}

/// The `tls_opts` names not shared with other decoders.
mod tls_atoms {
    rustler::atoms! {
        versions,
        tlsv1_2 = "tlsv1.2",
        tlsv1_3 = "tlsv1.3",
    }
}

/// `tls_opts` as a list (as `ssl:connect/3` takes it) or a map.
fn tls_config(opts: Term) -> NifResult<TlsConfig> {
    let pairs: Vec<(Atom, Term)> = if opts.is_map() {
        MapIterator::new(opts)
            .ok_or(Error::BadArg)?
            .map(|(k, v)| Ok((k.decode()?, v)))
            .collect::<NifResult<_>>()?
    } else {
        list_cells(opts)?
            .map(|pair| pair?.decode())
            .collect::<NifResult<_>>()?
    };
    let mut tls = TlsConfig::default();
    for (key, value) in pairs {
        if key == atoms::verify() {
            tls.verify = value.decode::<Atom>()? != atoms::verify_none();
        } else if key == atoms::cacertfile() {
            tls.cacertfile = Some(path(value)?);
        } else if key == atoms::cacerts() {
            tls.cacerts = list_cells(value)?
                .map(|der| Ok(der?.decode::<Binary>()?.as_slice().to_vec()))
                .collect::<NifResult<_>>()?;
        } else if key == atoms::certfile() {
            tls.certfile = Some(path(value)?);
        } else if key == atoms::keyfile() {
            tls.keyfile = Some(path(value)?);
        } else if key == tls_atoms::versions() {
            tls.versions = list_cells(value)?
                .map(|v| match v?.decode::<Atom>()? {
                    a if a == tls_atoms::tlsv1_2() => Ok(TlsVersion::Tls12),
                    a if a == tls_atoms::tlsv1_3() => Ok(TlsVersion::Tls13),
                    _ => Err(Error::BadArg),
                })
                .collect::<NifResult<_>>()?;
        } else if key == atoms::server_name_indication() {
            tls.server_name_indication = if value.decode::<Atom>().ok() == Some(atoms::disable()) {
                ServerNameIndication::Disabled
            } else {
                ServerNameIndication::Name(string(value)?)
            };
        }
    }
    Ok(tls)
}

/// A file name as `file:filename_all()`: a string or a binary.
fn path(term: Term) -> NifResult<PathBuf> {
    string(term).map(PathBuf::from)
}

/// A string or a binary.
fn string(term: Term) -> NifResult<String> {
    if let Ok(binary) = term.decode::<Binary>() {
        return String::from_utf8(binary.as_slice().to_vec()).map_err(|_| Error::BadArg);
    }
    let chars: Vec<u32> = term.decode()?;
    chars
        .into_iter()
        .map(|c| char::from_u32(c).ok_or(Error::BadArg))
        .collect()
}

/// The permessage-deflate options, kept beside their only decoder.
mod deflate_atoms {
    rustler::atoms! {
        deflate_level,
        client_max_window_bits,
        server_max_window_bits,
        client_no_context_takeover,
        server_no_context_takeover,
    }
}

pub fn ws_config(map: Term, base: &WsConfig) -> NifResult<WsConfig> {
    let mut ws = base.clone();
    if let Some(t) = get(map, atoms::keepalive()) {
        ws.keepalive = millis_or_infinity(t)?;
    }
    if let Some(t) = get(map, atoms::flow()) {
        ws.flow = Some(t.decode()?);
    }
    if let Some(t) = get(map, atoms::keepalive_tolerance()) {
        ws.keepalive_tolerance = or_infinity(t)?;
    }
    if let Some(t) = get(map, atoms::send_queue_limit()) {
        ws.send_queue_limit = or_infinity(t)?;
    }
    if let Some(t) = get(map, atoms::owner_queue_limit()) {
        ws.owner_queue_limit = or_infinity(t)?;
    }
    if let Some(t) = get(map, atoms::silence_pings()) {
        ws.silence_pings = t.decode()?;
    }
    if let Some(t) = get(map, atoms::closing_timeout()) {
        ws.closing_timeout = millis_or_infinity(t)?;
    }
    if let Some(t) = get(map, atoms::max_frame_size()) {
        ws.max_frame_size = or_infinity(t)?;
    }
    if let Some(t) = get(map, atoms::max_message_size()) {
        ws.max_message_size = or_infinity(t)?;
    }
    if let Some(t) = get(map, atoms::max_fragments()) {
        ws.max_fragments = or_infinity(t)?;
    }
    if let Some(t) = get(map, atoms::upgrade_timeout()) {
        ws.upgrade_timeout = millis_or_infinity(t)?;
    }
    if let Some(t) = get(map, atoms::compress()) {
        ws.compress = t.decode()?;
    }
    // Ranges are checked again here: flate2 panics on a window outside 9..=15.
    if let Some(t) = get(map, deflate_atoms::deflate_level()) {
        ws.deflate.level = bounded(t, 0, 9)?;
    }
    if let Some(t) = get(map, deflate_atoms::client_max_window_bits()) {
        ws.deflate.client_max_window_bits = bounded(t, 9, 15)?;
    }
    if let Some(t) = get(map, deflate_atoms::server_max_window_bits()) {
        ws.deflate.server_max_window_bits = Some(bounded(t, 8, 15)?);
    }
    if let Some(t) = get(map, deflate_atoms::client_no_context_takeover()) {
        ws.deflate.client_no_context_takeover = t.decode()?;
    }
    if let Some(t) = get(map, deflate_atoms::server_no_context_takeover()) {
        ws.deflate.server_no_context_takeover = t.decode()?;
    }
    Ok(ws)
}

fn bounded<T: PartialOrd + for<'a> rustler::Decoder<'a>>(
    term: Term,
    min: T,
    max: T,
) -> NifResult<T> {
    let value: T = term.decode()?;
    if value < min || value > max {
        return Err(Error::BadArg);
    }
    Ok(value)
}

/// A stream's own options (Gun 2's ReqOpts, after `gun.erl` checked
/// them): its recipient and its flow credits. `flow` absent is `None`,
/// `infinity` is `Some(None)`.
pub struct StreamOpts {
    pub reply_to: Option<rustler::LocalPid>,
    pub flow: Option<Option<u64>>,
}

pub fn stream_opts(map: Term) -> NifResult<StreamOpts> {
    if !map.is_map() {
        return Err(Error::BadArg);
    }
    Ok(StreamOpts {
        reply_to: get(map, atoms::reply_to())
            .map(|t| t.decode())
            .transpose()?,
        flow: get(map, atoms::flow()).map(or_infinity).transpose()?,
    })
}

/// `protocols`: the WebSocket subprotocols to offer, in order.
pub fn ws_protocols(map: Term) -> NifResult<Vec<Vec<u8>>> {
    match get(map, atoms::protocols()) {
        None => Ok(Vec::new()),
        Some(list) => list_cells(list)?
            .map(|name| Ok(iodata(name?)?.as_slice().to_vec()))
            .collect(),
    }
}

/// The elements of a list, one cell at a time. An improper list is a
/// `badarg` when its tail is reached, never a panic (rustler's
/// `ListIterator` panics on one); a term that is no list is one at once.
pub fn list_cells(term: Term) -> NifResult<Cells> {
    if term.is_list() {
        Ok(Cells { rest: Some(term) })
    } else {
        Err(Error::BadArg)
    }
}

pub struct Cells<'a> {
    rest: Option<Term<'a>>,
}

impl<'a> Iterator for Cells<'a> {
    type Item = NifResult<Term<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let list = self.rest.take()?;
        if list.is_empty_list() {
            return None;
        }
        match list.list_get_cell() {
            Ok((head, tail)) => {
                self.rest = Some(tail);
                Some(Ok(head))
            }
            Err(error) => Some(Err(error)),
        }
    }
}

pub fn iodata<'a>(term: Term<'a>) -> NifResult<Binary<'a>> {
    Binary::from_iolist(term)
}

pub fn headers(term: Term) -> NifResult<Vec<(Vec<u8>, Vec<u8>)>> {
    list_cells(term)?
        .map(|pair| {
            let (name, value): (Term, Term) = pair?.decode()?;
            Ok((
                iodata(name)?.as_slice().to_vec(),
                iodata(value)?.as_slice().to_vec(),
            ))
        })
        .collect()
}

/// A frame term before its payload is copied: binaries are only
/// borrowed here, so the caller can size the work before doing it.
pub struct FrameTerm<'a> {
    kind: Kind,
    /// `None` for the bare atoms `close`, `ping` and `pong`.
    payload: Option<Binary<'a>>,
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Binary,
    Ping,
    Pong,
    Close(Option<u16>),
}

impl FrameTerm<'_> {
    pub fn payload_len(&self) -> usize {
        self.payload.as_ref().map_or(0, |p| p.len())
    }

    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        let payload = self.payload.as_ref().map_or(&[][..], |p| p.as_slice());
        match self.kind {
            Kind::Text => FrameRef::Text(payload),
            Kind::Binary => FrameRef::Binary(payload),
            Kind::Ping => FrameRef::Ping(payload),
            Kind::Pong => FrameRef::Pong(payload),
            Kind::Close(code) => FrameRef::Close(code, payload),
        }
    }

    pub fn to_out_frame(&self) -> OutFrame {
        let payload = self.payload.as_ref().map_or_else(Vec::new, |p| {
            let mut copy = buffers::take(p.len());
            copy.extend_from_slice(p.as_slice());
            copy
        });
        match self.kind {
            Kind::Text => OutFrame::Text(payload),
            Kind::Binary => OutFrame::Binary(payload),
            Kind::Ping => OutFrame::Ping(payload),
            Kind::Pong => OutFrame::Pong(payload),
            Kind::Close(code) => OutFrame::Close(code, payload),
        }
    }
}

/// The frames of one `gun:ws_send/2` call: a lone frame (the call a
/// sending loop makes, kept off the heap) or a list.
pub enum Frames<'a> {
    One(FrameTerm<'a>),
    Many(Vec<FrameTerm<'a>>),
}

impl<'a> Frames<'a> {
    pub fn as_slice(&self) -> &[FrameTerm<'a>] {
        match self {
            Frames::One(frame) => std::slice::from_ref(frame),
            Frames::Many(frames) => frames,
        }
    }
}

/// One frame or a list of frames, `None` as soon as they pass `limits`:
/// the rest is not walked. Any malformed frame seen is a `badarg` for all.
pub fn frames<'a>(term: Term<'a>, limits: WalkLimits) -> NifResult<Option<Frames<'a>>> {
    let mut cells = limits.iolist_cells;
    if !term.is_list() {
        return Ok(frame(term, &mut cells)?.map(Frames::One));
    }
    let mut frames = Vec::new();
    for item in list_cells(term)? {
        let item = item?;
        if frames.len() == limits.frames {
            return Ok(None);
        }
        match frame(item, &mut cells)? {
            Some(frame) => frames.push(frame),
            None => return Ok(None),
        }
    }
    Ok(Some(Frames::Many(frames)))
}

/// iodata as one binary, `None` when it is a list of more cells than
/// `cells` has left (then nothing is copied).
pub fn iodata_within<'a>(term: Term<'a>, cells: &mut usize) -> NifResult<Option<Binary<'a>>> {
    if term.is_binary() {
        return Binary::from_term(term).map(Some);
    }
    if !iolist_cells_within(term, cells)? {
        return Ok(None);
    }
    Binary::from_iolist(term).map(Some)
}

/// Counts `term`'s list cells against `cells`; `false` once they run out.
/// What it walks it checks: a malformed iolist is a `badarg`.
fn iolist_cells_within(term: Term, cells: &mut usize) -> NifResult<bool> {
    let mut pending = vec![term];
    while let Some(list) = pending.pop() {
        if list.is_binary() || list.is_empty_list() {
            continue;
        }
        let (head, tail) = list.list_get_cell()?;
        if *cells == 0 {
            return Ok(false);
        }
        *cells -= 1;
        pending.push(tail);
        if head.is_list() || head.is_empty_list() {
            pending.push(head);
        } else if !head.is_binary() {
            head.decode::<u8>()?;
        }
    }
    Ok(true)
}

fn frame<'a>(term: Term<'a>, cells: &mut usize) -> NifResult<Option<FrameTerm<'a>>> {
    if let Ok(atom) = term.decode::<Atom>() {
        let kind = control_kind(atom).ok_or(Error::BadArg)?;
        return Ok(Some(FrameTerm {
            kind,
            payload: None,
        }));
    }
    let parts = get_tuple(term)?;
    let (kind, payload) = match parts.as_slice() {
        [tag, payload] => {
            let tag: Atom = tag.decode()?;
            let kind = if tag == atoms::text() {
                Kind::Text
            } else if tag == atoms::binary() {
                Kind::Binary
            } else if tag == atoms::close() {
                // cow_ws sends {close, Reason} as a normal closure.
                Kind::Close(Some(1000))
            } else {
                control_kind(tag).ok_or(Error::BadArg)?
            };
            (kind, *payload)
        }
        [tag, code, payload] if tag.decode::<Atom>()? == atoms::close() => {
            (Kind::Close(Some(code.decode()?)), *payload)
        }
        _ => return Err(Error::BadArg),
    };
    let Some(payload) = iodata_within(payload, cells)? else {
        return Ok(None);
    };
    let control_len = match kind {
        Kind::Text | Kind::Binary => 0,
        Kind::Ping | Kind::Pong | Kind::Close(None) => payload.len(),
        Kind::Close(Some(_)) => 2 + payload.len(),
    };
    if control_len > MAX_CONTROL_PAYLOAD {
        return Err(Error::BadArg);
    }
    Ok(Some(FrameTerm {
        kind,
        payload: Some(payload),
    }))
}

fn control_kind(atom: Atom) -> Option<Kind> {
    if atom == atoms::close() {
        Some(Kind::Close(None))
    } else if atom == atoms::ping() {
        Some(Kind::Ping)
    } else if atom == atoms::pong() {
        Some(Kind::Pong)
    } else {
        None
    }
}
