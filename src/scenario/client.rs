//! Test traffic: an HTTP/1.1 and raw-TCP client that plays the browser in scenarios, the demo
//! and the integration tests.
//!
//! This module owns the client side of the wire. A [`Request`] is plain data that becomes exact
//! bytes ([`Request::to_bytes`]); a [`Conn`] is one blocking TCP connection that can send those
//! bytes (all at once, raw, or slowly), read [`Response`]s back (pipelined ones included: bytes
//! that arrive after one response are kept for the next), and do the TCP-level things a proxy
//! test needs: half-close, wait for the peer to close, or abort with an RST. [`get`] and
//! [`run_concurrent`] are one-line conveniences on top.
//!
//! Every read is bounded by the connection's timeout ([`is_timeout`] recognises the error), and
//! a response that is not valid HTTP is an `InvalidData` error, never a panic: the proxy under
//! test may send anything.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::scenario::wire::{
    MAX_BODY, MAX_HEAD, MAX_HEADERS, Wire, eof, find_header, header_has_token, invalid,
};

/// The timeout [`get`] and [`run_concurrent`] use for connecting and for each read or write.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most interim (1xx) responses skipped before the final one.
const MAX_INTERIM: usize = 16;

/// A request body and how it is framed on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body and no framing header.
    None,
    /// Sent with `Content-Length`.
    Fixed(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, one chunk per element (empty elements are
    /// skipped: an empty chunk would end the body).
    Chunked(Vec<Vec<u8>>),
}

/// An HTTP/1.x request, built with [`Request::get`], [`Request::post`] and [`Request::header`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/index.html?x=1`.
    pub path: String,
    /// Header fields, sent in this order before the ones [`Request::to_bytes`] adds.
    pub headers: Vec<(String, String)>,
    /// The body and its framing.
    pub body: Body,
    /// The minor HTTP version: 1 for HTTP/1.1 (default), 0 for HTTP/1.0.
    pub version: u8,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Body::None,
            version: 1,
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Request::new("GET", path)
    }

    /// `HEAD path` (read its response with `head_request = true`; [`Conn::request`] does).
    pub fn head(path: &str) -> Self {
        Request::new("HEAD", path)
    }

    /// `POST path` with a `Content-Length` body.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Request { body: Body::Fixed(body.into()), ..Request::new("POST", path) }
    }

    /// `POST path` with a chunked body, one chunk per element.
    pub fn post_chunked(path: &str, chunks: Vec<Vec<u8>>) -> Self {
        Request { body: Body::Chunked(chunks), ..Request::new("POST", path) }
    }

    /// Adds a header field (builder style).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Makes this an HTTP/1.0 request (builder style).
    pub fn http10(mut self) -> Self {
        self.version = 0;
        self
    }

    /// Whether this is a HEAD request (whose response has no body).
    pub fn is_head(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }

    /// The request as bytes on the wire. Adds `Host: localhost` if no `Host` was given, then
    /// `Content-Length` for a fixed body or `Transfer-Encoding: chunked` for a chunked one,
    /// unless the caller already set either (so tests can send deliberately wrong framing).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.{}\r\n", self.method, self.path, self.version);
        if !self.has_header("host") {
            head.push_str("Host: localhost\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let framed = self.has_header("content-length") || self.has_header("transfer-encoding");
        match &self.body {
            Body::Fixed(body) if !framed => {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            Body::Chunked(_) if !framed => head.push_str("Transfer-Encoding: chunked\r\n"),
            _ => {}
        }
        head.push_str("\r\n");

        let mut out = head.into_bytes();
        match &self.body {
            Body::None => {}
            Body::Fixed(body) => out.extend_from_slice(body),
            Body::Chunked(chunks) => {
                for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        out
    }

    /// Whether a header field called `name` is set (case-insensitive).
    fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// An HTTP response as read from the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Reason phrase as sent (may be empty).
    pub reason: String,
    /// The minor HTTP version of the status line: 0 or 1.
    pub version: u8,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if it was chunked.
    pub body: Vec<u8>,
    /// Trailer fields that followed a chunked body.
    pub trailers: Vec<(String, String)>,
    /// Every byte consumed to read this response, exactly as received (interim 1xx responses
    /// and chunk framing included).
    pub raw: Vec<u8>,
}

impl Response {
    /// The first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as text (invalid UTF-8 replaced), handy in assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the server announced it will close the connection after this response
    /// (`Connection: close`, or HTTP/1.0 without `Connection: keep-alive`).
    pub fn closes_connection(&self) -> bool {
        let has = |token: &str| header_has_token(&self.headers, "connection", token);
        has("close") || (self.version == 0 && !has("keep-alive"))
    }
}

/// One client TCP connection, with the bytes received but not yet consumed.
pub struct Conn {
    /// The socket; its read and write timeouts are `timeout`.
    stream: TcpStream,
    /// Received, not yet consumed: after a response, the start of the next one.
    buf: Vec<u8>,
    /// Bytes consumed while reading the current response (becomes `Response::raw`).
    raw: Vec<u8>,
    /// Bound on connecting and on each read and write.
    timeout: Duration,
    /// Set once a read returned EOF: the server closed its side.
    peer_closed: bool,
}

impl Wire for Conn {
    fn parts(&mut self) -> (&mut TcpStream, &mut Vec<u8>) {
        (&mut self.stream, &mut self.buf)
    }

    /// Moves the first `n` buffered bytes to `raw` and returns them.
    fn consume(&mut self, n: usize) -> Vec<u8> {
        let bytes: Vec<u8> = self.buf.drain(..n).collect();
        self.raw.extend_from_slice(&bytes);
        bytes
    }

    fn peer_closed(&mut self) {
        self.peer_closed = true;
    }
}

impl Conn {
    /// Connects to `addr`; `timeout` bounds the connect and then every read and write.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        // Requests are written whole; send each write at once instead of letting Nagle's
        // algorithm hold small pieces back (send_slowly depends on this).
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::new(), raw: Vec::new(), timeout, peer_closed: false })
    }

    /// Our end's address (the source address the proxy sees).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// Changes the bound on each read and write from now on.
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.set_write_timeout(Some(timeout))?;
        self.timeout = timeout;
        Ok(())
    }

    /// Sends a request (does not wait for the response: call it several times to pipeline).
    pub fn send(&mut self, req: &Request) -> io::Result<()> {
        self.send_raw(&req.to_bytes())
    }

    /// Sends bytes exactly as given.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends bytes `chunk` at a time with `pause` between pieces: a slow client (the pause is
    /// the behaviour under test, e.g. a proxy's `timeout http-request`).
    pub fn send_slowly(&mut self, bytes: &[u8], chunk: usize, pause: Duration) -> io::Result<()> {
        for (i, piece) in bytes.chunks(chunk.max(1)).enumerate() {
            if i > 0 {
                thread::sleep(pause);
            }
            self.send_raw(piece)?;
        }
        Ok(())
    }

    /// Sends a request and reads its response.
    pub fn request(&mut self, req: &Request) -> io::Result<Response> {
        self.send(req)?;
        self.read_response(req.is_head())
    }

    /// Reads the next response. Interim 1xx responses (except 101) are skipped. The body is
    /// framed as RFC 9112 section 6.3 says: none for HEAD (`head_request`), 1xx, 204 and 304;
    /// otherwise chunked, else `Content-Length`, else until the server closes.
    ///
    /// Errors: `UnexpectedEof` if the server closed before the response was complete (with no
    /// byte at all: see the message), `InvalidData` if it is not HTTP, a timeout (see
    /// [`is_timeout`]) if nothing came in time.
    pub fn read_response(&mut self, head_request: bool) -> io::Result<Response> {
        self.raw.clear();
        for _ in 0..=MAX_INTERIM {
            let head = self.read_head()?;
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            let (body, trailers) = match response_framing(&head, head_request)? {
                Framing::NoBody => (Vec::new(), Vec::new()),
                Framing::Length(len) => (self.take(len)?, Vec::new()),
                Framing::Chunked => self.read_chunked()?,
                Framing::UntilClose => (self.read_until_eof()?, Vec::new()),
            };
            return Ok(Response {
                status: head.status,
                reason: head.reason,
                version: head.version,
                headers: head.headers,
                body,
                trailers,
                raw: std::mem::take(&mut self.raw),
            });
        }
        Err(invalid("too many interim (1xx) responses"))
    }

    /// Reads exactly `n` bytes (for raw TCP traffic, e.g. through a `mode tcp` proxy).
    pub fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let bytes = self.take(n)?;
        self.raw.clear();
        Ok(bytes)
    }

    /// Half-closes: sends FIN, keeps reading possible.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// Everything the server sends until it closes (bytes already buffered included). The whole
    /// call, not each read, is bounded by the timeout.
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + self.timeout;
        let result = loop {
            if self.buf.len() > MAX_BODY {
                break Err(invalid("more than 64 MiB before close"));
            }
            match self.fill_before(deadline) {
                Ok(0) => break Ok(std::mem::take(&mut self.buf)),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        self.stream.set_read_timeout(Some(self.timeout))?;
        result
    }

    /// Whether the server closes the connection (EOF or RST) within `timeout`. Bytes that arrive
    /// meanwhile are kept for later reads.
    pub fn is_closed_by_peer(&mut self, timeout: Duration) -> io::Result<bool> {
        if self.peer_closed {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        let result = loop {
            if self.buf.len() > MAX_BODY {
                break Err(invalid("more than 64 MiB while waiting for close"));
            }
            match self.fill_before(deadline) {
                Ok(0) => break Ok(true),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => break Ok(false),
                Err(e) if is_reset(&e) => break Ok(true),
                Err(e) => break Err(e),
            }
        };
        self.stream.set_read_timeout(Some(self.timeout))?;
        result
    }

    /// Closes the connection with an RST instead of a FIN (SO_LINGER with a zero timeout), like
    /// a client that crashed or gave up: the proxy sees "connection reset by peer".
    pub fn abort(self) -> io::Result<()> {
        set_linger_zero(&self.stream)?;
        drop(self.stream);
        Ok(())
    }

    /// Like `fill`, but gives up with `TimedOut` at `deadline` (leaves the read timeout changed).
    fn fill_before(&mut self, deadline: Instant) -> io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.stream.set_read_timeout(Some(left))?;
        self.fill()
    }

    /// Consumes one response head, which may arrive in pieces.
    fn read_head(&mut self) -> io::Result<ResponseHead> {
        loop {
            if let Some(head) = parse_response_head(&self.buf)? {
                self.consume(head.len);
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("response head larger than 64 KiB"));
            }
            if self.fill()? == 0 {
                return Err(eof(if self.buf.is_empty() {
                    "connection closed before any response byte"
                } else {
                    "connection closed in the middle of a response head"
                }));
            }
        }
    }

    /// Consumes everything until the server closes (a body framed by the close).
    fn read_until_eof(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {
            if self.buf.len() > MAX_BODY {
                return Err(invalid("body larger than 64 MiB"));
            }
        }
        Ok(self.consume(self.buf.len()))
    }
}

/// Sets `SO_LINGER {on, 0}` so that closing sends a RST instead of a FIN.
fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO))
}

/// A parsed response head, copied out of the buffer.
struct ResponseHead {
    /// Status code.
    status: u16,
    /// Reason phrase.
    reason: String,
    /// Minor version.
    version: u8,
    /// Header fields in order.
    headers: Vec<(String, String)>,
    /// Bytes the head took in the buffer, empty line included.
    len: usize,
}

/// Parses a response head at the start of `buf`: `Ok(None)` means not all of it has arrived.
/// Tolerant where real servers are sloppy (spaces before a header's colon, several spaces in the
/// status line, obsolete folded headers), strict elsewhere.
fn parse_response_head(buf: &[u8]) -> io::Result<Option<ResponseHead>> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_obsolete_multiline_headers_in_responses(true);
    let len = match config.parse_response(&mut response, buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            let start = String::from_utf8_lossy(&buf[..buf.len().min(40)]).into_owned();
            return Err(invalid(&format!("not an HTTP response ({e}): {start:?}")));
        }
    };
    Ok(Some(ResponseHead {
        status: response.code.unwrap_or_default(),
        reason: response.reason.unwrap_or_default().to_string(),
        version: response.version.unwrap_or(1),
        headers: response
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        len,
    }))
}

/// How a response body is delimited.
enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    NoBody,
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes.
    UntilClose,
}

/// Decides the framing of a response body (RFC 9112 section 6.3).
fn response_framing(head: &ResponseHead, head_request: bool) -> io::Result<Framing> {
    if head_request || (100..200).contains(&head.status) || head.status == 204 || head.status == 304 {
        return Ok(Framing::NoBody);
    }
    let last_coding = head
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .rfind(|coding| !coding.is_empty());
    if let Some(coding) = last_coding {
        // Transfer-Encoding wins over Content-Length; a last coding other than chunked means the
        // body ends when the connection does.
        return Ok(if coding.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for (_, value) in head.headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
        for item in value.split(',').map(str::trim) {
            let parsed = item
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| item.parse::<usize>().ok())
                .flatten()
                .ok_or_else(|| invalid(&format!("invalid Content-Length {item:?}")))?;
            if length.is_some_and(|known| known != parsed) {
                return Err(invalid("conflicting Content-Length values"));
            }
            length = Some(parsed);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Whether an I/O error is a read or write timeout (std reports `WouldBlock` on Unix and
/// `TimedOut` on Windows).
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Whether an I/O error means the peer reset or dropped the connection.
fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe
    )
}

/// One `GET path` on a new connection, with `Connection: close`.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    let mut conn = Conn::connect(addr, DEFAULT_TIMEOUT)?;
    conn.request(&Request::get(path).header("Connection", "close"))
}

/// Runs `n_clients` client threads at once, each sending `req` `requests_each` times over one
/// keep-alive connection (reconnecting when the server closes it). Returns every result,
/// client by client, in order: always `n_clients * requests_each` entries.
pub fn run_concurrent(
    addr: SocketAddr,
    n_clients: usize,
    requests_each: usize,
    req: &Request,
) -> Vec<io::Result<Response>> {
    thread::scope(|scope| {
        let clients: Vec<_> = (0..n_clients)
            .map(|i| {
                thread::Builder::new()
                    .name(format!("client-{i}"))
                    .spawn_scoped(scope, move || client_session(addr, requests_each, req))
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|client| {
                let outcome = client
                    .and_then(|thread| thread.join().map_err(|_| io::Error::other("client thread panicked")));
                match outcome {
                    Ok(results) => results,
                    // io::Error is not Clone: repeat its kind and message for each request.
                    Err(e) => {
                        (0..requests_each).map(|_| Err(io::Error::new(e.kind(), e.to_string()))).collect()
                    }
                }
            })
            .collect()
    })
}

/// One client of `run_concurrent`: `count` requests, reusing the connection while it is open.
fn client_session(addr: SocketAddr, count: usize, req: &Request) -> Vec<io::Result<Response>> {
    let mut results = Vec::with_capacity(count);
    let mut open: Option<Conn> = None;
    for _ in 0..count {
        let mut conn = match open.take() {
            Some(conn) => conn,
            None => match Conn::connect(addr, DEFAULT_TIMEOUT) {
                Ok(conn) => conn,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            },
        };
        let result = conn.request(req);
        if matches!(&result, Ok(resp) if !resp.closes_connection()) && !conn.peer_closed {
            open = Some(conn);
        }
        results.push(result);
    }
    results
}

#[cfg(test)]
mod tests {
    //! The client against the embedded backends (its sibling module), plus tiny one-shot raw
    //! servers for responses no backend sends (trailers, interim 1xx, close-delimited bodies).

    use super::*;
    use crate::scenario::backends::{BackendSpec, HttpBehaviour, RunningBackend, body_pattern};
    use std::io::Read;
    use std::net::TcpListener;

    /// Short timeouts keep every test well under a second.
    const T: Duration = Duration::from_millis(500);

    fn http(behaviour: HttpBehaviour) -> RunningBackend {
        RunningBackend::start(BackendSpec::Http(behaviour)).expect("start backend")
    }

    fn connect(backend: &RunningBackend) -> Conn {
        Conn::connect(backend.addr(), T).expect("connect")
    }

    /// A server for one connection: reads the request head, writes `reply`, closes.
    fn serve_once(reply: &'static [u8]) -> (SocketAddr, thread::JoinHandle<()>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(T)).unwrap();
            let mut seen = Vec::new();
            let mut byte = [0u8; 1];
            while !seen.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                seen.push(byte[0]);
            }
            stream.write_all(reply).unwrap();
        });
        (addr, server)
    }

    #[test]
    fn to_bytes_adds_host_and_framing() {
        assert_eq!(
            Request::get("/a").header("X-A", "1").to_bytes(),
            b"GET /a HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n\r\n"
        );
        assert_eq!(
            Request::post("/p", "hey").header("Host", "h").to_bytes(),
            b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nhey"
        );
        assert_eq!(
            Request::post_chunked("/c", vec![b"ab".to_vec(), vec![], vec![b'c'; 16]]).http10().to_bytes(),
            b"POST /c HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
              2\r\nab\r\n10\r\ncccccccccccccccc\r\n0\r\n\r\n"
        );
        // Framing set by the caller is left alone.
        let wrong = Request::post("/p", "hey").header("Content-Length", "9");
        assert!(!String::from_utf8(wrong.to_bytes()).unwrap().contains(": 3"));
    }

    #[test]
    fn get_sees_served_by_and_pattern_body() {
        let backend = http(HttpBehaviour { body_size: 1000, ..HttpBehaviour::named("s1") });
        let resp = get(backend.addr(), "/hello").unwrap();
        assert_eq!((resp.status, resp.reason.as_str(), resp.version), (200, "OK", 1));
        assert_eq!(resp.header("x-served-by"), Some("s1"));
        assert_eq!(resp.body, body_pattern(1000));
        assert!(resp.raw.ends_with(&resp.body));
        assert!(resp.closes_connection());
        assert_eq!(backend.requests()[0].path, "/hello");
    }

    #[test]
    fn post_fixed_body_reaches_backend() {
        let backend = http(HttpBehaviour::named("s1"));
        let resp = connect(&backend).request(&Request::post("/form", "a=1&b=2")).unwrap();
        assert_eq!(resp.status, 200);
        let seen = &backend.requests()[0];
        assert_eq!((seen.method.as_str(), seen.body.as_slice()), ("POST", &b"a=1&b=2"[..]));
        assert_eq!(seen.header("content-length"), Some("7"));
    }

    #[test]
    fn post_chunked_body_reaches_backend_decoded() {
        let backend = http(HttpBehaviour::named("s1"));
        let chunks = vec![b"hel".to_vec(), b"lo ".to_vec(), b"world".to_vec()];
        let resp = connect(&backend).request(&Request::post_chunked("/up", chunks)).unwrap();
        assert_eq!(resp.status, 200);
        let seen = &backend.requests()[0];
        assert_eq!(seen.body, b"hello world");
        assert_eq!(seen.header("transfer-encoding"), Some("chunked"));
    }

    #[test]
    fn keep_alive_serves_three_requests_on_one_connection() {
        let backend = http(HttpBehaviour { body_size: 10, ..HttpBehaviour::named("s1") });
        let mut conn = connect(&backend);
        for i in 0..3 {
            let resp = conn.request(&Request::get(&format!("/{i}"))).unwrap();
            assert_eq!(resp.body, body_pattern(10));
            assert!(!resp.closes_connection());
        }
        assert_eq!(backend.connections(), 1);
        assert_eq!(backend.requests().len(), 3);
    }

    #[test]
    fn pipelined_requests_keep_leftover_bytes() {
        let backend = http(HttpBehaviour {
            body_size: 5000,
            chunked: true,
            chunk_size: 700,
            ..HttpBehaviour::named("s1")
        });
        let mut conn = connect(&backend);
        // All three in one write, so the responses may well arrive in one read too.
        let mut all = Request::get("/1").to_bytes();
        all.extend(Request::head("/2").to_bytes());
        all.extend(Request::get("/3").to_bytes());
        conn.send_raw(&all).unwrap();
        let first = conn.read_response(false).unwrap();
        let second = conn.read_response(true).unwrap();
        let third = conn.read_response(false).unwrap();
        assert_eq!(first.body, body_pattern(5000));
        assert!(second.body.is_empty());
        assert_eq!(third.body, body_pattern(5000));
        assert_eq!(backend.connections(), 1);
        let paths: Vec<String> = backend.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/1", "/2", "/3"]);
    }

    #[test]
    fn head_response_has_headers_but_no_body() {
        let backend = http(HttpBehaviour { body_size: 300, ..HttpBehaviour::named("s1") });
        let mut conn = connect(&backend);
        let resp = conn.request(&Request::head("/")).unwrap();
        assert_eq!(resp.header("Content-Length"), Some("300"));
        assert!(resp.body.is_empty());
        // Nothing was left over: the next response parses cleanly.
        assert_eq!(conn.request(&Request::get("/")).unwrap().body.len(), 300);
    }

    #[test]
    fn no_content_204_has_no_body() {
        let backend = http(HttpBehaviour {
            status: 204,
            body_size: 50, // ignored: a 204 has no body
            ..HttpBehaviour::named("s1")
        });
        let mut conn = connect(&backend);
        let resp = conn.request(&Request::get("/")).unwrap();
        assert_eq!((resp.status, resp.reason.as_str()), (204, "No Content"));
        assert!(resp.body.is_empty() && resp.header("content-length").is_none());
        assert_eq!(conn.request(&Request::get("/")).unwrap().status, 204);
    }

    #[test]
    fn chunked_one_mebibyte_arrives_intact() {
        let backend =
            http(HttpBehaviour { body_size: 1024 * 1024, chunked: true, ..HttpBehaviour::named("big") });
        let resp = get(backend.addr(), "/big").unwrap();
        assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
        assert_eq!(resp.body, body_pattern(1024 * 1024));
    }

    #[test]
    fn delay_before_headers_is_observable() {
        let delay = Duration::from_millis(150);
        let backend =
            http(HttpBehaviour { delay_before_headers: Some(delay), ..HttpBehaviour::named("slow") });
        let started = Instant::now();
        let resp = connect(&backend).request(&Request::get("/")).unwrap();
        assert_eq!(resp.status, 200);
        assert!(started.elapsed() >= delay);
    }

    #[test]
    fn delay_mid_body_still_delivers_everything() {
        let backend = http(HttpBehaviour {
            body_size: 2000,
            delay_mid_body: Some(Duration::from_millis(50)),
            ..HttpBehaviour::named("s1")
        });
        let resp = connect(&backend).request(&Request::get("/")).unwrap();
        assert_eq!(resp.body, body_pattern(2000));
    }

    #[test]
    fn close_early_is_eof_before_any_byte() {
        let backend = http(HttpBehaviour { close_early: true, ..HttpBehaviour::named("s1") });
        let err = connect(&backend).request(&Request::get("/")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("before any response byte"));
        assert_eq!(backend.requests().len(), 1, "the request was read");
    }

    #[test]
    fn close_mid_body_is_eof_in_body() {
        let backend =
            http(HttpBehaviour { body_size: 1000, close_mid_body: true, ..HttpBehaviour::named("s1") });
        let err = connect(&backend).request(&Request::get("/")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("500 of 1000"), "{err}");
    }

    #[test]
    fn garbage_is_invalid_data() {
        let backend = http(HttpBehaviour { garbage: true, ..HttpBehaviour::named("s1") });
        let err = connect(&backend).request(&Request::get("/")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn keep_alive_off_closes_after_the_answer() {
        let backend = http(HttpBehaviour { keep_alive: false, ..HttpBehaviour::named("s1") });
        let mut conn = connect(&backend);
        let resp = conn.request(&Request::get("/")).unwrap();
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(conn.is_closed_by_peer(T).unwrap());
    }

    #[test]
    fn http10_request_gets_close() {
        let backend = http(HttpBehaviour::named("s1"));
        let mut conn = connect(&backend);
        let resp = conn.request(&Request::get("/").http10()).unwrap();
        assert!(resp.closes_connection());
        assert!(conn.is_closed_by_peer(T).unwrap());
        assert_eq!(backend.requests()[0].version, 0);
    }

    #[test]
    fn idle_keep_alive_connection_is_not_closed() {
        let backend = http(HttpBehaviour::named("s1"));
        let mut conn = connect(&backend);
        conn.request(&Request::get("/")).unwrap();
        assert!(!conn.is_closed_by_peer(Duration::from_millis(50)).unwrap());
        assert_eq!(conn.request(&Request::get("/")).unwrap().status, 200);
    }

    #[test]
    fn set_up_false_refuses_then_true_serves_on_same_port() {
        let backend = http(HttpBehaviour::named("s1"));
        let addr = backend.addr();
        let mut before = connect(&backend);
        assert_eq!(before.request(&Request::get("/")).unwrap().status, 200);
        backend.set_up(false).unwrap();
        let err = Conn::connect(addr, T).err().expect("connect must fail");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        backend.set_up(true).unwrap();
        assert_eq!(backend.addr(), addr);
        assert_eq!(get(addr, "/").unwrap().status, 200);
        // The connection opened before going down was never closed.
        assert_eq!(before.request(&Request::get("/")).unwrap().status, 200);
    }

    #[test]
    fn health_path_follows_set_up() {
        let backend = http(HttpBehaviour {
            close_early: true, // ordinary requests fail; health checks do not
            health_path: Some("/health".into()),
            ..HttpBehaviour::named("s1")
        });
        let mut conn = connect(&backend);
        let up = conn.request(&Request::get("/health")).unwrap();
        assert_eq!((up.status, up.text().as_str()), (200, "OK"));
        backend.set_up(false).unwrap();
        let down = conn.request(&Request::get("/health")).unwrap();
        assert_eq!((down.status, down.text().as_str()), (503, "DOWN"));
    }

    #[test]
    fn echo_round_trip_with_half_close() {
        let echo = RunningBackend::start(BackendSpec::Echo).unwrap();
        let mut conn = Conn::connect(echo.addr(), T).unwrap();
        conn.send_raw(b"hello ").unwrap();
        assert_eq!(conn.read_exact(6).unwrap(), b"hello ");
        conn.send_raw(b"world").unwrap();
        conn.shutdown_write().unwrap();
        assert_eq!(conn.read_to_close().unwrap(), b"world");
    }

    #[test]
    fn black_hole_read_times_out() {
        let hole = RunningBackend::start(BackendSpec::BlackHole).unwrap();
        let mut conn = Conn::connect(hole.addr(), Duration::from_millis(100)).unwrap();
        let err = conn.request(&Request::get("/")).unwrap_err();
        assert!(is_timeout(&err), "{err:?}");
        assert!(!conn.is_closed_by_peer(Duration::from_millis(20)).unwrap());
    }

    #[test]
    fn refused_connect_is_an_error() {
        let refuse = RunningBackend::start(BackendSpec::Refuse).unwrap();
        let err = get(refuse.addr(), "/").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn slow_sender_is_reassembled_by_backend() {
        let backend = http(HttpBehaviour::named("s1"));
        let mut conn = connect(&backend);
        let req = Request::post("/slow", "body!");
        conn.send_slowly(&req.to_bytes(), 7, Duration::from_millis(2)).unwrap();
        assert_eq!(conn.read_response(false).unwrap().status, 200);
        assert_eq!(backend.requests()[0].body, b"body!");
    }

    #[test]
    fn run_concurrent_returns_every_result() {
        let backend = http(HttpBehaviour { body_size: 64, ..HttpBehaviour::named("s1") });
        let results = run_concurrent(backend.addr(), 4, 3, &Request::get("/"));
        assert_eq!(results.len(), 12);
        for result in results {
            assert_eq!(result.unwrap().body, body_pattern(64));
        }
        assert_eq!(backend.requests().len(), 12);
        assert_eq!(backend.connections(), 4, "one keep-alive connection per client");
    }

    #[test]
    fn run_concurrent_reconnects_when_server_closes() {
        let backend = http(HttpBehaviour { keep_alive: false, ..HttpBehaviour::named("s1") });
        let results = run_concurrent(backend.addr(), 2, 2, &Request::get("/"));
        assert!(results.iter().all(|r| r.is_ok()));
        assert_eq!(backend.connections(), 4);
    }

    #[test]
    fn parses_interim_chunk_extensions_and_trailers() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 100 Continue\r\n\r\n\
              HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              3;note=x\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n",
        );
        let mut conn = Conn::connect(addr, T).unwrap();
        let resp = conn.request(&Request::get("/")).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"abc");
        assert_eq!(resp.trailers, vec![("X-Sum".into(), "42".into())]);
        assert!(resp.raw.starts_with(b"HTTP/1.1 100 Continue"));
        assert!(resp.raw.ends_with(b"X-Sum: 42\r\n\r\n"));
        server.join().unwrap();
    }

    #[test]
    fn body_without_framing_ends_at_close() {
        let (addr, server) = serve_once(b"HTTP/1.0 200 OK\r\nServer : sloppy\r\n\r\nuntil the end");
        let resp = Conn::connect(addr, T).unwrap().request(&Request::get("/")).unwrap();
        assert_eq!((resp.version, resp.text().as_str()), (0, "until the end"));
        assert_eq!(resp.header("server"), Some("sloppy"));
        server.join().unwrap();
    }

    #[test]
    fn conflicting_content_length_is_invalid() {
        let (addr, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
        let err = Conn::connect(addr, T).unwrap().request(&Request::get("/")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        server.join().unwrap();
    }

    #[test]
    fn abort_sends_reset() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let conn = Conn::connect(listener.local_addr().unwrap(), T).unwrap();
        let (mut server_side, _) = listener.accept().unwrap();
        server_side.set_read_timeout(Some(T)).unwrap();
        conn.abort().unwrap();
        let err = server_side.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
