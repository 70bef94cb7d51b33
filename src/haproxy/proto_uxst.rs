//! UNIX stream sockets: listeners on a filesystem path (`bind /path`, `bind unix@/path`).
//!
//! Reproduces `proto_uxst.c` (1.5-dev8). The same `stream_sock_*` callbacks serve UNIX
//! connections; only binding differs: a stale socket file is removed first, and the
//! file's permissions follow the `mode` option.

use std::os::unix::fs::PermissionsExt;

use crate::haproxy::fd::{FdOwner, FdState, Sock};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::listener::{ListenAddr, Listener, ListenerState};
use crate::haproxy::protocols::{BindError, ProtoList, Protocol, enable_all_listeners, unbind_all_listeners};
use crate::haproxy::stream_sock::{stream_sock_accept, stream_sock_read, stream_sock_write};
use crate::ids::ListenerId;
use crate::trace::names;

/// `proto_unix`: stream sockets in the UNIX domain.
pub static PROTO_UNIX: Protocol = Protocol {
    name: "unix_stream",
    sock_domain: libc::AF_UNIX,
    sock_type: libc::SOCK_STREAM,
    sock_prot: 0,
    accept: stream_sock_accept,
    read: stream_sock_read,
    write: stream_sock_write,
    bind: uxst_bind_listener,
    bind_all: uxst_bind_listeners,
    unbind_all: unbind_all_listeners,
    enable_all: enable_all_listeners,
};

/// proto_uxst.c:uxst_add_listener() in 1.5-dev8: attach a listener to `proto_unix`
/// (`LI_ASSIGNED`).
pub fn uxst_add_listener(protocols: &mut ProtoList, l: &mut Listener) {
    if l.state != ListenerState::LI_INIT {
        return;
    }
    l.proto = &PROTO_UNIX;
    l.set_state(ListenerState::LI_ASSIGNED);
    protocols.attach(l.proto, l.id);
}

/// proto_uxst.c:destroy_uxst_socket() in 1.5-dev8: remove the socket file at `path`
/// unless another process listens on it. A reloaded process has bound the same path:
/// the old one, unbinding, must not remove the new one's socket. A datagram `connect()`
/// tells: `ECONNREFUSED` means nobody listens there any more.
pub fn destroy_uxst_socket(path: &std::path::Path) {
    let Ok(sock) = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::DGRAM, None) else { return };
    let Ok(addr) = socket2::SockAddr::unix(path) else { return };
    if sock.connect(&addr).is_err_and(|e| e.raw_os_error() == Some(libc::ECONNREFUSED)) {
        let _ = std::fs::remove_file(path);
    }
}

/// proto_uxst.c:uxst_bind_listeners() in 1.5-dev8: bind every UNIX listener.
pub fn uxst_bind_listeners(w: &mut Haproxy, proto: &'static Protocol) -> Result<(), BindError> {
    for lid in w.protocols.listeners_of(proto) {
        (proto.bind)(w, lid)?;
    }
    Ok(())
}

/// proto_uxst.c:uxst_bind_listener() in 1.5-dev8: create the socket file and listen on it.
/// Divergence: removes a socket file already at `path` and binds `path` directly; dev8
/// binds `path.PID.tmp` and renames it over the old one, so the path never goes missing
/// during a reload. No `mode`, `uid` or `gid` (a warning at parse time says so).
pub fn uxst_bind_listener(w: &mut Haproxy, lid: ListenerId) -> Result<(), BindError> {
    let l = &w.listeners[lid.idx()];
    let _sp = tracing::info_span!(names::UXST_BIND_LISTENER, listener = lid.0, addr = %l.addr).entered();
    if l.state != ListenerState::LI_ASSIGNED {
        return Ok(());
    }
    let ListenAddr::Unix(path) = &l.addr else { return Ok(()) };
    // A socket file left by a previous run would make bind() fail.
    if std::fs::symlink_metadata(path)
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
    {
        let _ = std::fs::remove_file(path);
    }
    let listener = mio::net::UnixListener::bind(path).map_err(|e| BindError {
        msg: format!(
            "cannot bind UNIX socket ({}) [{}]",
            crate::haproxy::proto_tcp::os_reason(&e),
            path.display()
        ),
        retryable: true,
    })?;
    if let Some(mode) = w.unix_mode(lid) {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
    let fd = w
        .fdtab
        .fd_insert(
            w.poller.registry(),
            Sock::UnixListener(listener),
            FdOwner::Listener(lid),
            [Some(PROTO_UNIX.accept), None],
            FdState::FD_STLISTEN,
        )
        .map_err(|e| BindError { msg: format!("cannot register socket ({e})"), retryable: false })?;
    let l = &mut w.listeners[lid.idx()];
    l.fd = Some(fd);
    l.set_state(ListenerState::LI_LISTEN);
    Ok(())
}
