//! The reproduction of HAProxy 1.5: one module per HAProxy C file.
//!
//! Open `haproxy/src/session.c` and `src/haproxy/session.rs` side by side: the functions
//! carry the same names. Module order below follows a connection's life: start-up
//! (`cfgparse`, `protocols`, `proto_tcp`, `listener`), the loop (`haproxy`, `ev_epoll`,
//! `fd`, `task`, `time`, `memory`), a session (`stream_sock`, `session`, `frontend`,
//! `buffers`, `stream_interface`; `pipe` and `raw_sock` for kernel splicing), the server side (`backend`, `queue`, `lb_*`,
//! `server`, `proxy`), HTTP (`proto_http`, `acl`) and what surrounds them (`log`,
//! `checks`, the stats socket: `dumpstats`, `stats`; `errors` for messages on stderr, `flags`
//! for the names traces print).

pub mod acl;
pub mod backend;
pub mod buffers;
pub mod cache;
pub mod cfgcond;
pub mod cfgparse;
pub mod checks;
pub mod compression;
pub mod debug;
pub mod dumpstats;
pub mod errors;
pub mod ev_epoll;
pub mod fd;
pub mod fix;
pub mod flags;
pub mod frontend;
pub mod h1;
#[allow(clippy::module_inception)]
pub mod haproxy;
pub mod http;
pub mod http_act;
pub mod lb_fas;
pub mod lb_fwlc;
pub mod lb_fwrr;
pub mod lb_map;
pub mod listener;
pub mod log;
pub mod map;
pub mod memory;
pub mod mqtt;
pub mod pattern;
pub mod pipe;
pub mod proto_http;
pub mod proto_tcp;
pub mod proto_uxst;
pub mod protocols;
pub mod proxy;
pub mod queue;
pub mod raw_sock;
pub mod regex;
pub mod sample;
pub mod server;
pub mod session;
pub mod standard;
pub mod stats;
pub mod stick_table;
pub mod stream_interface;
pub mod stream_sock;
pub mod task;
pub mod tcp_rules;
pub mod tcpcheck;
pub mod time;
pub mod uri_auth;
pub mod vars;

// Every file marks its step points; they share one short path.
pub use haproxy::{View, step_point};
