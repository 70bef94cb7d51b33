//! Scenarios: the embedded backends, the traffic client, runs of haflow against them, and
//! the scenario files that script those runs.
//!
//! `backends` holds the servers that sit behind the proxy (an HTTP responder whose
//! misbehaviour is scripted, a TCP echo, a refusing address, a black hole, a port whose
//! accept queue is full); `client` sends real traffic and parses what comes back; `proxy`
//! runs haflow on a thread; `spec` is the scenario file format, `runner` runs one and
//! checks what it must observe, `catalog` holds the shipped ones; `recent` bounds what
//! they remember; `wire` reads the HTTP/1.1 framing for backends and client alike;
//! `websocket` is a WebSocket echo server and client. Tests, the demo and `haflow scenario`
//! all use them.

pub mod backends;
pub mod catalog;
pub mod client;
pub mod proxy;
pub mod recent;
pub mod runner;
pub mod spec;
pub mod websocket;
mod wire;
