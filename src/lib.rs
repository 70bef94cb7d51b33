//! haflow: a real HTTP/1.1 and TCP reverse proxy whose insides reproduce HAProxy 1.5's,
//! instrumented so that each step of a connection can be watched.
//!
//! # Layout
//! - `haproxy`: the reproduction, one module per HAProxy C file (`session.rs` is
//!   `session.c`). A connection flows `stream_sock_accept` -> `session_accept` ->
//!   `frontend_accept`, then `process_session` runs the analysers and drives the server
//!   side until `session_free`.
//! - `trace`: the span names (HAProxy's function names) and their consumers.
//! - `ids`: typed ids and the table holding live objects.
//! - `tui`: the live terminal UI (`haflow run --tui`, `scenario run --tui`, `demo`), fed by
//!   span records and snapshots, and the walkthrough's screen.
//! - `scenario`: the proxy in a thread, embedded backends and clients, scenario files and
//!   their runner (tests, `haflow scenario`, the demo).
//! - `walkthrough`: the step-by-step walkthrough (`haflow walkthrough`).
//! - `demo`: `haflow demo`, embedded backends and steady mixed traffic.
//! - `cli`: the command line.
//!
//! # Layers
//! Dependencies run one way, down:
//! ```text
//! cli                                  the command line
//!  -> demo -> tui -> walkthrough -> scenario    the features
//!      -> haproxy                      the proxy core
//!          -> trace, ids               span names and records; ids and tables
//! ```
//! A module names only the ones below it (`tests/it/layers.rs` reads the source and fails
//! otherwise). The core never calls up into a feature: it reports through one interface
//! it owns, `haproxy::haproxy::Observer` (step points, log lines, freed sessions, loop
//! turns, the stop), and the features register theirs on the proxy thread: the TUI's
//! snapshot producer, the walkthrough's stepper, the trace outputs' flush of each turn's
//! span records. `trace` records spans without knowing the proxy: `haproxy::flags` gives
//! it the names of the states and flags it prints.
//!
//! # Threads
//! One thread owns all proxy state and runs `run_poll_loop`; observers only receive
//! copies (span records, snapshots), and commands reach the loop through `Control`.

pub mod cli;
pub mod demo;
pub mod haproxy;
pub mod ids;
pub mod scenario;
pub mod trace;
pub mod tui;
pub mod walkthrough;
