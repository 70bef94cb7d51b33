//! Scenarios: the embedded backends, the traffic client, and runs of haflow against them.
//!
//! `backends` holds the servers that sit behind the proxy (an HTTP responder whose
//! misbehaviour is scripted, a TCP echo, a refusing address, a black hole); `client`
//! sends real traffic and parses what comes back. Tests, the demo and the scenario
//! runner all use them.

pub mod backends;
pub mod client;
pub mod proxy;
