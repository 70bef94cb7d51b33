//! TCP: the `proto_tcpv4`/`proto_tcpv6` method tables, binding listeners and connecting
//! to servers.
//!
//! Reproduces `proto_tcp.c` (1.5-dev8). `str2listener` hands each `bind` address to
//! `tcpv4_add_listener`, which attaches the listener to `proto_tcpv4` (`LI_ASSIGNED`).
//! At start-up `tcp_bind_listeners` calls `tcp_bind_listener` for each one: `socket()`,
//! `SO_REUSEADDR`, `SO_REUSEPORT`, `bind()`, `listen()`, and the fd goes into `fdtab[]` with
//! `cb[DIR_RD] = proto->accept`, i.e. `stream_sock_accept` (`LI_LISTEN`). On the server
//! side, `tcp_connect_server` opens the connection to the chosen server.

use std::net::SocketAddr;

use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

use crate::haproxy::fd::{FdOwner, FdState, Sock};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::listener::{ListenAddr, Listener, ListenerState, listen_backlog};
use crate::haproxy::protocols::{BindError, ProtoList, Protocol, enable_all_listeners, unbind_all_listeners};
use crate::haproxy::session::{Session, SnErr};
use crate::haproxy::stream_interface::{SiState, Side};
use crate::haproxy::stream_sock::{stream_sock_accept, stream_sock_read, stream_sock_write};
use crate::haproxy::time::tick_add_ifset;
use crate::ids::ListenerId;
use crate::trace::names;

// ANCHOR: proto_tcpv4
/// `proto_tcpv4`: TCP over IPv4.
pub static PROTO_TCPV4: Protocol = Protocol {
    name: "tcpv4",
    sock_domain: libc::AF_INET,
    sock_type: libc::SOCK_STREAM,
    sock_prot: libc::IPPROTO_TCP,
    accept: stream_sock_accept,
    read: stream_sock_read,
    write: stream_sock_write,
    bind: tcp_bind_listener,
    bind_all: tcp_bind_listeners,
    unbind_all: unbind_all_listeners,
    enable_all: enable_all_listeners,
};
// ANCHOR_END: proto_tcpv4

/// `proto_tcpv6`: TCP over IPv6.
pub static PROTO_TCPV6: Protocol = Protocol {
    name: "tcpv6",
    sock_domain: libc::AF_INET6,
    sock_type: libc::SOCK_STREAM,
    sock_prot: libc::IPPROTO_TCP,
    accept: stream_sock_accept,
    read: stream_sock_read,
    write: stream_sock_write,
    bind: tcp_bind_listener,
    bind_all: tcp_bind_listeners,
    unbind_all: unbind_all_listeners,
    enable_all: enable_all_listeners,
};

/// proto_tcp.c:tcpv4_add_listener() in 1.5-dev8: attach a new listener to `proto_tcpv4`
/// (or `proto_tcpv6` for an IPv6 address) and move it to `LI_ASSIGNED`.
pub fn tcpv4_add_listener(protocols: &mut ProtoList, l: &mut Listener) {
    let _s = tracing::info_span!(names::TCPV4_ADD_LISTENER, listener = l.id.0, addr = %l.addr).entered();
    crate::haproxy::step_point(names::TCPV4_ADD_LISTENER, || crate::haproxy::View::Listener(l));
    if l.state != ListenerState::LI_INIT {
        return;
    }
    l.proto = match l.addr {
        ListenAddr::Inet(SocketAddr::V6(_)) => &PROTO_TCPV6,
        _ => &PROTO_TCPV4,
    };
    l.set_state(ListenerState::LI_ASSIGNED);
    protocols.attach(l.proto, l.id);
}

/// proto_tcp.c:tcp_bind_listeners() in 1.5-dev8: bind every listener of the protocol.
pub fn tcp_bind_listeners(w: &mut Haproxy, proto: &'static Protocol) -> Result<(), BindError> {
    let _s = tracing::info_span!(names::TCP_BIND_LISTENERS, proto = %proto.name).entered();
    for lid in w.protocols.listeners_of(proto) {
        (proto.bind)(w, lid)?;
    }
    Ok(())
}

// ANCHOR: bind_inet
/// `socket()`, `SO_REUSEADDR`, `SO_REUSEPORT` (unless `noreuseport`), `bind()`, `listen()`.
/// 1.5 sets `SO_REUSEPORT` wherever the system has it, ignoring a failure. On Linux
/// (3.9 and later) it lets a new process bind the port while the old one still listens:
/// both sockets listen and the kernel spreads new connections over them, so a reload
/// needs no pause. Without it, `bind()` fails with `EADDRINUSE` until the old process
/// pauses its listener (`SIGTTOU`, `pause_listener`).
pub fn bind_inet(addr: SocketAddr, backlog: i32, reuseport: bool) -> std::io::Result<mio::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(SockProtocol::TCP))?;
    sock.set_nonblocking(true)?;
    sock.set_reuse_address(true)?;
    if reuseport {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt(2) on the socket just created, reading one int we own. Like
        // 1.5, a failure is ignored.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    sock.bind(&addr.into())?;
    sock.listen(backlog)?;
    Ok(mio::net::TcpListener::from_std(sock.into()))
}
// ANCHOR_END: bind_inet

// ANCHOR: tcp_bind_listener
/// proto_tcp.c:tcp_bind_listener() in 1.5-dev8: create, bind and listen on the socket,
/// then register it in `fdtab[]` with `cb[DIR_RD] = proto->accept` (`LI_LISTEN`).
/// A listener that is not `LI_ASSIGNED` is already bound (or deleted): nothing to do, and
/// no span.
pub fn tcp_bind_listener(w: &mut Haproxy, lid: ListenerId) -> Result<(), BindError> {
    let l = &w.listeners[lid.idx()];
    if l.state != ListenerState::LI_ASSIGNED {
        return Ok(());
    }
    let span = tracing::info_span!(names::TCP_BIND_LISTENER, listener = lid.0, addr = %l.addr, fd = tracing::field::Empty, from = %l.state, to = tracing::field::Empty);
    let _g = span.enter();
    crate::haproxy::step_point(names::TCP_BIND_LISTENER, || {
        crate::haproxy::View::Listeners(&w.proxies, &w.listeners)
    });
    let l = &w.listeners[lid.idx()];
    let res = match &l.addr {
        ListenAddr::Inet(a) => bind_inet(*a, listen_backlog(l), !w.global.noreuseport),
        ListenAddr::InheritedFd(n) => match w.fdtab.adopt_inherited(*n) {
            Ok(Sock::TcpListener(t)) => Ok(t),
            Ok(other) => {
                // A UNIX socket handed to a TCP listener: give it back untouched.
                let _ = other.into_raw_fd();
                Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a TCP socket"))
            }
            Err(e) => Err(e),
        },
        ListenAddr::Unix(_) => unreachable!("UNIX listeners belong to proto_uxst"),
    };
    let addr_txt = match &l.addr {
        ListenAddr::Inet(a) => format!("[{a}]"),
        other => format!("[{other}]"),
    };
    let listener = res.map_err(|e| BindError {
        msg: format!("cannot bind socket ({}) for {addr_txt}", os_reason(&e)),
        retryable: true,
    })?;
    let proto = l.proto;
    let bound = listener.local_addr().ok();
    let fd = w
        .fdtab
        .fd_insert(
            w.poller.registry(),
            Sock::TcpListener(listener),
            FdOwner::Listener(lid),
            [Some(proto.accept), None],
            FdState::FD_STLISTEN,
        )
        .map_err(|e| BindError {
            msg: format!("cannot register socket ({e}) {addr_txt}"),
            retryable: false,
        })?;
    let l = &mut w.listeners[lid.idx()];
    // For port 0 the kernel picked the port: keep it, so the listener shows where it listens.
    if let (ListenAddr::Inet(a), Some(b)) = (&l.addr, bound)
        && a.port() == 0
    {
        l.addr = ListenAddr::Inet(b);
    }
    l.fd = Some(fd);
    l.set_state(ListenerState::LI_LISTEN);
    span.record("fd", fd.0);
    span.record("to", tracing::field::display(l.state));
    Ok(())
}
// ANCHOR_END: tcp_bind_listener

/// The strerror-like reason HAProxy prints ("Address already in use").
pub fn os_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// proto_tcp.c:tcp_connect_server() in 1.5-dev8: open a non-blocking connection to the
/// session's server address and register it in `fdtab[]` with `stream_sock_read` /
/// `stream_sock_write`; the stream interface goes `SI_ST_CON` and the connect timeout is
/// armed. The connection's completion shows up later as a write event.
pub fn tcp_connect_server(w: &mut Haproxy, s: &mut Session, addr: SocketAddr) -> SnErr {
    let span = tracing::debug_span!(names::TCP_CONNECT_SERVER, sess = s.uniq_id, addr = %addr, fd = tracing::field::Empty, err = tracing::field::Empty);
    let _g = span.enter();
    crate::haproxy::step_point(names::TCP_CONNECT_SERVER, || crate::haproxy::View::Session(w, &*s));
    let stream = match mio::net::TcpStream::connect(addr) {
        Ok(st) => st,
        Err(e) => {
            let err = match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EADDRINUSE | libc::EADDRNOTAVAIL | libc::EMFILE | libc::ENFILE) => {
                    SnErr::SN_ERR_RESOURCE
                }
                Some(libc::ETIMEDOUT) => SnErr::SN_ERR_SRVTO,
                _ => SnErr::SN_ERR_SRVCL,
            };
            span.record("err", tracing::field::display(err));
            return err;
        }
    };
    let _ = stream.set_nodelay(true);
    let proto = if addr.is_ipv6() { &PROTO_TCPV6 } else { &PROTO_TCPV4 };
    let fd = match w.fdtab.fd_insert(
        w.poller.registry(),
        Sock::Tcp(stream),
        FdOwner::Si(s.id, Side::Srv),
        [Some(proto.read), Some(proto.write)],
        FdState::FD_STCONN,
    ) {
        Ok(fd) => fd,
        Err(_) => return SnErr::SN_ERR_RESOURCE,
    };
    // Poll for writability to learn when the connection completes (speculatively first).
    w.fdtab.fd_want_send(fd);
    let be = &w.proxies[s.be.idx()];
    let si = &mut s.si[Side::Srv as usize];
    si.fd = Some(fd);
    si.set_state(SiState::SI_ST_CON);
    si.exp = tick_add_ifset(w.clock.now_ms, be.timeout.connect);
    span.record("fd", fd.0);
    SnErr::SN_ERR_NONE
}
