//! The PROXY protocol on `bind ... accept-proxy`: the header is taken off the connection,
//! the session sees the real client, and a connection without one is refused. The same
//! bytes go through HAProxy 2.6 for comparison.

use crate::side_by_side::start_haproxy_with;
use crate::util::*;

const CFG: &str = r#"
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend fe
    bind "127.0.0.1:${PORT}" accept-proxy
    default_backend be
backend be
    server s1 "${S1}"
"#;

const V1: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 80\r\n";

fn v2() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x21, 0x11, 0, 12]);
    h.extend([192, 0, 2, 7, 198, 51, 100, 2, 0xc7, 0x38, 0, 80]);
    h
}

/// Two keep-alive requests behind `header` on one connection: the client addresses the
/// backend saw (`X-Forwarded-For`), and the bytes of the first request it received.
fn through(
    addr: std::net::SocketAddr,
    backend: &RunningBackend,
    header: &[u8],
) -> (Vec<Option<u16>>, Vec<String>) {
    let before = backend.requests().len();
    let mut c = Conn::connect(addr, SOON).unwrap();
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    c.send_raw(&bytes).unwrap();
    let mut statuses = vec![c.read_response(false).ok().map(|r| r.status)];
    c.send_raw(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    statuses.push(c.read_response(false).ok().map(|r| r.status));
    let seen = backend.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.path, r.header("x-forwarded-for").unwrap_or("-")))
        .collect();
    (statuses, seen)
}

#[test]
fn accept_proxy_takes_the_header_off_and_shows_the_real_client() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let p = proxy(CFG, &[("S1", a(b.addr())), ("PORT", "0".into())]);
    let got_v1 = through(p.addr("fe"), &b, V1);
    assert_eq!(got_v1, (vec![Some(200), Some(200)], vec!["/a 192.0.2.1".into(), "/b 192.0.2.1".into()]));
    let got_v2 = through(p.addr("fe"), &b, &v2());
    assert_eq!(got_v2, (vec![Some(200), Some(200)], vec!["/a 192.0.2.7".into(), "/b 192.0.2.7".into()]));
    // The log names the real client; the header's bytes are not the request's.
    assert!(eventually(SOON, || p.logs().len() >= 4));
    assert!(p.logs()[0].starts_with("192.0.2.1:51000 "), "{}", p.logs()[0]);
    assert!(p.logs()[2].starts_with("192.0.2.7:51000 "), "{}", p.logs()[2]);
    assert_idle(&p);

    // A connection without a header: closed without an answer, nothing reaches the server.
    let before = b.requests().len();
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(c.read_to_close().unwrap(), b"");
    assert_eq!(b.requests().len(), before);
    assert_idle(&p);

    // The same through HAProxy 2.6.
    let Some(hap) = start_haproxy_with(CFG, &[("S1", a(b.addr()))]) else { return };
    assert_eq!(through(hap.addr, &b, V1), got_v1, "haproxy, version 1");
    assert_eq!(through(hap.addr, &b, &v2()), got_v2, "haproxy, version 2");
    let mut c = Conn::connect(hap.addr, SOON).unwrap();
    c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    // HAProxy resets it (the request is left unread), haflow closes it: no answer either way.
    assert_eq!(c.read_to_close().unwrap_or_default(), b"", "haproxy closes a connection without a header");
}

#[test]
fn accept_proxy_in_tcp_mode_forwards_only_the_payload() {
    let echo = backend(BackendSpec::Echo);
    let cfg = "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 2s\n    timeout server 2s\n\
               listen fe\n    bind 127.0.0.1:0 accept-proxy\n    server s1 \"${S1}\"\n";
    let p = proxy(cfg, &[("S1", a(echo.addr()))]);
    let mut c = connect(p.addr("fe"));
    // The header may arrive in pieces: nothing is connected nor forwarded before its end.
    c.send_raw(&V1[..10]).unwrap();
    c.send_raw(&[&V1[10..], b"hello"].concat()).unwrap();
    assert_eq!(c.read_exact(5).unwrap(), b"hello");
    drop(c);
    assert_idle(&p);
}

/// A server that reads one connection's bytes up to the end of the first request head,
/// answers 200 and closes; returns what it read.
fn recording_server() -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    // (A version 2 header itself starts with CRLF CRLF.)
    let head = |got: &[u8]| usize::from(got.windows(4).any(|w| w == b"GET ") && got.ends_with(b"\r\n\r\n"));
    crate::util::recording_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        head,
        1,
    )
}

#[test]
fn send_proxy_opens_each_server_connection_with_the_header() {
    for (option, v2) in [("send-proxy", false), ("send-proxy-v2", true)] {
        let (srv, seen) = recording_server();
        let cfg = format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 2s\n    timeout server 2s\n\
             frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server s1 {srv} {option}\n"
        );
        let p = proxy(&cfg, &[]);
        let mut c = connect(p.addr("fe"));
        let client = c.local_addr().unwrap();
        c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(c.read_response(false).unwrap().status, 200);
        let got = seen.join().unwrap();
        let (header, request) = if v2 {
            let header =
                haflow::haproxy::frontend::make_proxy_line_v2(Some(client), Some(p.addr("fe")), false, &[]);
            (header.clone(), got[header.len().min(got.len())..].to_vec())
        } else {
            let line =
                format!("PROXY TCP4 127.0.0.1 127.0.0.1 {} {}\r\n", client.port(), p.addr("fe").port());
            (line.clone().into_bytes(), got[line.len().min(got.len())..].to_vec())
        };
        assert_eq!(&got[..header.len().min(got.len())], &header[..], "{option}: the header first");
        assert!(
            request.starts_with(b"GET / HTTP/1.1\r\n"),
            "{option}: then the request: {:?}",
            String::from_utf8_lossy(&request)
        );
        drop(c);
        assert_idle(&p);
    }
}

#[test]
fn a_proxy_chain_keeps_the_real_client() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let inner = proxy(CFG, &[("S1", a(b.addr())), ("PORT", "0".into())]);
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 2s\n    timeout server 2s\n\
         frontend outer\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server inner {} send-proxy-v2\n",
        inner.addr("fe")
    );
    let outer = proxy(&cfg, &[]);
    let mut c = connect(outer.addr("outer"));
    let client = c.local_addr().unwrap();
    for path in ["/1", "/2"] {
        c.send_raw(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()).unwrap();
        assert_eq!(c.read_response(false).unwrap().status, 200);
    }
    let xff: Vec<String> =
        b.requests().iter().map(|r| r.header("x-forwarded-for").unwrap_or("-").to_string()).collect();
    assert_eq!(xff, ["127.0.0.1", "127.0.0.1"]);
    // The inner proxy logs the outer one's client, port included.
    assert!(eventually(SOON, || inner.logs().len() >= 2));
    assert!(inner.logs()[0].starts_with(&format!("{client} ")), "{}", inner.logs()[0]);
    drop(c);
    assert_idle(&outer);
    assert_idle(&inner);
}

const TLV_CFG: &str = r#"
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend fe
    bind "127.0.0.1:${PORT}" accept-proxy
    http-after-response set-header authority %[fc_pp_authority]
    http-after-response set-header uid %[fc_pp_unique_id]
    http-after-response set-header rcvd %[fc_rcvd_proxy]
    http-request return status 200
"#;

/// What `addr` answers to `header` then a request: the status and the `authority`, `uid`
/// and `rcvd` headers, or `None` when it closed without an answer.
fn tlv_answer(addr: std::net::SocketAddr, header: &[u8]) -> Option<(u16, String, String, String)> {
    let mut c = Conn::connect(addr, SOON).ok()?;
    c.send_raw(&[header, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"].concat()).ok()?;
    let r = c.read_response(false).ok()?;
    let h = |n: &str| r.header(n).unwrap_or("-").to_string();
    Some((r.status, h("authority"), h("uid"), h("rcvd")))
}

#[test]
fn v2_tlvs_are_checked_and_read_by_the_fc_pp_fetches() {
    use haflow::haproxy::frontend::{PP2_TYPE_AUTHORITY, PP2_TYPE_UNIQUE_ID, make_proxy_line_v2};
    let (src, dst) = ("192.0.2.1:51000".parse().ok(), "198.51.100.2:80".parse().ok());
    let good = make_proxy_line_v2(
        src,
        dst,
        true,
        &[(PP2_TYPE_AUTHORITY, b"example.com"), (PP2_TYPE_UNIQUE_ID, b"id-1")],
    );
    let mut bad_crc = good.clone();
    bad_crc[30] ^= 1; // inside the checksum, right after the addresses' 12 bytes and the TLV head
    // A TLV announcing more bytes than the header holds, and one ending before it does.
    let mut overflow = make_proxy_line_v2(src, dst, false, &[(PP2_TYPE_AUTHORITY, b"12345")]);
    overflow[30] = 10;
    let mut short = make_proxy_line_v2(src, dst, false, &[(PP2_TYPE_AUTHORITY, b"12345")]);
    short[30] = 4;
    let cases: [(&str, &[u8]); 5] =
        [("good", &good), ("bad crc", &bad_crc), ("overflow", &overflow), ("short", &short), ("v1", V1)];
    let want = [
        Some((200, "example.com".into(), "id-1".into(), "1".into())),
        None,
        None,
        None,
        Some((200, String::new(), String::new(), "1".into())),
    ];
    let p = proxy(TLV_CFG, &[("PORT", "0".into())]);
    for ((name, header), want) in cases.iter().zip(&want) {
        assert_eq!(&tlv_answer(p.addr("fe"), header), want, "haflow: {name}");
        assert_idle(&p);
    }
    let Some(hap) = start_haproxy_with(TLV_CFG, &[]) else { return };
    for ((name, header), want) in cases.iter().zip(&want) {
        assert_eq!(&tlv_answer(hap.addr, header), want, "haproxy: {name}");
    }
}

/// `send-proxy-v2` with `proxy-v2-options`: the exact header a server receives, from
/// haflow and from HAProxy 2.6 (a checksum first, then the authority the client's own
/// header carried, the request's unique id, and the TLS TLV of a client not on TLS).
#[test]
fn proxy_v2_options_send_the_tlvs_haproxy_sends() {
    use haflow::haproxy::frontend::{
        PP2_TYPE_AUTHORITY, PP2_TYPE_SSL, PP2_TYPE_UNIQUE_ID, make_proxy_line_v2,
    };
    let cfg = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 2s\n    timeout server 2s\n\
               frontend fe\n    bind \"127.0.0.1:${PORT}\" accept-proxy\n    unique-id-format TEST-%[req.hdr(in)]\n\
               \x20   default_backend be\nbackend be\n\
               \x20   server s1 \"${S1}\" send-proxy-v2 proxy-v2-options crc32c,authority,unique-id,ssl\n";
    let (src, dst) = ("192.0.2.1:51000".parse().ok(), "198.51.100.2:80".parse().ok());
    let incoming = make_proxy_line_v2(src, dst, false, &[(PP2_TYPE_AUTHORITY, b"example.com")]);
    let want = make_proxy_line_v2(
        src,
        dst,
        true,
        &[(PP2_TYPE_AUTHORITY, b"example.com"), (PP2_TYPE_UNIQUE_ID, b"TEST-foo"), (PP2_TYPE_SSL, &[0; 5])],
    );
    let through = |addr: std::net::SocketAddr, seen: std::thread::JoinHandle<Vec<u8>>| {
        let mut c = Conn::connect(addr, SOON).unwrap();
        c.send_raw(&[&incoming[..], b"GET / HTTP/1.1\r\nHost: h\r\nin: foo\r\n\r\n"].concat()).unwrap();
        assert_eq!(c.read_response(false).unwrap().status, 200);
        let got = seen.join().unwrap();
        got[..want.len().min(got.len())].to_vec()
    };
    let (srv, seen) = recording_server();
    let p = proxy(cfg, &[("S1", a(srv)), ("PORT", "0".into())]);
    assert_eq!(through(p.addr("fe"), seen), want, "haflow");
    assert_idle(&p);
    let (srv, seen) = recording_server();
    let Some(hap) = start_haproxy_with(cfg, &[("S1", a(srv))]) else { return };
    assert_eq!(through(hap.addr, seen), want, "haproxy");
}
