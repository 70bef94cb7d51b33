//! Sessions that always end: whatever a client or a server does, the session is freed,
//! with its fds, buffers, task and `maxconn` slot, and the loop goes back to sleep. Each
//! test provokes one way a session used to be left behind, then proves the proxy idle
//! (`util::assert_idle`: no session, no pool object, no fd but the process's own, none in
//! CLOSE-WAIT).

use std::time::Duration;

use haflow::scenario::client::{Request, get};

use crate::http_mode::{http_cfg, status, term};
use crate::util::*;

fn proxy_to(server: std::net::SocketAddr, global: &str, fe: &str) -> RunningProxy {
    let cfg = http_cfg(
        global,
        "",
        &format!(
            "frontend fe\n    bind 127.0.0.1:0\n{fe}\n    default_backend be\nbackend be\n    server s1 \"${{S1}}\"\n"
        ),
    );
    proxy(&cfg, &[("S1", a(server))])
}

/// Sends `GET path`, reads one byte of the answer and leaves, with an RST or a FIN.
fn leave_after_one_byte(p: &RunningProxy, path: &str, rst: bool) {
    let mut c = connect(p.addr("fe"));
    c.send(&Request::get(path)).unwrap();
    assert_eq!(c.read_exact(1).unwrap(), b"H");
    if rst {
        c.abort().unwrap();
    } else {
        drop(c);
    }
}

#[test]
fn a_client_leaving_mid_download_frees_its_session_and_its_maxconn_slot() {
    let b = backend(BackendSpec::Http(HttpBehaviour { body_size: 1 << 20, ..HttpBehaviour::named("s1") }));
    let small =
        backend(BackendSpec::Http(HttpBehaviour { body_size: 64 << 10, ..HttpBehaviour::named("s2") }));
    // Two connections at most: a single leaked session would halve the proxy, two would
    // shut it for everyone.
    let cfg = http_cfg(
        "    maxconn 2",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    use_backend small if { path /small }\n    default_backend be\n\
         backend be\n    server s1 \"${S1}\"\nbackend small\n    server s2 \"${S2}\"\n",
    );
    let p = proxy(&cfg, &[("S1", a(b.addr())), ("S2", a(small.addr()))]);
    let mut aborted = 0;
    for path in ["/", "/small"] {
        for rst in [true, false] {
            for _ in 0..4 {
                leave_after_one_byte(&p, path, rst);
                aborted += 1;
            }
        }
    }
    // Every slot came back: a whole download still goes through.
    let r = get(p.addr("fe"), "/small").unwrap();
    assert_eq!((r.status, r.body.len()), (200, 64 << 10));
    // One line per request. Through loopback the kernel may have taken the whole answer
    // before the client left (`----`); otherwise it is a client abort in the data phase.
    let logs = p.wait_logs(aborted + 1, SOON);
    assert_eq!(logs.len(), aborted + 1, "{logs:#?}");
    let terms: Vec<&str> = logs.iter().map(|l| term(l)).collect();
    assert!(terms.iter().all(|t| ["----", "CD--"].contains(t)), "{logs:#?}");
    assert!(terms.contains(&"CD--"), "at least one transfer was cut: {logs:#?}");
    assert_idle(&p);
}

/// What a broken server sends, and what the client must get from the proxy.
struct BrokenServer {
    what: &'static str,
    answer: &'static [u8],
    then: Then,
    /// The status line the client receives.
    status: u16,
}

#[test]
fn a_server_breaking_its_message_framing_never_pins_the_session() {
    let cases = [
        BrokenServer {
            what: "invalid chunk size",
            answer: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            then: Then::Stay,
            status: 502,
        },
        BrokenServer {
            what: "no CRLF after chunk data",
            answer: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
            then: Then::Stay,
            status: 502,
        },
        BrokenServer {
            what: "invalid trailer line",
            answer:
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
            then: Then::Stay,
            status: 502,
        },
        BrokenServer {
            what: "close after a partial size line",
            answer: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5",
            then: Then::Close,
            // The head and the first chunk are on their way before the close is seen.
            status: 200,
        },
        BrokenServer {
            what: "reset in the middle of the body",
            answer: b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial",
            then: Then::Reset,
            status: 200,
        },
    ];
    for case in cases {
        let srv = ScriptedServer::start(case.answer, case.then);
        let p = proxy_to(srv.addr(), "", "");
        let mut c = connect(p.addr("fe"));
        c.send(&Request::get("/")).unwrap();
        if case.status == 502 {
            // A whole error answer, and the connection stays usable, as with HAProxy 2.6.
            let r = c.read_response(false).unwrap_or_else(|e| panic!("{}: {e}", case.what));
            assert_eq!(r.status, 502, "{}", case.what);
            drop(c);
        } else {
            // The head already left: the client sees the response cut, then the close.
            let got =
                c.read_to_close().unwrap_or_else(|e| panic!("{}: the client is not let go: {e}", case.what));
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("HTTP/1.1 200 "), "{}: the client got {text:?}", case.what);
        }
        let line = wait_log(&p, |l| l.contains("GET / "));
        assert_eq!(status(&line), case.status.to_string(), "{}: {line}", case.what);
        assert_idle(&p);
    }
}

#[test]
fn a_trailer_too_big_for_the_buffer_ends_the_transfer() {
    let mut answer =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-big: ".to_vec();
    answer.extend(std::iter::repeat_n(b'a', 20 << 10));
    answer.extend_from_slice(b"\r\n\r\n");
    let srv = ScriptedServer::start(&answer, Then::Stay);
    let p = proxy_to(srv.addr(), "", "");
    let mut c = connect(p.addr("fe"));
    c.send(&Request::get("/")).unwrap();
    let got = c.read_to_close().expect("the client is let go");
    assert!(got.starts_with(b"HTTP/1.1 "), "{:?}", String::from_utf8_lossy(&got));
    let line = wait_log(&p, |l| l.contains("GET / "));
    assert!(term(&line).starts_with('P'), "a proxy-detected error: {line}");
    assert_idle(&p);
}

#[test]
fn bytes_after_a_complete_response_are_dropped_with_the_server_connection() {
    // Two bytes of body announced, five sent: the three extra belong to no request.
    let srv = ScriptedServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXYZ", Then::Stay);
    let p = proxy_to(srv.addr(), "", "");
    let mut c = connect(p.addr("fe"));
    let r = c.request(&Request::get("/")).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    // The client, idle, goes away: nothing is left to hold the session.
    drop(c);
    assert_idle(&p);
}

#[test]
fn idle_server_connections_closed_by_the_server_are_released_and_the_loop_sleeps() {
    let srv = ScriptedServer::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        Then::CloseIdleAfter(Duration::from_millis(200)),
    );
    let p = proxy_to(
        srv.addr(),
        "",
        "    option http-keep-alive\n    http-request return status 200 content-type text/plain string pong if { path /ping }",
    );
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut c = connect(p.addr("fe"));
        assert_eq!(c.request(&Request::get("/a")).unwrap().body, b"ok");
        // Answered by the proxy itself: the server connection kept by /a stays idle.
        assert_eq!(c.request(&Request::get("/ping")).unwrap().body, b"pong");
        clients.push(c);
    }
    assert!(eventually(SOON, || srv.closed() == 5), "the server closes its idle connections");
    // The proxy lets go of them: no fd without an owner, none in CLOSE-WAIT.
    let mut left = Vec::new();
    let released = eventually(SOON, || {
        left = p.query(|w| {
            let mut v = haflow::haproxy::debug::invariant_violations(w);
            v.extend(haflow::haproxy::debug::close_wait_fds(w));
            v
        });
        left.is_empty()
    });
    assert!(released, "{left:#?}");
    // With only idle clients (timeouts in seconds), the loop sleeps instead of spinning on
    // a readable fd nobody reads.
    let before = p.query(|w| w.activity.loops);
    std::thread::sleep(Duration::from_millis(300));
    let turns = p.query(|w| w.activity.loops) - before;
    assert!(turns < 50, "{turns} loop turns in 300 ms with nothing to do");
    drop(clients);
    assert_idle(&p);
}

#[test]
fn a_listener_limited_by_a_lack_of_fds_is_resumed_when_fds_come_back() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let (p1, p2) = (free_port(), free_port());
    // 40 fds: a few for the process itself, the rest fill up with fe1's clients.
    let cfg = format!(
        "global\n    ulimit-n 40\n    maxconn 100\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout http-request 10s\n\
         frontend fe1\n    bind 127.0.0.1:{p1}\n    default_backend be\nfrontend fe2\n    bind 127.0.0.1:{p2}\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        b.addr()
    );
    let _haflow = HaflowProcess::start("emfile", &cfg);
    let fe1: std::net::SocketAddr = format!("127.0.0.1:{p1}").parse().unwrap();
    let fe2: std::net::SocketAddr = format!("127.0.0.1:{p2}").parse().unwrap();
    assert!(eventually(SOON, || get(fe2, "/").is_ok_and(|r| r.status == 200)), "haflow serves fe2");
    // fe1's idle clients take every fd: accept() fails with EMFILE, on fe1 and then on fe2,
    // which has no session of its own to end and resume it.
    let hogs: Vec<std::net::TcpStream> =
        (0..45).map(|_| std::net::TcpStream::connect(fe1).unwrap()).collect();
    let mut waiting = std::net::TcpStream::connect(fe2).unwrap();
    {
        use std::io::Write;
        waiting.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    }
    waiting.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    {
        use std::io::Read;
        let mut byte = [0u8; 1];
        assert!(waiting.read(&mut byte).is_err(), "no fd left: fe2's client waits in the backlog");
    }
    // The fds come back: fe2's listener is polled again and its clients are served.
    drop(hogs);
    waiting.set_read_timeout(Some(SOON)).unwrap();
    let mut answer = [0u8; 12];
    {
        use std::io::Read;
        waiting.read_exact(&mut answer).expect("the waiting client is served");
    }
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert!(get(fe2, "/").is_ok_and(|r| r.status == 200));
}
