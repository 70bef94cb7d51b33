//! HTTP mode: the analysers end to end. Each test sends real requests through haflow to
//! embedded backends and asserts the status, the body, the headers as the backend saw
//! them, and the log line's termination state; the pools are back to zero at the end.

use std::time::Duration;

use haflow::scenario::backends::{SeenRequest, body_pattern};
use haflow::scenario::client::Request;

use crate::util::*;

pub fn http_cfg(global: &str, defaults: &str, sections: &str) -> String {
    format!(
        "global\n    log stdout format raw local0\n{global}\n\
         defaults\n    mode http\n    log global\n    option httplog\n    timeout connect 300ms\n    timeout client 5s\n    timeout server 5s\n    timeout http-request 5s\n{defaults}\n\
         {sections}\n"
    )
}

fn http_backend(b: HttpBehaviour) -> RunningBackend {
    backend(BackendSpec::Http(b))
}

/// The termination state (4 chars) of an httplog line.
pub fn term(line: &str) -> &str {
    line.split_whitespace().nth(9).unwrap_or("")
}

/// The retries field (`%rc`, the last of `%ac/%fc/%bc/%sc/%rc`) of an httplog line.
pub fn retries(line: &str) -> &str {
    line.split_whitespace().nth(10).and_then(|c| c.rsplit('/').next()).unwrap_or("")
}

/// The status field of an httplog line.
pub fn status(line: &str) -> &str {
    line.split_whitespace().nth(5).unwrap_or("")
}

fn head_text(r: &SeenRequest) -> String {
    String::from_utf8_lossy(&r.raw_head).into_owned()
}

fn simple(extra_fe: &str, b: &RunningBackend) -> RunningProxy {
    let cfg = http_cfg(
        "",
        "",
        &format!(
            "frontend fe\n    bind 127.0.0.1:0\n{extra_fe}\n    default_backend be\nbackend be\n    server s1 \"${{S1}}\"\n"
        ),
    );
    proxy(&cfg, &[("S1", a(b.addr()))])
}

#[test]
fn get_is_forwarded_with_lowercase_headers_and_logged() {
    let b = http_backend(HttpBehaviour { body_size: 100, ..HttpBehaviour::named("s1") });
    let p = simple("", &b);
    let mut c = connect(p.addr("fe"));
    let r = c
        .request(&Request::get("/path?x=1").header("Host", "example.com").header("X-Custom", "Foo"))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body_pattern(100));
    assert_eq!(r.header("x-served-by"), Some("s1"));
    let seen = &b.requests()[0];
    let head = head_text(seen);
    assert!(head.starts_with("GET /path?x=1 HTTP/1.1\r\nhost: example.com\r\nx-custom: Foo\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection:"),
        "keep-alive needs no Connection header: {head}"
    );
    let line = wait_log(&p, |l| l.contains("GET /path?x=1"));
    assert!(line.contains(" fe be/s1 "), "{line}");
    assert_eq!((status(&line), term(&line)), ("200", "----"), "{line}");
    assert!(line.ends_with(" 0/0 \"GET /path?x=1 HTTP/1.1\""), "{line}");
    drop(c);
    assert_idle(&p);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection_each_way() {
    let b = http_backend(HttpBehaviour { body_size: 10, ..HttpBehaviour::named("s1") });
    let p = simple("", &b);
    let mut c = connect(p.addr("fe"));
    for i in 0..3 {
        let r = c.request(&Request::get(&format!("/{i}"))).unwrap();
        assert_eq!((r.status, r.body.len()), (200, 10));
    }
    assert_eq!(b.connections(), 1, "the server connection is reused too");
    let logs = p.wait_logs(3, SOON);
    assert_eq!(logs.len(), 3, "one log line per request: {logs:#?}");
    assert!(logs.iter().all(|l| term(l) == "----"));
    drop(c);
    assert_idle(&p);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let b = http_backend(HttpBehaviour { body_size: 5, ..HttpBehaviour::named("s1") });
    let p = simple("", &b);
    let mut c = connect(p.addr("fe"));
    let mut raw = Vec::new();
    for i in 0..3 {
        raw.extend(Request::get(&format!("/p{i}")).to_bytes());
    }
    c.send_raw(&raw).unwrap();
    for _ in 0..3 {
        assert_eq!(c.read_response(false).unwrap().status, 200);
    }
    let paths: Vec<String> = b.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/p0", "/p1", "/p2"]);
    drop(c);
    assert_idle(&p);
}

#[test]
fn post_bodies_with_content_length_and_chunked_arrive_intact() {
    let b = http_backend(HttpBehaviour::named("s1"));
    let p = simple("", &b);
    let mut c = connect(p.addr("fe"));
    let r = c.request(&Request::post("/cl", vec![b'x'; 5000])).unwrap();
    assert_eq!(r.status, 200);
    let r = c.request(&Request::post_chunked("/ch", vec![b"hello".to_vec(), vec![b'y'; 3000]])).unwrap();
    assert_eq!(r.status, 200);
    // A chunk extension and trailers: HAProxy 2.6 drops the former, lowercases the latter.
    c.send_raw(b"POST /ext HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let reqs = b.requests();
    assert_eq!(reqs[0].body, vec![b'x'; 5000]);
    let mut want = b"hello".to_vec();
    want.extend(vec![b'y'; 3000]);
    assert_eq!(reqs[1].body, want);
    assert_eq!(reqs[2].body, b"hello");
    assert_eq!(reqs[2].trailers, [("x-trailer".to_string(), "t".to_string())]);
    drop(c);
    assert_idle(&p);
}

#[test]
fn large_bodies_stream_through_a_small_buffer_both_ways() {
    let b = http_backend(HttpBehaviour { body_size: 1 << 20, chunked: true, ..HttpBehaviour::named("s1") });
    let cfg =
        http_cfg("    tune.bufsize 2048", "", "listen fe\n    bind 127.0.0.1:0\n    server s1 \"${S1}\"\n");
    let p = proxy(&cfg, &[("S1", a(b.addr()))]);
    let mut c = connect(p.addr("fe"));
    let big = vec![b'z'; 1 << 20];
    let r = c.request(&Request::post("/up", big.clone())).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body_pattern(1 << 20), "1 MiB chunked response through a 2 KiB buffer");
    assert_eq!(b.requests()[0].body, big, "1 MiB request body through a 2 KiB buffer");
    drop(c);
    assert_idle(&p);
}

#[test]
fn head_204_and_304_responses_have_no_body() {
    let b200 = http_backend(HttpBehaviour { body_size: 50, ..HttpBehaviour::named("s1") });
    let b204 = http_backend(HttpBehaviour { status: 204, ..HttpBehaviour::named("s2") });
    let b304 = http_backend(HttpBehaviour { status: 304, ..HttpBehaviour::named("s3") });
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    use_backend b204 if { path /204 }\n    use_backend b304 if { path /304 }\n    default_backend b200\n\
         backend b200\n    server s1 \"${A}\"\nbackend b204\n    server s2 \"${B}\"\nbackend b304\n    server s3 \"${C}\"\n",
    );
    let p = proxy(&cfg, &[("A", a(b200.addr())), ("B", a(b204.addr())), ("C", a(b304.addr()))]);
    let mut c = connect(p.addr("fe"));
    let r = c.request(&Request::head("/")).unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.header("content-length"), Some("50"));
    assert_eq!(c.request(&Request::get("/204")).unwrap().status, 204);
    assert_eq!(c.request(&Request::get("/304")).unwrap().status, 304);
    let r = c.request(&Request::get("/")).unwrap();
    assert_eq!(r.body.len(), 50, "the connection is still in sync after bodiless responses");
    drop(c);
    assert_idle(&p);
}

#[test]
fn forwardfor_and_connection_modes_change_what_the_backend_sees() {
    let b = http_backend(HttpBehaviour::named("s1"));
    let p = simple("    option forwardfor\n    option http-server-close", &b);
    let mut c = connect(p.addr("fe"));
    for _ in 0..2 {
        let r = c.request(&Request::get("/")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None, "the client side stays keep-alive");
    }
    let reqs = b.requests();
    for r in &reqs {
        assert_eq!(r.header("x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(r.header("connection"), Some("close"), "http-server-close closes the server side");
    }
    assert!(eventually(SOON, || b.connections() == 2), "a new server connection per request");
    drop(c);
    assert_idle(&p);

    let b = http_backend(HttpBehaviour::named("s1"));
    let p = simple("    option httpclose", &b);
    let mut c = connect(p.addr("fe"));
    let r = c.request(&Request::get("/")).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed_by_peer(SOON).unwrap(), "httpclose closes the client connection");
    assert_eq!(b.requests()[0].header("connection"), Some("close"));
    assert_idle(&p);
}

#[test]
fn http10_clients_and_connection_close_requests_are_closed_after_the_response() {
    let b = http_backend(HttpBehaviour::named("s1"));
    let p = simple("", &b);
    let mut c = connect(p.addr("fe"));
    let r = c.request(&Request::get("/old").http10()).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed_by_peer(SOON).unwrap());
    assert_eq!(b.requests()[0].header("connection"), Some("keep-alive"), "the server connection is kept");
    let mut c = connect(p.addr("fe"));
    let r = c.request(&Request::get("/").header("Connection", "close")).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed_by_peer(SOON).unwrap());
    assert_eq!(b.requests()[1].header("connection"), None, "the client's Connection header is not forwarded");
    assert_idle(&p);
}

#[test]
fn use_backend_switches_on_acls() {
    let api = http_backend(HttpBehaviour::named("api"));
    let web = http_backend(HttpBehaviour::named("web"));
    let admin = http_backend(HttpBehaviour::named("admin"));
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    acl is_api path_beg /api/\n    acl host_admin hdr(host) -i admin.example.com\n\
         use_backend be_api if is_api\n    use_backend be_admin if host_admin || { path_end .adm }\n    default_backend be_web\n\
         backend be_api\n    server api \"${API}\"\nbackend be_web\n    server web \"${WEB}\"\nbackend be_admin\n    server admin \"${ADM}\"\n",
    );
    let p = proxy(&cfg, &[("API", a(api.addr())), ("WEB", a(web.addr())), ("ADM", a(admin.addr()))]);
    let mut c = connect(p.addr("fe"));
    let who =
        |c: &mut Conn, r: Request| c.request(&r).unwrap().header("x-served-by").unwrap_or("").to_string();
    assert_eq!(who(&mut c, Request::get("/api/users")), "api");
    assert_eq!(who(&mut c, Request::get("/index.html")), "web");
    assert_eq!(who(&mut c, Request::get("/").header("Host", "ADMIN.example.com")), "admin");
    assert_eq!(who(&mut c, Request::get("/x.adm")), "admin");
    assert_eq!(who(&mut c, Request::get("/api/again")), "api", "keep-alive re-runs the switching rules");
    let logs = p.wait_logs(5, SOON);
    assert!(logs[0].contains(" fe be_api/api "), "{}", logs[0]);
    assert!(logs[1].contains(" fe be_web/web "), "{}", logs[1]);
    drop(c);
    assert_idle(&p);
}

#[test]
fn http_request_rules_deny_return_redirect_and_rewrite() {
    let b = http_backend(HttpBehaviour::named("s1"));
    let rules = "    http-request deny if { path /deny }\n\
                 http-request deny deny_status 429 if { path /slow }\n\
                 http-request return status 200 content-type text/plain string \"ok\" if { path /healthz }\n\
                 http-request redirect location /x if { path /loc }\n\
                 http-request redirect prefix /p code 301 if { path /pre }\n\
                 http-request redirect scheme https if { path /sch }\n\
                 http-request set-header X-Set set-value\n\
                 http-request add-header X-Added added-1\n\
                 http-request del-header X-Remove-Me\n\
                 http-response set-header X-Resp resp-value\n\
                 http-response del-header x-served-by\n";
    let p = simple(rules, &b);
    let mut c = connect(p.addr("fe"));
    let r = c.request(&Request::get("/deny")).unwrap();
    assert_eq!(r.status, 403);
    assert!(r.text().contains("Request forbidden by administrative rules."));
    assert_eq!(c.request(&Request::get("/slow")).unwrap().status, 429);
    let r = c.request(&Request::get("/healthz")).unwrap();
    assert_eq!((r.status, r.text().as_str(), r.header("content-type")), (200, "ok", Some("text/plain")));
    let r = c.request(&Request::get("/loc")).unwrap();
    assert_eq!((r.status, r.header("location")), (302, Some("/x")));
    let r = c.request(&Request::get("/pre?a=1")).unwrap();
    assert_eq!((r.status, r.header("location")), (301, Some("/p/pre?a=1")));
    let r = c.request(&Request::get("/sch").header("Host", "example.com")).unwrap();
    assert_eq!(r.header("location"), Some("https://example.com/sch"));
    let r = c.request(&Request::get("/fwd").header("X-Remove-Me", "bye").header("X-Set", "old")).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-resp"), Some("resp-value"));
    assert_eq!(r.header("x-served-by"), None, "http-response del-header");
    let seen = b.requests();
    assert_eq!(seen.len(), 1, "denied, returned and redirected requests never reach the server");
    assert_eq!(seen[0].header("x-set"), Some("set-value"));
    assert_eq!(seen[0].header("x-added"), Some("added-1"));
    assert_eq!(seen[0].header("x-remove-me"), None);
    let logs = p.wait_logs(7, SOON);
    let terms: Vec<&str> = logs.iter().map(|l| term(l)).collect();
    assert_eq!(terms, ["PR--", "PR--", "LR--", "LR--", "LR--", "LR--", "----"], "{logs:#?}");
    assert!(logs[0].contains(" fe fe/<NOSRV> 0/-1/-1/-1/"), "{}", logs[0]);
    for l in &logs[..6] {
        assert_eq!(retries(l), "0", "no server was needed, so no retry (HAProxy 2.6): {l}");
    }
    drop(c);
    assert_idle(&p);
}

fn one_error(cfg_backend: &str, env: &[(&str, String)], path: &str) -> (u16, String, RunningProxy) {
    let cfg = http_cfg(
        "",
        "    retries 1\n    timeout server 300ms",
        &format!("frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n{cfg_backend}\n"),
    );
    let p = proxy(&cfg, env);
    let mut c = connect(p.addr("fe"));
    let r = c.request(&Request::get(path)).unwrap();
    // After an analyser-made error, the connection stays usable.
    let line = wait_log(&p, |l| l.contains(path));
    drop(c);
    (r.status, line, p)
}

#[test]
fn server_side_failures_give_haproxy_statuses_and_termination_states() {
    // No server at all.
    let (st, line, p) = one_error("", &[], "/none");
    assert_eq!((st, term(&line)), (503, "SC--"), "{line}");
    assert!(line.contains(" be/<NOSRV> "), "{line}");
    assert_idle(&p);
    // Refused after retries.
    let refused = backend(BackendSpec::Refuse);
    let (st, line, p) = one_error("    server s1 \"${S}\"", &[("S", a(refused.addr()))], "/refused");
    assert_eq!((st, term(&line)), (503, "SC--"), "{line}");
    assert!(line.contains(" 1/1/0/0/1 "), "one retry: {line}");
    assert_idle(&p);
    // The server closes before answering.
    let close = http_backend(HttpBehaviour { close_early: true, ..HttpBehaviour::named("s1") });
    let (st, line, p) = one_error("    server s1 \"${S}\"", &[("S", a(close.addr()))], "/close");
    assert_eq!((st, term(&line)), (502, "SH--"), "{line}");
    assert_idle(&p);
    // The server answers garbage.
    let garbage = http_backend(HttpBehaviour { garbage: true, ..HttpBehaviour::named("s1") });
    let (st, line, p) = one_error("    server s1 \"${S}\"", &[("S", a(garbage.addr()))], "/garbage");
    assert_eq!((st, term(&line)), (502, "PH--"), "{line}");
    assert_idle(&p);
    // The server never answers.
    let hole = backend(BackendSpec::BlackHole);
    let (st, line, p) = one_error("    server s1 \"${S}\"", &[("S", a(hole.addr()))], "/silent");
    assert_eq!((st, term(&line)), (504, "sH--"), "{line}");
    assert_idle(&p);
}

#[test]
fn the_connection_stays_usable_after_an_analyser_error() {
    let b = http_backend(HttpBehaviour::named("s1"));
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    use_backend none if { path /none }\n    default_backend be\nbackend be\n    server s1 \"${S}\"\nbackend none\n",
    );
    let p = proxy(&cfg, &[("S", a(b.addr()))]);
    let mut c = connect(p.addr("fe"));
    assert_eq!(c.request(&Request::get("/none")).unwrap().status, 503);
    assert_eq!(c.request(&Request::get("/")).unwrap().status, 200);
    drop(c);
    assert_idle(&p);
}

fn raw_exchange(p: &RunningProxy, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut c = connect(p.addr("fe"));
    c.send_raw(bytes).unwrap();
    let mut out = Vec::new();
    let closed = match c.read_response(false) {
        Ok(r) => {
            out = r.raw;
            c.is_closed_by_peer(Duration::from_millis(300)).unwrap_or(false)
        }
        Err(_) => true,
    };
    (out, closed)
}

#[test]
fn malformed_requests_get_400_and_are_never_forwarded() {
    let b = http_backend(HttpBehaviour::named("s1"));
    let cfg = http_cfg(
        "    tune.bufsize 1024\n    tune.http.maxhdr 10",
        "",
        "listen fe\n    bind 127.0.0.1:0\n    server s1 \"${S}\"\n",
    );
    let p = proxy(&cfg, &[("S", a(b.addr()))]);
    let big = format!("GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n", "a".repeat(700));
    let many: String = (0..12).map(|i| format!("H{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("bad request line", b"GET\r\n\r\n".to_vec(), 400),
        ("invalid header name", b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n".to_vec(), 400),
        ("space before colon", b"GET / HTTP/1.1\r\nX-A : x\r\n\r\n".to_vec(), 400),
        ("head too large", big.into_bytes(), 400),
        ("too many headers", format!("GET / HTTP/1.1\r\n{many}\r\n").into_bytes(), 400),
        ("invalid content-length", b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n".to_vec(), 400),
        (
            "different content-lengths",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx".to_vec(),
            400,
        ),
        (
            "te not ending with chunked",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(),
            400,
        ),
        (
            "te gzip then chunked",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            422,
        ),
        ("invalid chunk size", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(), 400),
        ("control char in uri", b"GET /\x01 HTTP/1.1\r\n\r\n".to_vec(), 400),
    ];
    for (what, bytes, want) in &cases {
        let (resp, closed) = raw_exchange(&p, bytes);
        let text = String::from_utf8_lossy(&resp);
        assert!(text.starts_with(&format!("HTTP/1.1 {want} ")), "{what}: {text}");
        assert!(closed, "{what}: the connection is closed after a parser error");
    }
    assert!(b.requests().is_empty(), "nothing malformed reached the server: {:?}", b.requests());
    let logs = p.wait_logs(cases.len(), SOON);
    for l in &logs {
        assert_eq!(term(l), "PR--", "{l}");
        assert!(l.ends_with("\"<BADREQ>\""), "{l}");
        assert_eq!(retries(l), "0", "{l}");
    }
    assert_idle(&p);
}

#[test]
fn tolerated_syntax_is_normalised_like_haproxy() {
    let b = http_backend(HttpBehaviour::named("s1"));
    let p = simple("", &b);
    for (bytes, check) in [
        (&b"GET /lf HTTP/1.1\nHost: h\n\n"[..], "bare LF"),
        (&b"GET /fold HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n b\r\n\r\n"[..], "obs-fold"),
        (&b"POST /clte HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..], "CL+TE"),
    ] {
        let (resp, closed) = raw_exchange(&p, bytes);
        assert!(resp.starts_with(b"HTTP/1.1 200 "), "{check}: {}", String::from_utf8_lossy(&resp));
        if check == "CL+TE" {
            assert!(closed, "CL+TE: chunked wins and the connection closes after the transaction");
        }
    }
    let reqs = b.requests();
    assert_eq!(reqs[1].header("x-fold"), Some("a   b"));
    assert_eq!(reqs[2].header("content-length"), None, "Content-Length is removed when chunked wins");
    assert_eq!(reqs[2].body, b"hello");
    assert_idle(&p);
}

#[test]
fn a_stalled_client_gets_408_after_timeout_http_request() {
    let b = http_backend(HttpBehaviour::named("s1"));
    let cfg = http_cfg(
        "",
        "    timeout http-request 200ms",
        "listen fe\n    bind 127.0.0.1:0\n    server s1 \"${S}\"\n",
    );
    let p = proxy(&cfg, &[("S", a(b.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap();
    let out = c.read_to_close().unwrap();
    assert!(out.starts_with(b"HTTP/1.1 408 Request Time-out\r\n"), "{}", String::from_utf8_lossy(&out));
    let line = wait_log(&p, |l| l.contains("408"));
    assert_eq!(term(&line), "cR--", "{line}");
    assert_eq!(retries(&line), "0", "no server was needed, so no retry (HAProxy 2.6): {line}");
    assert_idle(&p);
}

#[test]
fn all_servers_down_gives_503_and_backup_takes_over() {
    let main = backend(BackendSpec::Refuse);
    let bk = http_backend(HttpBehaviour::named("backup"));
    let cfg = http_cfg(
        "",
        "",
        "listen fe\n    bind 127.0.0.1:0\n    server main \"${M}\" check inter 50ms fall 1\n    server bk \"${B}\" check inter 50ms backup\n",
    );
    let p = proxy(&cfg, &[("M", a(main.addr())), ("B", a(bk.addr()))]);
    assert!(eventually(SOON, || p.query(|w| !w.find_proxy("fe").unwrap().servers[0].is_usable())));
    let r = haflow::scenario::client::get(p.addr("fe"), "/").unwrap();
    assert_eq!(r.header("x-served-by"), Some("backup"));
    let cfg = http_cfg(
        "",
        "",
        "listen fe\n    bind 127.0.0.1:0\n    server main \"${M}\" check inter 50ms fall 1\n",
    );
    let p2 = proxy(&cfg, &[("M", a(main.addr()))]);
    assert!(eventually(SOON, || p2.query(|w| !w.find_proxy("fe").unwrap().servers[0].is_usable())));
    let r = haflow::scenario::client::get(p2.addr("fe"), "/").unwrap();
    assert_eq!(r.status, 503);
    let line = wait_log(&p2, |l| l.contains("503"));
    assert!(line.contains(" fe/<NOSRV> ") && term(&line) == "SC--", "{line}");
    drop(p);
}

#[test]
fn debug_mode_prints_haproxy_debug_lines() {
    let b = http_backend(HttpBehaviour::named("s1"));
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server s1 \"${S}\"\n",
    );
    let p = RunningProxy::start_with(
        &cfg,
        &[("S", a(b.addr()))],
        StartOptions { debug: true, ..Default::default() },
    )
    .unwrap();
    let r = haflow::scenario::client::get(p.addr("fe"), "/dbg").unwrap();
    assert_eq!(r.status, 200);
    assert!(eventually(SOON, || p.debug_lines().iter().any(|l| l.contains(".closed["))));
    let lines = p.debug_lines();
    let kinds: Vec<&str> = lines.iter().map(|l| l[9..].split(['[', '(']).next().unwrap_or("")).collect();
    assert!(kinds.starts_with(&["fe.accept", "fe.clireq", "fe.clihdr"]), "{lines:#?}");
    assert!(kinds.contains(&"be.srvrep") && kinds.contains(&"be.srvhdr"), "{lines:#?}");
    assert!(lines[0].starts_with("00000000:fe.accept(") && lines[0].ends_with("ALPN=<none>"), "{}", lines[0]);
    assert!(lines[1].ends_with("]: GET /dbg HTTP/1.1"), "{}", lines[1]);
    assert_idle(&p);
}

#[test]
fn halog_reads_haflow_logs() {
    if !have_tool("halog") {
        return;
    }
    let b = http_backend(HttpBehaviour::named("s1"));
    let p = simple("    http-request deny if { path /deny }", &b);
    let mut c = connect(p.addr("fe"));
    for path in ["/a", "/b", "/deny"] {
        let _ = c.request(&Request::get(path)).unwrap();
    }
    let logs = p.wait_logs(3, SOON);
    let input = logs.join("\n") + "\n";
    // This halog counts fields from a syslog header; on raw lines (HAProxy 2.6's own as
    // well as haflow's) `-s -4` says there is none.
    // halog prints its summary (lines in and out) on stderr: not the suite's output.
    let mut child = std::process::Command::new("halog")
        .args(["-s", "-4", "-st"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert!(out.contains("200 2") && out.contains("403 1"), "halog counts per status: {out}");
    drop(c);
    assert_idle(&p);
}

#[test]
fn a_server_that_closes_after_each_response_leaves_the_client_connection_usable() {
    let b = http_backend(HttpBehaviour { keep_alive: false, body_size: 6, ..HttpBehaviour::named("s1") });
    let cfg = http_cfg(
        "",
        "    timeout http-keep-alive 200ms",
        "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server s1 \"${S}\"\n",
    );
    let p = proxy(&cfg, &[("S", a(b.addr()))]);
    let mut c = connect(p.addr("fe"));
    for _ in 0..2 {
        let r = c.request(&Request::get("/")).unwrap();
        assert_eq!((r.status, r.body.len()), (200, 6));
        assert_eq!(r.header("connection"), None, "the client side stays keep-alive");
    }
    assert!(eventually(SOON, || b.connections() == 2), "one server connection per request");
    drop(c);
    assert_idle(&p);
    // A client that goes quiet is closed at timeout http-keep-alive, without spinning.
    let mut c = connect(p.addr("fe"));
    assert_eq!(c.request(&Request::get("/")).unwrap().status, 200);
    assert!(c.is_closed_by_peer(SOON).unwrap());
    assert_idle(&p);
    let loops = p.query(|w| w.activity.loops);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let later = p.query(|w| w.activity.loops);
    assert!(later - loops < 50, "an idle proxy does not spin: {} loop turns in 100 ms", later - loops);
}

/// Accepts one connection, answers one request with a 2-byte body, then reports how the
/// proxy closed the connection: `Ok(0)` for a FIN, `ConnectionReset` for a RST.
fn answer_once_then_watch_close() -> (std::net::SocketAddr, std::thread::JoinHandle<std::io::Result<usize>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept()?;
        s.set_read_timeout(Some(SOON))?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
        s.read(&mut [0u8; 64])
    });
    (addr, t)
}

#[test]
fn a_finished_server_connection_is_reset_not_closed() {
    // HAProxy closes a server connection whose response is complete with SO_LINGER {1,0}:
    // a RST loses nothing then, and leaves no TIME_WAIT on the proxy's side, whose local
    // ports the next connect()s would have to step over. Two ways to get there: the
    // client asks to close, or `option http-server-close` ends each transaction.
    for (option, close_header) in [("", true), ("    option http-server-close\n", false)] {
        let (addr, seen) = answer_once_then_watch_close();
        let p = proxy(
            &http_cfg(
                "",
                option,
                "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server s1 \"${S1}\"\n",
            ),
            &[("S1", a(addr))],
        );
        let mut c = connect(p.addr("fe"));
        let req =
            if close_header { Request::get("/").header("Connection", "close") } else { Request::get("/") };
        let r = c.request(&req).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        let end = seen.join().unwrap();
        assert!(
            matches!(&end, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{option:?} Connection: close={close_header}: the server side must see a RST, saw {end:?}"
        );
        drop(c);
        assert_idle(&p);
    }
}

#[test]
fn http_no_delay_makes_both_buffers_never_wait() {
    // Without it, a body still arriving is sent with MSG_MORE, and a pause of the server
    // can hold the last partial segment in the kernel for about 200 ms (HAProxy's
    // documented default); `option http-no-delay` on the frontend or the backend sets
    // BF_NEVER_WAIT on both buffers for the whole session.
    let b = http_backend(HttpBehaviour::named("s1"));
    for (fe_opt, be_opt, want) in
        [("", "", false), ("    option http-no-delay\n", "", true), ("", "    option http-no-delay\n", true)]
    {
        let p = proxy(
            &http_cfg(
                "",
                "",
                &format!(
                    "frontend fe\n    bind 127.0.0.1:0\n{fe_opt}    default_backend be\nbackend be\n{be_opt}    server s1 \"${{S1}}\"\n"
                ),
            ),
            &[("S1", a(b.addr()))],
        );
        let mut c = connect(p.addr("fe"));
        assert_eq!(c.request(&Request::get("/")).unwrap().status, 200);
        let flags =
            p.query(|w| w.sessions.iter().map(|(_, s)| (s.req.flags, s.rep.flags)).collect::<Vec<_>>());
        assert_eq!(flags.len(), 1, "the keep-alive session is live");
        let never = haflow::haproxy::buffers::BufFlags::BF_NEVER_WAIT;
        assert_eq!(
            (flags[0].0.contains(never), flags[0].1.contains(never)),
            (want, want),
            "fe {fe_opt:?} be {be_opt:?}: BF_NEVER_WAIT on req and rep, kept across the transaction"
        );
        drop(c);
        assert_idle(&p);
    }
}
