//! Protocol upgrades: a `101 Switching Protocols` that answers an upgrade request turns
//! the session into a tunnel (both directions forwarded as they are, never parsed again,
//! under `timeout tunnel`); a 101 nobody asked for is a 502; a WebSocket handshake
//! without its key is a 400. The tests assert the exact bytes each side receives.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use haflow::scenario::websocket::WsClient;

use crate::http_mode::{http_cfg, status, term};
use crate::util::*;

/// A WebSocket upgrade request, as a browser sends it.
pub const WS_REQ: &[u8] = b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
/// The server's switch, with the accept key RFC 6455 derives from `WS_REQ`'s key.
pub const WS_101: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// A server that answers the first request head of each connection with fixed bytes,
/// then echoes whatever comes next prefixed with `echo:`, and half-closes when its peer
/// does. It records every byte it received, per connection.
pub struct UpgradeServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl UpgradeServer {
    pub fn start(answer: &'static [u8]) -> UpgradeServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = Arc::clone(&received);
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                let rec = Arc::clone(&rec);
                let idx = {
                    let mut r = rec.lock().unwrap();
                    r.push(Vec::new());
                    r.len() - 1
                };
                std::thread::spawn(move || serve_upgrade(c, answer, &rec, idx));
            }
        });
        UpgradeServer { addr, received }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bytes connection `i` received so far.
    pub fn received(&self, i: usize) -> Vec<u8> {
        self.received.lock().unwrap().get(i).cloned().unwrap_or_default()
    }
}

fn serve_upgrade(mut c: TcpStream, answer: &[u8], rec: &Mutex<Vec<Vec<u8>>>, idx: usize) {
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 65536];
    let mut head_done = false;
    loop {
        let n = match c.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = c.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => n,
        };
        let mut r = rec.lock().unwrap();
        r[idx].extend_from_slice(&buf[..n]);
        let all = r[idx].clone();
        drop(r);
        let tunnel_bytes = if head_done {
            buf[..n].to_vec()
        } else if let Some(end) = all.windows(4).position(|w| w == b"\r\n\r\n") {
            head_done = true;
            if c.write_all(answer).is_err() {
                return;
            }
            all[end + 4..].to_vec()
        } else {
            continue;
        };
        if !tunnel_bytes.is_empty() {
            let mut out = b"echo:".to_vec();
            out.extend_from_slice(&tunnel_bytes);
            if c.write_all(&out).is_err() {
                return;
            }
        }
    }
}

/// Reads exactly `n` bytes (or fails the test).
fn read_n(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    c.read_exact(&mut out).unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    out
}

/// `WS_101` as haflow forwards it: header names in lower case, values and order kept.
fn ws_101_forwarded() -> Vec<u8> {
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        .to_vec()
}

fn tunnel_proxy(srv: SocketAddr, defaults: &str) -> RunningProxy {
    let cfg = http_cfg(
        "",
        defaults,
        "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server s1 \"${S1}\"",
    );
    proxy(&cfg, &[("S1", a(srv))])
}

#[test]
fn a_101_switches_both_directions_to_bytes_that_are_never_parsed() {
    let srv = UpgradeServer::start(WS_101);
    let p = tunnel_proxy(srv.addr(), "");
    let mut c = TcpStream::connect(p.addr("fe")).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    // Bytes of the new protocol sent with the request wait for the switch.
    let mut first = WS_REQ.to_vec();
    first.extend_from_slice(b"early");
    c.write_all(&first).unwrap();
    let mut want = ws_101_forwarded();
    want.extend_from_slice(b"echo:early");
    assert_eq!(String::from_utf8_lossy(&read_n(&mut c, want.len())), String::from_utf8_lossy(&want));
    // Something that looks like HTTP inside the tunnel is just bytes.
    c.write_all(b"GET /x HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_n(&mut c, 24), b"echo:GET /x HTTP/1.1\r\n\r\n");
    let sent_upstream = b"GET /chat HTTP/1.1\r\nhost: h\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\nearlyGET /x HTTP/1.1\r\n\r\n";
    assert_eq!(String::from_utf8_lossy(&srv.received(0)), String::from_utf8_lossy(sent_upstream));
    // The client's FIN crosses the tunnel; the server's comes back.
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the echo: {rest:?}");
    let line = wait_log(&p, |l| l.contains("/chat"));
    assert_eq!(status(&line), "101", "{line}");
    assert_eq!(term(&line), "----", "{line}");
    assert_idle(&p);
}

#[test]
fn a_101_nobody_asked_for_is_a_502() {
    const NO_ACCEPT: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    const NO_CONN: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\n\r\n";
    let with_body = b"POST /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 2\r\n\r\nhi";
    let cases: [(&str, &[u8], &'static [u8]); 4] = [
        ("a request without Connection: upgrade", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", WS_101),
        ("an upgrade request with a body", with_body, WS_101),
        ("a WebSocket 101 without Sec-WebSocket-Accept", WS_REQ, NO_ACCEPT),
        ("a 101 without Connection: upgrade", WS_REQ, NO_CONN),
    ];
    for (name, req, answer) in cases {
        let srv = UpgradeServer::start(answer);
        let p = tunnel_proxy(srv.addr(), "");
        let mut c = connect(p.addr("fe"));
        c.send_raw(req).unwrap();
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 502, "{name}");
        let line = wait_log(&p, |l| l.contains(" 502 "));
        assert_eq!(term(&line), "PH--", "{name}: {line}");
        if req == with_body {
            // An upgrade request with a body is no upgrade: its `Upgrade` header goes.
            let up = String::from_utf8_lossy(&srv.received(0)).to_lowercase();
            assert!(!up.contains("upgrade: foo"), "{up}");
        }
        drop(c);
        assert_idle(&p);
    }
}

#[test]
fn a_websocket_handshake_without_its_key_is_a_400_that_never_reaches_the_server() {
    let srv = UpgradeServer::start(WS_101);
    let p = tunnel_proxy(srv.addr(), "");
    for key in ["", "Sec-WebSocket-Key: short\r\n"] {
        let req = format!(
            "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{key}\r\n"
        );
        let mut c = connect(p.addr("fe"));
        c.send_raw(req.as_bytes()).unwrap();
        assert_eq!(c.read_response(false).unwrap().status, 400, "{key:?}");
    }
    assert_eq!(srv.received(0), b"", "the server saw nothing");
    assert_idle(&p);
}

#[test]
fn a_websocket_conversation_goes_through_the_tunnel() {
    let ws = backend(BackendSpec::WebSocket);
    let p = tunnel_proxy(ws.addr(), "");
    let mut c = WsClient::connect(p.addr("fe"), "/chat", SOON).unwrap();
    // Larger than a buffer: the tunnel streams it.
    let big = "x".repeat(100_000);
    for msg in ["hello", big.as_str(), "bye"] {
        assert_eq!(c.echo(msg).unwrap(), msg);
    }
    c.close().unwrap();
    let line = wait_log(&p, |l| l.contains("/chat"));
    assert_eq!(status(&line), "101", "{line}");
    assert_idle(&p);
}

#[test]
fn timeout_tunnel_ends_an_idle_tunnel_but_not_a_busy_one() {
    let ws = backend(BackendSpec::WebSocket);
    // The client and server timeouts would never fire here: only the tunnel's can.
    let p =
        tunnel_proxy(ws.addr(), "    timeout client 30s\n    timeout server 30s\n    timeout tunnel 400ms");
    let mut c = WsClient::connect(p.addr("fe"), "/chat", SOON).unwrap();
    let start = Instant::now();
    let mut idle_from = start;
    // Busy for three times the timeout, one message every 100 ms (traffic shaping).
    while start.elapsed() < Duration::from_millis(1200) {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(c.echo("tick").unwrap(), "tick", "the tunnel is still open after {:?}", start.elapsed());
        idle_from = Instant::now();
    }
    assert!(c.closed_by_peer(SOON).unwrap(), "timeout tunnel ended the idle tunnel");
    assert!(
        idle_from.elapsed() >= Duration::from_millis(350),
        "not before the timeout: {:?}",
        idle_from.elapsed()
    );
    let line = wait_log(&p, |l| l.contains("/chat"));
    assert_eq!((status(&line), term(&line)), ("101", "cD--"), "{line}");
    assert_idle(&p);
}

#[test]
fn timeout_tunnel_applies_to_tcp_mode_too() {
    let echo = backend(BackendSpec::Echo);
    let cfg = "global\n    log stdout format raw local0\ndefaults\n    mode tcp\n    log global\n    option tcplog\n\
               \x20   timeout connect 300ms\n    timeout client 30s\n    timeout server 30s\n    timeout tunnel 300ms\n\
               listen fe\n    bind 127.0.0.1:0\n    server s1 \"${S1}\"\n";
    let p = proxy(cfg, &[("S1", a(echo.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"ping").unwrap();
    assert_eq!(c.read_exact(4).unwrap(), b"ping");
    assert!(c.is_closed_by_peer(SOON).unwrap(), "the idle TCP session ends at timeout tunnel");
    let line = wait_log(&p, |l| l.contains(" fe "));
    assert_eq!(tcplog_term(&line), "cD", "{line}");
    assert_idle(&p);
}
