//! HTTP correctness when a connection carries more than one request: every client gets
//! one response per request, in order, and never bytes meant for another request. Each
//! test sends its requests in one write and asserts what the client and the backends
//! receive, in order.

use haflow::scenario::backends::SeenRequest;
use haflow::scenario::client::Response;

use crate::http_mode::http_cfg;
use crate::util::*;

/// Backends `a` and `b` (each names itself in `X-Served-By`) behind rules that deny
/// `/deny` and answer `/ping` locally.
struct Pair {
    a: RunningBackend,
    b: RunningBackend,
    p: RunningProxy,
}

fn pair() -> Pair {
    let be_a = backend(BackendSpec::Http(HttpBehaviour { body_size: 10, ..HttpBehaviour::named("a") }));
    let be_b = backend(BackendSpec::Http(HttpBehaviour { body_size: 20, ..HttpBehaviour::named("b") }));
    // Long client timeouts: a pipelined request left waiting for one shows as a failure
    // to read its answer, not as a slow test.
    let cfg = http_cfg(
        "",
        "    timeout client 30s\n    timeout http-request 30s",
        "frontend fe\n    bind 127.0.0.1:0\n    http-request deny if { path /deny }\n\
         \x20   http-request return status 200 content-type text/plain string pong if { path /ping }\n\
         \x20   use_backend be_b if { path_beg /b }\n    default_backend be_a\n\
         backend be_a\n    server a \"${A}\"\nbackend be_b\n    server b \"${B}\"\n",
    );
    let p = proxy(&cfg, &[("A", a(be_a.addr())), ("B", a(be_b.addr()))]);
    Pair { a: be_a, b: be_b, p }
}

/// Sends `bytes` in one write and reads `n` responses.
fn pipeline(p: &RunningProxy, bytes: &[u8], n: usize) -> Vec<Response> {
    let mut c = connect(p.addr("fe"));
    c.send_raw(bytes).unwrap();
    (0..n).map(|i| c.read_response(false).unwrap_or_else(|e| panic!("response {i}: {e}"))).collect()
}

/// What identifies a response: its status and who made it (a backend, or the proxy).
fn who(r: &Response) -> (u16, String) {
    (r.status, r.header("x-served-by").map_or_else(|| r.text(), str::to_string))
}

fn paths(reqs: &[SeenRequest]) -> Vec<String> {
    reqs.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

#[test]
fn trailers_end_at_their_first_empty_line_and_the_next_request_is_served() {
    for trailer_end in ["X-T: 1\n\n", "X-T: 1\n\r\n", "X-T: 1\r\n\r\n"] {
        let t = pair();
        let bytes = format!(
            "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n{trailer_end}\
             GET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /a2 HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        let got: Vec<(u16, String)> = pipeline(&t.p, bytes.as_bytes(), 3).iter().map(who).collect();
        assert_eq!(got, [(200, "a".into()), (200, "b".into()), (200, "a".into())], "{trailer_end:?}");
        assert_eq!(paths(&t.a.requests()), ["POST /a", "GET /a2"], "{trailer_end:?}");
        assert_eq!(paths(&t.b.requests()), ["GET /b"], "{trailer_end:?}");
        assert_eq!(t.a.requests()[0].trailers, [("x-t".to_string(), "1".to_string())], "{trailer_end:?}");
        assert_idle(&t.p);
    }
}

#[test]
fn a_local_answer_comes_after_the_responses_before_it() {
    let t = pair();
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n");
    let cases: [(String, Vec<(u16, String)>); 3] = [
        (
            get("/a") + &get("/deny") + &get("/b"),
            vec![(200, "a".into()), (403, String::new()), (200, "b".into())],
        ),
        (
            get("/a") + &get("/ping") + &get("/b"),
            vec![(200, "a".into()), (200, "pong".into()), (200, "b".into())],
        ),
        // A malformed second request (two different Host headers) closes the connection
        // after its 400, but the first answer still arrives whole, first.
        (
            get("/a") + "GET /b HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            vec![(200, "a".into()), (400, String::new())],
        ),
    ];
    for (bytes, want) in cases {
        let got: Vec<(u16, String)> = pipeline(&t.p, bytes.as_bytes(), want.len())
            .iter()
            .map(|r| {
                let (s, w) = who(r);
                (s, if s == 200 { w } else { String::new() })
            })
            .collect();
        assert_eq!(got, want, "{bytes:?}");
    }
    assert_idle(&t.p);
}

#[test]
fn bytes_after_a_bodyless_response_are_not_the_next_response() {
    let injected = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nINJ";
    let cases = [
        format!("HTTP/1.1 204 No Content\r\nContent-Length: 40\r\n\r\n{injected}"),
        format!("HTTP/1.1 304 Not Modified\r\n\r\n{injected}"),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXYZ".to_string(),
    ];
    for answer in cases {
        let srv = ScriptedServer::start(answer.as_bytes(), Then::Stay);
        let cfg = http_cfg(
            "",
            "",
            "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server s \"${S}\"\n",
        );
        let p = proxy(&cfg, &[("S", a(srv.addr()))]);
        let rs = pipeline(
            &p,
            b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n",
            3,
        );
        let first = answer.split("\r\n").next().unwrap();
        for (i, r) in rs.iter().enumerate() {
            let line = format!("HTTP/1.1 {} ", r.status);
            assert!(first.starts_with(&line), "response {i} to {answer:?} is {} {:?}", r.status, r.text());
            assert!(!r.body.ends_with(b"INJ") && !r.body.starts_with(b"XYZ"), "{answer:?}: {:?}", r.text());
        }
        assert_idle(&p);
    }
}

#[test]
fn a_head_response_with_a_length_ends_at_its_head() {
    let srv = ScriptedServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nINJ", Then::Stay);
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server s \"${S}\"\n",
    );
    let p = proxy(&cfg, &[("S", a(srv.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"HEAD /1 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    for i in 0..2 {
        let r = c.read_response(true).unwrap_or_else(|e| panic!("HEAD {i}: {e}"));
        assert_eq!((r.status, r.header("content-length"), r.body.len()), (200, Some("3"), 0), "HEAD {i}");
    }
    // Nothing else arrives: the three bytes were the server's mistake, dropped with its
    // connection.
    c.send_raw(b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"INJ"[..]), "a GET gets the body");
    drop(c);
    assert_idle(&p);
}
