//! Embedded backend servers: the programs that sit behind the proxy in scenarios, the demo and
//! the integration tests.
//!
//! This module owns those servers and nothing else. A [`BackendSpec`] says what a server does (a
//! real HTTP/1.1 server whose misbehaviour is scripted by [`HttpBehaviour`], a TCP echo, an
//! address that refuses connections, or a black hole), and [`RunningBackend::start`] runs it on
//! `127.0.0.1:0`. Each backend has one accept thread plus one thread per connection, all plain
//! std threads and blocking sockets: these are test peers, deliberately simpler than the mio event
//! loop being taught. A backend records what it saw ([`RunningBackend::requests`],
//! [`RunningBackend::connections`]) so tests can assert on what the proxy forwarded, and it stops
//! every one of its threads when its handle is dropped.
//!
//! Network input never panics a backend: a malformed request gets a `400` and a close, a
//! connection error or timeout just ends that connection (as it would on a real server).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::scenario::recent::Recent;
use crate::scenario::wire::{MAX_BODY, MAX_HEAD, MAX_HEADERS, Wire, eof, find_header, header_has_token};

/// How long a backend connection may stay silent (waiting for a request, or for the rest of
/// one) before the backend closes it, like a server's `timeout client`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write may block (the peer not reading) before the backend gives up on it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection keeps draining what the peer still sends (see `close_gracefully`).
const LINGER_TIMEOUT: Duration = Duration::from_millis(500);
/// At most this many bytes are drained while lingering, so a peer cannot keep a thread forever.
const LINGER_MAX_BYTES: usize = 1024 * 1024;
/// How long dropping a backend waits for its connection threads to notice and finish.
const DROP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the wake-up connection that unblocks `accept()` may take.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// What a `garbage` backend answers: bytes that cannot be read as an HTTP response.
const GARBAGE: &[u8] = b"this is not HTTP at all\r\n\r\n";
/// Requests remembered for `requests()`: the latest ones, so that a backend behind a
/// long run (the demo) does not grow with every request.
const KEPT_REQUESTS: usize = 256;

/// What a backend does with the connections it accepts.
#[derive(Clone, Debug)]
pub enum BackendSpec {
    /// A real HTTP/1.1 server whose answers follow the behaviour.
    Http(HttpBehaviour),
    /// A TCP echo: writes back every byte it reads; on read EOF it shuts down its write side,
    /// so a client's half-close comes back as a half-close.
    Echo,
    /// An address where `connect()` is refused: a port was reserved and closed, nothing listens.
    Refuse,
    /// Accepts connections and never reads nor writes; keeps them open until the backend is dropped.
    BlackHole,
    /// A port whose accept queue is full (backlog 0, one connection never accepted): the
    /// kernel drops new SYNs, so `connect()` neither succeeds nor fails and a proxy's
    /// `timeout connect` fires.
    Saturated,
    /// A WebSocket echo server: the upgrade handshake, then every message sent back.
    WebSocket,
}

/// How an HTTP backend answers. Start from [`HttpBehaviour::named`] (or `Default`) and change
/// fields with struct-update syntax: `HttpBehaviour { body_size: 10, ..HttpBehaviour::named("s1") }`.
#[derive(Clone, Debug)]
pub struct HttpBehaviour {
    /// Sent back as `X-Served-By: <name>` (unless empty), so load balancing is observable.
    pub name: String,
    /// Status code of every answer (default 200). 1xx, 204 and 304 answers carry no body.
    pub status: u16,
    /// Extra response headers, sent as given after `X-Served-By`.
    pub headers: Vec<(String, String)>,
    /// Body length; the body is [`body_pattern`]`(body_size)` so integrity can be checked.
    pub body_size: usize,
    /// Frame the body with `Transfer-Encoding: chunked` instead of `Content-Length`.
    pub chunked: bool,
    /// Size of each chunk when `chunked` (default 4096; 0 is treated as 4096).
    pub chunk_size: usize,
    /// Wait this long after reading the request before sending anything.
    pub delay_before_headers: Option<Duration>,
    /// Send the headers and half the body, wait this long, then send the rest.
    pub delay_mid_body: Option<Duration>,
    /// Read the request, then close without answering (a proxy should answer 502).
    pub close_early: bool,
    /// Send the headers and half the body, then close (a truncated response).
    pub close_mid_body: bool,
    /// Answer with bytes that are not HTTP, then close (a proxy should answer 502).
    pub garbage: bool,
    /// Honour HTTP/1.1 keep-alive (default true); false answers `Connection: close` and closes.
    pub keep_alive: bool,
    /// Requests for this path (query string ignored) bypass the behaviour above and get
    /// `200 OK` with body `OK` while the backend is up, `503` with body `DOWN` once
    /// [`RunningBackend::set_up`]`(false)` was called (on connections that were already open).
    pub health_path: Option<String>,
}

impl Default for HttpBehaviour {
    fn default() -> Self {
        HttpBehaviour {
            name: String::new(),
            status: 200,
            headers: Vec::new(),
            body_size: 0,
            chunked: false,
            chunk_size: 4096,
            delay_before_headers: None,
            delay_mid_body: None,
            close_early: false,
            close_mid_body: false,
            garbage: false,
            keep_alive: true,
            health_path: None,
        }
    }
}

impl HttpBehaviour {
    /// A well-behaved server called `name`: `200`, empty body, keep-alive.
    pub fn named(name: &str) -> Self {
        HttpBehaviour { name: name.to_string(), ..HttpBehaviour::default() }
    }
}

/// The deterministic body every HTTP backend sends: `len` bytes cycling through `b'a'..=b'z'`.
pub fn body_pattern(len: usize) -> Vec<u8> {
    (b'a'..=b'z').cycle().take(len).collect()
}

/// One HTTP request as an HTTP backend received it (after the proxy, if there is one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, e.g. `/index.html?x=1`.
    pub path: String,
    /// The minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header fields in order, names as sent (not lower-cased).
    pub headers: Vec<(String, String)>,
    /// The body, already de-chunked when it came with `Transfer-Encoding: chunked`.
    pub body: Vec<u8>,
    /// Trailer fields that followed a chunked body.
    pub trailers: Vec<(String, String)>,
    /// The request head exactly as received, up to and including the empty line.
    pub raw_head: Vec<u8>,
}

impl SeenRequest {
    /// The first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A backend running on its own threads; dropping it stops them and closes every socket.
pub struct RunningBackend {
    /// Where the backend listens (for `Refuse`: where nothing listens).
    addr: SocketAddr,
    /// State shared with the accept thread and the connection threads.
    shared: Arc<Shared>,
    /// The current accept thread; `None` while the backend is down (or for `Refuse`).
    accept: Mutex<Option<AcceptLoop>>,
    /// `Saturated`: the listening socket nobody accepts on and the connection filling its
    /// queue.
    _saturated: Option<(socket2::Socket, TcpStream)>,
}

/// What the backend's threads share.
struct Shared {
    /// What to do with connections (read-only).
    spec: BackendSpec,
    /// Whether health checks answer 200 (set by `set_up`).
    up: AtomicBool,
    /// Everything that changes, behind one lock so one condvar can announce every change.
    state: Mutex<State>,
    /// Notified whenever `state` changes: a request recorded, a connection accepted or finished,
    /// shutdown begun.
    changed: Condvar,
}

impl Shared {
    /// A backend that is up and has seen nothing yet.
    fn new(spec: BackendSpec) -> Arc<Shared> {
        Arc::new(Shared {
            spec,
            up: AtomicBool::new(true),
            state: Mutex::new(State {
                requests: Recent::new(KEPT_REQUESTS),
                connections: 0,
                open: HashMap::new(),
                next_id: 0,
                workers: 0,
                shutdown: false,
            }),
            changed: Condvar::new(),
        })
    }
}

/// The mutable part of [`Shared`].
struct State {
    /// The requests received, in order (the latest `KEPT_REQUESTS`).
    requests: Recent<SeenRequest>,
    /// Connections accepted since start.
    connections: usize,
    /// A handle on every open connection, so `drop` can shut them down and wake their threads
    /// out of blocking reads; a connection thread removes its entry when it ends.
    open: HashMap<u64, TcpStream>,
    /// Key for the next entry in `open`.
    next_id: u64,
    /// Connection threads still running.
    workers: usize,
    /// Set by `drop`: pauses end early, threads finish.
    shutdown: bool,
}

/// One accept thread and the flag that asks it to stop.
struct AcceptLoop {
    /// Checked after every `accept()` returns.
    stop: Arc<AtomicBool>,
    /// The thread blocked in `accept()`.
    thread: JoinHandle<()>,
}

impl Shared {
    /// Locks the state. A panicking test thread must not make every later call panic too, so a
    /// poisoned lock is used as is (the state is plain data, always consistent between statements).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits `delay` (a behaviour, not synchronisation) unless the backend is dropped meanwhile.
    /// Returns false when it was cut short by shutdown.
    fn pause(&self, delay: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, delay, |s| !s.shutdown)
            .unwrap_or_else(PoisonError::into_inner);
        !state.shutdown
    }

    /// Records one received request and wakes `wait_for_requests`.
    fn record(&self, request: SeenRequest) {
        self.lock().requests.push(request);
        self.changed.notify_all();
    }

    /// Called by a connection thread as it ends.
    fn connection_done(&self, id: u64) {
        let mut state = self.lock();
        state.open.remove(&id);
        state.workers = state.workers.saturating_sub(1);
        drop(state);
        self.changed.notify_all();
    }
}

impl RunningBackend {
    /// Starts a backend on `127.0.0.1:0` (any free port; see [`RunningBackend::addr`]).
    pub fn start(spec: BackendSpec) -> io::Result<RunningBackend> {
        if matches!(spec, BackendSpec::Saturated) {
            return Self::start_saturated();
        }
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let listens = !matches!(spec, BackendSpec::Refuse);
        let shared = Shared::new(spec);
        let accept = if listens {
            Some(spawn_accept_loop(listener, &shared)?)
        } else {
            // Refuse: the port was only reserved to get an address; closing the listener makes
            // connect() to it fail with "connection refused". (Another bind(0) on this machine
            // could in theory be given the same port later; the kernel rarely reuses one so soon.)
            drop(listener);
            None
        };
        Ok(RunningBackend { addr, shared, accept: Mutex::new(accept), _saturated: None })
    }

    /// `Saturated`: listen with a backlog of 0 and fill the queue with one connection.
    fn start_saturated() -> io::Result<RunningBackend> {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        sock.listen(0)?;
        let addr = sock.local_addr()?.as_socket().ok_or_else(|| io::Error::other("not an inet address"))?;
        let filler = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        let shared = Shared::new(BackendSpec::Saturated);
        Ok(RunningBackend { addr, shared, accept: Mutex::new(None), _saturated: Some((sock, filler)) })
    }

    /// The address to point the proxy's `server` line at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTP requests received so far, in order (health checks included; the latest
    /// `KEPT_REQUESTS`).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.lock().requests.since(0)
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Blocks until at least `n` requests were received or `timeout` passed; true if they were.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.requests.total >= n)
    }

    /// Blocks until at least `n` connections were accepted or `timeout` passed; true if they were.
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.connections >= n)
    }

    /// Waits on the condvar until `done` holds for the state, or `timeout`.
    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| !done(s))
            .unwrap_or_else(PoisonError::into_inner);
        done(&state)
    }

    /// Takes the server down or brings it back up. Down closes the listening socket: connecting
    /// is refused, connections still waiting in the accept backlog are reset, connections
    /// already accepted stay open (their health checks answer 503). Up listens again on the
    /// same port. Does nothing for `Refuse` and `Saturated`, which never accept.
    ///
    /// Returns an error if the port cannot be bound again, or if the accept thread could not be
    /// woken (then the socket may still be listening).
    pub fn set_up(&self, up: bool) -> io::Result<()> {
        if matches!(self.shared.spec, BackendSpec::Refuse | BackendSpec::Saturated) {
            return Ok(());
        }
        let mut accept = self.accept.lock().unwrap_or_else(PoisonError::into_inner);
        self.shared.up.store(up, Ordering::SeqCst);
        if up {
            if accept.is_none() {
                // std sets SO_REUSEADDR on listeners, so the port can be bound again even while
                // connections accepted on it are still open or in TIME_WAIT.
                let listener = TcpListener::bind(self.addr)?;
                *accept = Some(spawn_accept_loop(listener, &self.shared)?);
            }
        } else if let Some(running) = accept.take() {
            stop_accept_loop(running, self.addr)?;
        }
        Ok(())
    }
}

impl Drop for RunningBackend {
    fn drop(&mut self) {
        // 1. No new connections: stop the accept thread (this closes the listening socket).
        let accept = self.accept.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(running) = accept {
            // Nothing to report to from drop; a thread that could not be woken is left detached.
            let _ = stop_accept_loop(running, self.addr);
        }
        // 2. Wake every connection thread: shutting a socket down makes a blocked read return 0
        //    and a blocked write fail; `shutdown` ends pauses. Then wait for the threads to end.
        let mut state = self.shared.lock();
        state.shutdown = true;
        for (_, stream) in state.open.drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.shared.changed.notify_all();
        let _ = self.shared.changed.wait_timeout_while(state, DROP_TIMEOUT, |s| s.workers > 0);
    }
}

/// Runs `accept_loop` for `listener` on a new thread.
fn spawn_accept_loop(listener: TcpListener, shared: &Arc<Shared>) -> io::Result<AcceptLoop> {
    let stop = Arc::new(AtomicBool::new(false));
    let port = listener.local_addr()?.port();
    let thread = thread::Builder::new().name(format!("backend-{port}-accept")).spawn({
        let stop = Arc::clone(&stop);
        let shared = Arc::clone(shared);
        move || accept_loop(listener, &stop, &shared)
    })?;
    Ok(AcceptLoop { stop, thread })
}

/// Stops an accept thread and waits for it, which closes its listening socket.
fn stop_accept_loop(running: AcceptLoop, addr: SocketAddr) -> io::Result<()> {
    running.stop.store(true, Ordering::SeqCst);
    // The thread is blocked in accept(); a connection is the portable way to make accept()
    // return, and the thread then sees `stop` and returns (dropping the listener).
    match TcpStream::connect_timeout(&addr, WAKE_TIMEOUT) {
        Ok(_) => {}
        // Refused: the thread already left its loop (see `accept_loop`) and closed the socket.
        Err(_) if running.thread.is_finished() => {}
        Err(e) => return Err(e),
    }
    running.thread.join().map_err(|_| io::Error::other("backend accept thread panicked"))
}

/// Accepts connections until asked to stop.
fn accept_loop(listener: TcpListener, stop: &AtomicBool, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        // Whatever woke us (a client, or `stop_accept_loop`'s wake-up connection), check first.
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _peer)) => serve(stream, shared),
            // The client gave up before we accepted, or a signal interrupted us: keep going.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
            // Anything else (e.g. out of file descriptors) would repeat at once: rather than spin,
            // stop listening. The backend then looks down, which a test will notice.
            Err(_) => return,
        }
    }
}

/// Registers an accepted connection and hands it to its own thread.
fn serve(stream: TcpStream, shared: &Arc<Shared>) {
    let mut state = shared.lock();
    if state.shutdown {
        return;
    }
    state.connections += 1;
    let id = state.next_id;
    state.next_id += 1;
    if matches!(shared.spec, BackendSpec::BlackHole) {
        // Never read nor written: just kept open (in `open`) until drop.
        state.open.insert(id, stream);
        drop(state);
        shared.changed.notify_all();
        return;
    }
    let Ok(handle) = stream.try_clone() else {
        return; // cannot register it for shutdown: close it instead
    };
    state.open.insert(id, handle);
    state.workers += 1;
    drop(state);
    shared.changed.notify_all();

    let worker_shared = Arc::clone(shared);
    let spawned = thread::Builder::new().name(format!("backend-conn-{id}")).spawn(move || {
        // An error just ends this connection, as it would on a real server.
        let _ = run_connection(stream, &worker_shared);
        worker_shared.connection_done(id);
    });
    if spawned.is_err() {
        shared.connection_done(id);
    }
}

/// Serves one connection according to the spec.
fn run_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    match &shared.spec {
        BackendSpec::Http(behaviour) => serve_http(stream, behaviour, shared),
        BackendSpec::Echo => serve_echo(stream),
        BackendSpec::WebSocket => crate::scenario::websocket::serve(stream),
        BackendSpec::Refuse | BackendSpec::BlackHole | BackendSpec::Saturated => Ok(()),
    }
}

/// TCP echo until the peer half-closes, then half-close back.
fn serve_echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return stream.shutdown(Shutdown::Write),
            Ok(n) => stream.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What to do with the connection after an answer.
enum Next {
    /// Read the next request (keep-alive).
    KeepAlive,
    /// Close gracefully: FIN, then drain (see `close_gracefully`).
    Close,
    /// The backend is shutting down: just drop the socket.
    Abort,
}

/// The HTTP/1.1 server loop: one request, one answer, until one side closes.
fn serve_http(stream: TcpStream, behaviour: &HttpBehaviour, shared: &Shared) -> io::Result<()> {
    let mut conn = HttpConn { stream, buf: Vec::new() };
    loop {
        let request = match conn.read_request()? {
            Incoming::Request(request) => request,
            Incoming::Closed => return Ok(()),
            Incoming::Bad(status) => {
                let head = response_head(status, &behaviour.name, &[], Framing::Length(0), true);
                conn.stream.write_all(&head)?;
                return close_gracefully(&mut conn.stream);
            }
        };
        let close = request.version == 0
            || header_has_token(&request.headers, "connection", "close")
            || !behaviour.keep_alive;
        let is_head = request.method.eq_ignore_ascii_case("HEAD");
        let path = request.path.split('?').next().unwrap_or_default();
        let is_health = behaviour.health_path.as_deref() == Some(path);
        shared.record(request);

        let next = if is_health {
            answer_health(&mut conn.stream, behaviour, shared, is_head, close)?
        } else {
            answer(&mut conn.stream, behaviour, shared, is_head, close)?
        };
        match next {
            Next::KeepAlive => {}
            Next::Close => return close_gracefully(&mut conn.stream),
            Next::Abort => return Ok(()),
        }
    }
}

/// Answers a health check: 200 `OK` while up, 503 `DOWN` while down.
fn answer_health(
    stream: &mut TcpStream,
    behaviour: &HttpBehaviour,
    shared: &Shared,
    is_head: bool,
    close: bool,
) -> io::Result<Next> {
    let (status, body): (u16, &[u8]) =
        if shared.up.load(Ordering::SeqCst) { (200, b"OK") } else { (503, b"DOWN") };
    let mut out = response_head(status, &behaviour.name, &[], Framing::Length(body.len()), close);
    if !is_head {
        out.extend_from_slice(body);
    }
    stream.write_all(&out)?;
    Ok(if close { Next::Close } else { Next::KeepAlive })
}

/// Answers an ordinary request as the behaviour says.
fn answer(
    stream: &mut TcpStream,
    behaviour: &HttpBehaviour,
    shared: &Shared,
    is_head: bool,
    close: bool,
) -> io::Result<Next> {
    if behaviour.close_early {
        return Ok(Next::Close);
    }
    if let Some(delay) = behaviour.delay_before_headers
        && !shared.pause(delay)
    {
        return Ok(Next::Abort);
    }
    if behaviour.garbage {
        stream.write_all(GARBAGE)?;
        return Ok(Next::Close);
    }
    let body = if status_has_body(behaviour.status) { body_pattern(behaviour.body_size) } else { Vec::new() };
    let framing = if !status_has_body(behaviour.status) {
        Framing::NoBody
    } else if behaviour.chunked {
        Framing::Chunked
    } else {
        Framing::Length(body.len())
    };
    let mut out = response_head(behaviour.status, &behaviour.name, &behaviour.headers, framing, close);
    let done = if close { Next::Close } else { Next::KeepAlive };
    if is_head || (body.is_empty() && !matches!(framing, Framing::Chunked)) {
        stream.write_all(&out)?;
        return Ok(done);
    }

    let chunk_size = match behaviour.chunk_size {
        0 => 4096,
        n => n,
    };
    let (first, second) = body.split_at(body.len() / 2);
    encode_body_part(&mut out, first, behaviour.chunked, chunk_size);
    if behaviour.close_mid_body || behaviour.delay_mid_body.is_some() {
        // The response stops half-way: what was built so far goes out now.
        stream.write_all(&out)?;
        out.clear();
    }
    if let Some(delay) = behaviour.delay_mid_body
        && !shared.pause(delay)
    {
        return Ok(Next::Abort);
    }
    // With a delay too, the close comes after it: the first half has reached the client
    // by then, whatever the scheduling.
    if behaviour.close_mid_body {
        return Ok(Next::Close);
    }
    encode_body_part(&mut out, second, behaviour.chunked, chunk_size);
    if behaviour.chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    // One write for what is sent at once, so that what the proxy reads (and the call flow
    // it records) does not depend on how the kernel splits the segments.
    stream.write_all(&out)?;
    Ok(done)
}

/// Appends part of a body, as chunks of `chunk_size` when `chunked`.
fn encode_body_part(out: &mut Vec<u8>, part: &[u8], chunked: bool, chunk_size: usize) {
    if !chunked {
        out.extend_from_slice(part);
        return;
    }
    for chunk in part.chunks(chunk_size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
}

/// How a response body is delimited.
#[derive(Clone, Copy)]
enum Framing {
    /// No body by definition (1xx, 204, 304): no framing header.
    NoBody,
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Whether responses with this status may carry a body (RFC 9112 section 6.3).
fn status_has_body(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}

/// Builds a response head: status line, `X-Served-By`, extra headers, framing, `Connection`.
fn response_head(
    status: u16,
    name: &str,
    extra: &[(String, String)],
    framing: Framing,
    close: bool,
) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    if !name.is_empty() {
        head.push_str(&format!("X-Served-By: {name}\r\n"));
    }
    for (field, value) in extra {
        head.push_str(&format!("{field}: {value}\r\n"));
    }
    match framing {
        Framing::NoBody => {}
        Framing::Length(len) => head.push_str(&format!("Content-Length: {len}\r\n")),
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// The usual reason phrase for a status code.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Other",
    }
}

/// Closes a connection the way real servers do (a "lingering close"): send our FIN now, then
/// read and discard what the peer still sends for a moment. Closing a socket whose receive
/// buffer holds unread bytes makes the kernel send RST, and an RST can destroy the response we
/// just wrote before the peer has read it.
fn close_gracefully(stream: &mut TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(LINGER_TIMEOUT))?;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_MAX_BYTES {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

/// The outcome of reading one request.
enum Incoming {
    /// A complete request, body included.
    Request(SeenRequest),
    /// The peer closed cleanly between requests.
    Closed,
    /// The request cannot be served; answer this status and close.
    Bad(u16),
}

/// A server-side connection with its input buffer: bytes read from the socket but not consumed
/// yet. Keeping them is what makes pipelining work: the bytes after one request are the start
/// of the next.
struct HttpConn {
    /// The connection.
    stream: TcpStream,
    /// Received, not yet consumed.
    buf: Vec<u8>,
}

impl Wire for HttpConn {
    fn parts(&mut self) -> (&mut TcpStream, &mut Vec<u8>) {
        (&mut self.stream, &mut self.buf)
    }
}

impl HttpConn {
    /// Reads one whole request: the head (which may arrive in pieces), then the body.
    fn read_request(&mut self) -> io::Result<Incoming> {
        let head = loop {
            match parse_request_head(&self.buf) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(_) => return Ok(Incoming::Bad(400)),
            }
            if self.buf.len() > MAX_HEAD {
                return Ok(Incoming::Bad(431));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(Incoming::Closed)
                } else {
                    Err(eof("connection closed in the middle of a request head"))
                };
            }
        };
        let raw_head = self.consume(head.len);

        let framing = match request_body_framing(&head.headers) {
            Ok(framing) => framing,
            Err(status) => return Ok(Incoming::Bad(status)),
        };
        let expects_body = match framing {
            BodyFraming::Chunked => true,
            BodyFraming::Length(len) => len > 0,
        };
        if expects_body && header_has_token(&head.headers, "expect", "100-continue") {
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = match framing {
            BodyFraming::Length(len) => self.take(len).map(|body| (body, Vec::new())),
            BodyFraming::Chunked => self.read_chunked(),
        };
        let (body, trailers) = match body {
            Ok(body) => body,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(Incoming::Bad(400)),
            Err(e) => return Err(e),
        };
        Ok(Incoming::Request(SeenRequest {
            method: head.method,
            path: head.path,
            version: head.version,
            headers: head.headers,
            body,
            trailers,
            raw_head,
        }))
    }
}

/// A parsed request head, copied out of the buffer.
struct RequestHead {
    /// Request method.
    method: String,
    /// Request target.
    path: String,
    /// Minor version (0 or 1).
    version: u8,
    /// Header fields in order.
    headers: Vec<(String, String)>,
    /// Bytes the head took in the buffer, empty line included.
    len: usize,
}

/// Parses a request head at the start of `buf`: `Ok(None)` means not all of it has arrived yet.
fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead>, httparse::Error> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let len = match request.parse(buf)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    Ok(Some(RequestHead {
        method: request.method.unwrap_or_default().to_string(),
        path: request.path.unwrap_or_default().to_string(),
        version: request.version.unwrap_or(1),
        headers: request
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        len,
    }))
}

/// How a request body is delimited.
enum BodyFraming {
    /// `Content-Length` (0 when absent: requests without framing have no body).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Decides the request body framing (RFC 9112 section 6.3), or the status to reject it with.
fn request_body_framing(headers: &[(String, String)]) -> Result<BodyFraming, u16> {
    let te: Vec<&str> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|coding| !coding.is_empty())
        .collect();
    if let Some(last) = te.last() {
        // Transfer-Encoding wins over Content-Length; a request whose last coding is not
        // chunked has no way to end its body and must be rejected.
        return if last.eq_ignore_ascii_case("chunked") { Ok(BodyFraming::Chunked) } else { Err(400) };
    }
    let mut length = None;
    for (_, value) in headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
        for item in value.split(',').map(str::trim) {
            let parsed = item
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| item.parse::<usize>().ok())
                .flatten()
                .ok_or(400u16)?;
            if length.is_some_and(|known| known != parsed) {
                return Err(400);
            }
            length = Some(parsed);
        }
    }
    match length {
        Some(len) if len > MAX_BODY => Err(413),
        Some(len) => Ok(BodyFraming::Length(len)),
        None => Ok(BodyFraming::Length(0)),
    }
}

#[cfg(test)]
mod tests {
    //! The backends driven with raw bytes over std sockets, so these tests depend on nothing
    //! else in the crate.

    use super::*;

    /// Short timeouts keep every test well under a second.
    const T: Duration = Duration::from_millis(500);

    fn http(behaviour: HttpBehaviour) -> RunningBackend {
        RunningBackend::start(BackendSpec::Http(behaviour)).expect("start backend")
    }

    fn connect(backend: &RunningBackend) -> TcpStream {
        let stream = TcpStream::connect_timeout(&backend.addr(), T).expect("connect");
        stream.set_read_timeout(Some(T)).expect("timeout");
        stream
    }

    /// Reads until EOF (the test requests ask for `Connection: close`).
    fn read_all(stream: &mut TcpStream) -> String {
        let mut out = Vec::new();
        stream.read_to_end(&mut out).expect("read to EOF");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn answers_get_with_pattern_body_and_served_by() {
        let backend = http(HttpBehaviour { body_size: 30, ..HttpBehaviour::named("s1") });
        let mut stream = connect(&backend);
        stream.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        let text = read_all(&mut stream);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("X-Served-By: s1\r\n"));
        assert!(text.contains("Content-Length: 30\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nabcdefghijklmnopqrstuvwxyzabcd"));
        let seen = backend.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].path, "/x");
        assert_eq!(seen[0].version, 1);
        assert_eq!(seen[0].header("host"), Some("a"));
        assert!(seen[0].raw_head.ends_with(b"close\r\n\r\n"));
    }

    #[test]
    fn head_arriving_in_pieces_is_reassembled() {
        let backend = http(HttpBehaviour::named("s1"));
        let mut stream = connect(&backend);
        stream.set_nodelay(true).unwrap();
        for piece in [&b"GE"[..], b"T / HT", b"TP/1.1\r\nHo", b"st: a\r", b"\nConnection: close\r\n", b"\r\n"]
        {
            stream.write_all(piece).unwrap();
        }
        assert!(read_all(&mut stream).starts_with("HTTP/1.1 200 OK"));
        assert_eq!(backend.requests()[0].headers.len(), 2);
    }

    #[test]
    fn decodes_chunked_request_with_extension_and_trailers() {
        let backend = http(HttpBehaviour::named("s1"));
        let mut stream = connect(&backend);
        stream
            .write_all(
                b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                  5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Check: yes\r\n\r\n",
            )
            .unwrap();
        assert!(read_all(&mut stream).starts_with("HTTP/1.1 200"));
        let seen = &backend.requests()[0];
        assert_eq!(seen.body, b"hello world");
        assert_eq!(seen.trailers, vec![("X-Check".into(), "yes".into())]);
    }

    #[test]
    fn answers_pipelined_requests_in_order() {
        let backend = http(HttpBehaviour { body_size: 3, ..HttpBehaviour::named("s1") });
        let mut stream = connect(&backend);
        stream
            .write_all(
                b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\
                  POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\
                  GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let text = read_all(&mut stream);
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
        let paths: Vec<String> = backend.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/1", "/2", "/3"]);
        assert_eq!(backend.requests()[1].body, b"hi");
        assert_eq!(backend.connections(), 1);
    }

    #[test]
    fn http10_request_is_answered_with_close() {
        let backend = http(HttpBehaviour::named("s1"));
        let mut stream = connect(&backend);
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let text = read_all(&mut stream); // EOF: the backend closed
        assert!(text.contains("Connection: close\r\n"));
        assert_eq!(backend.requests()[0].version, 0);
    }

    #[test]
    fn head_request_gets_headers_only() {
        let backend = http(HttpBehaviour { body_size: 100, ..HttpBehaviour::named("s1") });
        let mut stream = connect(&backend);
        stream.write_all(b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        let text = read_all(&mut stream);
        assert!(text.contains("Content-Length: 100\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn malformed_request_gets_400_and_close() {
        let backend = http(HttpBehaviour::named("s1"));
        let mut stream = connect(&backend);
        stream.write_all(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").unwrap();
        assert!(read_all(&mut stream).starts_with("HTTP/1.1 400 Bad Request"));
        assert!(backend.requests().is_empty());
    }

    #[test]
    fn expect_100_continue_is_answered_before_the_body() {
        let backend = http(HttpBehaviour::named("s1"));
        let mut stream = connect(&backend);
        stream
            .write_all(b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut interim = [0u8; 25];
        stream.read_exact(&mut interim).unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        stream.write_all(b"ok").unwrap();
        assert!(read_all(&mut stream).starts_with("HTTP/1.1 200"));
        assert_eq!(backend.requests()[0].body, b"ok");
    }

    #[test]
    fn echo_returns_bytes_and_half_close() {
        let backend = RunningBackend::start(BackendSpec::Echo).unwrap();
        let mut stream = connect(&backend);
        stream.write_all(b"ping").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_all(&mut stream), "ping");
    }

    #[test]
    fn refuse_refuses() {
        let backend = RunningBackend::start(BackendSpec::Refuse).unwrap();
        let err = TcpStream::connect_timeout(&backend.addr(), T).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(backend.set_up(true).is_ok());
    }

    #[test]
    fn black_hole_accepts_and_stays_silent() {
        let backend = RunningBackend::start(BackendSpec::BlackHole).unwrap();
        let mut stream = connect(&backend);
        stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(backend.wait_for_connections(1, T));
        let err = stream.read(&mut [0u8; 16]).unwrap_err();
        assert!(matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut));
    }

    #[test]
    fn a_saturated_backend_lets_connect_time_out() {
        let backend = RunningBackend::start(BackendSpec::Saturated).unwrap();
        let err = TcpStream::connect_timeout(&backend.addr(), Duration::from_millis(200))
            .expect_err("the SYN is dropped: connect() cannot complete");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    }

    #[test]
    fn drop_closes_open_connections_and_the_port() {
        let backend = RunningBackend::start(BackendSpec::Echo).unwrap();
        let addr = backend.addr();
        let mut echo = connect(&backend);
        let hole = RunningBackend::start(BackendSpec::BlackHole).unwrap();
        let mut held = connect(&hole);
        assert!(backend.wait_for_connections(1, T));
        assert!(hole.wait_for_connections(1, T));
        drop(backend);
        drop(hole);
        assert_eq!(echo.read(&mut [0u8; 8]).unwrap(), 0, "EOF after drop");
        assert_eq!(held.read(&mut [0u8; 8]).unwrap(), 0, "EOF after drop");
        let err = TcpStream::connect_timeout(&addr, T).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn drop_cuts_a_delayed_answer_short() {
        let backend = http(HttpBehaviour {
            delay_before_headers: Some(Duration::from_secs(30)),
            ..HttpBehaviour::named("slow")
        });
        let mut stream = connect(&backend);
        stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(backend.wait_for_requests(1, T));
        let started = std::time::Instant::now();
        drop(backend);
        assert!(started.elapsed() < T, "drop waited for the delay");
        assert_eq!(stream.read(&mut [0u8; 8]).unwrap(), 0);
    }

    #[test]
    fn set_up_toggles_listening_on_the_same_port() {
        let backend =
            http(HttpBehaviour { health_path: Some("/health".into()), ..HttpBehaviour::named("s1") });
        let mut kept = connect(&backend);
        // Only accepted connections survive going down; ones still in the backlog are reset.
        assert!(backend.wait_for_connections(1, T));
        backend.set_up(false).unwrap();
        let err = TcpStream::connect_timeout(&backend.addr(), T).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        // The open connection still works; its health checks now say DOWN.
        kept.write_all(b"GET /health?x HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(read_all(&mut kept).starts_with("HTTP/1.1 503"));
        backend.set_up(true).unwrap();
        let mut again = connect(&backend);
        again.write_all(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(read_all(&mut again).ends_with("\r\n\r\nOK"));
    }

    #[test]
    fn wait_for_requests_times_out() {
        let backend = http(HttpBehaviour::named("s1"));
        assert!(!backend.wait_for_requests(1, Duration::from_millis(20)));
    }

    #[test]
    fn framing_rules() {
        let h = |name: &str, value: &str| vec![(name.to_string(), value.to_string())];
        assert!(matches!(request_body_framing(&[]), Ok(BodyFraming::Length(0))));
        assert!(matches!(request_body_framing(&h("content-length", "12")), Ok(BodyFraming::Length(12))));
        assert!(matches!(
            request_body_framing(&h("Transfer-Encoding", "gzip, chunked")),
            Ok(BodyFraming::Chunked)
        ));
        assert!(matches!(request_body_framing(&h("content-length", "-1")), Err(400)));
        assert!(matches!(request_body_framing(&h("content-length", "3, 4")), Err(400)));
        assert!(matches!(request_body_framing(&h("transfer-encoding", "gzip")), Err(400)));
    }
}
