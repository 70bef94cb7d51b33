//! Protocols: the method tables sockets are driven through, and the start-up passes that
//! bind and enable every listener.
//!
//! Reproduces `protocols.c` and `include/types/protocols.h` (1.5-dev8). A `Protocol` is a
//! table of functions: `proto_tcpv4` says that its listening sockets are accepted by
//! `stream_sock_accept` and its connections are read and written by `stream_sock_read` and
//! `stream_sock_write`, and that its listeners are bound by `tcp_bind_listeners`. HAProxy
//! keeps a list of registered protocols; at start-up `protocol_bind_all` asks each one to
//! bind its listeners and `protocol_enable_all` to start polling them.

use std::fmt;

use crate::haproxy::fd::IoCb;
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::listener::enable_listener;
use crate::ids::ListenerId;
use crate::trace::names;

/// A failure to bind a listener, reported as HAProxy's start-up ALERT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindError {
    /// The message after `Binding [file:line] for frontend NAME: `.
    pub msg: String,
    /// `ERR_RETRYABLE`: the error may vanish if tried again (the port is in use, maybe by
    /// an old process about to pause); otherwise `ERR_FATAL`.
    pub retryable: bool,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

/// `struct protocol`: how sockets of one family are bound, accepted, read and written.
pub struct Protocol {
    /// `"tcpv4"`, `"tcpv6"`, `"unix_stream"`.
    pub name: &'static str,
    /// `AF_INET`, `AF_INET6` or `AF_UNIX`.
    pub sock_domain: i32,
    /// `SOCK_STREAM`.
    pub sock_type: i32,
    /// `IPPROTO_TCP`, or 0 for UNIX sockets.
    pub sock_prot: i32,
    /// Read callback of listening sockets: `stream_sock_accept`.
    pub accept: IoCb,
    /// Read callback of connections: `stream_sock_read`.
    pub read: IoCb,
    /// Write callback of connections: `stream_sock_write`.
    pub write: IoCb,
    /// Binds one listener (`tcp_bind_listener`).
    pub bind: fn(&mut Haproxy, ListenerId) -> Result<(), BindError>,
    /// Binds every listener of the protocol (`tcp_bind_listeners`).
    pub bind_all: fn(&mut Haproxy, &'static Protocol) -> Result<(), BindError>,
    /// Closes every listener of the protocol (`unbind_all_listeners`).
    pub unbind_all: fn(&mut Haproxy, &'static Protocol),
    /// Starts polling every listener of the protocol (`enable_all_listeners`).
    pub enable_all: fn(&mut Haproxy, &'static Protocol),
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol({})", self.name)
    }
}

impl PartialEq for Protocol {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// One registered protocol and its listeners (`proto->listeners`, `proto->nb_listeners`).
#[derive(Debug)]
pub struct ProtoEntry {
    /// The method table.
    pub proto: &'static Protocol,
    /// Listeners attached to it, in configuration order.
    pub listeners: Vec<ListenerId>,
}

/// The list of registered protocols (`protocols` in protocols.c).
#[derive(Debug, Default)]
pub struct ProtoList {
    /// Registered protocols in registration order.
    pub entries: Vec<ProtoEntry>,
}

impl ProtoList {
    /// protocols.c:protocol_register() in 1.5-dev8: make `proto` known.
    /// Divergence: called on first use (`attach`) rather than once from a constructor at
    /// start-up, hence idempotent.
    pub fn protocol_register(&mut self, proto: &'static Protocol) {
        if !self.entries.iter().any(|e| e.proto == proto) {
            self.entries.push(ProtoEntry { proto, listeners: Vec::new() });
        }
    }

    /// Adds a listener to its protocol's list (`LIST_ADDQ(&proto->listeners, ...)`).
    pub fn attach(&mut self, proto: &'static Protocol, l: ListenerId) {
        self.protocol_register(proto);
        if let Some(e) = self.entries.iter_mut().find(|e| e.proto == proto) {
            e.listeners.push(l);
        }
    }

    /// Removes a listener from its protocol's list (`LIST_DEL(&l->proto_list)`).
    pub fn detach(&mut self, proto: &'static Protocol, l: ListenerId) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.proto == proto) {
            e.listeners.retain(|&x| x != l);
        }
    }

    /// The listeners of `proto`.
    pub fn listeners_of(&self, proto: &'static Protocol) -> Vec<ListenerId> {
        self.entries.iter().find(|e| e.proto == proto).map(|e| e.listeners.clone()).unwrap_or_default()
    }
}

/// protocols.c:protocol_bind_all() in 1.5-dev8: every registered protocol binds its
/// listeners. Stops at the first failure, as HAProxy refuses to start half-bound.
pub fn protocol_bind_all(w: &mut Haproxy) -> Result<(), BindError> {
    let _s = tracing::info_span!(names::PROTOCOL_BIND_ALL).entered();
    let protos: Vec<_> = w.protocols.entries.iter().map(|e| e.proto).collect();
    for p in protos {
        (p.bind_all)(w, p)?;
    }
    Ok(())
}

/// protocols.c:protocol_enable_all() in 1.5-dev8: every registered protocol starts
/// polling its listeners.
pub fn protocol_enable_all(w: &mut Haproxy) {
    let _s = tracing::info_span!(names::PROTOCOL_ENABLE_ALL).entered();
    let protos: Vec<_> = w.protocols.entries.iter().map(|e| e.proto).collect();
    for p in protos {
        (p.enable_all)(w, p);
    }
}

/// protocols.c:protocol_unbind_all() in 1.5-dev8: every registered protocol closes its
/// listeners (a start-up that gives up).
pub fn protocol_unbind_all(w: &mut Haproxy) {
    let protos: Vec<_> = w.protocols.entries.iter().map(|e| e.proto).collect();
    for p in protos {
        (p.unbind_all)(w, p);
    }
}

/// protocols.c:enable_all_listeners() in 1.5-dev8: `enable_listener` on each listener.
pub fn enable_all_listeners(w: &mut Haproxy, proto: &'static Protocol) {
    let _s = tracing::info_span!(names::ENABLE_ALL_LISTENERS, proto = %proto.name).entered();
    for l in w.protocols.listeners_of(proto) {
        enable_listener(w, l);
    }
}

/// protocols.c:unbind_all_listeners() in 1.5-dev8: close every listening socket of the
/// protocol; the listeners go back to `LI_ASSIGNED`.
pub fn unbind_all_listeners(w: &mut Haproxy, proto: &'static Protocol) {
    for lid in w.protocols.listeners_of(proto) {
        crate::haproxy::listener::unbind_listener(w, lid);
    }
}
