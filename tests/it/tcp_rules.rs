//! TCP rules: `tcp-request connection|session|content` and `tcp-response content` with
//! `inspect-delay`, the layer-6 fetches they read (`req.payload`, `req.len`,
//! `res.payload`), and what they leave for the log (`last_rule_line`, `PR`/`PD`). The
//! same configurations go through HAProxy 2.6 for comparison.

use std::time::{Duration, Instant};

use crate::side_by_side::start_haproxy_with;
use crate::util::*;

const TCP_CFG: &str = r#"
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    tcp-request inspect-delay 2s
    tcp-request content accept if { req.payload(0,5) -m str HELLO }
    tcp-request content reject
    default_backend be
backend be
    server s1 "${S1}"
"#;

/// Sends `first`, then `rest`, and reads what comes back until the close.
fn say(addr: std::net::SocketAddr, first: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut c = Conn::connect(addr, SOON).unwrap();
    c.send_raw(first).unwrap();
    if !rest.is_empty() {
        c.send_raw(rest).unwrap();
    }
    let _ = c.shutdown_write();
    c.read_to_close().unwrap_or_default()
}

#[test]
fn content_rules_wait_for_the_payload_then_accept_or_reject() {
    let echo = backend(BackendSpec::Echo);
    let p = proxy(TCP_CFG, &[("S1", a(echo.addr())), ("PORT", "0".into())]);
    // The first bytes cannot decide: the rule waits for the fifth, then lets all through.
    assert_eq!(say(p.addr("fe"), b"HEL", b"LO world"), b"HELLO world");
    // Anything else is rejected without reaching the server, logged `PR`.
    assert_eq!(say(p.addr("fe"), b"BYE, world", b""), b"");
    let line = wait_log(&p, |l| tcplog_term(l) == "PR");
    // Rejected before the backend was chosen: the frontend stands for it.
    assert!(line.contains(" fe fe/<NOSRV> "), "{line}");
    assert_idle(&p);
    assert_eq!(p.query(|w| w.proxies[0].counters.denied_req), 1);

    let Some(hap) = start_haproxy_with(TCP_CFG, &[("S1", a(echo.addr()))]) else { return };
    assert_eq!(say(hap.addr, b"HEL", b"LO world"), b"HELLO world", "haproxy");
    assert_eq!(say(hap.addr, b"BYE, world", b""), b"", "haproxy");
    assert!(
        eventually(SOON, || hap
            .logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| tcplog_term(l) == "PR" && l.contains(" fe fe/<NOSRV> "))),
        "haproxy logs the reject as PR: {:?}",
        hap.logs.lock().unwrap()
    );
}

#[test]
fn the_inspect_delay_bounds_the_wait_and_ends_it_as_a_non_match() {
    let echo = backend(BackendSpec::Echo);
    let cfg = "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 3s\n    timeout server 3s\n\
               listen fe\n    bind 127.0.0.1:0\n    tcp-request inspect-delay 300ms\n\
               \x20   tcp-request content accept if { req.len ge 5 }\n    tcp-request content reject\n\
               \x20   server s1 \"${S1}\"\n";
    let p = proxy(cfg, &[("S1", a(echo.addr()))]);
    let mut c = connect(p.addr("fe"));
    let t0 = Instant::now();
    c.send_raw(b"abc").unwrap();
    // Three bytes may still become five: nothing happens until the delay ends, then the
    // `accept` does not match and `reject` closes.
    assert_eq!(c.read_to_close().unwrap_or_default(), b"");
    assert!(t0.elapsed() >= Duration::from_millis(250), "closed after {:?}", t0.elapsed());
    // Five bytes decide at once.
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"abcde").unwrap();
    assert_eq!(c.read_exact(5).unwrap(), b"abcde");
    drop(c);
    assert_idle(&p);
}

#[test]
fn connection_and_session_rules_run_at_accept() {
    let cfg = r#"
defaults
    mode http
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend open
    bind 127.0.0.1:0
    tcp-request connection accept if { src 127.0.0.1 }
    tcp-request connection reject
    tcp-request session set-var(sess.tag) str(from-session)
    tcp-request content set-var(txn.seen) req.len
    http-request return status 200 hdr x-tag "%[var(sess.tag)]"
frontend closed
    bind 127.0.0.1:0
    tcp-request connection reject if { src 127.0.0.0/8 }
    http-request return status 200
"#;
    let p = proxy(cfg, &[]);
    let mut c = connect(p.addr("open"));
    c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.header("x-tag")), (200, Some("from-session")));
    drop(c);
    // Rejected before anything is read: no answer, counted in `dcon`, no session left.
    let mut c = connect(p.addr("closed"));
    let _ = c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(c.read_to_close().unwrap_or_default(), b"");
    assert!(eventually(SOON, || p.query(|w| w.proxies[1].counters.denied_conn) == 1));
    assert_idle(&p);
}

#[test]
fn response_rules_reject_a_server_answer_they_refuse() {
    let good = ScriptedServer::start(b"GOOD\n", Then::Close);
    let bad = ScriptedServer::start(b"BAD!\n", Then::Close);
    let cfg = r#"
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    use_backend bad if { req.payload(0,3) -m str bad }
    tcp-request inspect-delay 1s
    tcp-request content accept if { req.len ge 3 }
    default_backend good
backend good
    tcp-response inspect-delay 1s
    tcp-response content reject if { res.payload(0,4) -m str BAD! }
    server s1 "${GOOD}"
backend bad
    tcp-response inspect-delay 1s
    tcp-response content reject if { res.payload(0,4) -m str BAD! }
    server s1 "${BAD}"
"#;
    let env = [("GOOD", a(good.addr())), ("BAD", a(bad.addr()))];
    let mut penv = env.to_vec();
    penv.push(("PORT", "0".into()));
    let p = proxy(cfg, &penv);
    assert_eq!(say(p.addr("fe"), b"ok\r\n\r\n", b""), b"GOOD\n");
    assert_eq!(say(p.addr("fe"), b"bad\r\n\r\n", b""), b"");
    let line = wait_log(&p, |l| tcplog_term(l) == "PD");
    assert!(line.contains(" fe bad/s1 "), "{line}");
    assert_idle(&p);

    let Some(hap) = start_haproxy_with(cfg, &env) else { return };
    assert_eq!(say(hap.addr, b"ok\r\n\r\n", b""), b"GOOD\n", "haproxy");
    assert_eq!(say(hap.addr, b"bad\r\n\r\n", b""), b"", "haproxy");
    assert!(
        eventually(SOON, || hap.logs.lock().unwrap().iter().any(|l| tcplog_term(l) == "PD")),
        "haproxy logs the reject as PD: {:?}",
        hap.logs.lock().unwrap()
    );
}

#[test]
fn the_log_names_the_rule_that_decided() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = r#"
global
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    log-format "lr=%[last_rule_line] st=%ST"
    tcp-request inspect-delay 1s
    tcp-request content accept if { path /tcp }
    http-request deny if { path /deny }
    default_backend be
backend be
    server s1 "${S1}"
"#;
    let p = proxy(cfg, &[("S1", a(b.addr())), ("PORT", "0".into())]);
    let hap = start_haproxy_with(cfg, &[("S1", a(b.addr()))]);
    let mut targets = vec![(p.addr("fe"), None)];
    if let Some(h) = &hap {
        targets.push((h.addr, Some(h)));
    }
    for (addr, h) in targets {
        let mut c = Conn::connect(addr, SOON).unwrap();
        for path in ["/tcp", "/deny", "/other"] {
            c.send_raw(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()).unwrap();
            c.read_response(false).unwrap();
        }
        let logs = || match h {
            None => p.logs(),
            Some(h) => h.logs.lock().unwrap().clone(),
        };
        // (HAProxy's start-up probe is logged as a 400: left out.)
        let ours = || -> Vec<String> {
            logs().into_iter().filter(|l| l.starts_with("lr=") && !l.ends_with("st=400")).collect()
        };
        assert!(eventually(SOON, || ours().len() >= 3));
        let lines = ours();
        // Line 14 is the `accept`, 15 the `deny`; a request no final rule stopped has none.
        assert_eq!(
            lines,
            ["lr=14 st=200", "lr=15 st=403", "lr=- st=200"],
            "{}",
            if h.is_some() { "haproxy" } else { "haflow" }
        );
    }
    assert_idle(&p);
}

#[test]
fn unique_ids_go_to_the_header_the_log_and_the_fetch() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = r#"
global
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    unique-id-format %{+X}o\ ID-%[req.hdr(in)]
    unique-id-header X-Unique-ID
    log-format "id=%ID"
    http-after-response set-header x-id %[unique-id]
    default_backend be
backend be
    server s1 "${S1}"
"#;
    let p = proxy(cfg, &[("S1", a(b.addr())), ("PORT", "0".into())]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\nin: foo\r\n\r\n").unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.header("x-id")), (200, Some("ID-foo")));
    assert_eq!(
        b.requests().last().and_then(|q| q.header("x-unique-id").map(String::from)).as_deref(),
        Some("ID-foo")
    );
    wait_log(&p, |l| l == "id=ID-foo");
    drop(c);
    assert_idle(&p);
}

/// Accepts one connection, answers its first `n` request heads with a 2-byte body, and
/// returns every byte it received.
fn record_requests(n: usize) -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let heads = |got: &[u8]| got.windows(4).filter(|w| w == b"\r\n\r\n").count();
    recording_server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", heads, n)
}

const SWITCH_CFG: &str = r#"
defaults
    mode tcp
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${PORT}"
    tcp-request inspect-delay 1s
    tcp-request content set-var(req.mode) internal.strm.is_htx,iif(http,tcp)
    tcp-request content switch-mode http if HTTP
    tcp-request content reject
    http-request set-header x-mode %[var(req.mode)]
    default_backend be
backend be
    mode http
    server s1 "${S1}"
"#;

/// Two requests on one connection to `addr`: the bytes of each answer.
fn two_requests(addr: std::net::SocketAddr) -> (Vec<u8>, Vec<u8>) {
    let mut c = Conn::connect(addr, SOON).unwrap();
    let mut one = |path: &str| {
        c.send_raw(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).unwrap();
        c.read_exact(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".len()).unwrap()
    };
    (one("/a"), one("/b"))
}

#[test]
fn switch_mode_http_makes_a_tcp_frontend_run_its_http_rules_for_every_request() {
    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    // The first request's content rules see a TCP stream; `switch-mode http` upgrades it,
    // so the frontend's `http-request` rules run, and the next request is HTTP from the start.
    const UPSTREAM: &str =
        "GET /a HTTP/1.1\r\nhost: x\r\nx-mode: tcp\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\nx-mode: http\r\n\r\n";
    let (s1, srv) = record_requests(2);
    let p = proxy(SWITCH_CFG, &[("S1", a(s1)), ("PORT", "0".into())]);
    assert_eq!(two_requests(p.addr("fe")), (ANSWER.to_vec(), ANSWER.to_vec()));
    assert_eq!(String::from_utf8_lossy(&srv.join().unwrap()), UPSTREAM);
    // What is not HTTP never matches `HTTP`: the last rule rejects it.
    assert_eq!(say(p.addr("fe"), b"SSH-2.0-x\r\n", b""), b"");
    assert_eq!(p.query(|w| w.proxies[0].counters.denied_req), 1);
    assert_idle(&p);

    let (s1, srv) = record_requests(2);
    let Some(hap) = start_haproxy_with(SWITCH_CFG, &[("S1", a(s1))]) else { return };
    assert_eq!(two_requests(hap.addr), (ANSWER.to_vec(), ANSWER.to_vec()), "haproxy");
    assert_eq!(String::from_utf8_lossy(&srv.join().unwrap()), UPSTREAM, "haproxy");
    assert_eq!(say(hap.addr, b"SSH-2.0-x\r\n", b""), b"", "haproxy");
}

#[test]
fn a_tcp_frontend_handing_over_to_an_http_backend_makes_every_request_http() {
    const CFG: &str = r#"
defaults
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    mode tcp
    bind "127.0.0.1:${PORT}"
    default_backend be
backend be
    mode http
    http-request set-header x-name %[be_name]
    server s1 "${S1}"
"#;
    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    const UPSTREAM: &str =
        "GET /a HTTP/1.1\r\nhost: x\r\nx-name: be\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\nx-name: be\r\n\r\n";
    let (s1, srv) = record_requests(2);
    let p = proxy(CFG, &[("S1", a(s1)), ("PORT", "0".into())]);
    assert_eq!(two_requests(p.addr("fe")), (ANSWER.to_vec(), ANSWER.to_vec()));
    assert_eq!(String::from_utf8_lossy(&srv.join().unwrap()), UPSTREAM);
    assert_idle(&p);

    let (s1, srv) = record_requests(2);
    let Some(hap) = start_haproxy_with(CFG, &[("S1", a(s1))]) else { return };
    assert_eq!(two_requests(hap.addr), (ANSWER.to_vec(), ANSWER.to_vec()), "haproxy");
    assert_eq!(String::from_utf8_lossy(&srv.join().unwrap()), UPSTREAM, "haproxy");
}
