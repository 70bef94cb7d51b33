//! Seamless reload, as HAProxy 1.5 does it, with the real binary: a new process started
//! with `-sf PID` (or `-st PID`) takes the ports of the old one, which finishes its
//! sessions and exits; `SIGTTOU` pauses a process's listeners (`LI_PAUSED`: the kernel
//! refuses new connections) and `SIGTTIN` resumes them; with `noreuseport` the new
//! process must pause the old one to bind, and when it gives up, the old one listens again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use haflow::scenario::client::Request;

use crate::util::*;

/// A haflow process started from a configuration file, with its stderr kept in a file.
struct Proc {
    child: Child,
    stderr: PathBuf,
}

impl Proc {
    /// Starts `haflow -db -f cfg ARGS...`.
    fn start(dir: &Path, tag: &str, cfg: &Path, args: &[String]) -> Proc {
        let stderr = dir.join(format!("{tag}.stderr"));
        let child = Command::new(env!("CARGO_BIN_EXE_haflow"))
            .args(["-db", "-f"])
            .arg(cfg)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Proc { child, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, sig) }, 0);
    }

    /// Waits up to `within` for the process to exit.
    fn exited_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory with `haflow.cfg`: one HTTP frontend on `port` in front of `server`, a
/// stats socket, and `extra_global` in the global section.
fn setup(tag: &str, port: u16, server: SocketAddr, extra_global: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(tag);
    let sock = dir.join("stats.sock");
    let cfg = format!(
        "global\n    stats socket {} level admin\n{extra_global}\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 {server}\n",
        sock.display()
    );
    let path = dir.join("haflow.cfg");
    std::fs::write(&path, cfg).unwrap();
    (dir, path, sock)
}

/// Waits until something answers `GET /` with 200 on `addr`.
fn serving(addr: SocketAddr) -> bool {
    eventually(SOON, || haflow::scenario::client::get(addr, "/").is_ok_and(|r| r.status == 200))
}

/// What the clients of a [`Load`] saw.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    errors: Vec<String>,
}

/// Clients sending `GET /` without a pause until stopped: some over keep-alive
/// connections (reconnecting when the proxy says `Connection: close`), some with a new
/// connection per request.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Tally>>,
}

impl Load {
    fn start(addr: SocketAddr, keep_alive: usize, new_conns: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for i in 0..keep_alive + new_conns {
            let stop = Arc::clone(&stop);
            let per_request = i >= keep_alive;
            clients.push(std::thread::spawn(move || client_loop(addr, per_request, &stop)));
        }
        Load { stop, clients }
    }

    fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for c in self.clients {
            let t = c.join().unwrap();
            all.ok += t.ok;
            all.errors.extend(t.errors);
        }
        all
    }
}

fn client_loop(addr: SocketAddr, per_request: bool, stop: &AtomicBool) -> Tally {
    let mut t = Tally::default();
    let req = if per_request { Request::get("/").header("Connection", "close") } else { Request::get("/") };
    while !stop.load(Ordering::Relaxed) {
        let mut c = match Conn::connect(addr, SOON) {
            Ok(c) => c,
            Err(e) => {
                t.errors.push(format!("connect: {e}"));
                continue;
            }
        };
        loop {
            let closes = match c.request(&req) {
                Ok(r) if r.status == 200 => {
                    t.ok += 1;
                    r.closes_connection()
                }
                Ok(r) => {
                    t.errors.push(format!("status {}", r.status));
                    true
                }
                Err(e) => {
                    t.errors.push(format!("request: {e}"));
                    true
                }
            };
            if closes || per_request || stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    t
}

/// The listener states `show fd` reports on the stats socket (`l.st=...`).
fn listener_states(sock: &Path) -> Vec<String> {
    cli(sock, "show fd\n")
        .lines()
        .filter_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix("l.st=")).map(str::to_string))
        .collect()
}

#[test]
fn sf_reload_under_load_loses_no_request_and_the_old_process_exits() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let port = free_port();
    let (dir, cfg, _) = setup("reload-sf", port, b.addr(), "");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut old = Proc::start(&dir, "p0", &cfg, &[]);
    assert!(serving(addr), "the first process serves: {}", old.stderr());
    let load = Load::start(addr, 8, 4);
    // Three reloads in a row, each in the middle of the traffic.
    for n in 1..=3 {
        let seen = b.requests().len();
        assert!(b.wait_for_requests(seen + 1000, SOON), "the load runs");
        let new = Proc::start(&dir, &format!("p{n}"), &cfg, &["-sf".into(), old.pid().to_string()]);
        let status = old.exited_within(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "reload {n}: the old process exits ({status:?}): {}",
            old.stderr()
        );
        assert!(
            old.stderr().contains("Proxy fe stopped (cumulated conns: FE: "),
            "reload {n}: the old process stopped softly: {}",
            old.stderr()
        );
        old = new;
    }
    // The last process carries the load on its own for a while.
    let seen = b.requests().len();
    assert!(b.wait_for_requests(seen + 1000, SOON), "the last process serves the load");
    let tally = load.finish();
    assert_eq!(tally.errors, Vec::<String>::new(), "no request failed ({} succeeded)", tally.ok);
    assert!(serving(addr), "the last process serves: {}", old.stderr());
}

/// What the book's reload lab shows (book/tools/reload-lab.sh): `wrk` over keep-alive
/// connections while three new processes take over with `-sf`, one after the other.
/// wrk reports every failure it sees (`Socket errors: connect, read, write, timeout`,
/// `Non-2xx or 3xx responses`): none may appear.
#[test]
fn sf_reload_under_wrk_loses_no_request() {
    if !have_tool("wrk") {
        return;
    }
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let port = free_port();
    let (dir, cfg, _) = setup("reload-wrk", port, b.addr(), "");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut old = Proc::start(&dir, "p0", &cfg, &[]);
    assert!(serving(addr), "the first process serves: {}", old.stderr());
    let mut wrk = Command::new("wrk")
        .args(["-c8", "-t2", "-d4s", &format!("http://{addr}/")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for n in 1..=3 {
        let seen = b.requests().len();
        assert!(b.wait_for_requests(seen + 500, SOON), "wrk runs");
        let new = Proc::start(&dir, &format!("p{n}"), &cfg, &["-sf".into(), old.pid().to_string()]);
        let status = old.exited_within(Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "reload {n}: the old process exits: {}", old.stderr());
        old = new;
    }
    assert!(wrk.try_wait().unwrap().is_none(), "the three reloads happened while wrk ran");
    let report = wrk.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "wrk: {text}{}", String::from_utf8_lossy(&report.stderr));
    let served: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.parse().ok()))
        .unwrap_or(0);
    assert!(served > 1000, "wrk sent requests through the reloads: {text}");
    assert!(!text.contains("Socket errors") && !text.contains("Non-2xx"), "no request lost: {text}");
}

#[test]
fn st_reload_ends_the_old_process_at_once_with_its_idle_connections() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let port = free_port();
    let (dir, cfg, _) = setup("reload-st", port, b.addr(), "");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut old = Proc::start(&dir, "old", &cfg, &[]);
    assert!(serving(addr));
    // A keep-alive client idles on the old process: -sf would wait for it, -st does not.
    let mut idle = Conn::connect(addr, SOON).unwrap();
    assert_eq!(idle.request(&Request::get("/")).unwrap().status, 200);
    let _new = Proc::start(&dir, "new", &cfg, &["-st".into(), old.pid().to_string()]);
    let status = old.exited_within(SOON).expect("the old process exits at once");
    assert!(status.success(), "{status:?}: {}", old.stderr());
    assert!(serving(addr));
}

#[test]
fn sf_waits_for_the_old_sessions_and_closes_keep_alive_after_their_next_answer() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let port = free_port();
    let (dir, cfg, _) = setup("reload-sf-ka", port, b.addr(), "");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut old = Proc::start(&dir, "old", &cfg, &[]);
    assert!(serving(addr));
    let mut kept = Conn::connect(addr, SOON).unwrap();
    let first = kept.request(&Request::get("/")).unwrap();
    assert_eq!((first.status, first.header("connection")), (200, None));
    let _new = Proc::start(&dir, "new", &cfg, &["-sf".into(), old.pid().to_string()]);
    // The old process stopped listening but keeps its session: it is still alive.
    assert!(eventually(SOON, || old.stderr().contains("Proxy fe stopped")), "{}", old.stderr());
    assert!(old.exited_within(Duration::from_millis(200)).is_none(), "the old process waits for its session");
    // Its next answer says the connection closes (the frontend is stopped), and then the
    // old process has nothing left and exits.
    let last = kept.request(&Request::get("/")).unwrap();
    assert_eq!((last.status, last.header("connection")), (200, Some("close")));
    let status = old.exited_within(SOON).expect("the old process exits once its session ended");
    assert!(status.success());
}

#[test]
fn sigttou_pauses_the_listeners_and_sigttin_resumes_them() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let port = free_port();
    let (dir, cfg, sock) = setup("reload-pause", port, b.addr(), "");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let p = Proc::start(&dir, "p", &cfg, &[]);
    assert!(serving(addr), "{}", p.stderr());
    assert_eq!(listener_states(&sock), ["LI_READY"]);
    // A keep-alive client connected before the pause keeps being served.
    let mut kept = Conn::connect(addr, SOON).unwrap();
    assert_eq!(kept.request(&Request::get("/")).unwrap().status, 200);

    p.signal(libc::SIGTTOU);
    assert!(eventually(SOON, || listener_states(&sock) == ["LI_PAUSED"]), "{:?}", listener_states(&sock));
    // The socket no longer listens: the kernel refuses new connections.
    let refused = std::net::TcpStream::connect(addr).map_err(|e| e.kind());
    assert_eq!(refused.err(), Some(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(kept.request(&Request::get("/")).unwrap().status, 200, "a paused process serves its sessions");
    // Its session's end does not resume a paused listener.
    drop(kept);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(listener_states(&sock), ["LI_PAUSED"]);

    p.signal(libc::SIGTTIN);
    assert!(eventually(SOON, || listener_states(&sock) == ["LI_READY"]), "{:?}", listener_states(&sock));
    assert!(serving(addr), "accepted again after SIGTTIN");
    assert!(!p.stderr().contains("failed"), "{}", p.stderr());
}

#[test]
fn without_reuseport_the_new_process_pauses_the_old_one_to_bind() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let port = free_port();
    let (dir, cfg, sock) = setup("reload-noreuseport", port, b.addr(), "    noreuseport\n");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut old = Proc::start(&dir, "old", &cfg, &[]);
    assert!(serving(addr));
    // Without SO_REUSEPORT a second process cannot bind the port...
    let mut alone = Proc::start(&dir, "alone", &cfg, &[]);
    let st = alone.exited_within(SOON).expect("a process without -sf gives up at once");
    assert_eq!(st.code(), Some(1));
    assert!(alone.stderr().contains("cannot bind socket (Address already in use)"), "{}", alone.stderr());
    // ... but with -sf it sends SIGTTOU, the old process pauses, and the port is free.
    let new = Proc::start(&dir, "new", &cfg, &["-sf".into(), old.pid().to_string()]);
    let status = old.exited_within(SOON).expect("the old process exits");
    assert!(status.success(), "{}", old.stderr());
    assert!(serving(addr), "{}", new.stderr());
    assert_eq!(listener_states(&sock), ["LI_READY"]);
}

#[test]
fn a_new_process_that_gives_up_sends_sigttin_and_the_old_one_listens_again() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let port = free_port();
    let (dir, cfg, sock) = setup("reload-give-up", port, b.addr(), "    noreuseport\n");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let old = Proc::start(&dir, "old", &cfg, &[]);
    assert!(serving(addr));
    // The new configuration also needs a port another program holds: the new process pauses
    // the old one, retries for 2 s (200 x 10 ms), then gives up.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg2 = dir.join("new.cfg");
    let text = std::fs::read_to_string(&cfg).unwrap()
        + &format!("frontend fe2\n    bind {}\n    default_backend be\n", taken.local_addr().unwrap());
    std::fs::write(&cfg2, text).unwrap();
    let mut new = Proc::start(&dir, "new", &cfg2, &["-sf".into(), old.pid().to_string()]);
    let st = new.exited_within(Duration::from_secs(10)).expect("the new process gives up");
    assert_eq!(st.code(), Some(1));
    assert!(
        new.stderr().contains("for frontend fe2: cannot bind socket (Address already in use)"),
        "{}",
        new.stderr()
    );
    assert!(new.stderr().contains("Some protocols failed to start their listeners! Exiting."));
    // SIGTTIN: the old process listens again and serves.
    assert!(eventually(SOON, || listener_states(&sock) == ["LI_READY"]), "{:?}", listener_states(&sock));
    assert!(serving(addr), "{}", old.stderr());
}
