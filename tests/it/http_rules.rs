//! HTTP rules that hold, rewrite or end a message, as HAProxy 2.6 runs them:
//! `wait-for-body` (and `option http-buffer-request`, which shares its code), `strict-mode`
//! and rewrites that do not fit in the buffer, `auth`, `reject`, the values `fhdr` reads
//! back, `allow` in a backend's response rules, and the level of client addresses each
//! `set-src`/`set-dst` changes (connection, session, stream). Each test asserts the bytes each side
//! receives and ends with the proxy idle.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use crate::http_mode::{http_cfg, term};
use crate::util::*;

/// A server for one connection that answers the first request head with `head` and
/// `first` body bytes, then the rest of the body once `go` fires (never if `go` is
/// dropped); it reports every byte it received through `got` when the connection ends.
pub struct SlowBodyServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Fires the rest of the body.
    pub go: mpsc::Sender<()>,
    /// What the proxy sent, once it closed.
    pub got: mpsc::Receiver<Vec<u8>>,
}

impl SlowBodyServer {
    pub fn start(head: &'static [u8], first: &'static [u8], rest: &'static [u8]) -> SlowBodyServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (go, go_rx) = mpsc::channel::<()>();
        let (got_tx, got) = mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut c, _)) = l.accept() else { return };
            c.set_read_timeout(Some(SOON)).unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = c.write_all(head);
            let _ = c.write_all(first);
            if go_rx.recv_timeout(SOON).is_ok() {
                let _ = c.write_all(rest);
            }
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            let _ = got_tx.send(seen);
        });
        SlowBodyServer { addr, go, got }
    }
}

/// A raw client: sends `first`, then `rest` once `wait_before_rest` passed (the slow
/// client under test), and returns everything until the proxy closes or goes quiet.
fn slow_client(addr: SocketAddr, first: &[u8], rest: &[u8], wait_before_rest: Duration) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    c.write_all(first).unwrap();
    if !rest.is_empty() {
        std::thread::sleep(wait_before_rest);
        let _ = c.write_all(rest);
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // One whole response is enough when the connection stays open.
                if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if out.len() >= end + 4 + len && !head.contains("connection: close") {
                        break;
                    }
                }
            }
        }
    }
    out
}

fn status_of(bytes: &[u8]) -> Option<u16> {
    String::from_utf8_lossy(bytes).split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

const WAIT_FE: &str = "frontend fe\n    bind 127.0.0.1:0\n\
    \x20   http-request wait-for-body time 300ms if { path /a }\n\
    \x20   http-request wait-for-body time 300ms at-least 10 if { path /b }\n\
    \x20   http-request set-header x-body %[req.body]\n\
    \x20   default_backend be\nbackend be\n    server s1 \"${S1}\"\n";

#[test]
fn wait_for_body_holds_the_request_rules_until_the_whole_body_arrived() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let p = proxy(&http_cfg("", "", WAIT_FE), &[("S1", a(be.addr()))]);
    let out = slow_client(
        p.addr("fe"),
        b"POST /a HTTP/1.1\r\nhost: h\r\ncontent-length: 10\r\n\r\n01234",
        b"56789",
        Duration::from_millis(50),
    );
    assert_eq!(status_of(&out), Some(200), "{}", String::from_utf8_lossy(&out));
    let seen = be.requests();
    assert_eq!(seen.len(), 1);
    // The rule after wait-for-body saw the whole body, and the body went through intact.
    assert_eq!(seen[0].header("x-body"), Some("0123456789"));
    assert_eq!(seen[0].body, b"0123456789");
    assert_idle(&p);
}

#[test]
fn wait_for_body_at_least_lets_the_rules_run_on_the_first_bytes() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let p = proxy(&http_cfg("", "", WAIT_FE), &[("S1", a(be.addr()))]);
    let out = slow_client(
        p.addr("fe"),
        b"POST /b HTTP/1.1\r\nhost: h\r\ncontent-length: 15\r\n\r\n0123456789",
        b"abcde",
        Duration::from_millis(500),
    );
    assert_eq!(status_of(&out), Some(200));
    let seen = be.requests();
    // 10 bytes were enough for the rules; the rest followed once it came, after the
    // 300 ms the rule would have waited for the whole body.
    assert_eq!(seen[0].header("x-body"), Some("0123456789"));
    assert_eq!(seen[0].body, b"0123456789abcde");
    assert_idle(&p);
}

#[test]
fn wait_for_body_answers_408_when_the_request_body_is_late() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let p = proxy(&http_cfg("", "", WAIT_FE), &[("S1", a(be.addr()))]);
    let out = slow_client(
        p.addr("fe"),
        b"POST /a HTTP/1.1\r\nhost: h\r\ncontent-length: 10\r\n\r\n01234",
        b"",
        Duration::ZERO,
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408 Request Time-out\r\n"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    assert!(be.requests().is_empty(), "nothing reached the server");
    let log = wait_log(&p, |l| l.contains("POST /a"));
    assert_eq!(term(&log), "cR--", "{log}");
    assert_idle(&p);
}

#[test]
fn wait_for_body_answers_400_to_a_malformed_chunked_body_without_waiting_for_it() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let p = proxy(&http_cfg("", "", WAIT_FE), &[("S1", a(be.addr()))]);
    // A bad chunk size, then a chunk without its CRLF: both are errors at once (400, as
    // HAProxy 2.6's H1 parser answers), not a body still to come (which would end in 408).
    for body in [&b"zz\r\n"[..], b"3\r\nabcXY0\r\n\r\n"] {
        let mut req = b"POST /a HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        req.extend_from_slice(body);
        let out = slow_client(p.addr("fe"), &req, b"", Duration::ZERO);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 400 Bad request\r\n"), "{text}");
    }
    assert!(be.requests().is_empty(), "nothing reached the server");
    assert_idle(&p);
}

#[test]
fn wait_for_body_on_a_response_waits_then_answers_504_if_the_body_is_late() {
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n\
         \x20   http-response wait-for-body time 300ms\n\
         \x20   http-response set-header x-body %[res.body]\n    server s1 \"${S1}\"\n",
    );
    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n";
    // The rest of the body arrives in time: the rule after wait-for-body sees all of it.
    let srv = SlowBodyServer::start(HEAD, b"01234", b"56789");
    let p = proxy(&cfg, &[("S1", a(srv.addr))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"GET / HTTP/1.1\r\nhost: h\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    srv.go.send(()).unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.header("x-body"), r.text().as_str()), (200, Some("0123456789"), "0123456789"));
    drop(c);
    // It does not: 504, and the server connection is closed.
    let SlowBodyServer { addr, go, got } = SlowBodyServer::start(HEAD, b"01234", b"56789");
    let p2 = proxy(&cfg, &[("S1", a(addr))]);
    let mut c = connect(p2.addr("fe"));
    c.send_raw(b"GET / HTTP/1.1\r\nhost: h\r\n\r\n").unwrap();
    let r = c.read_response(false).unwrap();
    // The client connection stays usable, as with HAProxy 2.6.
    assert_eq!(r.status, 504);
    assert!(!r.closes_connection());
    drop(go);
    let seen = got.recv_timeout(SOON).expect("the proxy closed the server connection");
    assert_eq!(seen, b"GET / HTTP/1.1\r\nhost: h\r\n\r\n");
    let log = wait_log(&p2, |l| l.contains("GET /"));
    assert_eq!(term(&log), "sR--", "{log}");
    drop(c);
    assert_idle(&p);
    assert_idle(&p2);
}

#[test]
fn wait_for_body_keeps_pipelined_requests_apart() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let p = proxy(&http_cfg("", "", WAIT_FE), &[("S1", a(be.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(
        b"POST /a HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\nabc\
          POST /a HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\n\r\n\
          GET /a HTTP/1.1\r\nhost: h\r\n\r\n",
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(c.read_response(false).unwrap().status, 200);
    }
    let seen = be.requests();
    let got: Vec<(Option<&str>, &[u8])> =
        seen.iter().map(|r| (r.header("x-body"), r.body.as_slice())).collect();
    assert_eq!(got, vec![(Some("abc"), &b"abc"[..]), (Some("def"), &b"def"[..]), (Some(""), &b""[..])]);
    drop(c);
    assert_idle(&p);
}

/// tune.bufsize 2048 with 128 bytes kept for rewrites: a request with a 2000-byte body
/// fills the buffer, leaving room for one 60-byte header and not two.
pub const STRICT_CFG: &str = "global\n    log stdout format raw local0\n    tune.bufsize 2048\n    tune.maxrewrite 128\n\
defaults\n    mode http\n    log global\n    option httplog\n    timeout connect 300ms\n    timeout client 3s\n    timeout server 3s\n\
    option http-buffer-request\n\
frontend fe\n    bind \"127.0.0.1:${PORT}\"\n\
    http-request set-header x-hdr1 123456789012345678901234567890123456789012345678901234567890\n\
    http-request set-header x-hdr2 123456789012345678901234567890123456789012345678901234567890 if { path /req2 }\n\
    http-request strict-mode off if { path /req3 }\n\
    http-request set-header x-hdr3 123456789012345678901234567890123456789012345678901234567890 if { path /req3 }\n\
    default_backend be\n\
backend be\n    server s1 \"${S1}\"\n";

/// A 2000-byte POST to `path`: what the client gets back (status).
pub fn strict_post(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut c = Conn::connect(addr, SOON).ok()?;
    let mut req = format!("POST {path} HTTP/1.1\r\nhost: h\r\ncontent-length: 2000\r\n\r\n").into_bytes();
    req.extend(std::iter::repeat_n(b'x', 2000));
    c.send_raw(&req).ok()?;
    c.read_response(false).ok().map(|r| r.status)
}

#[test]
fn a_rewrite_that_does_not_fit_fails_with_500_unless_strict_mode_is_off() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let p = proxy(STRICT_CFG, &[("S1", a(be.addr())), ("PORT", "0".into())]);
    let addr = p.addr("fe");
    assert_eq!(strict_post(addr, "/req1"), Some(200));
    assert_eq!(strict_post(addr, "/req2"), Some(500));
    let log = wait_log(&p, |l| l.contains("/req2"));
    assert_eq!(term(&log), "PR--", "{log}");
    assert_eq!(strict_post(addr, "/req3"), Some(200));
    let seen = be.requests();
    let paths: Vec<(&str, bool, bool)> = seen
        .iter()
        .map(|r| (r.path.as_str(), r.header("x-hdr1").is_some(), r.header("x-hdr3").is_some()))
        .collect();
    // /req2 never reached the server; /req3 went without the header that did not fit.
    assert_eq!(paths, vec![("/req1", true, false), ("/req3", true, false)]);
    assert!(seen.iter().all(|r| r.body.len() == 2000));
    let wrew = p.query(|w| w.proxies.iter().find(|px| px.name == "fe").map(|px| px.counters.failed_rewrites));
    assert_eq!(wrew, Some(2), "both failed rewrites are counted, the skipped one too");
    assert_idle(&p);
}

#[test]
fn auth_answers_401_with_the_realm_and_keeps_the_connection() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    http-request auth if { path /a }\n\
         \x20   http-request auth realm Secret\\ zone if { path /b }\n    default_backend be\n\
         backend be\n    server s1 \"${S1}\"\n",
    );
    let p = proxy(&cfg, &[("S1", a(be.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"GET /a HTTP/1.1\r\nhost: h\r\n\r\nGET /b HTTP/1.1\r\nhost: h\r\n\r\nGET /c HTTP/1.1\r\nhost: h\r\n\r\n")
        .unwrap();
    let body = "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n";
    let expect = |realm: &str| {
        format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nwww-authenticate: Basic realm=\"{realm}\"\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(String::from_utf8_lossy(&c.read_response(false).unwrap().raw), expect("fe"));
    assert_eq!(String::from_utf8_lossy(&c.read_response(false).unwrap().raw), expect("Secret zone"));
    assert_eq!(c.read_response(false).unwrap().status, 200);
    assert_eq!(be.requests().len(), 1, "only /c reached the server");
    drop(c);
    assert_idle(&p);
}

#[test]
fn reject_closes_the_connection_without_an_answer() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    http-request reject if { path /r }\n    default_backend be\n\
         backend be\n    server s1 \"${S1}\"\n",
    );
    let p = proxy(&cfg, &[("S1", a(be.addr()))]);
    let mut c = connect(p.addr("fe"));
    // The pipelined request after the rejected one is never read.
    c.send_raw(b"GET /r HTTP/1.1\r\nhost: h\r\n\r\nGET /ok HTTP/1.1\r\nhost: h\r\n\r\n").unwrap();
    assert_eq!(c.read_to_close().unwrap_or_default(), b"");
    assert!(be.requests().is_empty());
    let log = wait_log(&p, |l| l.contains("GET /r"));
    assert_eq!(term(&log), "PR--", "{log}");
    let denied = p.query(|w| w.proxies.iter().find(|px| px.name == "fe").map(|px| px.counters.denied_req));
    assert_eq!(denied, Some(1));
    assert_idle(&p);
}

#[test]
fn full_header_values_read_back_without_surrounding_blanks() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    http-request set-header sl \"sl: \"\n\
         \x20   http-request set-header sl \"%[req.fhdr(sl)] a=<%[req.fhdr(x)]>\"\n\
         \x20   http-request set-header hdr \"%[req.fhdr(nosuch)] b\"\n\
         \x20   http-request set-header again \"%[req.fhdr(hdr)]\"\n    default_backend be\n\
         backend be\n    server s1 \"${S1}\"\n",
    );
    let p = proxy(&cfg, &[("S1", a(be.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"GET / HTTP/1.1\r\nhost: h\r\nx:   padded\t \r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let seen = be.requests();
    let head = String::from_utf8_lossy(&seen[0].raw_head).into_owned();
    // What set-header wrote is sent as written; what fhdr reads back is trimmed.
    assert!(head.contains("\r\nsl: sl: a=<padded>\r\n"), "{head}");
    assert!(head.contains("\r\nhdr:  b\r\n"), "{head}");
    assert!(head.contains("\r\nagain: b\r\n"), "{head}");
    drop(c);
    assert_idle(&p);
}

#[test]
fn allow_in_the_backend_response_rules_leaves_the_frontend_rules_running() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    http-response set-header x-fe 1\n    default_backend be\n\
         backend be\n    http-response set-header x-be 1\n    http-response allow\n\
         \x20   http-response deny\n    server s1 \"${S1}\"\n",
    );
    let p = proxy(&cfg, &[("S1", a(be.addr()))]);
    let r = haflow::scenario::client::get(p.addr("fe"), "/").unwrap();
    assert_eq!((r.status, r.header("x-be"), r.header("x-fe")), (200, Some("1"), Some("1")));
    assert_idle(&p);
}

#[test]
fn set_uri_with_an_authority_rewrites_the_host_header_and_set_path_does_not() {
    let be = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n\
         \x20   http-request set-uri http://user@new.example:8080%[path] if { path /abs }\n\
         \x20   http-request set-path /p2 if { path /rel }\n    default_backend be\n\
         backend be\n    server s1 \"${S1}\"\n",
    );
    let p = proxy(&cfg, &[("S1", a(be.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"GET /abs HTTP/1.1\r\nhost: old\r\n\r\nGET /rel HTTP/1.1\r\nhost: old\r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let seen: Vec<(String, Option<String>)> =
        be.requests().iter().map(|r| (r.path.clone(), r.header("host").map(str::to_string))).collect();
    assert_eq!(
        seen,
        vec![
            ("http://user@new.example:8080/abs".to_string(), Some("new.example:8080".to_string())),
            ("/p2".to_string(), Some("old".to_string())),
        ]
    );
    drop(c);
    assert_idle(&p);
}

#[test]
fn an_after_response_rewrite_that_does_not_fit_turns_the_response_into_a_500() {
    let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2000\r\n\r\n".to_vec();
    answer.extend(std::iter::repeat_n(b'x', 2000));
    let srv = ScriptedServer::start(&answer, Then::Stay);
    let v60 = "123456789012345678901234567890123456789012345678901234567890";
    let cfg = http_cfg(
        "    tune.bufsize 2048\n    tune.maxrewrite 128",
        "",
        &format!(
            "frontend fe\n    bind 127.0.0.1:0\n    http-request set-var(txn.p) path\n\
             \x20   http-after-response strict-mode off if {{ var(txn.p) -m str /soft }}\n\
             \x20   http-after-response set-header x-a {v60}\n\
             \x20   http-after-response set-header x-b {v60} if {{ var(txn.p) -m str /fail }} || {{ var(txn.p) -m str /soft }}\n\
             \x20   default_backend be\nbackend be\n    server s1 \"${{S1}}\"\n"
        ),
    );
    let p = proxy(&cfg, &[("S1", a(srv.addr()))]);
    let fetch = |path: &str| {
        let mut c = connect(p.addr("fe"));
        c.send_raw(format!("GET {path} HTTP/1.1\r\nhost: h\r\n\r\n").as_bytes()).unwrap();
        let r = c.read_response(false).unwrap();
        (r.status, r.header("x-a").is_some(), r.header("x-b").is_some(), r.body.len())
    };
    assert_eq!(fetch("/ok"), (200, true, false, 2000));
    // The 500 replaces the response, and the after-response rules run again on it
    // (where both headers fit), as 2.6's http_reply_and_close() does.
    assert_eq!(fetch("/fail"), (500, true, true, 97));
    assert_eq!(fetch("/soft"), (200, true, false, 2000));
    let log = wait_log(&p, |l| l.contains("GET /fail"));
    assert_eq!(term(&log), "PH--", "{log}");
    // `wrew` counts both, for the frontend, the backend and the server.
    let wrew = p.query(|w| {
        let px = |n: &str| w.proxies.iter().find(|p| p.name == n).map(|p| p.counters.failed_rewrites);
        let srv = w.proxies.iter().find(|p| p.name == "be").map(|p| p.servers[0].counters.failed_rewrites);
        (px("fe"), px("be"), srv)
    });
    assert_eq!(wrew, (Some(2), Some(2), Some(2)));
    assert_idle(&p);
}

#[test]
fn set_src_changes_the_address_level_of_its_rule_and_http_request_only_for_that_request() {
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n\
         \x20   tcp-request connection set-src ipv4(10.0.0.1)\n\
         \x20   tcp-request connection set-dst ipv4(10.0.0.2)\n\
         \x20   tcp-request connection set-dst-port int(8080)\n\
         \x20   tcp-request session set-src ipv4(10.1.0.1)\n\
         \x20   tcp-request session set-src-port int(4000)\n\
         \x20   http-request set-src hdr(x-src) if { req.hdr(x-src) -m found }\n\
         \x20   http-request set-dst-port int(81) if { req.hdr(x-src) -m found }\n\
         \x20   http-request return status 200\n\
         \x20   http-after-response set-header x-fc \"%[fc_src]:%[fc_src_port] %[fc_dst]:%[fc_dst_port]\"\n\
         \x20   http-after-response set-header x-strm \"%[src]:%[src_port] %[dst]:%[dst_port]\"\n",
    );
    let p = proxy(&cfg, &[]);
    let fe = p.addr("fe");
    let mut c = connect(fe);
    let local_port = c.local_addr().unwrap().port();
    let mut ask = |extra: &str| {
        c.send_raw(format!("GET / HTTP/1.1\r\nhost: h\r\n{extra}\r\n").as_bytes()).unwrap();
        let r = c.read_response(false).unwrap();
        (r.header("x-fc").map(str::to_string), r.header("x-strm").map(str::to_string))
    };
    // The connection level keeps the socket's source port; the session level's source
    // is the `tcp-request session` one, its destination the connection's.
    let fc = Some(format!("10.0.0.1:{local_port} 10.0.0.2:8080"));
    let sess = Some("10.1.0.1:4000 10.0.0.2:8080".to_string());
    assert_eq!(ask(""), (fc.clone(), sess.clone()));
    assert_eq!(ask("x-src: 192.168.0.1\r\n"), (fc.clone(), Some("192.168.0.1:4000 10.0.0.2:81".into())));
    // The next request on the same connection starts from the session level again.
    assert_eq!(ask(""), (fc, sess));
    drop(c);
    assert_idle(&p);
}
