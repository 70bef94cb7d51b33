//! Side by side with HAProxy 2.6: the same haproxy.cfg, the same requests (valid and
//! malformed), the same backends; the status codes and termination states must match.
//! Skips with a reason when `haproxy` is missing; fails under `CI` (`.ci/run` installs it).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http_mode::term;
use crate::util::*;

const CFG: &str = r#"
global
    log stdout format raw local0
    tune.bufsize 4096
    tune.http.maxhdr 10
defaults
    mode http
    log global
    option httplog
    timeout connect 300ms
    timeout client 3s
    timeout server 300ms
    timeout http-request 300ms
    retries 1
frontend fe
    bind "127.0.0.1:${PORT}"
    http-request deny if { path /deny }
    http-request deny deny_status 429 if { path /deny429 }
    http-request return status 200 content-type text/plain string "ok" if { path /return }
    http-request redirect location /x if { path /redir }
    use_backend be_none if { path /none }
    use_backend be_refused if { path /refused }
    use_backend be_close if { path /close }
    use_backend be_garbage if { path /garbage }
    use_backend be_silent if { path /silent }
    default_backend be_ok
backend be_ok
    server s1 "${OK}"
backend be_none
backend be_refused
    server s1 "${REFUSED}"
backend be_close
    server s1 "${CLOSE}"
backend be_garbage
    server s1 "${GARBAGE}"
backend be_silent
    server s1 "${SILENT}"
"#;

pub struct Haproxy {
    child: Child,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub addr: SocketAddr,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_haproxy(env: &[(&str, String)]) -> Option<Haproxy> {
    start_haproxy_with(CFG, env)
}

pub fn start_haproxy_with(cfg: &str, env: &[(&str, String)]) -> Option<Haproxy> {
    if !have_tool("haproxy") {
        return None;
    }
    let path = tmpdir("sbs").join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let port = free_port();
    let mut cmd = Command::new("haproxy");
    cmd.args(["-db", "-f"])
        .arg(&path)
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let l2 = Arc::clone(&logs);
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(line);
        }
    });
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(eventually(SOON, || std::net::TcpStream::connect(addr).is_ok()), "haproxy listens");
    // The probe connection above is logged as an empty request; wait for it to settle.
    eventually(Duration::from_secs(1), || !logs.lock().unwrap().is_empty());
    Some(Haproxy { child, logs, addr })
}

/// Sends `bytes` on a new connection; returns the status of the first response (if any).
fn exchange(addr: SocketAddr, bytes: &[u8], stall: bool) -> Option<u16> {
    let mut c = Conn::connect(addr, SOON).ok()?;
    c.send_raw(bytes).ok()?;
    if stall {
        let out = c.read_to_close().ok()?;
        let text = String::from_utf8_lossy(&out);
        return text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    }
    c.read_response(false).ok().map(|r| r.status)
}

fn last_log_after(logs: &dyn Fn() -> Vec<String>, before: usize) -> String {
    let mut found = String::new();
    eventually(SOON, || {
        let l = logs();
        if l.len() > before {
            found = l[l.len() - 1].clone();
            true
        } else {
            false
        }
    });
    found
}

#[test]
fn haflow_and_haproxy_give_the_same_statuses_and_termination_states() {
    let ok = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let refused = backend(BackendSpec::Refuse);
    let close = backend(BackendSpec::Http(HttpBehaviour { close_early: true, ..HttpBehaviour::named("c") }));
    let garbage = backend(BackendSpec::Http(HttpBehaviour { garbage: true, ..HttpBehaviour::named("g") }));
    let silent = backend(BackendSpec::BlackHole);
    let env = vec![
        ("OK", a(ok.addr())),
        ("REFUSED", a(refused.addr())),
        ("CLOSE", a(close.addr())),
        ("GARBAGE", a(garbage.addr())),
        ("SILENT", a(silent.addr())),
    ];
    let Some(hap) = start_haproxy(&env) else { return };
    let mut env_hf = env.clone();
    env_hf.push(("PORT", "0".into()));
    let hf = proxy(CFG, &env_hf);

    let get = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: example.com\r\n\r\n").into_bytes();
    let big_head = format!("GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n", "a".repeat(3500)).into_bytes();
    let hs: String = (0..12).map(|i| format!("H{i}: v\r\n")).collect();
    let many_headers = format!("GET / HTTP/1.1\r\n{hs}\r\n").into_bytes();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("valid GET", get("/"), false),
        ("deny", get("/deny"), false),
        ("deny_status 429", get("/deny429"), false),
        ("return", get("/return"), false),
        ("redirect", get("/redir"), false),
        ("no server", get("/none"), false),
        ("refused server", get("/refused"), false),
        ("server closes early", get("/close"), false),
        ("server answers garbage", get("/garbage"), false),
        ("server never answers", get("/silent"), false),
        ("malformed request line", b"GET\r\n\r\n".to_vec(), false),
        ("bare LF", b"GET / HTTP/1.1\nHost: h\n\n".to_vec(), false),
        ("invalid header name", b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n".to_vec(), false),
        ("space before colon", b"GET / HTTP/1.1\r\nX-A : x\r\n\r\n".to_vec(), false),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n b\r\n\r\n".to_vec(), false),
        ("invalid content-length", b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n".to_vec(), false),
        ("duplicate different content-length", b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx".to_vec(), false),
        ("CL and TE", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(), false),
        ("TE chunked not last", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(), false),
        ("TE gzip", b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), false),
        ("invalid chunk size", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(), false),
        ("half a request then stall", b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec(), true),
        // First bytes that cannot start a request line: 400 at once, not at the timeout.
        ("HTTP/0.9 request", b"GET /\r\n".to_vec(), false),
        ("TLS client hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec(), false),
        ("binary garbage", b"\x00\x01\x02hello\r\n".to_vec(), false),
        ("two spaces in the request line", b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), false),
        ("tabs in the request line", b"GET\t/\tHTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), false),
        ("chunk size with a trailing space", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n".to_vec(), false),
        ("chunk size with 20 leading zeros", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n000000000000000000005\r\nhello\r\n0\r\n\r\n".to_vec(), false),
        ("bare CR in a chunk extension", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\rc\r\nhello\r\n0\r\n\r\n".to_vec(), false),
        ("head larger than bufsize - maxrewrite", big_head.clone(), false),
        ("more than tune.http.maxhdr headers", many_headers.clone(), false),
    ];
    let hap_logs = || hap.logs.lock().unwrap().clone();
    let hf_logs = || hf.logs();
    let mut diffs = Vec::new();
    for (name, bytes, stall) in &cases {
        let (b1, b2) = (hap_logs().len(), hf_logs().len());
        let s1 = exchange(hap.addr, bytes, *stall);
        let s2 = exchange(hf.addr("fe"), bytes, *stall);
        let l1 = last_log_after(&hap_logs, b1);
        let l2 = last_log_after(&hf_logs, b2);
        let (t1, t2) = (term(&l1).to_string(), term(&l2).to_string());
        if s1 != s2 || t1 != t2 {
            diffs.push(format!("{name}: haproxy {s1:?} {t1} | haflow {s2:?} {t2}\n  hap: {l1}\n  hf:  {l2}"));
        }
    }
    assert!(diffs.is_empty(), "differences with HAProxy 2.6:\n{}", diffs.join("\n"));
    assert_idle(&hf);
}

const CFG_FAULTS: &str = r#"
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 300ms
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    default_backend be
backend be
    server s1 "${S1}"
"#;

/// The status line a client gets (if any) and whether the proxy then closed the connection
/// within a second.
fn status_then_close(addr: SocketAddr) -> (Option<u16>, bool) {
    let mut c = Conn::connect(addr, SOON).unwrap();
    c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    c.set_timeout(Duration::from_secs(1)).unwrap();
    let out = c.read_to_close();
    let closed = out.is_ok();
    let bytes = out.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    (text.split_whitespace().nth(1).and_then(|s| s.parse().ok()), closed)
}

#[test]
fn broken_servers_and_leaving_clients_end_like_with_haproxy() {
    if !have_tool("haproxy") {
        return;
    }
    let servers: [(&str, &[u8], Then); 5] = [
        ("invalid chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Then::Stay),
        (
            "no CRLF after chunk data",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
            Then::Stay,
        ),
        (
            "invalid trailer",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
            Then::Stay,
        ),
        (
            "close after a partial size line",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5",
            Then::Close,
        ),
        ("reset mid-body", b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial", Then::Reset),
    ];
    let mut diffs = Vec::new();
    for (name, answer, then) in servers {
        let srv = ScriptedServer::start(answer, then);
        let env = [("S1", a(srv.addr()))];
        let Some(hap) = start_haproxy_with(CFG_FAULTS, &env) else { return };
        let hf = proxy(CFG_FAULTS, &[("S1", a(srv.addr())), ("PORT", "0".into())]);
        let (b1, b2) = (hap.logs.lock().unwrap().len(), hf.logs().len());
        let r1 = status_then_close(hap.addr);
        let r2 = status_then_close(hf.addr("fe"));
        let l1 = last_log_after(&|| hap.logs.lock().unwrap().clone(), b1);
        let l2 = last_log_after(&|| hf.logs(), b2);
        // A 502 leaves the client connection open for its next request (both keep it), a
        // cut response closes it: the status and the close must match, and the log's.
        if r1.0 != r2.0 || (r1.0 != Some(502) && r1.1 != r2.1) || term(&l1) != term(&l2) {
            diffs.push(format!("{name}: haproxy {r1:?} {l1}\n  haflow {r2:?} {l2}"));
        }
        assert_idle(&hf);
    }
    // A client that reads one byte of a long download and resets: `CD--` on both.
    let big = backend(BackendSpec::Http(HttpBehaviour { body_size: 8 << 20, ..HttpBehaviour::named("s1") }));
    let env = [("S1", a(big.addr()))];
    let Some(hap) = start_haproxy_with(CFG_FAULTS, &env) else { return };
    let hf = proxy(CFG_FAULTS, &[("S1", a(big.addr())), ("PORT", "0".into())]);
    for (who, addr, logs) in [
        ("haproxy", hap.addr, Box::new(|| hap.logs.lock().unwrap().clone()) as Box<dyn Fn() -> Vec<String>>),
        ("haflow", hf.addr("fe"), Box::new(|| hf.logs())),
    ] {
        let before = logs().len();
        let mut c = Conn::connect(addr, SOON).unwrap();
        c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(c.read_exact(1).unwrap(), b"H");
        c.abort().unwrap();
        let line = last_log_after(&*logs, before);
        if term(&line) != "CD--" {
            diffs.push(format!("client reset mid-download: {who}: {line}"));
        }
    }
    assert_idle(&hf);
    assert!(diffs.is_empty(), "differences with HAProxy 2.6:\n{}", diffs.join("\n"));
}

/// Runs `prog args` with its fd limit (soft and hard) set to `limit`.
fn run_with_fd_limit(limit: u32, prog: &str, args: &[&str]) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -Sn {limit} && ulimit -Hn {limit} && exec \"$@\""))
        .arg("sh")
        .arg(prog)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What follows the `(pid) : ` of a message line, for comparing two programs' output.
fn without_pid(line: &str) -> String {
    line.split_once(") : ").map_or(line.to_string(), |(head, rest)| {
        format!("{} {rest}", head.split_whitespace().next().unwrap_or(""))
    })
}

#[test]
fn the_fd_limit_is_raised_for_maxconn_or_refused_like_haproxy() {
    if !have_tool("haproxy") {
        return;
    }
    let dir = tmpdir("fdlimit");
    let cfg = |global: &str, port: u16| {
        format!(
            "global\n{global}\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:{port}\n"
        )
    };
    // More connections than the hard limit allows fds for: both refuse to start.
    let path = dir.join("too-many.cfg");
    std::fs::write(&path, cfg("    maxconn 4000", free_port())).unwrap();
    let path = path.to_str().unwrap();
    let hap = run_with_fd_limit(1024, "haproxy", &["-db", "-f", path]).wait_with_output().unwrap();
    let hf = run_with_fd_limit(1024, env!("CARGO_BIN_EXE_haflow"), &["-db", "-f", path])
        .wait_with_output()
        .unwrap();
    let alert = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.starts_with("[ALERT]"))
            .map(without_pid)
            .collect::<Vec<_>>()
    };
    assert_eq!(alert(&hf), alert(&hap), "{}", String::from_utf8_lossy(&hf.stderr));
    assert_eq!(alert(&hf), ["[ALERT] [haproxy.main()] Cannot raise FD limit to 8017, limit is 1024."]);
    assert_eq!((hf.status.code(), hap.status.code()), (Some(1), Some(1)));

    // No maxconn: both derive it from the limit, as `show info` tells.
    let mut maxconn = Vec::new();
    for prog in ["haproxy", env!("CARGO_BIN_EXE_haflow")] {
        let sock = dir.join(format!("{}.sock", maxconn.len()));
        let path = dir.join(format!("derived-{}.cfg", maxconn.len()));
        std::fs::write(&path, cfg(&format!("    stats socket {}", sock.display()), free_port())).unwrap();
        let mut child = run_with_fd_limit(1024, prog, &["-db", "-f", path.to_str().unwrap()]);
        let mut info = String::new();
        eventually(SOON, || {
            info = std::os::unix::net::UnixStream::connect(&sock)
                .and_then(|mut s| {
                    use std::io::{Read, Write};
                    s.write_all(b"show info\n")?;
                    let mut out = String::new();
                    s.read_to_string(&mut out)?;
                    Ok(out)
                })
                .unwrap_or_default();
            info.contains("Maxconn:")
        });
        let _ = child.kill();
        let _ = child.wait();
        let line = info.lines().find(|l| l.starts_with("Maxconn:")).unwrap_or("").to_string();
        maxconn.push(line);
    }
    assert_eq!(maxconn[1], maxconn[0]);
    assert_eq!(maxconn[0], "Maxconn: 498");
}

/// What a client sees of one upgrade attempt: the status of the answer, and whether the
/// tunnel then carried bytes both ways and ended (after its own FIN, or on its own).
fn upgrade_attempt(addr: SocketAddr, req: &[u8], then: TunnelEnd) -> (Option<u16>, bool) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    c.write_all(req).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let status = String::from_utf8_lossy(&got).split_whitespace().nth(1).and_then(|s| s.parse().ok());
    if status != Some(101) {
        return (status, false);
    }
    let echoed = match then {
        TunnelEnd::ClientCloses => {
            c.write_all(b"ping").unwrap();
            let mut e = [0u8; 9];
            let ok = c.read_exact(&mut e).is_ok() && &e == b"echo:ping";
            c.shutdown(std::net::Shutdown::Write).unwrap();
            ok
        }
        TunnelEnd::Idle | TunnelEnd::ServerCloses => true,
    };
    let mut rest = Vec::new();
    let ended = c.read_to_end(&mut rest).is_ok() || rest.is_empty();
    (status, echoed && ended)
}

/// How a test tunnel ends.
#[derive(Clone, Copy, Debug)]
enum TunnelEnd {
    /// The client sends a message, reads its echo, then closes (FIN).
    ClientCloses,
    /// Nobody sends anything: `timeout tunnel` ends it.
    Idle,
    /// The server closes right after its 101.
    ServerCloses,
}

const CFG_TUNNEL: &str = r#"
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 300ms
    timeout client 3s
    timeout server 3s
    timeout tunnel 300ms
frontend fe
    bind "127.0.0.1:${PORT}"
    default_backend be
backend be
    server s1 "${S1}"
"#;

#[test]
fn protocol_switches_end_like_with_haproxy() {
    use crate::upgrade::{UpgradeServer, WS_101, WS_REQ};
    if !have_tool("haproxy") {
        return;
    }
    let no_key = b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let plain = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let cases: [(&str, &[u8], TunnelEnd, bool); 5] = [
        ("WebSocket, the client closes", WS_REQ, TunnelEnd::ClientCloses, false),
        ("WebSocket, idle until timeout tunnel", WS_REQ, TunnelEnd::Idle, false),
        ("WebSocket, the server closes after its 101", WS_REQ, TunnelEnd::ServerCloses, true),
        ("101 to a request without upgrade", plain, TunnelEnd::Idle, false),
        ("WebSocket handshake without a key", no_key, TunnelEnd::Idle, false),
    ];
    let mut diffs = Vec::new();
    for (name, req, end, server_closes) in cases {
        let echo = UpgradeServer::start(WS_101);
        let closing = ScriptedServer::start(WS_101, Then::Close);
        let srv = if server_closes { closing.addr() } else { echo.addr() };
        let Some(hap) = start_haproxy_with(CFG_TUNNEL, &[("S1", a(srv))]) else { return };
        let hf = proxy(CFG_TUNNEL, &[("S1", a(srv)), ("PORT", "0".into())]);
        let (b1, b2) = (hap.logs.lock().unwrap().len(), hf.logs().len());
        let r1 = upgrade_attempt(hap.addr, req, end);
        let r2 = upgrade_attempt(hf.addr("fe"), req, end);
        let l1 = last_log_after(&|| hap.logs.lock().unwrap().clone(), b1);
        let l2 = last_log_after(&|| hf.logs(), b2);
        // An idle tunnel's four timers are armed together with `timeout tunnel`; a write
        // refreshes its side's read timer too, so which side is blamed (`cD` or `sD`)
        // depends on the millisecond the 101 left, on both proxies: only the timeout
        // and the state must match.
        let same = |a: &str, b: &str| match end {
            TunnelEnd::Idle if a.starts_with(['c', 's']) => b.starts_with(['c', 's']) && a[1..] == b[1..],
            _ => a == b,
        };
        if r1 != r2 || !same(term(&l1), term(&l2)) {
            diffs.push(format!("{name}: haproxy {r1:?} {l1}\n  haflow {r2:?} {l2}"));
        }
        assert_idle(&hf);
    }
    assert!(diffs.is_empty(), "differences with HAProxy 2.6:\n{}", diffs.join("\n"));
}

const CFG_SLOW_SERVER: &str = r#"
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 300ms
    timeout client 200ms
    timeout server 3s
    timeout http-request 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    default_backend be
backend be
    server s1 "${S1}"
"#;

/// Two keep-alive GETs to a server that thinks for three times `timeout client`, then a
/// POST whose body pauses for twice `timeout client` halfway: the statuses, and whether
/// the connection was still usable for the next request.
fn slow_server_exchanges(addr: SocketAddr) -> Vec<Option<u16>> {
    let mut c = Conn::connect(addr, SOON).unwrap();
    let mut got = Vec::new();
    for path in ["/a", "/b"] {
        c.send_raw(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()).unwrap();
        got.push(c.read_response(false).ok().map(|r| r.status));
    }
    let mut c = Conn::connect(addr, SOON).unwrap();
    c.send_raw(b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234").unwrap();
    // A slow client (traffic shaping): the rest of the body comes after the pause.
    std::thread::sleep(Duration::from_millis(400));
    got.push(c.send_raw(b"56789").ok().and_then(|()| c.read_response(false).ok()).map(|r| r.status));
    got
}

#[test]
fn timeout_client_does_not_fire_while_the_server_thinks() {
    let slow = backend(BackendSpec::Http(HttpBehaviour {
        delay_before_headers: Some(Duration::from_millis(600)),
        ..HttpBehaviour::named("s1")
    }));
    let env = [("S1", a(slow.addr()))];
    let hf = proxy(CFG_SLOW_SERVER, &[("S1", a(slow.addr())), ("PORT", "0".into())]);
    let got = slow_server_exchanges(hf.addr("fe"));
    assert_eq!(got, [Some(200), Some(200), Some(200)], "haflow");
    let terms: Vec<String> = hf.logs().iter().map(|l| term(l).to_string()).collect();
    assert_eq!(terms, ["----", "----", "----"], "haflow: {:#?}", hf.logs());
    assert_idle(&hf);
    let Some(hap) = start_haproxy_with(CFG_SLOW_SERVER, &env) else { return };
    let before = hap.logs.lock().unwrap().len();
    assert_eq!(slow_server_exchanges(hap.addr), got, "haproxy");
    eventually(SOON, || hap.logs.lock().unwrap().len() >= before + 3);
    let hap_terms: Vec<String> =
        hap.logs.lock().unwrap()[before..].iter().map(|l| term(l).to_string()).collect();
    assert_eq!(hap_terms, terms, "haproxy's termination states");
}

const CFG_ABORTS: &str = r#"
global
    log stdout format raw local0
    stats socket "${SOCK}" level admin
defaults
    mode http
    log global
    option httplog
    timeout connect 300ms
    timeout client 3s
    timeout server 400ms
frontend fe
    bind "127.0.0.1:${PORT}"
    default_backend be
backend be
    server s1 "${S1}"
"#;

/// The error and abort columns of `show stat` for the frontend, the backend and the
/// server, keyed `pxname/svname column` (the empty ones left out).
fn abort_columns(sock: &std::path::Path) -> std::collections::BTreeMap<String, i64> {
    let out = crate::soak::cli(sock, "show stat");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").trim_start_matches("# ").split(',').collect();
    let mut cols = std::collections::BTreeMap::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split(',').collect();
        for w in ["ereq", "econ", "eresp", "cli_abrt", "srv_abrt"] {
            let i = header.iter().position(|h| h == &w).expect("a show stat column");
            if let Some(Ok(v)) = f.get(i).map(|v| v.parse()) {
                cols.insert(format!("{}/{} {w}", f[0], f[1]), v);
            }
        }
    }
    cols
}

/// What changed between two [`abort_columns`], as `key+n` words.
fn counted(
    before: &std::collections::BTreeMap<String, i64>,
    after: &std::collections::BTreeMap<String, i64>,
) -> Vec<String> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d != 0).then(|| format!("{k}+{d}"))
        })
        .collect()
}

/// How a fault of `abort_counters_and_termination_states_match_haproxy` is provoked from
/// the client's side once the request is sent.
#[derive(Clone, Copy, Debug)]
enum ClientDoes {
    /// Reads the whole answer (or until the proxy closes).
    ReadAll,
    /// Reads one byte of the response, then resets the connection.
    ResetAfterOneByte,
}

#[test]
fn abort_counters_and_termination_states_match_haproxy() {
    if !have_tool("haproxy") {
        return;
    }
    let big = backend(BackendSpec::Http(HttpBehaviour { body_size: 8 << 20, ..HttpBehaviour::named("s1") }));
    let cut = ScriptedServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial", Then::Reset);
    let closes = ScriptedServer::start(b"", Then::Close);
    let silent = ScriptedServer::start(b"", Then::Stay);
    let faults = [
        ("client reset mid-body", big.addr(), ClientDoes::ResetAfterOneByte),
        ("server reset mid-body", cut.addr(), ClientDoes::ReadAll),
        ("server close before headers", closes.addr(), ClientDoes::ReadAll),
        ("server timeout", silent.addr(), ClientDoes::ReadAll),
    ];
    let mut diffs = Vec::new();
    for (name, srv, does) in faults {
        let dir = tmpdir("aborts");
        let (hs, fs) = (dir.join(format!("{name}-hap.sock")), dir.join(format!("{name}-hf.sock")));
        let Some(hap) = start_haproxy_with(CFG_ABORTS, &[("S1", a(srv)), ("SOCK", hs.display().to_string())])
        else {
            return;
        };
        let hf =
            proxy(CFG_ABORTS, &[("S1", a(srv)), ("SOCK", fs.display().to_string()), ("PORT", "0".into())]);
        let mut seen = Vec::new();
        for (addr, logs, sock) in [
            (hap.addr, Box::new(|| hap.logs.lock().unwrap().clone()) as Box<dyn Fn() -> Vec<String>>, &hs),
            (hf.addr("fe"), Box::new(|| hf.logs()), &fs),
        ] {
            let before = logs().len();
            let stats_before = abort_columns(sock);
            let mut c = Conn::connect(addr, SOON).unwrap();
            c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
            match does {
                ClientDoes::ReadAll => {
                    c.set_timeout(Duration::from_secs(2)).unwrap();
                    let _ = c.read_response(false);
                }
                ClientDoes::ResetAfterOneByte => {
                    assert_eq!(c.read_exact(1).unwrap(), b"H");
                    c.abort().unwrap();
                }
            }
            let line = last_log_after(&*logs, before);
            seen.push((term(&line).to_string(), counted(&stats_before, &abort_columns(sock)), line));
        }
        let (h, f) = (&seen[0], &seen[1]);
        if h.0 != f.0 || h.1 != f.1 {
            diffs.push(format!(
                "{name}:\n  haproxy {} {:?}\n  haflow  {} {:?}\n  hap: {}\n  hf:  {}",
                h.0, h.1, f.0, f.1, h.2, f.2
            ));
        }
        assert_idle(&hf);
    }
    assert!(diffs.is_empty(), "differences with HAProxy 2.6:\n{}", diffs.join("\n"));
}

const CFG_SATURATED: &str = r#"
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    retries 2
    timeout connect 200ms
    timeout client 300ms
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    http-request return status 200 content-type text/plain string "ok" if { path /ping }
    default_backend be
backend be
    server s1 "${S1}"
"#;

/// A request and a pipelined one behind it, to a server whose connects time out three
/// times (longer than `timeout client`): the statuses the client gets.
fn connect_timeouts_then_pipelined(addr: SocketAddr) -> Vec<Option<u16>> {
    let mut c = Conn::connect(addr, SOON).unwrap();
    c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /ping HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    (0..2).map(|_| c.read_response(false).ok().map(|r| r.status)).collect()
}

#[test]
fn timeout_client_does_not_fire_while_the_server_is_being_connected() {
    let saturated = backend(BackendSpec::Saturated);
    let env = [("S1", a(saturated.addr()))];
    let hf = proxy(CFG_SATURATED, &[("S1", a(saturated.addr())), ("PORT", "0".into())]);
    let got = connect_timeouts_then_pipelined(hf.addr("fe"));
    // The request was complete: the connect timeouts decide (`sC`), the connection lives
    // on and the pipelined request is answered.
    assert_eq!(got, [Some(503), Some(200)], "haflow");
    assert!(eventually(SOON, || hf.logs().len() >= 2));
    let terms: Vec<String> = hf.logs().iter().map(|l| term(l).to_string()).collect();
    assert_eq!(terms, ["sC--", "LR--"], "haflow: {:#?}", hf.logs());
    assert_idle(&hf);
    let Some(hap) = start_haproxy_with(CFG_SATURATED, &env) else { return };
    let before = hap.logs.lock().unwrap().len();
    assert_eq!(connect_timeouts_then_pipelined(hap.addr), got, "haproxy");
    eventually(SOON, || hap.logs.lock().unwrap().len() >= before + 2);
    let hap_terms: Vec<String> =
        hap.logs.lock().unwrap()[before..].iter().map(|l| term(l).to_string()).collect();
    assert_eq!(hap_terms, terms, "haproxy's termination states");
}

const STICK_CFG: &str = r#"
global
    stats socket "${SOCK}" level admin
defaults
    mode http
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    stick-table type ip size 100 expire 1m store gpc0,conn_cnt,conn_cur,http_req_cnt,http_req_rate(10s),http_err_cnt
    http-request track-sc0 src
    http-request sc-inc-gpc0(0) if { path /mark }
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 3 }
    http-request return status 200 content-type text/plain lf-string "cnt=%[sc0_http_req_cnt] gpc0=%[sc0_get_gpc0] in=%[src,in_table(fe)] t=%[src,table_http_req_cnt(fe)]"
"#;

/// `show table` with the entry's address and remaining time masked.
fn show_table_masked(sock: &std::path::Path) -> String {
    cli(sock, "show table fe\n")
        .lines()
        .map(|l| match l.split_once(": key=") {
            Some((_, rest)) => {
                let words: Vec<&str> =
                    rest.split(' ').map(|w| if w.starts_with("exp=") { "exp=X" } else { w }).collect();
                format!("PTR: key={}", words.join(" "))
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rate_limiting_with_a_stick_table_and_show_table_match_haproxy() {
    let dir = tmpdir("sbs-stick");
    let (hap_sock, hf_sock) = (dir.join("hap.sock"), dir.join("hf.sock"));
    let Some(hap) = start_haproxy_with(STICK_CFG, &[("SOCK", hap_sock.display().to_string())]) else {
        return;
    };
    let hf = proxy(STICK_CFG, &[("SOCK", hf_sock.display().to_string()), ("PORT", "0".into())]);
    let run = |addr: SocketAddr| -> Vec<(u16, String)> {
        ["/", "/mark", "/", "/", "/"]
            .iter()
            .map(|p| {
                let r = haflow::scenario::client::get(addr, p).expect("a response");
                let body = if r.status == 200 { r.text() } else { String::new() };
                (r.status, body)
            })
            .collect()
    };
    let (r1, r2) = (run(hap.addr), run(hf.addr("fe")));
    assert_eq!(r1, r2, "haproxy then haflow");
    assert_eq!(r2.iter().map(|r| r.0).collect::<Vec<_>>(), [200, 200, 200, 429, 429]);
    // Once every session is gone, both tables hold the same entry.
    let mut tables = (String::new(), String::new());
    let settled = eventually(SOON, || {
        tables = (show_table_masked(&hap_sock), show_table_masked(&hf_sock));
        tables.0.contains("use=0") && tables.0 == tables.1
    });
    assert!(settled, "show table differs:\nhaproxy: {}\nhaflow:  {}", tables.0, tables.1);
    for cmd in [
        "show table\n",
        "show table fe data.gpc0 gt 0\n",
        "show table fe data.nope eq 1\n",
        "clear table fe key 10.0.0.1\n",
        "show table zz\n",
    ] {
        let (a, b) = (cli(&hap_sock, cmd), cli(&hf_sock, cmd));
        let mask = |s: &str| {
            s.lines()
                .map(|l| {
                    l.split(": key=").last().unwrap_or("").split(" exp=").next().unwrap_or("").to_string()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(mask(&a), mask(&b), "{cmd}: haproxy {a:?} haflow {b:?}");
    }
    assert_idle_after_clear(&hf, &hf_sock);
}

/// Clears the table, then checks that haflow is idle (the entry was the last object).
fn assert_idle_after_clear(hf: &RunningProxy, sock: &std::path::Path) {
    assert_eq!(cli(sock, "clear table fe\n"), "\n");
    assert_idle(hf);
}

const COOKIE_CFG: &str = r#"
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    http-request deny if { path /deny }
    use_backend fresh if { path /fresh }
    default_backend be
backend be
    cookie SRV insert indirect nocache
    server s1 "${S1}" cookie one
    server s2 "${S2}" cookie two
backend fresh
    cookie SRV insert indirect nocache httponly secure domain example.com
    server s3 "${S3}" cookie three
"#;

#[test]
fn persistence_cookies_match_haproxy() {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let s2 = backend(BackendSpec::Http(HttpBehaviour::named("s2")));
    let fresh = HttpBehaviour {
        headers: vec![("Cache-Control".into(), "max-age=60".into())],
        ..HttpBehaviour::named("s3")
    };
    let s3 = backend(BackendSpec::Http(fresh));
    let env = vec![("S1", a(s1.addr())), ("S2", a(s2.addr())), ("S3", a(s3.addr()))];
    let Some(hap) = start_haproxy_with(COOKIE_CFG, &env) else { return };
    let mut env_hf = env.clone();
    env_hf.push(("PORT", "0".into()));
    let hf = proxy(COOKIE_CFG, &env_hf);
    let cases: [(&str, &str, Option<&str>); 6] = [
        ("a fresh response", "/fresh", None),
        ("no cookie", "/", None),
        ("s2's cookie", "/", Some("SRV=two")),
        ("s1's among others", "/", Some("a=1; SRV=one; b=2")),
        ("an unknown value", "/", Some("SRV=zzz")),
        ("denied, with a cookie", "/deny", Some("SRV=two")),
    ];
    let hap_logs = || hap.logs.lock().unwrap().clone();
    let hf_logs = || hf.logs();
    let mut diffs = Vec::new();
    for (name, path, cookie) in cases {
        let mut req = haflow::scenario::client::Request::get(path);
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        let ask = |addr: SocketAddr| {
            let r = Conn::connect(addr, SOON).unwrap().request(&req).expect("a response");
            let h = |n: &str| r.header(n).map(str::to_string);
            (r.status, h("X-Served-By"), h("Set-Cookie"), h("Cache-control"))
        };
        let (b1, b2) = (hap_logs().len(), hf_logs().len());
        let (r1, r2) = (ask(hap.addr), ask(hf.addr("fe")));
        let (l1, l2) = (last_log_after(&hap_logs, b1), last_log_after(&hf_logs, b2));
        let flags = |l: &str| l.split_whitespace().nth(9).unwrap_or("").to_string();
        // Round robin starts at a different server in each process; a server by cookie must not.
        let same = if cookie.is_some_and(|c| c.contains("one") || c.contains("two")) {
            r1 == r2
        } else {
            (r1.0, r1.2.is_some(), &r1.3) == (r2.0, r2.2.is_some(), &r2.3)
        };
        if !same || flags(&l1) != flags(&l2) {
            diffs.push(format!("{name}: haproxy {r1:?} {} | haflow {r2:?} {}", flags(&l1), flags(&l2)));
        }
    }
    assert!(diffs.is_empty(), "differences with HAProxy 2.6:\n{}", diffs.join("\n"));
}

const CFG_DYNAMIC_SERVERS: &str = r#"
global
    stats socket "${SOCK}" level admin
defaults
    mode http
    timeout connect 300ms
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    stats enable
    stats uri /stats
    stats admin if TRUE
    default_backend be
backend be
    server s1 "${S1}"
backend st
    balance static-rr
    server s1 "${S1}"
backend tcp
    mode tcp
    server s1 "${S1}"
"#;

/// The runtime server commands of the management guide, with their refusals.
const DYNAMIC_SERVER_COMMANDS: &[&str] = &[
    "add server nope/s2 127.0.0.1:1",
    "add server be/s2",
    "add server st/s2 127.0.0.1:1",
    "add server tcp/s2 127.0.0.1:1 proto h2",
    "add server be/s1 127.0.0.1:1",
    "add server be/s2 127.0.0.1:1 cookie c2",
    "add server be/s2 127.0.0.1:1 weight 3",
    "get weight be/s2",
    "set weight be/s2 50%",
    "get weight be/s2",
    "enable health be/s2",
    "enable agent be/s2",
    "del server be/s1",
    "del server be/nope",
    "del server nope/s1",
    "enable server be/s2",
    "del server be/s2",
    "set server be/s2 state maint",
    "del server be/s2",
    "del server be/s2",
    "set server be/s1 fqdn",
    "set server be/s1 fqdn example.com",
];

#[test]
fn runtime_server_commands_answer_like_haproxy() {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let dir = tmpdir("dynsrv");
    let (hs, fs) = (dir.join("hap.sock"), dir.join("hf.sock"));
    let Some(hap) =
        start_haproxy_with(CFG_DYNAMIC_SERVERS, &[("S1", a(s1.addr())), ("SOCK", hs.display().to_string())])
    else {
        return;
    };
    let hf = proxy(
        CFG_DYNAMIC_SERVERS,
        &[("S1", a(s1.addr())), ("SOCK", fs.display().to_string()), ("PORT", "0".into())],
    );
    let mut diffs = Vec::new();
    for cmd in DYNAMIC_SERVER_COMMANDS {
        let (h, f) = (crate::soak::cli(&hs, cmd), crate::soak::cli(&fs, cmd));
        if h != f {
            diffs.push(format!("{cmd}:\n  haproxy {h:?}\n  haflow  {f:?}"));
        }
    }
    // The statistics page's answer to its form, and the state it leaves.
    let form = "s=s1&action=drain&b=be";
    let post = format!("POST /stats HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{form}", form.len());
    let mut answers = Vec::new();
    for (addr, sock) in [(hap.addr, &hs), (hf.addr("fe"), &fs)] {
        let mut c = Conn::connect(addr, SOON).unwrap();
        c.send_raw(post.as_bytes()).unwrap();
        let r = c.read_response(false).unwrap();
        let state = crate::soak::cli(sock, "show servers state be");
        let s1_line = state.lines().find(|l| l.contains(" s1 ")).unwrap_or("").to_string();
        let f: Vec<&str> = s1_line.split(' ').collect();
        answers.push((r.status, r.header("location").map(str::to_string), f.get(6).map(|s| s.to_string())));
    }
    if answers[0] != answers[1] {
        diffs.push(format!("stats POST: haproxy {:?}, haflow {:?}", answers[0], answers[1]));
    }
    assert!(diffs.is_empty(), "differences with HAProxy 2.6:\n{}", diffs.join("\n"));
    assert_idle(&hf);
}

const STICK_ON_CFG: &str = r#"
global
    stats socket "${SOCK}" level admin
defaults
    mode http
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    default_backend be
backend be
    balance roundrobin
    stick-table type ip size 10 expire 1m store conn_cnt
    stick on src
    server s1 "${S1}"
    server s2 "${S2}"
"#;

#[test]
fn stick_on_persistence_and_its_table_match_haproxy() {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let s2 = backend(BackendSpec::Http(HttpBehaviour::named("s2")));
    let dir = tmpdir("sbs-stick-on");
    let (hap_sock, hf_sock) = (dir.join("hap.sock"), dir.join("hf.sock"));
    let env = |sock: &std::path::Path| {
        vec![("S1", a(s1.addr())), ("S2", a(s2.addr())), ("SOCK", sock.display().to_string())]
    };
    let Some(hap) = start_haproxy_with(STICK_ON_CFG, &env(&hap_sock)) else { return };
    let mut env_hf = env(&hf_sock);
    env_hf.push(("PORT", "0".into()));
    let hf = proxy(STICK_ON_CFG, &env_hf);
    let served = |addr: SocketAddr| -> Vec<String> {
        (0..3)
            .map(|_| {
                let r = haflow::scenario::client::get(addr, "/").expect("a response");
                r.header("X-Served-By").unwrap_or("").to_string()
            })
            .collect()
    };
    let (a1, a2) = (served(hap.addr), served(hf.addr("fe")));
    assert!(a1.iter().all(|s| *s == a1[0]) && a2.iter().all(|s| *s == a2[0]), "haproxy {a1:?} haflow {a2:?}");
    let show = |sock: &std::path::Path| {
        let mut out = String::new();
        eventually(SOON, || {
            out = cli(sock, "show table be\n");
            out.contains("use=0")
        });
        out.lines()
            .map(|l| match l.split_once(": key=") {
                Some((_, rest)) => {
                    rest.split(' ').filter(|w| !w.starts_with("exp=")).collect::<Vec<_>>().join(" ")
                }
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
    };
    let (t1, t2) = (show(&hap_sock), show(&hf_sock));
    // Each process may have started its round robin on a different server.
    let norm = |v: Vec<String>, first: &str| {
        let id = if first == "s1" { "1" } else { "2" };
        v.into_iter()
            .map(|l| {
                l.replace(&format!("server_id={id}"), "server_id=N")
                    .replace(&format!("server_key={first}"), "server_key=S")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(norm(t1, &a1[0]), norm(t2, &a2[0]));
    assert_eq!(cli(&hf_sock, "clear table be\n"), "\n");
    assert_idle(&hf);
}

const CFG_MSG_RULES: &str = r#"
global
    log stdout format raw local0
    tune.bufsize 2048
    tune.maxrewrite 128
defaults
    mode http
    log global
    option httplog
    timeout connect 300ms
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    http-request wait-for-body time 300ms if { path /wait } || { path_beg /req }
    http-request auth realm test if { path /auth }
    http-request reject if { path /reject }
    http-request set-header x-hdr1 123456789012345678901234567890123456789012345678901234567890
    http-request set-header x-hdr2 123456789012345678901234567890123456789012345678901234567890 if { path /req2 }
    http-request strict-mode off if { path /req3 }
    http-request set-header x-hdr3 123456789012345678901234567890123456789012345678901234567890 if { path /req3 }
    http-after-response set-header x-after 1
    default_backend be
backend be
    server s1 "${S1}"
"#;

/// What a client gets for each of the message-rule cases: the raw answer (empty when
/// the connection was closed without one).
fn message_rule_answers(addr: SocketAddr) -> Vec<(String, String)> {
    let raw = |bytes: &[u8]| {
        let mut c = Conn::connect(addr, SOON).unwrap();
        c.send_raw(bytes).unwrap();
        c.read_response(false).map(|r| String::from_utf8_lossy(&r.raw).into_owned()).unwrap_or_default()
    };
    let mut out = Vec::new();
    for path in ["/req1", "/req2", "/req3"] {
        let mut req = format!("POST {path} HTTP/1.1\r\nhost: h\r\ncontent-length: 2000\r\n\r\n").into_bytes();
        req.extend(std::iter::repeat_n(b'x', 2000));
        let answer = raw(&req);
        // The server's own answers carry its date; haflow's answers are compared whole.
        let shown = if answer.starts_with("HTTP/1.1 200") {
            answer.lines().next().unwrap_or("").to_string()
        } else {
            answer
        };
        out.push((path.to_string(), shown));
    }
    out.push(("/wait".into(), raw(b"POST /wait HTTP/1.1\r\nhost: h\r\ncontent-length: 10\r\n\r\n01234")));
    out.push(("/auth".into(), raw(b"GET /auth HTTP/1.1\r\nhost: h\r\n\r\n")));
    out.push(("/reject".into(), raw(b"GET /reject HTTP/1.1\r\nhost: h\r\n\r\n")));
    out
}

#[test]
fn wait_for_body_strict_mode_auth_and_reject_end_like_with_haproxy() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let env = [("S1", a(be.addr()))];
    let Some(hap) = start_haproxy_with(CFG_MSG_RULES, &env) else { return };
    let hf = proxy(CFG_MSG_RULES, &[("S1", a(be.addr())), ("PORT", "0".into())]);
    let (b1, b2) = (hap.logs.lock().unwrap().len(), hf.logs().len());
    let r1 = message_rule_answers(hap.addr);
    let r2 = message_rule_answers(hf.addr("fe"));
    assert_eq!(r2, r1, "answers differ from HAProxy 2.6");
    // Both proxies log one line per case, with the same termination states.
    let states = |logs: Vec<String>| -> Vec<String> {
        logs.iter().map(|l| format!("{} {}", term(l), l.rsplit('"').nth(1).unwrap_or(""))).collect()
    };
    let mut l1 = Vec::new();
    let mut l2 = Vec::new();
    eventually(SOON, || {
        l1 = states(hap.logs.lock().unwrap()[b1..].to_vec());
        l2 = states(hf.logs()[b2..].to_vec());
        l1.len() >= 6 && l2.len() >= 6
    });
    l1.sort();
    l2.sort();
    assert_eq!(l2, l1, "termination states differ from HAProxy 2.6");
    assert_idle(&hf);
}

/// A server whose first connection answers half a body and then nothing, and whose
/// second connection answers `200 ok`.
fn half_body_then_ok_server() -> SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for answer in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ] {
            let Ok((mut c, _)) = l.accept() else { return };
            c.set_read_timeout(Some(SOON)).unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(answer);
            // Keep it open until the proxy closes it.
            while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    addr
}

#[test]
fn a_late_response_body_gets_504_and_the_connection_serves_the_next_request_like_haproxy() {
    let cfg = CFG_FAULTS.replace("backend be\n", "backend be\n    http-response wait-for-body time 300ms\n");
    let s1 = half_body_then_ok_server();
    let Some(hap) = start_haproxy_with(&cfg, &[("S1", a(s1))]) else { return };
    let s2 = half_body_then_ok_server();
    let hf = proxy(&cfg, &[("S1", a(s2)), ("PORT", "0".into())]);
    let run = |addr: SocketAddr| -> Vec<String> {
        let mut c = Conn::connect(addr, SOON).unwrap();
        let mut out = Vec::new();
        for path in ["/", "/2"] {
            c.send_raw(format!("GET {path} HTTP/1.1\r\nhost: h\r\n\r\n").as_bytes()).unwrap();
            out.push(
                c.read_response(false)
                    .map(|r| String::from_utf8_lossy(&r.raw).into_owned())
                    .unwrap_or_default(),
            );
        }
        out
    };
    let (b1, b2) = (hap.logs.lock().unwrap().len(), hf.logs().len());
    assert_eq!(run(hf.addr("fe")), run(hap.addr));
    let terms = |logs: Vec<String>| logs.iter().map(|l| term(l).to_string()).collect::<Vec<_>>();
    let (mut t1, mut t2) = (Vec::new(), Vec::new());
    eventually(SOON, || {
        t1 = terms(hap.logs.lock().unwrap()[b1..].to_vec());
        t2 = terms(hf.logs()[b2..].to_vec());
        t1.len() >= 2 && t2.len() >= 2
    });
    assert_eq!(t2, t1);
    assert_eq!(t1, ["sR--", "----"]);
    assert_idle(&hf);
}

/// A server that answers a connection's first request with `200 ok` and then, on its
/// second request, closes (`reset`: with a reset) without a byte of response.
fn answers_once_then_closes(reset: bool) -> SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        while let Ok((mut c, _)) = l.accept() {
            c.set_read_timeout(Some(SOON)).unwrap();
            let mut buf = [0u8; 4096];
            if !matches!(c.read(&mut buf), Ok(n) if n > 0) {
                continue;
            }
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            let _ = c.read(&mut buf);
            if reset {
                let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
            }
        }
    });
    addr
}

#[test]
fn a_kept_alive_request_the_server_drops_is_closed_silently_like_haproxy() {
    // HAProxy (1.5.0 and 2.6 alike, `abort_keep_alive` in http_wait_for_response): when
    // a request that is not the connection's first meets a server close or error before
    // any response byte, the client is closed without a 502 and without a log line, so
    // that it retries as RFC 7230 lets it do for a kept-alive connection.
    for reset in [false, true] {
        let s1 = answers_once_then_closes(reset);
        let Some(hap) = start_haproxy_with(CFG_FAULTS, &[("S1", a(s1))]) else { return };
        let hf = proxy(CFG_FAULTS, &[("S1", a(s1)), ("PORT", "0".into())]);
        let run = |addr: SocketAddr| -> (String, bool) {
            let mut c = Conn::connect(addr, SOON).unwrap();
            c.send_raw(b"GET /1 HTTP/1.1\r\nhost: h\r\n\r\n").unwrap();
            let first = c.read_response(false).map(|r| r.status).unwrap_or_default();
            c.send_raw(b"GET /2 HTTP/1.1\r\nhost: h\r\n\r\n").unwrap();
            c.set_timeout(SOON).unwrap();
            let rest = c.read_to_close();
            (
                format!("{first} then {:?}", rest.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())),
                rest.is_ok(),
            )
        };
        let (b1, b2) = (hap.logs.lock().unwrap().len(), hf.logs().len());
        let (hap_seen, hf_seen) = (run(hap.addr), run(hf.addr("fe")));
        assert_eq!(hf_seen, hap_seen, "reset={reset}");
        assert_eq!(hap_seen, ("200 then Ok(\"\")".to_string(), true), "reset={reset}");
        // One line each, the first request's: the dropped one is not logged.
        let lines = |logs: Vec<String>| {
            logs.iter().filter(|l| l.contains(" fe be/")).map(|l| term(l).to_string()).collect::<Vec<_>>()
        };
        assert!(eventually(SOON, || lines(hap.logs.lock().unwrap()[b1..].to_vec()).len() == 1));
        assert!(eventually(SOON, || lines(hf.logs()[b2..].to_vec()).len() == 1));
        // No later line either: the proxies are idle once the client is closed.
        assert_idle(&hf);
        assert_eq!(lines(hf.logs()[b2..].to_vec()), lines(hap.logs.lock().unwrap()[b1..].to_vec()));
        // A close is no failed response; a reset is, counted by process_session's
        // server-error step (1.5's and 2.6's), not by the analyser.
        let fail = |p: &RunningProxy| p.query(|w| w.find_proxy("be").unwrap().counters.failed_resp);
        assert_eq!(fail(&hf), u64::from(reset), "reset={reset}");
    }
}

const USE_SERVER_CFG: &str = r#"
global
    stats socket "${SOCK}" level admin
defaults
    mode http
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    default_backend be
    http-response set-header X-Srv %[srv_conn(be/s1)],%[srv_queue(be/s1)],%[srv_is_up(be/s2)],%[srv_is_up(be/s3)]
backend be
    balance roundrobin
    use-server s2 if { path_beg /two }
    use-server s3 unless { path_beg /two } || { path_beg /one }
    server s1 "${S1}"
    server s2 "${S2}" check inter 1h
    server s3 "${S3}" track s2
    server s4 "${S4}"
"#;

#[test]
fn use_server_track_and_server_fetches_match_haproxy() {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let s2 = backend(BackendSpec::Http(HttpBehaviour::named("s2")));
    let s3 = backend(BackendSpec::Http(HttpBehaviour::named("s3")));
    let s4 = backend(BackendSpec::Http(HttpBehaviour::named("s4")));
    let dir = tmpdir("sbs-usesrv");
    let (hs, fs) = (dir.join("hap.sock"), dir.join("hf.sock"));
    let env = |sock: &std::path::Path| {
        vec![
            ("S1", a(s1.addr())),
            ("S2", a(s2.addr())),
            ("S3", a(s3.addr())),
            ("S4", a(s4.addr())),
            ("SOCK", sock.display().to_string()),
        ]
    };
    let Some(hap) = start_haproxy_with(USE_SERVER_CFG, &env(&hs)) else { return };
    let mut hf_env = env(&fs);
    hf_env.push(("PORT", "0".into()));
    let hf = proxy(USE_SERVER_CFG, &hf_env);
    let run = |addr: SocketAddr, sock: &std::path::Path| -> Vec<String> {
        let mut out = Vec::new();
        for step in [
            "/two",
            "/one",
            "/one",
            "/x",
            "disable server be/s2",
            // The balancer's next picks after s2 and s3 leave differ (haflow's round robin is
            // not fwrr's): only the first is compared.
            "/two",
            "del server be/s1",
            "del server be/s2",
            "del server be/s3",
            "set server be/s4 state maint",
            "del server be/s4",
        ] {
            if step.starts_with('/') {
                let r = haflow::scenario::client::get(addr, step).expect("a response");
                let by = r.header("X-Served-By").unwrap_or("").to_string();
                out.push(format!("{step} {by} {}", r.header("X-Srv").unwrap_or("")));
            } else {
                out.push(format!("{step}: {}", crate::soak::cli(sock, step).trim_end()));
            }
        }
        out
    };
    // `show stat`'s status and tracked columns (the tracking s3 shows s2's state) first.
    let status = |sock: &std::path::Path| -> Vec<String> {
        let out = crate::soak::cli(sock, "show stat");
        let head: Vec<&str> = out.lines().next().unwrap_or("").split(',').collect();
        let at = |c: &str| head.iter().position(|h| *h == c).unwrap_or(0);
        let (st, tr) = (at("status"), at("tracked"));
        out.lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > tr.max(st))
            .map(|f| format!("{} {} {} {}", f[0], f[1], f[st], f[tr]))
            .collect()
    };
    assert_eq!(status(&hs), status(&fs), "haproxy then haflow");
    assert!(
        status(&fs).iter().any(|l| l.starts_with("be s3 ") && l.ends_with(" be/s2")),
        "{:?}",
        status(&fs)
    );
    let (a1, a2) = (run(hap.addr, &hs), run(hf.addr("fe"), &fs));
    assert_eq!(a1, a2, "haproxy then haflow");
    assert_idle(&hf);
}

const CFG_ADDR_LEVELS: &str = r#"
global
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 300ms
    timeout client 3s
    timeout server 300ms
frontend fe
    bind "127.0.0.1:${PORT}" accept-proxy
    tcp-request connection set-src ipv4(10.0.0.1)
    tcp-request session set-dst ipv4(10.1.0.2)
    http-request set-src hdr(x-src) if { req.hdr(x-src) -m found }
    http-request set-dst ipv4(192.168.9.9) if { req.hdr(x-src) -m found }
    http-request return status 200
    http-after-response set-header x-addrs "%[fc_src] %[fc_dst] %[src]:%[src_port] %[dst]:%[dst_port]"
"#;

/// The `x-addrs` header of three requests on one connection that starts with a PROXY
/// header, the second one setting its source and destination.
fn addr_levels(addr: SocketAddr) -> Vec<Option<String>> {
    let mut c = Conn::connect(addr, SOON).unwrap();
    c.send_raw(b"PROXY TCP4 192.168.0.7 192.168.0.8 1234 80\r\n").unwrap();
    ["", "x-src: 172.16.0.1\r\n", ""]
        .iter()
        .map(|extra| {
            c.send_raw(format!("GET / HTTP/1.1\r\nhost: h\r\n{extra}\r\n").as_bytes()).unwrap();
            c.read_response(false).ok().and_then(|r| r.header("x-addrs").map(str::to_string))
        })
        .collect()
}

#[test]
fn connection_session_and_stream_addresses_match_haproxy() {
    let Some(hap) = start_haproxy_with(CFG_ADDR_LEVELS, &[]) else { return };
    let hf = proxy(CFG_ADDR_LEVELS, &[("PORT", "0".into())]);
    let r1 = addr_levels(hap.addr);
    let r2 = addr_levels(hf.addr("fe"));
    assert_eq!(r2, r1, "addresses differ from HAProxy 2.6");
    // The PROXY header sets the session level, a connection rule the connection's, and
    // `http-request set-src` lasts one request.
    let same = Some("10.0.0.1 127.0.0.1 192.168.0.7:1234 10.1.0.2:80".to_string());
    assert_eq!(
        r2,
        vec![same.clone(), Some("10.0.0.1 127.0.0.1 172.16.0.1:1234 192.168.9.9:80".into()), same]
    );
    assert_idle(&hf);
}
