//! The scenario file format (TOML): a configuration, the backends it needs, the traffic to
//! send and what must be observed.
//!
//! ```toml
//! name = "basic-get"
//! title = "A basic GET"
//! seed = "§3.1–3.4"
//! about = "One paragraph: what happens and which part of the article it shows."
//! config = """
//! frontend fe
//!     bind 127.0.0.1:0
//!     default_backend be
//! backend be
//!     server s1 "${S1}"
//! """
//! flow = [0]                      # sessions (uniq_id, from 0) whose call flow is the listing
//!
//! [backends.S1]                   # "${S1}" in the config becomes its address
//! kind = "http"
//! name = "s1"
//!
//! [[traffic]]
//! do = "request"
//! path = "/"
//! close = true
//! expect_status = 200
//!
//! [expect]
//! logs = [" fe be/s1 .* 200 .* ---- "]
//! ```
//!
//! Ports are assigned at run time: `bind 127.0.0.1:0` listens on a free port and each
//! backend's address reaches the configuration through `"${NAME}"`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// "The article", named the same way everywhere (README, walkthrough, `scenario list`,
/// the book's first page): the text haflow reproduces. Scenarios and walkthrough steps
/// cite its sections: `§2.1` is its section 2.1.
pub const ARTICLE: &str = "\"HAProxy's TCP/HTTP call flow\", a blog post in Chinese by abcdxyzk \
(29 July 2015) that follows one connection through the source of HAProxy 1.4/1.5-dev: \
http://abcdxyzk.github.io/blog/2015/07/29/tools-haproxy_src1/";

/// A whole scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (`basic-get`), also the golden listing's file name.
    pub name: String,
    /// One-line title.
    pub title: String,
    /// The section(s) of the article (`ARTICLE`) it illustrates, as `§3.1` or `(not in
    /// the article)`.
    pub seed: String,
    /// One paragraph: what happens, and what to look at.
    pub about: String,
    /// The haproxy.cfg (with `bind 127.0.0.1:0` and `"${BACKEND}"` addresses).
    pub config: String,
    /// Backends by the variable the configuration uses for their address.
    #[serde(default)]
    pub backends: BTreeMap<String, BackendDef>,
    /// What the clients do, in order.
    #[serde(default)]
    pub traffic: Vec<Step>,
    /// Sessions (by `uniq_id`, which counts from 0 as HAProxy's does) whose call flow
    /// makes the listing; the first session by default.
    #[serde(default = "first_session")]
    pub flow: Vec<u32>,
    /// Spans to follow across the run (e.g. `listener_full`, `resume_listener`), shown after
    /// the sessions: every span of these names, in the loop's trees or in any session's
    /// (a session's end resumes a full listener), all in the order they started.
    #[serde(default)]
    pub flow_roots: Vec<String>,
    /// What must be observed once the traffic is done.
    #[serde(default)]
    pub expect: Expect,
}

fn first_session() -> Vec<u32> {
    vec![0]
}

fn yes() -> bool {
    true
}

/// An embedded backend.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendDef {
    /// `http`, `echo`, `refuse` (connect() refused), `blackhole` (accepts, never answers),
    /// `saturated` (its accept queue is full: SYNs go unanswered, connect() times out),
    /// `websocket` (a WebSocket echo server).
    pub kind: BackendKind,
    /// HTTP: sent as `X-Served-By`.
    #[serde(default)]
    pub name: String,
    /// HTTP: status of every answer.
    #[serde(default = "ok")]
    pub status: u16,
    /// HTTP: extra response headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// HTTP: body length.
    #[serde(default)]
    pub body_size: usize,
    /// HTTP: chunked transfer encoding.
    #[serde(default)]
    pub chunked: bool,
    /// HTTP: chunk size when chunked.
    #[serde(default)]
    pub chunk_size: usize,
    /// HTTP: milliseconds before the headers.
    #[serde(default)]
    pub delay_before_headers_ms: u64,
    /// HTTP: milliseconds between the two halves of the body.
    #[serde(default)]
    pub delay_mid_body_ms: u64,
    /// HTTP: read the request, close without answering.
    #[serde(default)]
    pub close_early: bool,
    /// HTTP: send half the body, then close (after `delay_mid_body_ms`, if set).
    #[serde(default)]
    pub close_mid_body: bool,
    /// HTTP: answer bytes that are not HTTP.
    #[serde(default)]
    pub garbage: bool,
    /// HTTP: honour keep-alive.
    #[serde(default = "yes")]
    pub keep_alive: bool,
    /// HTTP: the health-check path (answers 200 while up, 503 once set down).
    #[serde(default)]
    pub health_path: Option<String>,
}

fn ok() -> u16 {
    200
}

/// The kinds of embedded backend.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// An HTTP/1.1 responder.
    Http,
    /// A TCP echo.
    Echo,
    /// connect() is refused.
    Refuse,
    /// Accepts, never answers.
    Blackhole,
    /// The accept queue is full: connect() never completes.
    Saturated,
    /// A WebSocket echo server.
    Websocket,
}

/// One thing the clients do.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What: `request`, `send`, `read`, `raw`, `slow`, `echo`, `websocket`, `close`,
    /// `abort`, `concurrent`, `backend`, `wait_log`, `wait_requests`, `wait_listener`,
    /// `wait_server_side`, `signal`.
    #[serde(rename = "do")]
    pub action: Action,
    /// The client connection, by name; a step without one opens a connection of its own
    /// and closes it afterwards.
    #[serde(default)]
    pub conn: Option<String>,
    /// Request method.
    #[serde(default = "get")]
    pub method: String,
    /// Request path.
    #[serde(default = "root")]
    pub path: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Adds `Connection: close`.
    #[serde(default)]
    pub close: bool,
    /// HTTP/1.0 instead of 1.1.
    #[serde(default)]
    pub http10: bool,
    /// Request body with `Content-Length`, as text.
    #[serde(default)]
    pub body: Option<String>,
    /// Request body with `Content-Length`, this many pattern bytes.
    #[serde(default)]
    pub body_size: Option<usize>,
    /// Chunked request body: the sizes of the chunks (pattern bytes).
    #[serde(default)]
    pub chunks: Vec<usize>,
    /// `raw`, `slow`, `echo`, `websocket`: bytes to send, as text (TOML escapes: `\r\n`).
    #[serde(default)]
    pub bytes: Option<String>,
    /// `raw`: read a response afterwards.
    #[serde(default = "yes")]
    pub read: bool,
    /// `slow`: bytes per write.
    #[serde(default)]
    pub chunk: Option<usize>,
    /// `slow`: milliseconds between writes; `websocket`: milliseconds before the message
    /// (traffic shaping, not synchronisation).
    #[serde(default)]
    pub pause_ms: Option<u64>,
    /// `concurrent`: clients at once.
    #[serde(default)]
    pub clients: Option<usize>,
    /// `concurrent`: requests per client, over keep-alive.
    #[serde(default)]
    pub requests: Option<usize>,
    /// `backend`, `wait_requests`: which backend (its variable name).
    #[serde(default)]
    pub backend: Option<String>,
    /// `backend`: up or down.
    #[serde(default)]
    pub up: Option<bool>,
    /// `wait_requests`: how many requests the backend must have seen.
    #[serde(default)]
    pub count: Option<usize>,
    /// `wait_log`: a regular expression a log line must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// `wait_listener`: the frontend.
    #[serde(default)]
    pub frontend: Option<String>,
    /// `wait_listener`: the state its listener must reach (`LI_FULL`, `LI_READY`);
    /// `wait_server_side`: the newest session's `si[1]` state (`SI_ST_EST`).
    #[serde(default)]
    pub state: Option<String>,
    /// `signal`: the signal's name (`SIGTTOU`, `SIGTTIN`, `SIGUSR1`).
    #[serde(default)]
    pub signal: Option<String>,
    /// The response's status.
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// The response body's length.
    #[serde(default)]
    pub expect_body_size: Option<usize>,
    /// A response header and its value.
    #[serde(default)]
    pub expect_header: Option<(String, String)>,
    /// The proxy closes the connection after the response (or, for `read` without a
    /// status, without any).
    #[serde(default)]
    pub expect_close: bool,
}

fn get() -> String {
    "GET".into()
}

fn root() -> String {
    "/".into()
}

/// The client actions.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send a request and read its response.
    Request,
    /// Send a request, do not wait for the response.
    Send,
    /// Read a response (sent earlier with `send`, or an error the proxy sends on its own).
    Read,
    /// Send raw bytes (malformed requests), then read a response.
    Raw,
    /// Send bytes a few at a time with pauses (a slow client).
    Slow,
    /// TCP: send bytes and read the same bytes back.
    Echo,
    /// WebSocket: on first use of `conn`, the upgrade handshake to `path`; then `bytes`
    /// as one message, which must come back (an echo server behind the proxy). Without
    /// `bytes` and with `expect_close`, wait for the proxy to end the tunnel.
    Websocket,
    /// Close the connection (FIN).
    Close,
    /// Close the connection with a reset (RST).
    Abort,
    /// Several clients at once over keep-alive.
    Concurrent,
    /// Take a backend down or bring it back (its health checks follow).
    Backend,
    /// Wait until a log line matches `pattern`.
    WaitLog,
    /// Wait until a backend has seen `count` requests.
    WaitRequests,
    /// Wait until a frontend's listener is in `state`.
    WaitListener,
    /// Wait until the newest session's server side (`si[1]`) is in `state` (e.g.
    /// `SI_ST_EST`: in TCP mode, send only once the server connection is up, so that the
    /// call flow does not depend on which comes first).
    WaitServerSide,
    /// Deliver `signal` to the proxy (`SIGTTOU`, `SIGTTIN`, `SIGUSR1`), as a reload does.
    Signal,
}

/// What must be observed at the end.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// One regular expression per traffic log line, in order (health-check and server
    /// state lines are not traffic lines and are not counted).
    #[serde(default)]
    pub logs: Vec<String>,
    /// Regular expressions that some log line (any kind) must match.
    #[serde(default)]
    pub log_contains: Vec<String>,
}

impl Scenario {
    /// Parses a scenario file's text.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}
