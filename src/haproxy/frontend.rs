//! Frontends: what happens to a new session on the client side.
//!
//! Reproduces `frontend.c` (1.5-dev8). `frontend_accept` is the frontend's `accept`, the
//! third of HAProxy's three accept functions (after `stream_sock_accept` and
//! `session_accept`): it sets the client socket's options, prepares logging (the
//! "Connect from" line when no log format is set, the `-d` debug line), sets up the HTTP
//! transaction in HTTP mode, and arms the client timeouts on both buffers.
//! `frontend_decode_proxy_request` is the first request analyser of a listener with
//! `accept-proxy`: it takes the PROXY protocol header off the connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::haproxy::buffers::{Analysers, BufFlags};
use crate::haproxy::fd::Sock;
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::log::{LOG_INFO, LogFormat, send_log};
use crate::haproxy::proto_http::http_return_srv_error;
use crate::haproxy::proxy::{ProxyMode, ProxyOptions};
use crate::haproxy::session::{AnalyserResult, SessFlags, Session, SnErr, SnFinst};
use crate::trace::names;

/// `p->accept`: returns `false` to refuse the session.
pub type FrontendAcceptFn = fn(&mut Haproxy, &mut Session) -> bool;

/// frontend.c:frontend_accept() in 1.5-dev8: initialise the client side of a new session.
pub fn frontend_accept(w: &mut Haproxy, s: &mut Session) -> bool {
    let fe = &w.proxies[s.fe.idx()];
    let _sp = tracing::info_span!(names::FRONTEND_ACCEPT, sess = s.uniq_id, fe = %fe.name, mode = %fe.mode)
        .entered();
    crate::haproxy::step_point(names::FRONTEND_ACCEPT, || crate::haproxy::View::Session(w, &*s));
    let (mode, opts, timeout_client) = (fe.mode, fe.options, fe.timeout.client);
    // A `log-format` is a format too: "Connect from" is for proxies with none at all.
    let connect_log = fe.log_format == LogFormat::None && fe.log_format_str.is_none();
    let cfd = s.si[0].fd;
    if let Some(Sock::Tcp(t)) = cfd.and_then(|fd| w.fdtab.sock(fd)) {
        // Small writes (HTTP heads, interactive TCP) must not wait for Nagle.
        let _ = t.set_nodelay(true);
        let sock = socket2::SockRef::from(&*t);
        if opts.contains(ProxyOptions::PR_O_TCP_CLI_KA) {
            let _ = sock.set_keepalive(true);
        }
        if opts.contains(ProxyOptions::PR_O_TCP_NOLING) {
            let _ = sock.set_linger(Some(std::time::Duration::ZERO));
        }
    }
    if connect_log && !w.proxies[s.fe.idx()].logs.is_empty() {
        let fe = &w.proxies[s.fe.idx()];
        let local = cfd.and_then(|fd| match w.fdtab.get(fd).map(|e| &e.sock) {
            Some(Sock::Tcp(t)) => t.local_addr().ok(),
            _ => None,
        });
        let msg = format!(
            "Connect from {} to {} ({}/{})",
            s.cli_addr.map_or_else(|| "unix".into(), |a| a.to_string()),
            local.map_or_else(|| "unix".into(), |a| a.to_string()),
            fe.name,
            if mode == ProxyMode::PR_MODE_HTTP { "HTTP" } else { "TCP" }
        );
        let targets = fe.logs.clone();
        send_log(w, &targets, LOG_INFO, &msg);
    }
    if w.global.debug() {
        let lfd = w.listeners[s.listener.idx()].fd.map_or(0, |f| f.0);
        w.debug_line(format!(
            "{:08x}:{}.accept({:04x})={:04x} from [{}] ALPN=<none>",
            s.uniq_id,
            w.proxies[s.fe.idx()].name,
            lfd as u16,
            cfd.map_or(0, |f| f.0) as u16,
            s.cli_addr.map_or_else(|| "unix".into(), |a| a.to_string())
        ));
    }
    if mode == ProxyMode::PR_MODE_HTTP {
        s.srv_error = http_return_srv_error;
        s.txn.reset();
        // One read is usually enough for a request head: do not try to fill the buffer.
        s.req.flags.insert(BufFlags::BF_READ_DONTWAIT);
    }
    if s.req.analysers.is_empty() {
        s.req.buffer_auto_connect();
        s.req.buffer_auto_close();
    }
    s.req.rto = timeout_client;
    s.rep.wto = timeout_client;
    true
}

/// What the start of a connection says of its PROXY protocol header.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// Not complete yet.
    Incomplete,
    /// A valid header of `len` bytes; the real client and the address it reached, unless
    /// the sender did not know them (`UNKNOWN`, v2's `LOCAL`).
    Parsed { len: usize, addrs: Option<(SocketAddr, SocketAddr)> },
    /// Not a PROXY protocol header, or a broken one.
    Invalid,
}

/// The signature that opens a version 2 header.
const PROXY_V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Decodes a PROXY protocol header (version 1, text, as 1.5-dev8; version 2, binary, as
/// 1.5.0) at the start of `input`.
pub fn parse_proxy_header(input: &[u8]) -> ProxyHeader {
    if input.first() == Some(&b'\r') {
        return parse_proxy_v2(input);
    }
    let n = input.len().min(6);
    if input[..n] != b"PROXY "[..n] {
        return ProxyHeader::Invalid;
    }
    // A version 1 line is at most 107 bytes, CRLF included.
    let Some(end) = input.iter().take(107).position(|&b| b == b'\n') else {
        return if input.len() >= 107 { ProxyHeader::Invalid } else { ProxyHeader::Incomplete };
    };
    if end == 0 || input[end - 1] != b'\r' {
        return ProxyHeader::Invalid;
    }
    let Ok(line) = std::str::from_utf8(&input[6..end - 1]) else { return ProxyHeader::Invalid };
    let words: Vec<&str> = line.split(' ').collect();
    let addrs = match words.as_slice() {
        ["UNKNOWN", ..] => None,
        [proto @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v6 = *proto == "TCP6";
            let ip = |t: &str| -> Option<IpAddr> {
                if v6 {
                    t.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
                } else {
                    t.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
                }
            };
            // Ports are plain decimal numbers, no sign nor leading zero.
            let port = |t: &str| -> Option<u16> {
                (t.bytes().all(|b| b.is_ascii_digit()) && !(t.len() > 1 && t.starts_with('0')))
                    .then(|| t.parse().ok())
                    .flatten()
            };
            match (ip(src), ip(dst), port(sport), port(dport)) {
                (Some(s), Some(d), Some(sp), Some(dp)) => {
                    Some((SocketAddr::new(s, sp), SocketAddr::new(d, dp)))
                }
                _ => return ProxyHeader::Invalid,
            }
        }
        _ => return ProxyHeader::Invalid,
    };
    ProxyHeader::Parsed { len: end + 1, addrs }
}

/// The binary version 2 header: signature, version and command, family, length, then
/// the addresses (and TLVs, skipped).
fn parse_proxy_v2(input: &[u8]) -> ProxyHeader {
    let n = input.len().min(PROXY_V2_SIG.len());
    if input[..n] != PROXY_V2_SIG[..n] {
        return ProxyHeader::Invalid;
    }
    if input.len() < 16 {
        return ProxyHeader::Incomplete;
    }
    let (ver_cmd, fam) = (input[12], input[13]);
    let len = 16 + usize::from(u16::from_be_bytes([input[14], input[15]]));
    if ver_cmd >> 4 != 2 {
        return ProxyHeader::Invalid;
    }
    if input.len() < len {
        return ProxyHeader::Incomplete;
    }
    let body = &input[16..len];
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let addrs = match (ver_cmd & 0xf, fam) {
        // LOCAL: a health check of the sender itself; the connection's own addresses stand.
        (0, _) => None,
        (1, 0x11 | 0x12) if body.len() >= 12 => {
            let ip = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            Some((
                SocketAddr::new(ip(&body[0..4]), port(&body[8..10])),
                SocketAddr::new(ip(&body[4..8]), port(&body[10..12])),
            ))
        }
        (1, 0x21 | 0x22) if body.len() >= 36 => {
            let ip = |b: &[u8]| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16])));
            Some((
                SocketAddr::new(ip(&body[0..16]), port(&body[32..34])),
                SocketAddr::new(ip(&body[16..32]), port(&body[34..36])),
            ))
        }
        // UNSPEC or a family haflow does not carry (UNIX): keep the connection's addresses.
        (1, 0x00 | 0x31 | 0x32) => None,
        _ => return ProxyHeader::Invalid,
    };
    ProxyHeader::Parsed { len, addrs }
}

/// frontend.c:frontend_decode_proxy_request() in 1.5-dev8 (`AN_REQ_DECODE_PROXY`): the
/// connection of an `accept-proxy` listener starts with a PROXY protocol header; take it
/// off the request, and let the session see the real client (`src`) and the address it
/// reached (`dst`). A connection that does not start with one is closed, counted as a
/// failed request (`PR--`).
/// Divergence: also version 2 headers and `UNKNOWN`, as 1.5.0's conn_recv_proxy() does.
pub fn frontend_decode_proxy_request(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let span = tracing::debug_span!(
        names::FRONTEND_DECODE_PROXY_REQUEST,
        sess = s.uniq_id,
        an = crate::trace::fields::Coded::coded(&an_bit),
        src = tracing::field::Empty
    );
    let _g = span.enter();
    let failed = s.req.flags.intersects(BufFlags::BF_READ_ERROR | BufFlags::BF_READ_TIMEOUT);
    match (failed, parse_proxy_header(s.req.input())) {
        (false, ProxyHeader::Parsed { len, addrs }) => {
            s.pp_unique_id = pp2_unique_id(&s.req.input()[..len]).map(Vec::into_boxed_slice);
            s.req.replace_input(0, len, &[]);
            // The header is the sender's, not the client's: it is not in the request's bytes.
            s.req.total -= len as u64;
            s.logs.bytes_in = s.logs.bytes_in.saturating_sub(len as u64);
            if let Some((src, dst)) = addrs {
                span.record("src", tracing::field::display(src));
                s.cli_addr = Some(src);
                s.frt_addr = Some(dst);
                s.flags.insert(SessFlags::SN_FRT_ADDR_SET);
            }
            s.req.analysers.remove(an_bit);
            // `tcp-request session` rules see the client the header named.
            if !w.proxies[s.fe.idx()].tcp_req.l5_rules.is_empty()
                && !crate::haproxy::tcp_rules::tcp_exec_l5_rules(w, s)
            {
                s.si[0].flags.insert(crate::haproxy::stream_interface::SiFlags::SI_FL_NOLINGER);
                s.req.buffer_abort();
                s.rep.buffer_abort();
                s.req.analysers = Analysers::empty();
                s.set_err(SnErr::SN_ERR_PRXCOND);
                s.set_finst(SnFinst::SN_FINST_R);
                return AnalyserResult::Abort;
            }
            AnalyserResult::Continue
        }
        (false, ProxyHeader::Incomplete)
            if !s.req.flags.intersects(BufFlags::BF_SHUTR | BufFlags::BF_FULL) =>
        {
            s.req.buffer_dont_connect();
            AnalyserResult::Wait
        }
        _ => {
            span.record("src", "invalid");
            s.req.buffer_abort();
            s.rep.buffer_abort();
            s.req.analysers = Analysers::empty();
            w.proxies[s.fe.idx()].counters.failed_req += 1;
            s.set_err(SnErr::SN_ERR_PRXCOND);
            s.set_finst(SnFinst::SN_FINST_R);
            AnalyserResult::Abort
        }
    }
}

/// `PP2_TYPE_UNIQUE_ID`: the TLV of a version 2 header that carries the sender's
/// unique id (2.2+).
const PP2_TYPE_UNIQUE_ID: u8 = 0x05;

/// The `PP2_TYPE_UNIQUE_ID` value of the version 2 header `hdr` (what
/// `fc_pp_unique_id` returns), found among the TLVs after the addresses.
pub fn pp2_unique_id(hdr: &[u8]) -> Option<Vec<u8>> {
    if hdr.len() < 16 || !hdr.starts_with(PROXY_V2_SIG) {
        return None;
    }
    let addr_len = match hdr[13] >> 4 {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    let mut tlvs = hdr.get(16 + addr_len..)?;
    while tlvs.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([tlvs[1], tlvs[2]]));
        let value = tlvs.get(3..3 + len)?;
        if tlvs[0] == PP2_TYPE_UNIQUE_ID {
            return Some(value.to_vec());
        }
        tlvs = &tlvs[3 + len..];
    }
    None
}

/// frontend.c:make_proxy_line() in 1.5-dev8: the version 1 PROXY header for a connection
/// from `src` to `dst`; `UNKNOWN` when they are not both known and of one family.
pub fn make_proxy_line(src: Option<SocketAddr>, dst: Option<SocketAddr>) -> Vec<u8> {
    match (src, dst) {
        (Some(s @ SocketAddr::V4(_)), Some(d @ SocketAddr::V4(_))) => {
            format!("PROXY TCP4 {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port()).into_bytes()
        }
        (Some(s @ SocketAddr::V6(_)), Some(d @ SocketAddr::V6(_))) => {
            format!("PROXY TCP6 {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port()).into_bytes()
        }
        _ => b"PROXY UNKNOWN\r\n".to_vec(),
    }
}

/// connection.c:make_proxy_line_v2() in 1.5.0: the binary version 2 header, `PROXY`
/// command, without TLVs; `UNSPEC` when the addresses are not known.
pub fn make_proxy_line_v2(src: Option<SocketAddr>, dst: Option<SocketAddr>) -> Vec<u8> {
    let mut h = PROXY_V2_SIG.to_vec();
    let (fam, addrs): (u8, Vec<u8>) = match (src, dst) {
        (Some(SocketAddr::V4(s)), Some(SocketAddr::V4(d))) => (
            0x11,
            [&s.ip().octets()[..], &d.ip().octets(), &s.port().to_be_bytes(), &d.port().to_be_bytes()]
                .concat(),
        ),
        (Some(SocketAddr::V6(s)), Some(SocketAddr::V6(d))) => (
            0x21,
            [&s.ip().octets()[..], &d.ip().octets(), &s.port().to_be_bytes(), &d.port().to_be_bytes()]
                .concat(),
        ),
        _ => (0x00, Vec::new()),
    };
    h.extend([0x21, fam]);
    h.extend((addrs.len() as u16).to_be_bytes());
    h.extend(addrs);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(a: &str, b: &str) -> Option<(SocketAddr, SocketAddr)> {
        Some((a.parse().unwrap(), b.parse().unwrap()))
    }

    #[test]
    fn version_1_lines_are_decoded_or_refused() {
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 80\r\nGET /";
        assert_eq!(
            parse_proxy_header(line),
            ProxyHeader::Parsed { len: 44, addrs: addrs("192.0.2.1:51000", "198.51.100.2:80") }
        );
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
        assert_eq!(
            parse_proxy_header(v6),
            ProxyHeader::Parsed { len: v6.len(), addrs: addrs("[2001:db8::1]:1", "[2001:db8::2]:2") }
        );
        assert_eq!(parse_proxy_header(b"PROXY UNKNOWN\r\n"), ProxyHeader::Parsed { len: 15, addrs: None });
        assert_eq!(parse_proxy_header(b"PROX"), ProxyHeader::Incomplete);
        assert_eq!(parse_proxy_header(b"PROXY TCP4 192.0.2.1"), ProxyHeader::Incomplete);
        for bad in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 80\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 80\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 80\r\n",
            b"PROXY TCP5 192.0.2.1 198.51.100.2 1 80\r\n",
        ] {
            assert_eq!(parse_proxy_header(bad), ProxyHeader::Invalid, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_proxy_header(&[b'P'; 120]), ProxyHeader::Invalid);
    }

    #[test]
    fn version_2_headers_are_decoded_and_their_tlvs_skipped() {
        let mut h = PROXY_V2_SIG.to_vec();
        h.extend([0x21, 0x11, 0, 12 + 3]);
        h.extend([192, 0, 2, 1, 198, 51, 100, 2, 0xc7, 0x38, 0, 80]);
        h.extend([0xEE, 0, 0]); // an empty TLV
        assert_eq!(
            parse_proxy_header(&h),
            ProxyHeader::Parsed { len: h.len(), addrs: addrs("192.0.2.1:51000", "198.51.100.2:80") }
        );
        assert_eq!(parse_proxy_header(&h[..20]), ProxyHeader::Incomplete);
        let mut local = PROXY_V2_SIG.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(parse_proxy_header(&local), ProxyHeader::Parsed { len: 16, addrs: None });
        let (src, dst) = addrs("192.0.2.1:51000", "198.51.100.2:80").unwrap();
        let made = make_proxy_line_v2(Some(src), Some(dst));
        assert_eq!(parse_proxy_header(&made), ProxyHeader::Parsed { len: 28, addrs: Some((src, dst)) });
        // A unique id TLV after the addresses (`fc_pp_unique_id`).
        let mut with_id = PROXY_V2_SIG.to_vec();
        with_id.extend_from_slice(&[0x21, 0x11, 0x00, 0x14, 127, 0, 0, 1, 127, 0, 0, 1, 0, 42, 5, 57]);
        with_id.extend_from_slice(&[0x05, 0x00, 0x05, b'1', b'2', b'3', b'4', b'5']);
        assert!(matches!(parse_proxy_header(&with_id), ProxyHeader::Parsed { len: 36, .. }));
        assert_eq!(pp2_unique_id(&with_id).as_deref(), Some(&b"12345"[..]));
        assert_eq!(pp2_unique_id(&made), None);
        let line = make_proxy_line(Some(src), Some(dst));
        assert_eq!(line, b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 80\r\n");
        assert_eq!(make_proxy_line(None, Some(dst)), b"PROXY UNKNOWN\r\n");
        let mut v1 = PROXY_V2_SIG.to_vec();
        v1.extend([0x11, 0x11, 0, 0]);
        assert_eq!(parse_proxy_header(&v1), ProxyHeader::Invalid);
    }
}
