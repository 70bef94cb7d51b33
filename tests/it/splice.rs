//! Kernel splicing (`option splice-auto|splice-request|splice-response`): large bodies
//! and TCP streams go through pipes byte-exact, the splicing counters and the logs count
//! them, and every pipe goes back to the pool, after a client that leaves mid-transfer
//! and after a server reset too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use haflow::haproxy::proxy::H1Counters;

use crate::util::*;

fn cfg(mode: &str, options: &str, server: &str) -> String {
    format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode {mode}\n    log global\n    option {mode}log\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n{options}\n\
         listen fe\n    bind 127.0.0.1:0\n    server s1 {server}\n"
    )
}

/// The splicing counters of proxy `fe`: (frontend side, backend side).
fn spliced(p: &RunningProxy) -> (H1Counters, H1Counters) {
    p.query(|w| {
        let px = w.proxies.iter().find(|px| px.name == "fe").expect("proxy fe");
        (px.counters.h1_fe, px.counters.h1_be)
    })
}

/// `(pipes_used, pipes_free)`.
fn pipes(p: &RunningProxy) -> (u32, u32) {
    p.query(|w| (w.pipes.pipes_used, w.pipes.pipes_free))
}

#[test]
fn tcp_streams_are_spliced_byte_exact_both_ways_and_counted_like_copied_bytes() {
    let echo = backend(BackendSpec::Echo);
    let p = proxy(
        &cfg("tcp", "    option splice-request\n    option splice-response", "\"${S1}\""),
        &[("S1", a(echo.addr()))],
    );
    let data = pattern(8 * 1024 * 1024);
    let out = echo_through(p.addr("fe"), &data);
    assert_eq!(out.len(), data.len(), "every byte came back");
    assert!(out == data, "the bytes came back unchanged");
    let (fe, be) = spliced(&p);
    assert!(fe.spliced_bytes_in > 0 && fe.spliced_bytes_out > 0, "client side spliced: {fe:?}");
    assert!(be.spliced_bytes_in > 0 && be.spliced_bytes_out > 0, "server side spliced: {be:?}");
    assert!(fe.spliced_bytes_in <= data.len() as u64 && be.spliced_bytes_in <= data.len() as u64);
    // The log counts spliced bytes as it counts copied ones.
    let log = wait_log(&p, |l| l.contains("fe/s1"));
    assert!(log.contains(" 8388608 --"), "all bytes in the log: {log}");
    assert_idle(&p);
    assert_eq!(pipes(&p).0, 0, "the pipes went back to the pool");
    assert!(pipes(&p).1 > 0, "and wait there for the next transfer");
}

#[test]
fn splice_auto_splices_a_fast_stream_and_a_config_without_splice_uses_no_pipe() {
    let echo = backend(BackendSpec::Echo);
    let data = pattern(16 * 1024 * 1024);
    let p = proxy(&cfg("tcp", "    option splice-auto", "\"${S1}\""), &[("S1", a(echo.addr()))]);
    assert!(echo_through(p.addr("fe"), &data) == data, "the bytes came back unchanged");
    let (fe, be) = spliced(&p);
    assert!(fe.spliced_bytes_in + be.spliced_bytes_in > 0, "a fast stream is spliced: {fe:?} {be:?}");
    assert_idle(&p);

    let plain = proxy(&cfg("tcp", "", "\"${S1}\""), &[("S1", a(echo.addr()))]);
    assert!(echo_through(plain.addr("fe"), &data) == data);
    assert_eq!(spliced(&plain), (H1Counters::default(), H1Counters::default()), "nothing spliced");
    assert_eq!(pipes(&plain), (0, 0), "no pipe was ever made");
    assert_eq!(plain.query(|w| w.global.maxpipes), 0, "no pipe is even planned for");
    assert_idle(&plain);
}

/// One HTTP server connection: reads requests (with their Content-Length bodies) and
/// answers each with a body of the size the request's path asks for (`/N`); the request
/// bodies it read are returned when the client closes.
fn http_server() -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut bodies = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return bodies;
            }
            let size: usize = line.split_whitespace().nth(1).unwrap_or("/0")[1..].parse().unwrap_or(0);
            let (_, len) = read_fields(&mut r);
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            bodies.push(body);
            w.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n").as_bytes()).unwrap();
            w.write_all(&pattern(size)).unwrap();
        }
    });
    (addr, t)
}

/// Reads a message's header fields up to and including the empty line that ends them:
/// (bytes read, Content-Length).
fn read_fields(r: &mut BufReader<TcpStream>) -> (usize, usize) {
    let (mut read, mut len) = (0, 0);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        assert!(!h.is_empty(), "the head ends with an empty line");
        read += h.len();
        if h == "\r\n" {
            return (read, len);
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
}

/// Reads one response with a Content-Length body: (head length, body).
fn read_response(r: &mut BufReader<TcpStream>) -> (usize, Vec<u8>) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(!status.is_empty(), "a response comes");
    let (fields, len) = read_fields(r);
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status.len() + fields, body)
}

#[test]
fn http_bodies_are_spliced_byte_exact_and_keep_alive_goes_on_after_a_spliced_response() {
    let (srv, t) = http_server();
    let p = proxy(
        &cfg(
            "http",
            "    option splice-auto\n    option splice-request\n    option splice-response",
            "${S1}",
        ),
        &[("S1", a(srv))],
    );
    let big = 4 * 1024 * 1024;
    let req_body = pattern(3 * 1024 * 1024 + 17);
    let mut c = TcpStream::connect(p.addr("fe")).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    c.write_all(
        format!("POST /{big} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n", req_body.len()).as_bytes(),
    )
    .unwrap();
    c.write_all(&req_body).unwrap();
    let (head, body) = read_response(&mut r);
    assert_eq!(body.len(), big);
    assert!(body == pattern(big), "the spliced response body is intact");
    let (fe, be) = spliced(&p);
    assert!(fe.spliced_bytes_in > 0, "the request body was spliced from the client: {fe:?}");
    assert!(be.spliced_bytes_out > 0, "and into the server: {be:?}");
    assert!(be.spliced_bytes_in > 0, "the response body was spliced from the server: {be:?}");
    assert!(fe.spliced_bytes_out > 0, "and into the client: {fe:?}");
    let log = wait_log(&p, |l| l.contains("POST /"));
    assert!(log.contains(&format!(" 200 {} ", head + big)), "the log counts the spliced bytes: {log}");

    // The next request on the same connection gets its own response, exactly.
    c.write_all(b"GET /10 HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let (_, body) = read_response(&mut r);
    assert_eq!(body, pattern(10), "the response after a spliced one is exact");
    let log = wait_log(&p, |l| l.contains("GET /10"));
    assert!(log.contains(" 200 "), "{log}");
    drop(r);
    drop(c);
    let bodies = t.join().unwrap();
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0] == req_body, "the spliced request body reached the server intact");
    assert!(bodies[1].is_empty());
    assert_idle(&p);
}

#[test]
fn a_client_leaving_mid_transfer_gives_its_pipe_back() {
    // The server streams far more than the client will read.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let chunk = pattern(64 * 1024);
        while s.write_all(&chunk).is_ok() {}
    });
    let p = proxy(&cfg("tcp", "    option splice-response", "\"${S1}\""), &[("S1", a(addr))]);
    let mut c = TcpStream::connect(p.addr("fe")).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    let mut got = vec![0; 1024 * 1024];
    c.read_exact(&mut got).unwrap();
    assert!(got == pattern(64 * 1024).repeat(16), "the spliced stream is intact");
    assert!(eventually(SOON, || spliced(&p).1.spliced_bytes_in > 0), "the stream is spliced");
    drop(c);
    t.join().unwrap();
    let log = wait_log(&p, |l| l.contains("fe/s1"));
    assert!(tcplog_term(&log).starts_with('C'), "a client abort: {log}");
    assert_idle(&p);
    assert_eq!(pipes(&p).0, 0, "every pipe is back");
}

#[test]
fn a_server_reset_mid_transfer_gives_the_pipe_back() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(&pattern(2 * 1024 * 1024)).unwrap();
        // SO_LINGER 0: the close sends a RST.
        socket2::SockRef::from(&s).set_linger(Some(std::time::Duration::ZERO)).unwrap();
    });
    let p = proxy(&cfg("tcp", "    option splice-response", "\"${S1}\""), &[("S1", a(addr))]);
    let mut c = TcpStream::connect(p.addr("fe")).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    // The client reads slowly at first, so the reset finds bytes waiting in the pipe.
    let mut first = vec![0; 1024];
    c.read_exact(&mut first).unwrap();
    t.join().unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(first.len() + rest.len() <= 2 * 1024 * 1024);
    let log = wait_log(&p, |l| l.contains("fe/s1"));
    assert!(tcplog_term(&log).starts_with('S'), "the server's reset ends the session: {log}");
    assert_idle(&p);
    assert_eq!(pipes(&p).0, 0, "every pipe is back");
}
