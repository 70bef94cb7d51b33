//! HTTP correctness when a connection carries more than one request: every client gets
//! one response per request, in order, and never bytes meant for another request. Each
//! test sends its requests in one write and asserts what the client and the backends
//! receive, in order.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// A small deterministic generator (xorshift64*), so a failing sequence replays from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// One request of a fuzzed sequence: its bytes, whether it is a HEAD, the backend that
/// must receive it (and as what), and the answer the client must get for it.
struct FuzzRequest {
    bytes: Vec<u8>,
    head: bool,
    seen_by: Option<(&'static str, String)>,
    /// Status and `X-Served-By` (empty: an answer of the proxy itself).
    want: (u16, &'static str),
    /// The proxy answers it and closes the connection (a malformed request).
    closes: bool,
    /// Its server closes before answering: a 502 when it is the connection's first
    /// request, and a silent close after an earlier one, as HAProxy aborts a kept-alive
    /// connection (the client may retry).
    server_drops: bool,
}

/// What each backend of the fuzz test does, by name: `(name, spec or scripted answer)`.
/// The scripted ones add bytes after their answer, which must never reach a client.
const FUZZ_INJECTED: &str = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Served-By: INJECTED\r\n\r\nINJ";

fn fuzz_request(rng: &mut Rng, i: usize) -> FuzzRequest {
    let get = |path: String| format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
    let plain = |bytes, backend: &'static str, path: String, method: &str, want| FuzzRequest {
        bytes,
        head: method == "HEAD",
        seen_by: (!backend.is_empty()).then(|| (backend, format!("{method} {path}"))),
        want,
        closes: false,
        server_drops: false,
    };
    match rng.below(12) {
        0 => plain(get(format!("/ok/{i}")), "ok", format!("/ok/{i}"), "GET", (200, "ok")),
        1 => {
            let path = format!("/ok/{i}");
            let bytes = format!("HEAD {path} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
            plain(bytes, "ok", path, "HEAD", (200, "ok"))
        }
        2 => {
            let path = format!("/ok/{i}");
            let bytes =
                format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello").into_bytes();
            plain(bytes, "ok", path, "POST", (200, "ok"))
        }
        3 => {
            // Chunked, with a trailer ended by a bare LF, a bare LF after CR, or CRLF.
            let end = ["X-T: 1\n\n", "X-T: 1\n\r\n", "X-T: 1\r\n\r\n", "\r\n"][rng.below(4)];
            let path = format!("/chunked/{i}");
            let bytes = format!(
                "POST {path} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n{end}"
            )
            .into_bytes();
            plain(bytes, "chunked", path, "POST", (200, "chunked"))
        }
        4 => plain(get(format!("/nm/{i}")), "nm", format!("/nm/{i}"), "GET", (304, "nm")),
        5 => plain(get(format!("/n204/{i}")), "", String::new(), "GET", (204, "n204")),
        6 => plain(get(format!("/extra/{i}")), "", String::new(), "GET", (200, "extra")),
        7 => plain(get(format!("/garbage/{i}")), "", String::new(), "GET", (502, "")),
        8 => FuzzRequest {
            server_drops: true,
            ..plain(get(format!("/early/{i}")), "", String::new(), "GET", (502, ""))
        },
        9 => plain(get(format!("/deny/{i}")), "", String::new(), "GET", (403, "")),
        10 => plain(get(format!("/ping/{i}")), "", String::new(), "GET", (200, "")),
        _ => {
            let bad = [
                format!("GET /bad/{i} HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
                format!("GET /bad/{i} HTTP/1.1\r\nBad Header: x\r\n\r\n"),
                format!("POST /bad/{i} HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx"),
            ];
            FuzzRequest {
                bytes: bad[rng.below(bad.len())].clone().into_bytes(),
                head: false,
                seen_by: None,
                want: (400, ""),
                closes: true,
                server_drops: false,
            }
        }
    }
}

#[test]
fn pipelined_sequences_get_one_answer_per_request_in_order() {
    let seed = std::env::var("HAFLOW_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    let mut rng = Rng(seed);
    let http =
        |name: &str, b: HttpBehaviour| backend(BackendSpec::Http(HttpBehaviour { name: name.into(), ..b }));
    let ok = http("ok", HttpBehaviour { body_size: 10, ..Default::default() });
    let chunked =
        http("chunked", HttpBehaviour { body_size: 30, chunked: true, chunk_size: 7, ..Default::default() });
    let nm = http("nm", HttpBehaviour { status: 304, ..Default::default() });
    let garbage = http("garbage", HttpBehaviour { garbage: true, ..Default::default() });
    let early = http("early", HttpBehaviour { close_early: true, ..Default::default() });
    let n204 = ScriptedServer::start(
        format!("HTTP/1.1 204 No Content\r\nContent-Length: 40\r\nX-Served-By: n204\r\n\r\n{FUZZ_INJECTED}")
            .as_bytes(),
        Then::Stay,
    );
    let extra = ScriptedServer::start(
        format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Served-By: extra\r\n\r\nok{FUZZ_INJECTED}")
            .as_bytes(),
        Then::Stay,
    );
    let names = ["ok", "chunked", "nm", "garbage", "early", "n204", "extra"];
    let addrs =
        [ok.addr(), chunked.addr(), nm.addr(), garbage.addr(), early.addr(), n204.addr(), extra.addr()];
    let mut sections = String::from(
        "frontend fe\n    bind 127.0.0.1:0\n    http-request deny if { path_beg /deny/ }\n\
         \x20   http-request return status 200 content-type text/plain string pong if { path_beg /ping/ }\n",
    );
    for n in names {
        sections += &format!("    use_backend be_{n} if {{ path_beg /{n}/ }}\n");
    }
    for (n, addr) in names.iter().zip(addrs) {
        sections += &format!("backend be_{n}\n    server {n} {addr}\n");
    }
    let cfg =
        http_cfg("", "    timeout client 5s\n    timeout http-request 5s\n    timeout server 2s", &sections);
    let p = proxy(&cfg, &[]);
    let seen = |name: &str| match name {
        "ok" => paths(&ok.requests()),
        "chunked" => paths(&chunked.requests()),
        "nm" => paths(&nm.requests()),
        _ => unreachable!("only the HTTP backends record what they see"),
    };

    let started = Instant::now();
    let mut sequences = 0;
    let mut expected_seen: std::collections::HashMap<&str, Vec<String>> = Default::default();
    while started.elapsed() < Duration::from_secs(3) {
        sequences += 1;
        let n = 1 + rng.below(6);
        let reqs: Vec<FuzzRequest> = (0..n).map(|i| fuzz_request(&mut rng, sequences * 10 + i)).collect();
        let mut c = connect(p.addr("fe"));
        c.set_timeout(Duration::from_secs(3)).unwrap();
        c.send_raw(&reqs.iter().flat_map(|r| r.bytes.clone()).collect::<Vec<u8>>()).unwrap();
        let listing = || {
            reqs.iter().map(|r| String::from_utf8_lossy(&r.bytes).into_owned()).collect::<Vec<_>>().join("")
        };
        for (k, r) in reqs.iter().enumerate() {
            if r.server_drops && k > 0 {
                assert!(
                    c.read_to_close().is_ok_and(|rest| rest.is_empty()),
                    "seed {seed}: request {k} of {n}, dropped by its server after a kept-alive one, \
                     must close the connection without an answer\nsequence: {:?}",
                    listing()
                );
                break;
            }
            let got = c.read_response(r.head).unwrap_or_else(|e| {
                panic!("seed {seed}: no answer to request {k} of {n}: {e}\nsequence: {:?}", listing())
            });
            let by = got.header("x-served-by").unwrap_or("");
            assert_eq!(
                (got.status, by),
                r.want,
                "seed {seed}: answer {k} of {n} is another's\nsequence: {:?}\ngot: {:?}",
                listing(),
                String::from_utf8_lossy(&got.raw)
            );
            assert!(
                !got.raw.windows(3).any(|w| w == b"INJ"),
                "seed {seed}: injected bytes reached the client"
            );
            if let Some((backend, line)) = &r.seen_by {
                expected_seen.entry(backend).or_default().push(line.clone());
            }
            if r.closes {
                // Nothing after a malformed request is answered or forwarded.
                assert!(
                    c.read_to_close().is_ok_and(|rest| rest.is_empty()),
                    "seed {seed}: bytes after the 400"
                );
                break;
            }
        }
    }
    // The backends remember their latest requests only: those must be the latest sent.
    for (backend, want) in &expected_seen {
        let got = seen(backend);
        assert!(
            !got.is_empty() && want.ends_with(&got),
            "seed {seed}: backend {backend} received {} requests out of order; the last sent were {:?}",
            got.len(),
            &want[want.len().saturating_sub(5)..]
        );
    }
    assert!(sequences > 20, "seed {seed}: only {sequences} sequences ran");
    assert_idle(&p);
}
