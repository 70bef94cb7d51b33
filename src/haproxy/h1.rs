//! HTTP/1 message syntax: start lines, headers, message framing and chunk sizes.
//!
//! In 1.5 this lived inside `proto_http.c` (`http_msg_analyzer`); since 1.9 HAProxy keeps
//! it in `h1.c`, which this file reproduces. It only parses: no state about sessions.
//! The rules follow what HAProxy 2.6 accepts (see the captures in
//! `tests/fixtures/haproxy-2.6`): bare LF line ends and obs-fold continuations are
//! accepted (a fold becomes spaces), a method is any token, `HTTP/x.y` versions other
//! than 1.0 are treated as 1.1, control or 8-bit characters in the URI, invalid header
//! names and a space before the colon are errors. Header lines are split by `httparse`.

use std::fmt;

/// Why a message head could not be accepted, with the status HAProxy answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H1Error {
    /// `400`, `422`, or `502` for a response.
    pub status: u16,
    /// What was wrong, for spans and `show errors`.
    pub reason: &'static str,
}

impl fmt::Display for H1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.status)
    }
}

fn bad(reason: &'static str) -> H1Error {
    H1Error { status: 400, reason }
}

/// The first line of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD URI HTTP/x.y`.
    Request {
        /// The method token, as sent (`get` stays `get`).
        method: String,
        /// The request target, as sent.
        uri: String,
        /// The version as written (`HTTP/9.9` is logged as such).
        version: String,
    },
    /// `HTTP/x.y CODE REASON`.
    Response {
        /// The version as written.
        version: String,
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
}

/// A parsed message head: start line and headers (names lowercased, as HAProxy 2.6
/// forwards them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Request or status line.
    pub start: StartLine,
    /// Header fields in order; names in lower case, values as received (folds joined).
    pub headers: Vec<(String, Vec<u8>)>,
}

/// How the body of a message is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (GET without length, HEAD responses, 204, 304, 1xx).
    None,
    /// `Content-Length: N`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes (responses only).
    UntilClose,
}

impl Head {
    /// Values of header `name` (lowercase).
    pub fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// The first value of header `name`.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// Removes every header named `name`; returns whether one was removed.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.headers.len();
        self.headers.retain(|(n, _)| n != name);
        before != self.headers.len()
    }

    /// Appends a header.
    pub fn add(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Replaces every `name` header by one with `value`, at the end (as HAProxy does).
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        let n = name.to_ascii_lowercase();
        self.remove(&n);
        self.headers.push((n, value.into()));
    }

    /// True when a `name` header lists `token` among its comma-separated values
    /// (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name)
            .any(|v| v.split(|&c| c == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
    }

    /// True when a `Connection` header lists `token` (case-insensitive).
    pub fn connection_has(&self, token: &str) -> bool {
        self.has_token("connection", token)
    }

    /// The minor version: 0 for `HTTP/1.0` (and 0.9), 1 for everything else.
    pub fn minor(&self) -> u8 {
        let v = match &self.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => version,
        };
        if v == "HTTP/1.0" || v == "HTTP/0.9" { 0 } else { 1 }
    }

    /// How many bytes `to_bytes()` writes, without writing them: what a rewrite is
    /// checked against (the room left in the buffer).
    pub fn wire_len(&self) -> usize {
        let start = match &self.start {
            StartLine::Request { method, uri, .. } => method.len() + uri.len() + 2,
            StartLine::Response { reason, .. } => 4 + reason.len() + 1,
        };
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        start + "HTTP/1.1".len() + 2 + headers + 2
    }

    /// Serialises the head as HAProxy 2.6 forwards it: the start line (versions other than
    /// 1.0 become `HTTP/1.1`; a response's 1.0 or 0.9 stays as written), lowercase header
    /// names, CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let ver = if self.minor() == 0 { "HTTP/1.0" } else { "HTTP/1.1" };
        match &self.start {
            StartLine::Request { method, uri, .. } => {
                out.extend_from_slice(method.as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.push(b' ');
                out.extend_from_slice(ver.as_bytes());
            }
            StartLine::Response { version, status, reason } => {
                // An HTTP/1.0 status line keeps its version (2.6's h1_format_htx_stline()).
                let ver = if self.minor() == 0 { version.as_str() } else { "HTTP/1.1" };
                out.extend_from_slice(format!("{ver} {status} {reason}").as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Length of the head at the start of `buf` (up to and including the empty line), after
/// skipping leading empty lines; `None` while incomplete.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while buf[start..].starts_with(b"\r\n") || buf[start..].starts_with(b"\n") {
        start += if buf[start] == b'\r' { 2 } else { 1 };
    }
    let body = &buf[start..];
    let mut i = 0;
    while let Some(p) = body[i..].iter().position(|&c| c == b'\n') {
        let nl = i + p;
        let rest = &body[nl + 1..];
        if rest.starts_with(b"\n") {
            return Some(start + nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(start + nl + 3);
        }
        if rest.len() < 2 && (rest.is_empty() || rest == b"\r") {
            return None;
        }
        i = nl + 1;
    }
    None
}

/// Length of the trailer block at the start of `buf` (what follows the last chunk's size
/// line), up to and including its empty line; `None` while incomplete. Read line by line,
/// as h1.c's parser does: the first empty line ends it, whatever follows (a pipelined
/// request) is not looked at.
pub fn trailers_len(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let nl = at + buf[at..].iter().position(|&c| c == b'\n')?;
        if buf[at..nl].strip_suffix(b"\r").unwrap_or(&buf[at..nl]).is_empty() {
            return Some(nl + 1);
        }
        at = nl + 1;
    }
}

/// Where a partial request line stands while it is checked byte by byte.
#[derive(Clone, Copy)]
enum ReqLine {
    /// In the method, after this many bytes.
    Method(usize),
    /// Between the method and the URI.
    Gap1,
    /// In the URI.
    Uri,
    /// Between the URI and the version.
    Gap2,
    /// This many bytes into `HTTP/x.y`.
    Version(usize),
}

/// True when the first bytes of a request head can no longer become a request line
/// (`METHOD SP URI SP HTTP/x.y`): an HTTP/0.9 request, a TLS hello, binary garbage. They
/// get their 400 at once instead of waiting for a head that will never end.
pub fn request_start_hopeless(buf: &[u8]) -> bool {
    let mut at = 0;
    while buf[at..].starts_with(b"\r\n") || buf[at..].starts_with(b"\n") {
        at += if buf[at] == b'\r' { 2 } else { 1 };
    }
    let is_ws = |c: u8| c == b' ' || c == b'\t';
    let is_uri = |c: u8| c > 0x20 && c < 0x7f;
    let mut part = ReqLine::Method(0);
    for &c in &buf[at..] {
        part = match part {
            ReqLine::Method(n) if is_tchar(c) => ReqLine::Method(n + 1),
            ReqLine::Method(n) if n > 0 && is_ws(c) => ReqLine::Gap1,
            ReqLine::Gap1 if is_ws(c) => ReqLine::Gap1,
            ReqLine::Gap1 | ReqLine::Uri if is_uri(c) => ReqLine::Uri,
            ReqLine::Uri | ReqLine::Gap2 if is_ws(c) => ReqLine::Gap2,
            ReqLine::Gap2 | ReqLine::Version(_) => {
                let n = if let ReqLine::Version(n) = part { n } else { 0 };
                if n == VERSION_SHAPE.len() {
                    // A whole version: the line may only end now.
                    return !(c == b'\r' || c == b'\n' || is_ws(c));
                }
                if !fits_version(c, n) {
                    return true;
                }
                ReqLine::Version(n + 1)
            }
            _ => return true,
        };
    }
    false
}

/// True when the first bytes of a response can no longer become a status line
/// (`HTTP/x.y SP ...`): the server gets its 502 at once, not at `timeout server`.
pub fn response_start_hopeless(buf: &[u8]) -> bool {
    let line = buf.split(|&c| c == b'\n').next().unwrap_or(b"");
    let ended = line.len() < buf.len();
    line.iter()
        .enumerate()
        .take(VERSION_SHAPE.len() + 1)
        .any(|(n, &c)| if n == VERSION_SHAPE.len() { c != b' ' } else { !fits_version(c, n) })
        || (ended && line.len() <= VERSION_SHAPE.len())
}

/// `HTTP/x.y`, `d` standing for any digit.
const VERSION_SHAPE: &[u8] = b"HTTP/d.d";

fn fits_version(c: u8, n: usize) -> bool {
    if VERSION_SHAPE[n] == b'd' { c.is_ascii_digit() } else { c == VERSION_SHAPE[n] }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn split_first_line(head: &[u8]) -> Result<(&[u8], &[u8]), H1Error> {
    let mut start = 0;
    while head[start..].starts_with(b"\r\n") || head[start..].starts_with(b"\n") {
        start += if head[start] == b'\r' { 2 } else { 1 };
    }
    let head = &head[start..];
    let nl = head.iter().position(|&c| c == b'\n').ok_or(bad("no end of line"))?;
    let line = head[..nl].strip_suffix(b"\r").unwrap_or(&head[..nl]);
    Ok((line, &head[nl + 1..]))
}

fn parse_version(v: &[u8]) -> Option<String> {
    let rest = v.strip_prefix(b"HTTP/")?;
    if rest.len() == 3 && rest[0].is_ascii_digit() && rest[1] == b'.' && rest[2].is_ascii_digit() {
        Some(String::from_utf8_lossy(v).into_owned())
    } else {
        None
    }
}

/// Joins obs-fold continuation lines: the line break before a line starting with a space
/// or tab becomes spaces (HAProxy 2.6 forwards `a   b`).
fn unfold(headers: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let folded = headers.windows(2).any(|w| w[0] == b'\n' && (w[1] == b' ' || w[1] == b'\t'));
    if !folded {
        return std::borrow::Cow::Borrowed(headers);
    }
    let mut out = headers.to_vec();
    let mut i = 0;
    while i + 1 < out.len() {
        if out[i] == b'\n' && (out[i + 1] == b' ' || out[i + 1] == b'\t') && !(i > 0 && out[i - 1] == b'\n') {
            out[i] = b' ';
            if i > 0 && out[i - 1] == b'\r' {
                out[i - 1] = b' ';
            }
        }
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn parse_fields(block: &[u8], max: usize) -> Result<Vec<(String, Vec<u8>)>, H1Error> {
    let block = unfold(block);
    let mut storage = vec![httparse::EMPTY_HEADER; max + 1];
    match httparse::parse_headers(&block, &mut storage) {
        Ok(httparse::Status::Complete((_, hs))) => {
            Ok(hs.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec())).collect())
        }
        Ok(httparse::Status::Partial) => Err(bad("truncated header block")),
        Err(httparse::Error::TooManyHeaders) => Err(bad("too many headers")),
        Err(httparse::Error::HeaderName) => Err(bad("invalid character in header name")),
        Err(httparse::Error::HeaderValue) => Err(bad("invalid character in header value")),
        Err(_) => Err(bad("malformed header line")),
    }
}

/// Too many headers: `tune.http.maxhdr` counts every header but `Connection`, and a
/// message must stay below it (HAProxy 2.6 rejects exactly `maxhdr`).
fn check_maxhdr(h: &[(String, Vec<u8>)], maxhdr: usize) -> Result<(), H1Error> {
    let n = h.iter().filter(|(n, _)| n != "connection").count();
    if n >= maxhdr { Err(bad("too many headers")) } else { Ok(()) }
}

/// Parses a complete request head (`buf` = exactly the head, see `head_len`).
pub fn parse_request(buf: &[u8], maxhdr: usize) -> Result<Head, H1Error> {
    let (line, rest) = split_first_line(buf)?;
    // Runs of spaces and tabs separate the three parts, as h1.c's parser allows; the line
    // is forwarded re-serialised with single spaces.
    let mut parts = line.split(|&c| c == b' ' || c == b'\t').filter(|p| !p.is_empty());
    let (Some(m), Some(u), Some(v), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("malformed request line"));
    };
    if m.is_empty() || !m.iter().all(|&c| is_tchar(c)) {
        return Err(bad("invalid method"));
    }
    if u.is_empty() || u.iter().any(|&c| c <= 0x20 || c >= 0x7f) {
        return Err(bad("invalid character in URI"));
    }
    let version = parse_version(v).ok_or(bad("invalid HTTP version"))?;
    // The HTTP/2 connection preface. Divergence: HAProxy 2.6 switches such a connection to
    // its HTTP/2 mux; haflow speaks HTTP/1 only, and the preface must not reach a server.
    if m == b"PRI" && u == b"*" && version == "HTTP/2.0" {
        return Err(bad("HTTP/2 preface"));
    }
    let headers = parse_fields(rest, maxhdr + 1)?;
    check_maxhdr(&headers, maxhdr)?;
    let head = Head {
        start: StartLine::Request {
            method: String::from_utf8_lossy(m).into_owned(),
            uri: String::from_utf8_lossy(u).into_owned(),
            version,
        },
        headers,
    };
    check_host(&head)?;
    Ok(head)
}

/// Two different `Host` values, or an absolute URI whose authority differs from `Host`,
/// are refused (request smuggling through intermediaries relies on such mismatches).
fn check_host(h: &Head) -> Result<(), H1Error> {
    let mut hosts = h.values("host");
    let first = hosts.next();
    if let Some(f) = first
        && hosts.any(|o| !o.eq_ignore_ascii_case(f))
    {
        return Err(bad("several different Host headers"));
    }
    if let (StartLine::Request { uri, .. }, Some(host)) = (&h.start, first) {
        let lower = uri.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://")) {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            if !authority.as_bytes().eq_ignore_ascii_case(host.trim_ascii()) {
                return Err(bad("absolute URI authority differs from Host"));
            }
        }
    }
    Ok(())
}

/// Parses a complete response head; errors carry status 502.
pub fn parse_response(buf: &[u8], maxhdr: usize) -> Result<Head, H1Error> {
    let r = (|| {
        let (line, rest) = split_first_line(buf)?;
        let sp1 = line.iter().position(|&c| c == b' ').ok_or(bad("malformed status line"))?;
        let version = parse_version(&line[..sp1]).ok_or(bad("invalid HTTP version"))?;
        let after = &line[sp1 + 1..];
        let code = &after[..after.iter().position(|&c| c == b' ').unwrap_or(after.len())];
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(bad("invalid status code"));
        }
        let status: u16 =
            std::str::from_utf8(code).ok().and_then(|c| c.parse().ok()).ok_or(bad("invalid status code"))?;
        let reason = String::from_utf8_lossy(after.get(4..).unwrap_or(b"")).into_owned();
        let headers = parse_fields(rest, maxhdr + 1)?;
        check_maxhdr(&headers, maxhdr)?;
        Ok(Head { start: StartLine::Response { version, status, reason }, headers })
    })();
    r.map_err(|e| H1Error { status: 502, reason: e.reason })
}

fn parse_content_length(h: &Head) -> Result<Option<u64>, H1Error> {
    let mut found: Option<u64> = None;
    for v in h.values("content-length") {
        for part in v.split(|&c| c == b',') {
            let p = part.trim_ascii();
            if p.is_empty() || !p.iter().all(u8::is_ascii_digit) {
                return Err(bad("invalid Content-Length"));
            }
            let n: u64 = std::str::from_utf8(p)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(bad("invalid Content-Length"))?;
            match found {
                Some(prev) if prev != n => return Err(bad("different Content-Length values")),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// What the `Transfer-Encoding` header says, per HAProxy 2.6: chunked must be last and
/// appear once; other codings before it are refused with 422, anything else with 400.
fn parse_te(h: &Head) -> Result<Option<()>, H1Error> {
    let codings: Vec<Vec<u8>> = h
        .values("transfer-encoding")
        .flat_map(|v| v.split(|&c| c == b','))
        .map(|c| c.trim_ascii().to_ascii_lowercase())
        .collect();
    if codings.is_empty() {
        return Ok(None);
    }
    let chunked = codings.iter().filter(|c| c.as_slice() == b"chunked").count();
    if codings.iter().any(|c| c.is_empty()) || chunked > 1 {
        return Err(bad("invalid Transfer-Encoding"));
    }
    if codings.last().map(Vec::as_slice) != Some(b"chunked") {
        return Err(bad("Transfer-Encoding does not end with chunked"));
    }
    if codings.len() > 1 {
        return Err(H1Error { status: 422, reason: "unsupported transfer coding before chunked" });
    }
    Ok(Some(()))
}

/// The framing of a request body. Also normalises the head: with both `Transfer-Encoding:
/// chunked` and `Content-Length`, the latter is removed (chunked wins) and `true` is
/// returned so the caller closes the connection after the transaction; identical
/// duplicate lengths are merged into one.
pub fn request_framing(h: &mut Head) -> Result<(Framing, bool), H1Error> {
    let cl = parse_content_length(h)?;
    if parse_te(h)?.is_some() {
        let had_cl = h.remove("content-length");
        // A chunked HTTP/1.0 request is accepted but the connection cannot be kept.
        return Ok((Framing::Chunked, had_cl || h.minor() == 0));
    }
    match cl {
        Some(n) => {
            if h.values("content-length").count() > 1
                || h.value("content-length").is_some_and(|v| v.contains(&b','))
            {
                h.set("content-length", n.to_string());
            }
            Ok((if n == 0 { Framing::None } else { Framing::Length(n) }, false))
        }
        None => Ok((Framing::None, false)),
    }
}

/// The framing of a response body, given the request method and the status.
pub fn response_framing(h: &mut Head, head_request: bool) -> Result<(Framing, bool), H1Error> {
    let status = match h.start {
        StartLine::Response { status, .. } => status,
        StartLine::Request { .. } => 0,
    };
    let to_502 = |e: H1Error| H1Error { status: 502, reason: e.reason };
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok((Framing::None, false));
    }
    let cl = parse_content_length(h).map_err(to_502)?;
    if parse_te(h).map_err(to_502)?.is_some() {
        let had_cl = h.remove("content-length");
        return Ok((Framing::Chunked, had_cl));
    }
    Ok((
        match cl {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        },
        false,
    ))
}

/// How far a message body has arrived in the buffer (see [`chunked_data`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// More is to come.
    Partial,
    /// All of it is in (for a chunked body: the last chunk and its trailers).
    Complete,
    /// A size line or a chunk's CRLF is invalid: the message is in error.
    Malformed,
}

/// The data of a chunked body that starts at `body` (its first size line), as far as it
/// has arrived: the data slices in order, and how far it got. What follows the body (a
/// pipelined request) is not looked at.
pub fn chunked_data(body: &[u8]) -> (Vec<&[u8]>, BodyEnd) {
    let (mut at, mut data) = (0usize, Vec::new());
    loop {
        match parse_chunk_size(&body[at..]) {
            Ok(ChunkLine::Size { size: 0, len }) => {
                let end = if trailers_len(&body[at + len..]).is_some() {
                    BodyEnd::Complete
                } else {
                    BodyEnd::Partial
                };
                return (data, end);
            }
            Ok(ChunkLine::Size { size, len }) => {
                let start = at + len;
                let avail = body.len() - start;
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                if avail < size.saturating_add(2) {
                    data.push(&body[start..start + avail.min(size)]);
                    return (data, BodyEnd::Partial);
                }
                data.push(&body[start..start + size]);
                at = start + size;
                if body[at..].starts_with(b"\r\n") {
                    at += 2;
                } else if body[at..].starts_with(b"\n") {
                    at += 1;
                } else {
                    return (data, BodyEnd::Malformed);
                }
            }
            Ok(ChunkLine::Incomplete) => return (data, BodyEnd::Partial),
            Err(_) => return (data, BodyEnd::Malformed),
        }
    }
}

/// One parsed chunk-size line (`HEX[;ext]CRLF`): the size and the line's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkLine {
    /// Not enough bytes yet.
    Incomplete,
    /// A chunk of `size` bytes; the size line took `len` bytes.
    Size {
        /// Data bytes in the chunk.
        size: u64,
        /// Length of the size line including its line end.
        len: usize,
    },
}

/// Parses a chunk-size line at the start of `buf` (h1.c:h1_parse_chunk_size()).
pub fn parse_chunk_size(buf: &[u8]) -> Result<ChunkLine, H1Error> {
    let Some(nl) = buf.iter().position(|&c| c == b'\n') else {
        if buf.len() > 1024 {
            return Err(bad("chunk size line too long"));
        }
        // An invalid first byte can be refused before the line is complete.
        if let Some(&c) = buf.first()
            && !c.is_ascii_hexdigit()
        {
            return Err(bad("invalid chunk size"));
        }
        return Ok(ChunkLine::Incomplete);
    };
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    // A CR anywhere but before the LF (in an extension, say) is refused, as by HAProxy 2.6.
    if line.contains(&b'\r') {
        return Err(bad("bare CR in chunk size line"));
    }
    let hex_end = line.iter().position(|c| !c.is_ascii_hexdigit()).unwrap_or(line.len());
    // Leading zeros do not count toward the size's 15 digits; spaces and tabs may follow.
    let digits = &line[..hex_end];
    let significant = digits.iter().skip_while(|&&c| c == b'0').count();
    if hex_end == 0 || significant > 15 {
        return Err(bad("invalid chunk size"));
    }
    let tail = line[hex_end..].trim_ascii_start();
    if !(tail.is_empty() || tail.starts_with(b";")) {
        return Err(bad("invalid chunk size"));
    }
    let size = digits.iter().fold(0u64, |n, &c| (n << 4) | u64::from((c as char).to_digit(16).unwrap_or(0)));
    Ok(ChunkLine::Size { size, len: nl + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Result<Head, H1Error> {
        parse_request(s.as_bytes(), 101)
    }

    #[test]
    fn a_start_that_cannot_become_a_request_line_is_seen_at_once() {
        for hopeless in [
            &b"GET /\r\n"[..],
            b"\x16\x03\x01\x00\xa5\x01",
            b"\x00\x01hello",
            b"GET /a b HTTP/1.1",
            b"GET / HTTP/1.1x",
            b"GET / FTP",
        ] {
            assert!(request_start_hopeless(hopeless), "{hopeless:?}");
        }
        for fine in
            [&b"G"[..], b"GET", b"GET /", b"GET  /x\tHTTP/1", b"\r\nGET / HTTP/1.1\r\n", b"get / HTTP/9.9 \r"]
        {
            assert!(!request_start_hopeless(fine), "{fine:?}");
        }
    }

    #[test]
    fn a_start_that_cannot_become_a_status_line_is_seen_at_once() {
        for hopeless in [&b"garbage"[..], b"HTTP/1.1x", b"HTTX", b"HTTP/1\r\n", b"\r\n"] {
            assert!(response_start_hopeless(hopeless), "{hopeless:?}");
        }
        for fine in [&b"H"[..], b"HTTP/1.", b"HTTP/1.1 200", b"HTTP/1.0 404 Not Found\r\n"] {
            assert!(!response_start_hopeless(fine), "{fine:?}");
        }
    }

    #[test]
    fn chunk_sizes_are_read_as_haproxy_2_6_reads_them() {
        let size = |l: &[u8]| match parse_chunk_size(l) {
            Ok(ChunkLine::Size { size, .. }) => Some(size),
            _ => None,
        };
        assert_eq!(size(b"5 \r\n"), Some(5), "trailing space");
        assert_eq!(size(b"5\t;ext=1\r\n"), Some(5));
        assert_eq!(size(b"000000000000000000005\r\n"), Some(5), "twenty leading zeros");
        assert_eq!(size(b"5;a=b\rc\r\n"), None, "bare CR in an extension");
        assert_eq!(size(b"1000000000000000\r\n"), None, "16 significant digits");
        assert_eq!(size(b"fffffffffffffff\r\n"), Some(0xfff_ffff_ffff_ffff));
    }

    #[test]
    fn trailers_end_at_their_first_empty_line() {
        assert_eq!(trailers_len(b"\r\nGET / HTTP/1.1\r\n\r\n"), Some(2), "no trailer");
        assert_eq!(trailers_len(b"X-T: 1\n\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n"), Some(8));
        assert_eq!(trailers_len(b"X-T: 1\n\r\nGET /second HTTP/1.1\r\n\r\n"), Some(9));
        assert_eq!(trailers_len(b"X-T: 1\r\nX-U: 2\r\n\r\n"), Some(18));
        assert_eq!(trailers_len(b"X-T: 1\r\n"), None);
    }

    #[test]
    fn head_len_finds_the_empty_line_with_crlf_or_lf() {
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nA: b\r\n\r\nBODY"), Some(24));
        assert_eq!(head_len(b"GET / HTTP/1.1\nA: b\n\nX"), Some(21));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        assert_eq!(head_len(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), Some(22), "leading empty lines are skipped");
    }

    #[test]
    fn requests_are_accepted_like_haproxy_2_6() {
        let h = req("get /a?b HTTP/1.1\r\nHost: X\r\nX-Fold: a\r\n b\r\n\r\n").unwrap();
        assert_eq!(h.value("x-fold"), Some(&b"a   b"[..]), "obs-fold becomes spaces");
        assert_eq!(h.to_bytes(), b"get /a?b HTTP/1.1\r\nhost: X\r\nx-fold: a   b\r\n\r\n");
        let h = req("GET / HTTP/9.9\r\n\r\n").unwrap();
        assert!(h.to_bytes().starts_with(b"GET / HTTP/1.1\r\n"), "unknown versions are forwarded as 1.1");
        assert!(req("GET / HTTP/1.1\nHost: a\n\n").is_ok(), "bare LF");
    }

    #[test]
    fn bad_requests_are_400() {
        for r in [
            "GET\r\n\r\n",
            "GET /\r\n\r\n",
            "GET / x HTTP/1.1\r\n\r\n",
            "GET /\x01 HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A : x\r\n\r\n",
            "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n",
        ] {
            assert_eq!(req(r).map_err(|e| e.status), Err(400), "{r:?}");
        }
    }

    #[test]
    fn header_count_excludes_connection() {
        let hs: String = (0..9).map(|i| format!("H{i}: v\r\n")).collect();
        assert!(parse_request(format!("GET / HTTP/1.1\r\n{hs}\r\n").as_bytes(), 10).is_ok());
        let hs10: String = (0..10).map(|i| format!("H{i}: v\r\n")).collect();
        assert!(parse_request(format!("GET / HTTP/1.1\r\n{hs10}\r\n").as_bytes(), 10).is_err());
        assert!(
            parse_request(format!("GET / HTTP/1.1\r\n{hs}Connection: close\r\n\r\n").as_bytes(), 10).is_ok()
        );
    }

    fn framing(s: &str) -> Result<(Framing, bool), u16> {
        let mut h = req(s).map_err(|e| e.status)?;
        request_framing(&mut h).map_err(|e| e.status)
    }

    #[test]
    fn request_framing_follows_haproxy() {
        assert_eq!(framing("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), Ok((Framing::Length(5), false)));
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Ok((Framing::Length(5), false))
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"),
            Ok((Framing::Length(5), false))
        );
        assert_eq!(framing("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), Err(400));
        assert_eq!(framing("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"), Err(400));
        assert_eq!(framing("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), Err(400));
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok((Framing::Chunked, true))
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n"),
            Ok((Framing::Chunked, false))
        );
        assert_eq!(framing("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), Err(400));
        assert_eq!(framing("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), Err(400));
        assert_eq!(framing("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), Err(400));
        assert_eq!(framing("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), Err(422));
        assert_eq!(
            framing("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok((Framing::Chunked, true))
        );
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"5\r\nhello"), Ok(ChunkLine::Size { size: 5, len: 3 }));
        assert_eq!(parse_chunk_size(b"1a;ext=1\r\n"), Ok(ChunkLine::Size { size: 26, len: 10 }));
        assert_eq!(parse_chunk_size(b"1"), Ok(ChunkLine::Incomplete));
        assert_eq!(parse_chunk_size(b"zz\r\n").map_err(|e| e.status), Err(400));
        assert_eq!(parse_chunk_size(b"z").map_err(|e| e.status), Err(400));
    }

    #[test]
    fn responses() {
        let mut h = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 101).unwrap();
        assert_eq!(response_framing(&mut h, false), Ok((Framing::Length(3), false)));
        assert_eq!(response_framing(&mut h, true), Ok((Framing::None, false)), "HEAD has no body");
        let mut h = parse_response(b"HTTP/1.1 200 OK\r\n\r\n", 101).unwrap();
        assert_eq!(response_framing(&mut h, false), Ok((Framing::UntilClose, false)));
        let mut h = parse_response(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", 101).unwrap();
        assert_eq!(response_framing(&mut h, false), Ok((Framing::None, false)));
        assert_eq!(parse_response(b"garbage\r\n\r\n", 101).map_err(|e| e.status), Err(502));
    }
}
