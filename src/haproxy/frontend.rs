//! Frontends: what happens to a new session on the client side.
//!
//! Reproduces `frontend.c` (1.5-dev8). `frontend_accept` is the frontend's `accept`, the
//! third of HAProxy's three accept functions (after `stream_sock_accept` and
//! `session_accept`): it sets the client socket's options, prepares logging (the
//! "Connect from" line when no log format is set, the `-d` debug line), sets up the HTTP
//! transaction in HTTP mode, and arms the client timeouts on both buffers.

use crate::haproxy::buffers::BufFlags;
use crate::haproxy::fd::Sock;
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::log::{LOG_INFO, LogFormat, send_log};
use crate::haproxy::proto_http::http_return_srv_error;
use crate::haproxy::proxy::{ProxyMode, ProxyOptions};
use crate::haproxy::session::Session;
use crate::trace::names;

/// `p->accept`: returns `false` to refuse the session.
pub type FrontendAcceptFn = fn(&mut Haproxy, &mut Session) -> bool;

/// frontend.c:frontend_accept() in 1.5-dev8: initialise the client side of a new session.
pub fn frontend_accept(w: &mut Haproxy, s: &mut Session) -> bool {
    let fe = &w.proxies[s.fe.idx()];
    let _sp = tracing::info_span!(names::FRONTEND_ACCEPT, sess = s.uniq_id, fe = %fe.name, mode = %fe.mode)
        .entered();
    crate::haproxy::step_point(names::FRONTEND_ACCEPT, || crate::haproxy::View::Session(w, &*s));
    let (mode, opts, timeout_client, log_format) = (fe.mode, fe.options, fe.timeout.client, fe.log_format);
    let cfd = s.si[0].fd;
    if let Some(Sock::Tcp(t)) = cfd.and_then(|fd| w.fdtab.sock(fd)) {
        // Small writes (HTTP heads, interactive TCP) must not wait for Nagle.
        let _ = t.set_nodelay(true);
        let sock = socket2::SockRef::from(&*t);
        if opts.contains(ProxyOptions::PR_O_TCP_CLI_KA) {
            let _ = sock.set_keepalive(true);
        }
        if opts.contains(ProxyOptions::PR_O_TCP_NOLING) {
            let _ = sock.set_linger(Some(std::time::Duration::ZERO));
        }
    }
    if log_format == LogFormat::None && !w.proxies[s.fe.idx()].logs.is_empty() {
        let fe = &w.proxies[s.fe.idx()];
        let local = cfd.and_then(|fd| match w.fdtab.get(fd).map(|e| &e.sock) {
            Some(Sock::Tcp(t)) => t.local_addr().ok(),
            _ => None,
        });
        let msg = format!(
            "Connect from {} to {} ({}/{})",
            s.cli_addr.map_or_else(|| "unix".into(), |a| a.to_string()),
            local.map_or_else(|| "unix".into(), |a| a.to_string()),
            fe.name,
            if mode == ProxyMode::PR_MODE_HTTP { "HTTP" } else { "TCP" }
        );
        let targets = fe.logs.clone();
        send_log(w, &targets, LOG_INFO, &msg);
    }
    if w.global.debug() {
        let lfd = w.listeners[s.listener.idx()].fd.map_or(0, |f| f.0);
        w.debug_line(format!(
            "{:08x}:{}.accept({:04x})={:04x} from [{}] ALPN=<none>",
            s.uniq_id,
            w.proxies[s.fe.idx()].name,
            lfd as u16,
            cfd.map_or(0, |f| f.0) as u16,
            s.cli_addr.map_or_else(|| "unix".into(), |a| a.to_string())
        ));
    }
    if mode == ProxyMode::PR_MODE_HTTP {
        s.srv_error = http_return_srv_error;
        s.txn.reset();
        // One read is usually enough for a request head: do not try to fill the buffer.
        s.req.flags.insert(BufFlags::BF_READ_DONTWAIT);
    }
    if s.req.analysers.is_empty() {
        s.req.buffer_auto_connect();
        s.req.buffer_auto_close();
    }
    s.req.rto = timeout_client;
    s.rep.wto = timeout_client;
    true
}
