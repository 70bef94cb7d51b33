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
    /// the sender did not know them (`UNKNOWN`, v2's `LOCAL`), and the TLVs kept.
    Parsed { len: usize, addrs: Option<(SocketAddr, SocketAddr)>, tlvs: Option<Box<PpTlvs>> },
    /// Not a PROXY protocol header, or a broken one.
    Invalid,
}

/// The signature that opens a version 2 header.
const PROXY_V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// `PP2_TYPE_*`: the TLV types of a version 2 header haflow reads or writes.
pub const PP2_TYPE_AUTHORITY: u8 = 0x02;
/// `PP2_TYPE_CRC32C`: a checksum of the whole header.
pub const PP2_TYPE_CRC32C: u8 = 0x03;
/// `PP2_TYPE_UNIQUE_ID`: the sender's unique id of the request.
pub const PP2_TYPE_UNIQUE_ID: u8 = 0x05;
/// `PP2_TYPE_SSL`: how the client connected (TLS or not).
pub const PP2_TYPE_SSL: u8 = 0x20;
/// `PP2_AUTHORITY_MAX`: the longest authority accepted.
const PP2_AUTHORITY_MAX: usize = 255;
/// `UNIQUEID_LEN`: the longest unique id a PROXY header may carry.
const UNIQUEID_LEN: usize = 128;

/// What a version 2 header carried besides the addresses (2.6's `conn->proxy_authority`
/// and `conn->proxy_unique_id`), for `fc_pp_authority` and `fc_pp_unique_id`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PpTlvs {
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for.
    pub authority: Option<Vec<u8>>,
    /// `PP2_TYPE_UNIQUE_ID`.
    pub unique_id: Option<Vec<u8>>,
}

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
    ProxyHeader::Parsed { len: end + 1, addrs, tlvs: None }
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
    let (addrs, tlv_at) = match (ver_cmd & 0xf, fam) {
        // LOCAL: a health check of the sender itself; the connection's own addresses stand.
        (0, _) => (None, None),
        (1, 0x11 | 0x12) if body.len() >= 12 => {
            let ip = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            let a = (
                SocketAddr::new(ip(&body[0..4]), port(&body[8..10])),
                SocketAddr::new(ip(&body[4..8]), port(&body[10..12])),
            );
            (Some(a), Some(12))
        }
        (1, 0x21 | 0x22) if body.len() >= 36 => {
            let ip = |b: &[u8]| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16])));
            let a = (
                SocketAddr::new(ip(&body[0..16]), port(&body[32..34])),
                SocketAddr::new(ip(&body[16..32]), port(&body[34..36])),
            );
            (Some(a), Some(36))
        }
        // UNSPEC or a family haflow does not carry (UNIX): keep the connection's addresses.
        (1, 0x00 | 0x31 | 0x32) => (None, None),
        _ => return ProxyHeader::Invalid,
    };
    let tlvs = match tlv_at {
        Some(at) => match pp2_parse_tlvs(&input[..len], 16 + at) {
            Some(t) => t,
            None => return ProxyHeader::Invalid,
        },
        None => None,
    };
    ProxyHeader::Parsed { len, addrs, tlvs }
}

/// The TLV part of connection.c:conn_recv_proxy() in 2.6: every TLV must fit in the
/// header and the last one end exactly where the header does; a `CRC32C` must match
/// the header's checksum, an authority or unique id must not be too long. `None` for a
/// broken header; `Some(None)` when no TLV haflow keeps was there.
fn pp2_parse_tlvs(hdr: &[u8], mut at: usize) -> Option<Option<Box<PpTlvs>>> {
    let mut kept = PpTlvs::default();
    while at < hdr.len() {
        let h = hdr.get(at..at + 3)?;
        let (ty, vlen) = (h[0], usize::from(u16::from_be_bytes([h[1], h[2]])));
        let value = hdr.get(at + 3..at + 3 + vlen)?;
        match ty {
            PP2_TYPE_CRC32C => {
                let want = u32::from_be_bytes(<[u8; 4]>::try_from(value).ok()?);
                let mut zeroed = hdr.to_vec();
                zeroed[at + 3..at + 7].fill(0);
                if crate::haproxy::sample::hash_crc32c(&zeroed) != want {
                    return None;
                }
            }
            PP2_TYPE_AUTHORITY if vlen > PP2_AUTHORITY_MAX => return None,
            PP2_TYPE_AUTHORITY => kept.authority = Some(value.to_vec()),
            PP2_TYPE_UNIQUE_ID if vlen > UNIQUEID_LEN => return None,
            PP2_TYPE_UNIQUE_ID => kept.unique_id = Some(value.to_vec()),
            _ => {}
        }
        at += 3 + vlen;
    }
    Some((kept != PpTlvs::default()).then(|| Box::new(kept)))
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
        (false, ProxyHeader::Parsed { len, addrs, tlvs }) => {
            s.req.replace_input(0, len, &[]);
            // The header is the sender's, not the client's: it is not in the request's bytes.
            s.req.total -= len as u64;
            s.logs.bytes_in = s.logs.bytes_in.saturating_sub(len as u64);
            if let Some((src, dst)) = addrs {
                span.record("src", tracing::field::display(src));
                // 2.6's conn_recv_proxy() sets the session level, not the connection's.
                s.addr_levels_mut().sess = [Some(src), Some(dst)];
                s.cli_addr = Some(src);
                s.frt_addr = Some(dst);
                s.flags.insert(SessFlags::SN_FRT_ADDR_SET);
            }
            s.pp_tlvs = tlvs;
            s.flags.insert(SessFlags::SN_RCVD_PROXY);
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

/// connection.c:make_proxy_line_v2() in 1.5.0, with 2.6's address rules and TLVs: the
/// binary version 2 header, `PROXY` command over IPv4, or IPv6 when either side is
/// (an IPv4 one mapped); the `LOCAL` command when the addresses are not known. `tlvs`
/// follow the addresses in order; with `crc32c`, a `CRC32C` TLV goes first and carries
/// the checksum of the whole header.
pub fn make_proxy_line_v2(
    src: Option<SocketAddr>,
    dst: Option<SocketAddr>,
    crc32c: bool,
    tlvs: &[(u8, &[u8])],
) -> Vec<u8> {
    let mut h = PROXY_V2_SIG.to_vec();
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let (cmd_fam, addrs): ([u8; 2], Vec<u8>) = match (src, dst) {
        (Some(SocketAddr::V4(s)), Some(SocketAddr::V4(d))) => (
            [0x21, 0x11],
            [&s.ip().octets()[..], &d.ip().octets(), &s.port().to_be_bytes(), &d.port().to_be_bytes()]
                .concat(),
        ),
        (Some(s), Some(d)) => (
            [0x21, 0x21],
            [&v6(s).octets()[..], &v6(d).octets(), &s.port().to_be_bytes(), &d.port().to_be_bytes()].concat(),
        ),
        _ => ([0x20, 0x00], Vec::new()),
    };
    h.extend(cmd_fam);
    h.extend([0, 0]);
    h.extend(addrs);
    let crc_at = crc32c.then(|| {
        h.extend([PP2_TYPE_CRC32C, 0, 4, 0, 0, 0, 0]);
        h.len() - 4
    });
    for (ty, v) in tlvs {
        h.push(*ty);
        h.extend((v.len() as u16).to_be_bytes());
        h.extend_from_slice(v);
    }
    let body = (h.len() - 16) as u16;
    h[14..16].copy_from_slice(&body.to_be_bytes());
    if let Some(at) = crc_at {
        let crc = crate::haproxy::sample::hash_crc32c(&h);
        h[at..at + 4].copy_from_slice(&crc.to_be_bytes());
    }
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
            ProxyHeader::Parsed { len: 44, addrs: addrs("192.0.2.1:51000", "198.51.100.2:80"), tlvs: None }
        );
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
        assert_eq!(
            parse_proxy_header(v6),
            ProxyHeader::Parsed {
                len: v6.len(),
                addrs: addrs("[2001:db8::1]:1", "[2001:db8::2]:2"),
                tlvs: None
            }
        );
        assert_eq!(
            parse_proxy_header(b"PROXY UNKNOWN\r\n"),
            ProxyHeader::Parsed { len: 15, addrs: None, tlvs: None }
        );
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
            ProxyHeader::Parsed {
                len: h.len(),
                addrs: addrs("192.0.2.1:51000", "198.51.100.2:80"),
                tlvs: None
            }
        );
        assert_eq!(parse_proxy_header(&h[..20]), ProxyHeader::Incomplete);
        let mut local = PROXY_V2_SIG.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(parse_proxy_header(&local), ProxyHeader::Parsed { len: 16, addrs: None, tlvs: None });
        let (src, dst) = addrs("192.0.2.1:51000", "198.51.100.2:80").unwrap();
        let made = make_proxy_line_v2(Some(src), Some(dst), false, &[]);
        assert_eq!(
            parse_proxy_header(&made),
            ProxyHeader::Parsed { len: 28, addrs: Some((src, dst)), tlvs: None }
        );
        let line = make_proxy_line(Some(src), Some(dst));
        assert_eq!(line, b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 80\r\n");
        assert_eq!(make_proxy_line(None, Some(dst)), b"PROXY UNKNOWN\r\n");
        let mut v1 = PROXY_V2_SIG.to_vec();
        v1.extend([0x11, 0x11, 0, 0]);
        assert_eq!(parse_proxy_header(&v1), ProxyHeader::Invalid);
    }

    #[test]
    fn version_2_tlvs_are_kept_checked_and_made_as_2_6_does() {
        let (src, dst) = addrs("192.0.2.1:51000", "198.51.100.2:80").unwrap();
        let h = make_proxy_line_v2(
            Some(src),
            Some(dst),
            true,
            &[(PP2_TYPE_AUTHORITY, b"example.com"), (PP2_TYPE_UNIQUE_ID, b"id")],
        );
        // Addresses, then the checksum first, then the TLVs in order.
        assert_eq!(&h[28..31], &[PP2_TYPE_CRC32C, 0, 4]);
        assert_eq!(h.len(), 28 + 7 + 3 + 11 + 3 + 2);
        let tlvs = PpTlvs { authority: Some(b"example.com".to_vec()), unique_id: Some(b"id".to_vec()) };
        assert_eq!(
            parse_proxy_header(&h),
            ProxyHeader::Parsed { len: h.len(), addrs: Some((src, dst)), tlvs: Some(Box::new(tlvs)) }
        );
        // A wrong checksum, a TLV past the end, one ending short of it: refused.
        let mut bad = h.clone();
        bad[31] ^= 0xff;
        assert_eq!(parse_proxy_header(&bad), ProxyHeader::Invalid);
        let mut over = make_proxy_line_v2(Some(src), Some(dst), false, &[(PP2_TYPE_AUTHORITY, b"12345")]);
        over[30] = 6;
        assert_eq!(parse_proxy_header(&over), ProxyHeader::Invalid);
        over[30] = 4;
        assert_eq!(parse_proxy_header(&over), ProxyHeader::Invalid);
        // Too long an authority.
        let long = make_proxy_line_v2(Some(src), Some(dst), false, &[(PP2_TYPE_AUTHORITY, &[b'a'; 256])]);
        assert_eq!(parse_proxy_header(&long), ProxyHeader::Invalid);
        // Unknown addresses: the LOCAL command; mixed families: IPv6 with a mapped IPv4.
        assert_eq!(&make_proxy_line_v2(None, Some(dst), false, &[])[12..16], &[0x20, 0x00, 0, 0]);
        let v6 = addrs("192.0.2.1:1", "[2001:db8::2]:2").unwrap();
        let mixed = make_proxy_line_v2(Some(v6.0), Some(v6.1), false, &[]);
        assert_eq!(&mixed[12..16], &[0x21, 0x21, 0, 36]);
        assert_eq!(&mixed[16..32], &std::net::Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped().octets());
    }
}
