//! Shared helpers: start haflow from configuration text, wait for conditions with a
//! deadline, and check that nothing leaked.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use haflow::scenario::backends::{BackendSpec, HttpBehaviour, RunningBackend};
pub use haflow::scenario::client::Conn;
pub use haflow::scenario::proxy::{RunningProxy, StartOptions};

/// A generous bound for anything that should happen "soon".
pub const SOON: Duration = Duration::from_secs(5);

/// Starts a backend or fails the test.
pub fn backend(spec: BackendSpec) -> RunningBackend {
    RunningBackend::start(spec).expect("backend starts")
}

/// Starts haflow from `cfg` with `"${NAME}"` placeholders taken from `env`.
pub fn proxy(cfg: &str, env: &[(&str, String)]) -> RunningProxy {
    match RunningProxy::start(cfg, env) {
        Ok(p) => p,
        Err(e) => panic!("haflow did not start: {e:?}"),
    }
}

/// `addr` as a string for a config placeholder.
pub fn a(addr: SocketAddr) -> String {
    addr.to_string()
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Asserts that every session is gone and every pool is back to zero use.
pub fn assert_idle(p: &RunningProxy) {
    assert!(
        p.wait_idle(SOON),
        "sessions or pool objects left in use: {:?}",
        p.query(|w| (w.sessions.len(), w.pool_stats()))
    );
}

/// Connects a raw client.
pub fn connect(addr: SocketAddr) -> Conn {
    Conn::connect(addr, SOON).expect("connect to haflow")
}

/// The last log line that satisfies `pred`, waiting for it.
pub fn wait_log(p: &RunningProxy, pred: impl Fn(&str) -> bool) -> String {
    let mut found = None;
    eventually(SOON, || {
        found = p.logs().into_iter().rev().find(|l| pred(l));
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no matching log line; logs: {:#?}", p.logs()))
}

/// The termination-state field of a tcplog line (the 7th field).
pub fn tcplog_term(line: &str) -> &str {
    line.split_whitespace().nth(6).unwrap_or("")
}

/// A directory of its own for sockets and configuration files.
pub fn tmpdir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "haflow-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
