//! Shared helpers: start haflow from configuration text, wait for conditions with a
//! deadline, check that nothing leaked, and skip (saying so) what needs a missing tool.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use haflow::scenario::backends::{BackendSpec, HttpBehaviour, RunningBackend};
pub use haflow::scenario::client::Conn;
pub use haflow::scenario::proxy::{RunningProxy, StartOptions};

/// A generous bound for anything that should happen "soon".
pub const SOON: Duration = Duration::from_secs(5);

/// Tests skipped so far in this run for a missing tool.
static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// Whether `tool` (`haproxy`, `halog`, `hatop`, `tmux`, `wrk`) can be run. When it cannot, the
/// test is skipped: it says so on stderr (`SKIP test: no tool`, past the harness's output
/// capture, so that `cargo test` shows it) with the count of skips so far, and it fails
/// instead under `CI`, where `.ci/run` installs every tool.
pub fn have_tool(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: std::path::PathBuf| {
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = std::env::var_os("PATH")
        .is_some_and(|dirs| std::env::split_paths(&dirs).any(|d| runnable(d.join(tool))));
    if !found {
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("a test");
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: {tool} is required under CI (.ci/run installs it)"
        );
        let n = SKIPPED.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = writeln!(std::io::stderr(), "SKIP {test}: no {tool} ({n} skipped so far)");
    }
    found
}

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

/// Asserts that the proxy is idle again: every session gone, every pool back to zero
/// use, no fd left but the process's own (none in CLOSE-WAIT), every fd owned by
/// something that will close it (`haproxy::debug::idle_violations`).
pub fn assert_idle(p: &RunningProxy) {
    let mut last = Vec::new();
    let idle = eventually(SOON, || {
        last = p.query(|w| haflow::haproxy::debug::idle_violations(w));
        last.is_empty()
    });
    assert!(idle, "the proxy is not idle: {last:#?}");
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

/// A port nobody listens on right now (bound, then released), for configurations whose
/// address must be known before the process starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The haflow binary running as its own process (`-db -f cfg`), killed when dropped: what
/// the fd limit or `/proc` samples need, since both are per process.
pub struct HaflowProcess(std::process::Child);

impl HaflowProcess {
    /// Writes `cfg` to a fresh directory tagged `tag` and starts `haflow -db -f` on it,
    /// output discarded.
    pub fn start(tag: &str, cfg: &str) -> HaflowProcess {
        let path = tmpdir(tag).join("haflow.cfg");
        std::fs::write(&path, cfg).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_haflow"))
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        HaflowProcess(child)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for HaflowProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

/// A server for one connection: it reads until `heads(received)` reaches 1, answers
/// `answer`, and so on up to `n` answers; returns every byte it received.
pub fn recording_server(
    answer: &'static [u8],
    heads: fn(&[u8]) -> usize,
    n: usize,
) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(SOON)).unwrap();
        let mut got = Vec::new();
        for i in 1..=n {
            while heads(&got) < i {
                let mut buf = [0u8; 4096];
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => return got,
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                }
            }
            let _ = c.write_all(answer);
        }
        got
    });
    (addr, h)
}

/// What a [`ScriptedServer`] does once it has written its answer to a request.
#[derive(Clone, Copy, Debug)]
pub enum Then {
    /// Keeps the connection and answers the next request the same way.
    Stay,
    /// Closes with a FIN.
    Close,
    /// Closes with an RST (SO_LINGER 0).
    Reset,
    /// Keeps the connection, but closes it after this long without a request (a server's
    /// keep-alive timeout).
    CloseIdleAfter(Duration),
}

/// A server that answers every request head with the same bytes, whatever they are: the
/// broken servers a proxy must survive. It counts the connections it closed on its own.
pub struct ScriptedServer {
    addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    closed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ScriptedServer {
    /// Listens on 127.0.0.1 and answers `answer` to each request head, then does `then`.
    pub fn start(answer: &[u8], then: Then) -> ScriptedServer {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let closed = std::sync::Arc::new(AtomicUsize::new(0));
        let (stop2, closed2, answer) = (stop.clone(), closed.clone(), answer.to_vec());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        let (answer, closed) = (answer.clone(), closed2.clone());
                        std::thread::spawn(move || {
                            if serve_scripted(c, &answer, then) {
                                closed.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ScriptedServer { addr, stop, closed }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections this server closed itself (not because the proxy did).
    pub fn closed(&self) -> usize {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One connection of a [`ScriptedServer`]; true when the server closed it itself.
fn serve_scripted(mut c: std::net::TcpStream, answer: &[u8], then: Then) -> bool {
    use std::io::{Read, Write};
    c.set_nonblocking(false).unwrap();
    let mut pending = Vec::new();
    loop {
        let idle = match then {
            Then::CloseIdleAfter(d) => d,
            _ => Duration::from_secs(30),
        };
        c.set_read_timeout(Some(idle)).unwrap();
        while !pending.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut buf = [0u8; 4096];
            match c.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                // Idle for too long: the server's keep-alive timeout.
                Err(_) => return matches!(then, Then::CloseIdleAfter(_)),
            }
        }
        let end = pending.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        pending.drain(..end);
        if c.write_all(answer).is_err() {
            return false;
        }
        match then {
            Then::Stay | Then::CloseIdleAfter(_) => {}
            Then::Close => return true,
            Then::Reset => {
                let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
                return true;
            }
        }
    }
}

/// Sends `input` on a stats socket as `socat` does (write, shut the write side), and
/// returns everything until the proxy closes.
pub fn cli(path: &std::path::Path, input: &str) -> String {
    let s = std::os::unix::net::UnixStream::connect(path)
        .unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
    s.set_read_timeout(Some(SOON)).unwrap();
    exchange(s, input, |s| s.shutdown(std::net::Shutdown::Write))
}

/// Writes `input`, shuts the write side with `shut_write`, and reads until the peer closes.
pub fn exchange<S: std::io::Read + std::io::Write>(
    mut s: S,
    input: &str,
    shut_write: impl FnOnce(&S) -> std::io::Result<()>,
) -> String {
    s.write_all(input.as_bytes()).unwrap();
    shut_write(&s).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("the CLI answers and closes");
    out
}

/// `n` bytes of a pattern that repeats only every 251 * 256 bytes, so that a byte lost,
/// doubled or moved shows.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Sends `data` then a half-close to `addr` (a proxy in front of an echo server), and
/// returns everything that comes back until the proxy closes.
pub fn echo_through(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    let mut r = c.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut out).map(|_| out)
    });
    c.write_all(data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    reader.join().unwrap().expect("the echo comes back")
}
