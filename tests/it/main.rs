//! Integration tests: one binary, one module per capability. Real sockets on 127.0.0.1,
//! the real proxy on a thread (or the real binary where the command line is the point).

mod book;
mod cache;
mod checks;
mod compression;
mod config;
mod demo;
mod errorfiles;
mod fidelity;
mod http_mode;
mod http_rules;
mod layers;
mod lifecycle;
mod maps;
mod pipelining;
mod proxy_protocol;
mod reload;
mod reuse;
mod scenarios;
mod side_by_side;
mod soak;
mod spans;
mod splice;
mod stats;
mod stick_table;
mod tcp_mode;
mod tcp_rules;
mod trace_export;
mod tui;
mod upgrade;
mod util;
mod walkthrough;
