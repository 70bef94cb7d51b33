//! Side by side with HAProxy 2.6: the same haproxy.cfg, the same requests (valid and
//! malformed), the same backends; the status codes and termination states must match.
//! Skips with a reason when `haproxy` is missing; fails under `CI` (`.ci/run` installs it).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
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

struct Haproxy {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    addr: SocketAddr,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_haproxy(env: &[(&str, String)]) -> Option<Haproxy> {
    if Command::new("haproxy").arg("-v").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "haproxy is required under CI (.ci/run installs it)");
        eprintln!("skipped: haproxy is not installed (apt-get install haproxy)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("haflow-sbs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, CFG).unwrap();
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
