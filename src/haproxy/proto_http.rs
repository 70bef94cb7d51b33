//! HTTP mode: the transaction, the HTTP analysers, `http-request`/`http-response` rules,
//! keep-alive and HAProxy's HTTP answers.
//!
//! Reproduces `proto_http.c` (1.5-dev8 structure; keep-alive from 1.5.0; observable
//! behaviour from HAProxy 2.6). Each analyser is called by `process_session` when its bit
//! is set in `req->analysers` or `rep->analysers`, in this order:
//! `http_wait_for_request` (`AN_REQ_WAIT_HTTP`) waits for a complete request head and
//! parses it; `http_process_req_common` (`AN_REQ_HTTP_PROCESS_FE`/`_BE`) runs the
//! `http-request` rules; `process_switching_rules` (session.rs) picks the backend;
//! `http_process_request` (`AN_REQ_HTTP_INNER`) adds `X-Forwarded-For`, fixes the
//! `Connection` header and lets the head go; `http_request_forward_body`
//! (`AN_REQ_HTTP_XFER_BODY`) forwards the body (Content-Length or chunked, streamed
//! through the buffer). On the response side, `http_wait_for_response`,
//! `http_process_res_common` and `http_response_forward_body` do the same. When both
//! messages are done, `http_end_txn_clean_session` logs the transaction and resets the
//! session for the next request on the same connection.
//!
//! Heads are parsed into a `Head` (h1.rs), changed there by rules, and serialised back
//! into the buffer before they leave, with lower-case header names as HAProxy 2.6 sends
//! them. A request whose framing is not understood is never forwarded.

use std::net::IpAddr;

use crate::haproxy::buffers::{Analysers, BufFlags};
use crate::haproxy::cache::{CacheTxn, PendingEntry, cache_store_done};
use crate::haproxy::compression::{
    CompEnd, RspFacts, comp_ctx_alloc, comp_ctx_free, http_compression_buffer_add_data,
    http_compression_buffer_end, http_compression_buffer_init, select_compression_request_header,
    select_compression_response_header, set_compression_response_header,
};
use crate::haproxy::h1::{self, ChunkLine, Framing, H1Error, Head, StartLine};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::http;
use crate::haproxy::http_act::{
    ReplyMsg, RuleResult, RuleResume, RuleSet, http_error_override, http_get_intercept_rule,
};
use crate::haproxy::log::sess_log;
use crate::haproxy::proxy::{HttpConnMode, ProxyOptions, ProxyState, ReuseMode};
use crate::haproxy::sample::{SmpDir, with_smp_ctx};
use crate::haproxy::server::srv_add_to_idle_list;
use crate::haproxy::session::{
    AnalyserResult, KeptConn, SessFlags, Session, SnErr, SnFinst, count_abort, sess_change_server,
    session_process_counters, srv_error_flags, srv_release_conn,
};
use crate::haproxy::stream_interface::{
    SiErrType, SiFlags, SiState, Side, StreamInterface, si_shutr, si_shutw,
};
use crate::haproxy::time::{TICK_ETERNITY, tick_add_ifset};
use crate::ids::ProxyId;
use crate::trace::fields::Coded;
use crate::trace::names;

/// Where a message is (`msg->msg_state`, the subset haflow's parser needs).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MsgState {
    /// Waiting for the head.
    #[default]
    HTTP_MSG_RQBEFORE,
    /// Head parsed and kept, not forwarded yet.
    HTTP_MSG_BODY,
    /// Forwarding a Content-Length body (or until close).
    HTTP_MSG_DATA,
    /// Expecting a chunk-size line.
    HTTP_MSG_CHUNK_SIZE,
    /// Forwarding chunk data.
    HTTP_MSG_CHUNK_DATA,
    /// Expecting the CRLF after chunk data.
    HTTP_MSG_CHUNK_CRLF,
    /// Expecting trailers after the last chunk.
    HTTP_MSG_TRAILERS,
    /// The whole message was forwarded.
    HTTP_MSG_DONE,
    /// A parse or framing error happened.
    HTTP_MSG_ERROR,
    /// The protocol was switched (`101`, or a `CONNECT` answered `2xx`): bytes pass both
    /// ways as they are, no longer parsed (1.5.0).
    HTTP_MSG_TUNNEL,
}

impl MsgState {
    /// Every state, in order (`ALL[s as usize] == s`).
    pub const ALL: [MsgState; 10] = [
        MsgState::HTTP_MSG_RQBEFORE,
        MsgState::HTTP_MSG_BODY,
        MsgState::HTTP_MSG_DATA,
        MsgState::HTTP_MSG_CHUNK_SIZE,
        MsgState::HTTP_MSG_CHUNK_DATA,
        MsgState::HTTP_MSG_CHUNK_CRLF,
        MsgState::HTTP_MSG_TRAILERS,
        MsgState::HTTP_MSG_DONE,
        MsgState::HTTP_MSG_ERROR,
        MsgState::HTTP_MSG_TUNNEL,
    ];
}

impl std::fmt::Display for MsgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

bitflags::bitflags! {
    /// `msg->flags`: what a message's head announced (the subset haflow needs).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct HttpMsgFlags: u8 {
        /// `Connection: upgrade` on a message without a body (2.6's `HTTP_MSGF_CONN_UPG`):
        /// this side agrees to switch protocols.
        const HTTP_MSGF_CONN_UPG = 0x01;
        /// `Upgrade: websocket` besides (2.6's `H1_MF_UPG_WEBSOCKET`): a WebSocket
        /// handshake, whose keys HAProxy 2.6 checks.
        const HTTP_MSGF_UPG_WEBSOCKET = 0x02;
        /// `strict-mode off` (2.6's `HTTP_MSGF_SOFT_RW`): a rewrite that does not fit is
        /// skipped instead of failing the transaction.
        const HTTP_MSGF_SOFT_RW = 0x04;
    }
}

/// The request method (`enum http_meth_t`), as far as the analysers care.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpMeth {
    /// No request parsed yet.
    #[default]
    HTTP_METH_NONE,
    /// `HEAD`: its response has no body.
    HTTP_METH_HEAD,
    /// `CONNECT`: a `2xx` answer turns the connection into a tunnel.
    HTTP_METH_CONNECT,
    /// `POST`: `cookie ... postonly` inserts only in its responses.
    HTTP_METH_POST,
    /// Any other method.
    HTTP_METH_OTHER,
}

impl HttpMeth {
    /// proto_http.c:find_http_meth() in 1.5-dev8, for the methods above.
    pub fn find_http_meth(method: &str) -> HttpMeth {
        if method.eq_ignore_ascii_case("HEAD") {
            HttpMeth::HTTP_METH_HEAD
        } else if method.eq_ignore_ascii_case("CONNECT") {
            HttpMeth::HTTP_METH_CONNECT
        } else if method.eq_ignore_ascii_case("POST") {
            HttpMeth::HTTP_METH_POST
        } else {
            HttpMeth::HTTP_METH_OTHER
        }
    }
}

/// One HTTP message (`struct http_msg`): its state, head and framing.
#[derive(Clone, Debug, Default)]
pub struct HttpMsg {
    /// Parsing/forwarding state.
    pub state: MsgState,
    /// What the head announced.
    pub flags: HttpMsgFlags,
    /// The parsed head, until it is forwarded.
    pub head: Option<Head>,
    /// Bytes the raw head occupies at the start of the buffer's input.
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: Option<Framing>,
    /// Body bytes forwarded so far (statistics and spans).
    pub body_bytes: u64,
    /// `msg->chunk_len`: bytes of the current block (the rest of a Content-Length body,
    /// or of a chunk) still to read, when the analyser reads the body itself (compression,
    /// `cache-store`) rather than letting `to_forward` pass it.
    pub chunk_len: u64,
}

/// `struct http_txn`: one request/response exchange.
#[derive(Clone, Debug, Default)]
pub struct HttpTxn {
    /// The request.
    pub req: HttpMsg,
    /// The response.
    pub rsp: HttpMsg,
    /// Status of the response sent to the client, if any.
    pub status: Option<u16>,
    /// The request line for the log (`<BADREQ>` when none could be parsed).
    pub req_line: Option<String>,
    /// The request's method.
    pub meth: HttpMeth,
    /// The client connection closes after this transaction.
    pub cli_close: bool,
    /// The server connection closes after this transaction.
    pub srv_close: bool,
    /// The client spoke HTTP/1.0.
    pub cli_http10: bool,
    /// This is not the connection's first request (`TX_NOT_FIRST`).
    pub not_first: bool,
    /// Waiting for the next request on a kept-alive connection (`TX_WAIT_NEXT_RQ`).
    pub wait_next_rq: bool,
    /// Bytes of the client-bound reply not to count in the log (parser errors log 0).
    pub uncounted_reply: bool,
    /// Request path, kept for ACLs once the head has left the buffer.
    pub path: Vec<u8>,
    /// `rep.forwarded()` when this transaction's response began: the bytes before it
    /// belong to earlier responses (pipelining), and while `rep.sent` has not passed it,
    /// none of this response has reached the client yet.
    pub rsp_out_start: u64,
    /// The cache's keys and flags, and the response being stored (`cache-use`).
    pub cache: Option<Box<CacheTxn>>,
    /// `txn->req.cap`: the request headers kept by `capture request header` and
    /// `http-request capture` (one slot per declaration; empty without captures).
    pub req_cap: Vec<Option<Vec<u8>>>,
    /// `txn->rsp.cap`: the same for the response.
    pub rsp_cap: Vec<Option<Vec<u8>>>,
    /// Where a rule list that yielded (`wait-for-body`) resumes (2.6 keeps it in the
    /// stream as `current_rule_list`/`current_rule`).
    pub current_rule: Option<RuleResume>,
    /// What the persistence cookie did (`TX_CK_*`, `TX_SCK_*`), for the log's `%tsc`.
    pub ck: CookieFlags,
    /// A POST to the statistics page of this proxy waits for its body (1.5.0's stats
    /// applet in `STAT_HTTP_POST` with `AN_REQ_HTTP_BODY`).
    pub stats_post: Option<ProxyId>,
}

/// The persistence cookie's fate in one transaction (`txn->flags & (TX_CK_MASK |
/// TX_SCK_MASK)`), printed as the 3rd and 4th characters of the termination state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CookieFlags {
    /// `TX_CK_*`: the cookie the client sent.
    pub cli: TxCk,
    /// `TX_SCK_*`: what happened to the cookie in the response.
    pub srv: TxSck,
}

/// `TX_CK_*`: the client's persistence cookie.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TxCk {
    /// `TX_CK_UNUSED` (`-`): no `cookie` on the backend.
    #[default]
    TX_CK_UNUSED,
    /// `TX_CK_NONE` (`N`): the client sent none.
    TX_CK_NONE,
    /// `TX_CK_INVALID` (`I`): it named no server.
    TX_CK_INVALID,
    /// `TX_CK_DOWN` (`D`): it named a server that is down.
    TX_CK_DOWN,
    /// `TX_CK_VALID` (`V`): it named a usable server, which was used.
    TX_CK_VALID,
}

/// `TX_SCK_*`: the server side of the persistence cookie.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TxSck {
    /// `-`: no `cookie` on the backend.
    #[default]
    TX_SCK_UNUSED,
    /// `TX_SCK_NONE` (`N`): nothing was done.
    TX_SCK_NONE,
    /// `TX_SCK_FOUND` (`P`): the server set the cookie itself (and it was kept).
    TX_SCK_FOUND,
    /// `TX_SCK_DELETED` (`D`): the server's cookie was removed.
    TX_SCK_DELETED,
    /// `TX_SCK_INSERTED` (`I`): haflow inserted one.
    TX_SCK_INSERTED,
    /// `TX_SCK_REPLACED` (`R`): the server's cookie was rewritten.
    TX_SCK_REPLACED,
    /// `TX_SCK_UPDATED` (`U`): the same server's cookie was sent again.
    TX_SCK_UPDATED,
}

impl CookieFlags {
    /// log.c's `sess_cookie` / `sess_set_cookie` characters.
    pub fn log_chars(self) -> [char; 2] {
        let c = match self.cli {
            TxCk::TX_CK_UNUSED => '-',
            TxCk::TX_CK_NONE => 'N',
            TxCk::TX_CK_INVALID => 'I',
            TxCk::TX_CK_DOWN => 'D',
            TxCk::TX_CK_VALID => 'V',
        };
        let s = match self.srv {
            TxSck::TX_SCK_UNUSED => '-',
            TxSck::TX_SCK_NONE => 'N',
            TxSck::TX_SCK_FOUND => 'P',
            TxSck::TX_SCK_DELETED => 'D',
            TxSck::TX_SCK_INSERTED => 'I',
            TxSck::TX_SCK_REPLACED => 'R',
            TxSck::TX_SCK_UPDATED => 'U',
        };
        [c, s]
    }
}

bitflags::bitflags! {
    /// `px->ck_opts`: the options of the `cookie` keyword (`PR_CK_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct CkOpts: u16 {
        /// `rewrite`: the server's cookie value is replaced with the server's.
        const PR_CK_RW       = 0x0001;
        /// `indirect`: a client cookie naming a server is not passed to it.
        const PR_CK_IND      = 0x0002;
        /// `insert`: haflow adds the cookie to responses.
        const PR_CK_INS      = 0x0004;
        /// `prefix`: the server's cookie value is prefixed with the server's.
        const PR_CK_PFX      = 0x0008;
        /// `nocache`: an inserted cookie makes the response `Cache-control: private`.
        const PR_CK_NOC      = 0x0010;
        /// `postonly`: insert only in responses to POST.
        const PR_CK_POST     = 0x0020;
        /// `preserve`: a cookie the server set is left alone.
        const PR_CK_PSV      = 0x0040;
        /// `httponly`.
        const PR_CK_HTTPONLY = 0x0080;
        /// `secure`.
        const PR_CK_SECURE   = 0x0100;
    }
}

/// A backend's `cookie` line (`px->cookie_name`, `ck_opts`, `cookie_domain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieCfg {
    /// The cookie's name.
    pub name: String,
    /// Its options.
    pub ck_opts: CkOpts,
    /// `domain` values, each added to inserted cookies.
    pub domains: Vec<String>,
}

/// cfgparse.c's `cookie` parsing in 1.5.0: `cookie <name> [rewrite|insert|prefix]
/// [indirect] [nocache] [postonly] [preserve] [httponly] [secure] [domain <d>]*`.
pub fn parse_cookie(args: &[String]) -> Result<CookieCfg, String> {
    let name = args.first().filter(|n| !n.is_empty()).ok_or("'cookie' expects <cookie_name> as argument.")?;
    let mut c = CookieCfg { name: name.clone(), ck_opts: CkOpts::empty(), domains: Vec::new() };
    let mut i = 1;
    while let Some(kw) = args.get(i) {
        let opt = match kw.as_str() {
            "rewrite" => CkOpts::PR_CK_RW,
            "indirect" => CkOpts::PR_CK_IND,
            "insert" => CkOpts::PR_CK_INS,
            "prefix" => CkOpts::PR_CK_PFX,
            "nocache" => CkOpts::PR_CK_NOC,
            "postonly" => CkOpts::PR_CK_POST,
            "preserve" => CkOpts::PR_CK_PSV,
            "httponly" => CkOpts::PR_CK_HTTPONLY,
            "secure" => CkOpts::PR_CK_SECURE,
            "domain" => {
                let d = args.get(i + 1).ok_or("'cookie' 'domain' option requires a domain name.")?;
                c.domains.push(d.clone());
                i += 2;
                continue;
            }
            "maxidle" | "maxlife" | "dynamic" | "attr" => {
                return Err(format!("'cookie' option '{kw}' is not implemented by haflow."));
            }
            _ => {
                return Err(format!(
                    "'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife', 'attr' and 'preserve' options (got '{kw}')."
                ));
            }
        };
        c.ck_opts |= opt;
        i += 1;
    }
    let modes = [CkOpts::PR_CK_RW, CkOpts::PR_CK_INS, CkOpts::PR_CK_PFX];
    if modes.iter().filter(|m| c.ck_opts.contains(**m)).count() > 1 {
        return Err("'cookie' 'rewrite', 'insert' and 'prefix' options are incompatible.".into());
    }
    if c.ck_opts.contains(CkOpts::PR_CK_PSV) && !c.ck_opts.intersects(CkOpts::PR_CK_INS | CkOpts::PR_CK_IND) {
        return Err("'cookie' 'preserve' requires at least 'insert' or 'indirect'.".into());
    }
    Ok(c)
}

/// Splits a `Cookie` header value into `name=value` pairs (trimmed).
fn cookie_pairs(v: &[u8]) -> Vec<(&[u8], &[u8])> {
    v.split(|&c| c == b';' || c == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&c| c == b'=') {
            Some(e) => (p[..e].trim_ascii(), p[e + 1..].trim_ascii()),
            None => (p, &b""[..]),
        })
        .collect()
}

/// proto_http.c:manage_client_side_cookies() in 1.5.0, for the persistence cookie: the
/// client's cookie picks the server it names (when usable), and with `indirect` or
/// `prefix` it does not reach the server (a `Cookie` header left empty goes).
pub fn manage_client_side_cookies(w: &mut Haproxy, s: &mut Session) {
    let be = s.be;
    let Some(cfg) = w.proxies[be.idx()].cookie.as_ref() else { return };
    let span = tracing::debug_span!(
        names::MANAGE_CLIENT_SIDE_COOKIES,
        sess = s.uniq_id,
        cookie = cfg.name.as_str(),
        result = tracing::field::Empty
    );
    let _g = span.enter();
    let Some(head) = s.txn.req.head.as_mut() else { return };
    let name = cfg.name.as_bytes();
    let strip = cfg.ck_opts.contains(CkOpts::PR_CK_PFX)
        || cfg.ck_opts.contains(CkOpts::PR_CK_INS | CkOpts::PR_CK_IND);
    let mut found: Option<Vec<u8>> = None;
    for (hn, v) in head.headers.iter_mut().filter(|(n, _)| n == "cookie") {
        let _ = hn;
        let pairs = cookie_pairs(v);
        if let Some((_, val)) = pairs.iter().find(|(n, _)| *n == name) {
            found.get_or_insert_with(|| val.to_vec());
            if strip {
                let kept: Vec<Vec<u8>> = pairs
                    .iter()
                    .filter(|(n, _)| *n != name)
                    .map(|(n, val)| [*n, b"=", *val].concat())
                    .collect();
                *v = kept.join(&b"; "[..]);
            }
        }
    }
    if strip {
        head.headers.retain(|(n, v)| !(n == "cookie" && v.is_empty()));
    }
    let p = &w.proxies[be.idx()];
    s.txn.ck.cli = match found {
        None => TxCk::TX_CK_NONE,
        Some(val) => {
            // With `prefix`, the value is `SERVER~APPCOOKIE`.
            let srvval = if cfg.ck_opts.contains(CkOpts::PR_CK_PFX) {
                val.split(|&c| c == b'~').next().unwrap_or(&[]).to_vec()
            } else {
                val
            };
            match p.servers.iter().position(|sv| sv.cookie.as_deref().map(str::as_bytes) == Some(&srvval[..]))
            {
                // Divergence: `option persist` is not implemented: a server down is `D`.
                Some(i) if p.servers[i].is_usable() => {
                    if !s.flags.contains(SessFlags::SN_ASSIGNED) {
                        s.srv = Some(crate::ids::ServerId { px: be, idx: i as u32 });
                        s.flags.insert(SessFlags::SN_DIRECT | SessFlags::SN_ASSIGNED);
                    }
                    TxCk::TX_CK_VALID
                }
                Some(_) => TxCk::TX_CK_DOWN,
                None => TxCk::TX_CK_INVALID,
            }
        }
    };
    span.record("result", s.txn.ck.log_chars()[0].to_string().as_str());
}

/// What http_check_response_for_cacheability() in 2.6 leaves `TX_CACHEABLE` on (without
/// `TX_CACHE_IGNORE`): a GET or HEAD whose status is cacheable by default, whose
/// `Cache-Control`/`Pragma` do not forbid it, and which has freshness information
/// (`max-age`, `s-maxage`, `Expires`) or a validator (`ETag`, `Last-Modified`), as
/// HAProxy 2.6.12 answers: a response with neither gets no `Cache-control: private`.
/// Divergence: the request's own `Cache-Control`/`Pragma` are not looked at.
fn response_cacheable(head: &Head, meth: HttpMeth, status: Option<u16>) -> bool {
    let cacheable_status =
        matches!(status, Some(200 | 203 | 204 | 206 | 300 | 301 | 404 | 405 | 410 | 414 | 501));
    if !cacheable_status || !matches!(meth, HttpMeth::HTTP_METH_OTHER | HttpMeth::HTTP_METH_HEAD) {
        return false;
    }
    let values = |name: &str| -> Vec<Vec<u8>> {
        head.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| {
                crate::haproxy::sample::split_values(v).into_iter().map(<[u8]>::to_ascii_lowercase)
            })
            .collect()
    };
    if values("pragma").iter().any(|v| v == b"no-cache") {
        return false;
    }
    let cc = values("cache-control");
    let no = [&b"private"[..], b"no-cache", b"no-store", b"max-age=0", b"s-maxage=0"];
    if cc.iter().any(|v| no.contains(&v.as_slice())) {
        return false;
    }
    let fresh = cc.iter().any(|v| v == b"public" || v.starts_with(b"max-age") || v.starts_with(b"s-maxage"));
    fresh || ["expires", "etag", "last-modified"].iter().any(|h| head.headers.iter().any(|(n, _)| n == h))
}

/// proto_http.c:manage_server_side_cookies() in 1.5.0 and the cookie insertion of
/// http_process_res_common(): a `Set-Cookie` of the persistence cookie from the server is
/// kept (`preserve`), removed (`insert indirect`), rewritten (`rewrite`) or prefixed
/// (`prefix`); then with `insert`, a client that did not come through its server's cookie
/// gets one (`Cache-control: private` with `nocache`).
pub fn manage_server_side_cookies(w: &mut Haproxy, s: &mut Session) {
    let be = s.be;
    let Some(cfg) = w.proxies[be.idx()].cookie.as_ref() else { return };
    let span = tracing::debug_span!(
        names::MANAGE_SERVER_SIDE_COOKIES,
        sess = s.uniq_id,
        cookie = cfg.name.as_str(),
        result = tracing::field::Empty
    );
    let _g = span.enter();
    let srv = s.srv.filter(|id| id.px == be).and_then(|id| w.proxies[be.idx()].servers.get(id.idx as usize));
    let srv_cookie = srv.and_then(|sv| sv.cookie.clone());
    let Some(head) = s.txn.rsp.head.as_mut() else { return };
    let name = cfg.name.as_bytes();
    s.txn.ck.srv = TxSck::TX_SCK_NONE;
    let mut delete = Vec::new();
    for (i, (n, v)) in head.headers.iter_mut().enumerate().filter(|(_, (n, _))| n == "set-cookie") {
        let _ = n;
        let eq = v.iter().position(|&c| c == b'=').unwrap_or(v.len());
        if v[..eq].trim_ascii() != name {
            continue;
        }
        s.txn.ck.srv = TxSck::TX_SCK_FOUND;
        if cfg.ck_opts.contains(CkOpts::PR_CK_PSV) {
            continue;
        }
        if cfg.ck_opts.contains(CkOpts::PR_CK_INS) && cfg.ck_opts.contains(CkOpts::PR_CK_IND) {
            delete.push(i);
            s.txn.ck.srv = TxSck::TX_SCK_DELETED;
        } else if let Some(sc) = &srv_cookie {
            let end = v[eq..].iter().position(|&c| c == b';').map_or(v.len(), |p| p + eq);
            let val = v[(eq + 1).min(end)..end].to_vec();
            let new = if cfg.ck_opts.contains(CkOpts::PR_CK_RW) {
                sc.as_bytes().to_vec()
            } else if cfg.ck_opts.contains(CkOpts::PR_CK_PFX) {
                [sc.as_bytes(), b"~", &val].concat()
            } else {
                continue;
            };
            let out = [&v[..=eq.min(v.len() - 1)], &new[..], &v[end..]].concat();
            *v = out;
            s.txn.ck.srv = TxSck::TX_SCK_REPLACED;
        }
    }
    for i in delete.into_iter().rev() {
        head.headers.remove(i);
    }
    let insert = cfg.ck_opts.contains(CkOpts::PR_CK_INS)
        && srv.is_some()
        && !(s.txn.ck.srv == TxSck::TX_SCK_FOUND && cfg.ck_opts.contains(CkOpts::PR_CK_PSV))
        && !s.flags.contains(SessFlags::SN_DIRECT)
        && (!cfg.ck_opts.contains(CkOpts::PR_CK_POST) || s.txn.meth == HttpMeth::HTTP_METH_POST);
    if insert {
        let mut c = match &srv_cookie {
            None => format!("{}=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/", cfg.name),
            Some(v) => format!("{}={v}; path=/", cfg.name),
        };
        for d in &cfg.domains {
            c.push_str(&format!("; domain={d}"));
        }
        if cfg.ck_opts.contains(CkOpts::PR_CK_HTTPONLY) {
            c.push_str("; HttpOnly");
        }
        if cfg.ck_opts.contains(CkOpts::PR_CK_SECURE) {
            c.push_str("; Secure");
        }
        head.add("Set-Cookie", c.into_bytes());
        s.txn.ck.srv = TxSck::TX_SCK_INSERTED;
        if cfg.ck_opts.contains(CkOpts::PR_CK_NOC) && response_cacheable(head, s.txn.meth, s.txn.status) {
            head.add("Cache-control", b"private".to_vec());
        }
    }
    span.record("result", s.txn.ck.log_chars()[1].to_string().as_str());
}

impl HttpTxn {
    /// http_init_txn(): a fresh transaction; `not_first` when the connection was kept alive.
    pub fn reset(&mut self) {
        let not_first = self.not_first;
        *self = HttpTxn::default();
        self.not_first = not_first;
    }

    /// `sess_establish` starts waiting for the response head.
    pub fn rsp_begin(&mut self) {
        self.rsp.state = MsgState::HTTP_MSG_RQBEFORE;
    }

    /// True while the response head has not arrived (`SN_FINST_H` territory).
    pub fn waiting_for_response(&self) -> bool {
        self.req_line.is_some() && self.status.is_none() && self.rsp.head.is_none()
    }

    /// The response switches protocols: a `101`, or a `2xx` to `CONNECT` (1.5.0's
    /// `TX_CON_WANT_TUN` cases).
    pub fn switches_protocol(&self) -> bool {
        match self.status {
            Some(101) => true,
            Some(st) => self.meth == HttpMeth::HTTP_METH_CONNECT && (200..300).contains(&st),
            None => false,
        }
    }

    /// The request line as the log prints it.
    pub fn log_request_line(&self) -> &str {
        self.req_line.as_deref().unwrap_or("<BADREQ>")
    }
}

// ---------------------------------------------------------------------------------------
// Replies

/// How the reply ends the client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReplyEnd {
    /// Parser-style error: the connection is closed (400, 408, 422).
    Close,
    /// Analyser-style answer: the connection stays usable when the request allows it.
    KeepAlive,
}

/// True when the whole request was read, so that the connection can carry another one.
fn request_consumed(s: &Session) -> bool {
    matches!(s.txn.req.state, MsgState::HTTP_MSG_DONE | MsgState::HTTP_MSG_BODY)
        && matches!(s.txn.req.framing, None | Some(Framing::None))
        || s.txn.req.state == MsgState::HTTP_MSG_DONE
}

/// proto_http.c:http_error_message() in 1.5-dev8, with the answer sent: the backend's
/// `errorfile` for `status`, else the frontend's, else HAProxy's own page (`builtin`). An
/// empty `errorfile` (`/dev/null`) closes the connection without an answer.
fn http_error_reply(
    w: &mut Haproxy,
    s: &mut Session,
    status: u16,
    builtin: Vec<u8>,
    end: ReplyEnd,
    err: SnErr,
    finst: SnFinst,
) {
    if [s.be, s.fe].iter().any(|px| w.proxies[px.idx()].http_errors.contains_key(&status)) {
        let over = with_smp_ctx(w, s, SmpDir::Res, |ctx| match ctx.strm {
            Some((w, s)) => http_error_override(w, s, ctx, status),
            None => None,
        });
        if let Some(msg) = over {
            // `http-error status N` without payload: an empty reply.
            let msg = msg.unwrap_or_else(|| {
                format!("HTTP/1.1 {status} {}\r\ncontent-length: 0\r\n\r\n", http::reason(status))
                    .into_bytes()
            });
            return http_reply(w, s, status, &msg, end, err, finst);
        }
    }
    let custom = [s.be, s.fe].iter().find_map(|px| w.proxies[px.idx()].errmsg.get(&status).cloned());
    match custom {
        Some(msg) if msg.is_empty() => http_reply(w, s, status, &[], ReplyEnd::Close, err, finst),
        Some(msg) => http_reply(w, s, status, &msg, end, err, finst),
        None => http_reply(w, s, status, &builtin, end, err, finst),
    }
}

/// mux_h1.c:h1_send_error() in 2.6: the parser's own error (400, 408...) ignores
/// `errorfile`s, except an empty one of the frontend, which closes without an answer.
fn h1_send_error(w: &mut Haproxy, s: &mut Session, status: u16, end: ReplyEnd, err: SnErr, finst: SnFinst) {
    let silent = w.proxies[s.fe.idx()].errmsg.get(&status).is_some_and(|m| m.is_empty());
    if silent {
        http_reply(w, s, status, &[], ReplyEnd::Close, err, finst);
    } else {
        http_reply(w, s, status, &http::parser_error(status), end, err, finst);
    }
}

/// Sends an answer haflow produced itself (error page, `return`, redirect, deny) and ends
/// the transaction: with `KeepAlive`, the session is reset for the next request when the
/// protocol allows it; otherwise the client connection is closed after the answer.
fn http_reply(
    w: &mut Haproxy,
    s: &mut Session,
    status: u16,
    msg: &[u8],
    end: ReplyEnd,
    err: SnErr,
    finst: SnFinst,
) {
    s.txn.status = Some(status);
    s.set_err(err);
    s.set_finst(finst);
    // What was going to the server stays here; the server side, if any, is closed.
    s.req.bo_erase();
    if s.si[1].fd.is_some() && matches!(s.si[1].state, SiState::SI_ST_EST | SiState::SI_ST_CON) {
        s.si[1].flags.insert(SiFlags::SI_FL_NOLINGER | SiFlags::SI_FL_NOHALF);
        si_shutr(w, s, Side::Srv);
        si_shutw(w, s, Side::Srv);
    }
    // Earlier responses still on their way to the client go first (pipelining); what this
    // transaction put in the buffer is replaced by the answer.
    // (An earlier response's spliced bytes wait in the pipe, ahead of the buffer.)
    let earlier = s.txn.rsp_out_start.saturating_sub(s.rep.sent + s.rep.pipe_data() as u64) as usize;
    s.rep.bo_truncate(earlier);
    let keep = end == ReplyEnd::KeepAlive && !s.txn.cli_close && request_consumed(s);
    // The `http-after-response` rules see the answer first; the H1 output then adds
    // what the connection needs.
    let mut msg =
        if end == ReplyEnd::KeepAlive { after_res_on_reply(w, s, msg.to_vec()) } else { msg.to_vec() };
    if end == ReplyEnd::KeepAlive
        && !keep
        && !msg.windows(17).any(|x| x.eq_ignore_ascii_case(b"connection: close"))
        && let Some(pos) = msg.windows(4).position(|x| x == b"\r\n\r\n")
    {
        // An analyser answer that must close announces it, as HAProxy 2.6 does.
        msg.splice(pos + 2..pos + 2, b"connection: close\r\n".iter().copied());
    }
    s.rep.bo_inject(&mut w.pool2_buffer, &msg);
    if end == ReplyEnd::Close {
        s.txn.uncounted_reply = true;
    }
    let p = &mut w.proxies[s.fe.idx()].counters;
    p.rsp[(status / 100).clamp(1, 6) as usize - 1] += 1;
    if keep {
        // The request (head, and body if any) is consumed; the next one may follow.
        if s.txn.req.state != MsgState::HTTP_MSG_DONE {
            let n = s.txn.req.head_len;
            s.req.bi_skip(n);
        }
        s.txn.req.state = MsgState::HTTP_MSG_DONE;
        s.txn.rsp.state = MsgState::HTTP_MSG_DONE;
        http_end_txn_clean_session(w, s);
    } else {
        s.req.analysers = Analysers::empty();
        s.rep.analysers = Analysers::empty();
        s.req.buffer_abort();
        s.req.buffer_erase();
        s.rep.buffer_auto_close();
        s.rep.buffer_shutw_now();
    }
}

/// True when the frontend or the backend has `http-after-response` rules.
fn has_after_res_rules(w: &Haproxy, s: &Session) -> bool {
    !w.proxies[s.be.idx()].http_after_res_rules.is_empty()
        || !w.proxies[s.fe.idx()].http_after_res_rules.is_empty()
}

/// http_ana.c:http_eval_after_res_rules() in 2.6: the backend's `http-after-response`
/// rules, then the frontend's, on the response head being sent (an `allow` stops only
/// its own proxy's list). False when a rewrite failed in strict mode: the caller
/// answers 500 instead.
fn http_eval_after_res_rules(w: &mut Haproxy, s: &mut Session) -> bool {
    if !has_after_res_rules(w, s) {
        return true;
    }
    let mut pxs = vec![s.be];
    if s.fe != s.be {
        pxs.push(s.fe);
    }
    for px in pxs {
        // Only `allow`, the end or a failed rewrite can come out: the list has no
        // `deny`, `return` nor `wait-for-body`.
        if !w.proxies[px.idx()].http_after_res_rules.is_empty()
            && matches!(http_get_intercept_rule(w, s, px, RuleSet::AfterRes), RuleResult::Error)
        {
            return false;
        }
    }
    true
}

/// A reply haflow produced goes through the `http-after-response` rules too, as in
/// 2.6's http_forward_proxy_resp(): its head is parsed, changed, and written again.
fn after_res_on_reply(w: &mut Haproxy, s: &mut Session, msg: Vec<u8>) -> Vec<u8> {
    if !has_after_res_rules(w, s) {
        return msg;
    }
    let Some(len) = h1::head_len(&msg) else { return msg };
    let Ok(mut head) = h1::parse_response(&msg[..len], w.global.tune.http_maxhdr) else { return msg };
    // As 2.6's H1 parser does, the message's `connection` header is taken out for the
    // rules and put back by the output, after what they added.
    let close = head.connection_has("close");
    head.remove("connection");
    let saved = s.txn.rsp.head.replace(head);
    let saved_status = s.txn.status;
    if let Some(StartLine::Response { status, .. }) = s.txn.rsp.head.as_ref().map(|h| &h.start) {
        s.txn.status = Some(*status);
    }
    let ok = http_eval_after_res_rules(w, s);
    let head = std::mem::replace(&mut s.txn.rsp.head, saved);
    if s.txn.status.is_none() {
        s.txn.status = saved_status;
    }
    if !ok {
        // 2.6's http_forward_proxy_resp(): the reply becomes a 500, without the rules.
        s.txn.status = Some(500);
        return http::analyser_error(500, true);
    }
    match head {
        Some(mut h) => {
            if close {
                h.add("connection", "close");
            }
            let mut out = h.to_bytes();
            out.extend_from_slice(&msg[len..]);
            out
        }
        None => msg,
    }
}

/// proto_http.c:http_return_srv_error() in 1.5-dev8 (HTTP mode's `s->srv_error`): the
/// server side failed before any response; answer 503 (500 for an internal error) and
/// record why.
/// Divergence: as in 2.6, a client that aborted gets nothing (dev8 still queues a 503);
/// unlike 2.6, the 503 is also sent after a connect timeout or resource error on a
/// connection's later request, and after a connect error on a reused server connection,
/// where 2.6 closes without an answer.
pub fn http_return_srv_error(w: &mut Haproxy, s: &mut Session, side: Side) {
    let et = s.si[side as usize].err_type;
    let (err, finst) = srv_error_flags(et);
    let status = if err == SnErr::SN_ERR_INTERNAL { 500 } else { 503 };
    if et.intersects(SiErrType::SI_ET_QUEUE_ABRT | SiErrType::SI_ET_CONN_ABRT) {
        // The client left: nobody to answer.
        s.set_err(err);
        s.set_finst(finst);
        return;
    }
    http_error_reply(w, s, status, http::analyser_error(status, false), ReplyEnd::KeepAlive, err, finst);
}

/// A request the parser refused: parser-style error page, connection closed, the log
/// shows `<BADREQ>` and `PR--` (or `cR--` for 408).
fn http_bad_req(w: &mut Haproxy, s: &mut Session, e: &H1Error) {
    w.proxies[s.fe.idx()].counters.failed_req += 1;
    tracing::debug!(reason = e.reason, status = e.status, "bad request");
    s.txn.req.state = MsgState::HTTP_MSG_ERROR;
    s.txn.req_line = None;
    h1_send_error(w, s, e.status, ReplyEnd::Close, SnErr::SN_ERR_PRXCOND, SnFinst::SN_FINST_R);
}

/// The monitor-uri part of proto_http.c:http_wait_for_request() in 1.5.0: the request is
/// for the frontend's `monitor-uri`; answer 200 ("Service ready."), or 503 when a
/// `monitor fail` condition matches. Monitor requests are not logged (`SN_MONITOR`).
fn http_monitor_request(w: &mut Haproxy, s: &mut Session) -> AnalyserResult {
    let fe = s.fe;
    let fail = crate::haproxy::sample::with_smp_ctx(w, s, crate::haproxy::sample::SmpDir::Req, |ctx| {
        let Some((w, _)) = ctx.strm else { return false };
        let p = &w.proxies[fe.idx()];
        p.mon_fail_cond.iter().any(|c| crate::haproxy::acl::acl_match_cond(c, &p.acls, ctx))
    });
    w.proxies[s.fe.idx()].counters.intercepted += 1;
    let status = if fail { 503 } else { 200 };
    s.logs.logged = true;
    http_error_reply(
        w,
        s,
        status,
        http::analyser_error(status, false),
        ReplyEnd::KeepAlive,
        SnErr::SN_ERR_LOCAL,
        SnFinst::SN_FINST_R,
    );
    AnalyserResult::Abort
}

/// Gives up on the client silently (keep-alive timeout, client closed between requests):
/// 1.5.0's `failed_keep_alive`, unlogged, with the final state set (`SN_FINST_R`) so that
/// sess_set_term_flags does not count a failed request.
fn close_silently(s: &mut Session) {
    s.logs.logged = true;
    s.set_finst(SnFinst::SN_FINST_R);
    s.req.analysers = Analysers::empty();
    s.rep.analysers = Analysers::empty();
    s.req.buffer_abort();
    s.rep.buffer_auto_close();
    s.rep.buffer_shutw_now();
}

// ---------------------------------------------------------------------------------------
// Request analysers

/// proto_http.c:http_wait_for_request() in 1.5-dev8 (`AN_REQ_WAIT_HTTP`): wait until a
/// whole request head is in the buffer, parse it, and decide its framing. Answers 400 to
/// what cannot be parsed, 408 when `timeout http-request` expires first.
pub fn http_wait_for_request(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let span = tracing::debug_span!(
        names::HTTP_WAIT_FOR_REQUEST,
        sess = s.uniq_id,
        an = an_bit.coded(),
        bytes = s.req.i(),
        request = tracing::field::Empty,
        status = tracing::field::Empty
    );
    let _g = span.enter();
    crate::haproxy::step_point(names::HTTP_WAIT_FOR_REQUEST, || crate::haproxy::View::Session(w, &*s));
    if s.stats_ctx.is_some() {
        // The statistics page of the previous request is still going out.
        s.req.buffer_dont_connect();
        return AnalyserResult::Wait;
    }
    let now = w.clock.now_ms;
    let fe = &w.proxies[s.fe.idx()];
    let maxhdr = w.global.tune.http_maxhdr;
    let limit = s.req.size - s.req.maxrewrite;
    let input = s.req.input();
    match h1::head_len(input) {
        Some(len) if len > limit => {
            span.record("status", 400);
            http_bad_req(w, s, &H1Error { status: 400, reason: "request head too large" });
            AnalyserResult::Abort
        }
        Some(len) => {
            let parsed = h1::parse_request(&input[..len], maxhdr);
            let mut head = match parsed {
                Ok(h) => h,
                Err(e) => {
                    span.record("status", e.status);
                    http_bad_req(w, s, &e);
                    return AnalyserResult::Abort;
                }
            };
            let (framing, te_close) = match h1::request_framing(&mut head) {
                Ok(f) => f,
                Err(e) => {
                    span.record("status", e.status);
                    http_bad_req(w, s, &e);
                    return AnalyserResult::Abort;
                }
            };
            let flags = match request_upgrade_flags(&mut head, framing) {
                Ok(f) => f,
                Err(e) => {
                    span.record("status", e.status);
                    http_bad_req(w, s, &e);
                    return AnalyserResult::Abort;
                }
            };
            let StartLine::Request { method, uri, version } = &head.start else { unreachable!() };
            let line = format!("{method} {uri} {version}");
            span.record("request", tracing::field::display(&line));
            if w.global.debug() {
                let (c, fe_name) = (s.si[0].fd.map_or(0, |f| f.0 as u16), fe.name.clone());
                w.debug_line(format!("{:08x}:{fe_name}.clireq[{c:04x}:ffffffff]: {line}", s.uniq_id));
                for (n, v) in &head.headers {
                    w.debug_line(format!(
                        "{:08x}:{fe_name}.clihdr[{c:04x}:ffffffff]: {n}: {}",
                        s.uniq_id,
                        String::from_utf8_lossy(v)
                    ));
                }
            }
            let http10 = head.minor() == 0;
            s.txn.meth = HttpMeth::find_http_meth(method);
            s.txn.path = crate::haproxy::sample::uri_path(uri.as_bytes(), false).to_vec();
            // `monitor-uri`: against the request's path when it starts with '/', or the
            // whole URI (HAProxy 2.6's rule).
            let monitor = w.proxies[s.fe.idx()].monitor_uri.as_deref().is_some_and(|m| {
                (m.starts_with('/')
                    && crate::haproxy::sample::uri_path(uri.as_bytes(), false) == m.as_bytes())
                    || uri == m
            });
            s.txn.req_line = Some(line);
            s.txn.cli_http10 = http10;
            // A stopping frontend (soft stop, a reload) closes after this answer (1.5.0).
            s.txn.cli_close = te_close
                || if http10 { !head.connection_has("keep-alive") } else { head.connection_has("close") }
                || w.proxies[s.fe.idx()].state == ProxyState::PR_STSTOPPED;
            let caps = &w.proxies[s.fe.idx()].req_cap;
            if !caps.is_empty() {
                s.txn.req_cap = capture_headers(caps.iter().map(|(n, l)| (n.as_deref(), *l)), &head);
            }
            s.txn.req.head = Some(head);
            s.txn.req.head_len = len;
            s.txn.req.framing = Some(framing);
            s.txn.req.flags = flags;
            s.txn.req.state = MsgState::HTTP_MSG_BODY;
            s.txn.wait_next_rq = false;
            if s.txn.not_first {
                // Keep-alive: the transaction's clock starts with its request.
                s.logs.tv_accept = now;
                s.logs.request_date = w.clock.date;
            }
            s.logs.t_request = Some(s.elapsed(now));
            let fe = &mut w.proxies[s.fe.idx()];
            fe.counters.cum_req += 1;
            // Entries the connection tracks (`tcp-request` rules) count each request.
            crate::haproxy::stick_table::stream_inc_http_req_ctr(w, s);
            s.req.analysers.remove(an_bit);
            s.req.analyse_exp = TICK_ETERNITY;
            if monitor {
                return http_monitor_request(w, s);
            }
            AnalyserResult::Continue
        }
        None => {
            // Incomplete head.
            let has_data = !input.is_empty() && !input.iter().all(|&c| c == b'\r' || c == b'\n');
            if h1::request_start_hopeless(input) {
                span.record("status", 400);
                http_bad_req(w, s, &H1Error { status: 400, reason: "not a request line" });
                return AnalyserResult::Abort;
            }
            if input.len() >= limit {
                http_bad_req(w, s, &H1Error { status: 400, reason: "request head too large" });
                return AnalyserResult::Abort;
            }
            let flags = s.req.flags;
            if flags.contains(BufFlags::BF_READ_ERROR) || flags.contains(BufFlags::BF_SHUTR) {
                if s.txn.not_first && !has_data {
                    close_silently(s);
                } else {
                    // The client left before a full request: log `CR--`, answer nothing.
                    s.txn.status = Some(400);
                    s.txn.uncounted_reply = true;
                    s.set_err(SnErr::SN_ERR_CLICL);
                    s.set_finst(SnFinst::SN_FINST_R);
                    w.proxies[s.fe.idx()].counters.failed_req += 1;
                    close_silently(s);
                    s.logs.logged = false;
                }
                return AnalyserResult::Abort;
            }
            if flags.intersects(BufFlags::BF_READ_TIMEOUT | BufFlags::BF_ANA_TIMEOUT) {
                if s.txn.not_first && !has_data {
                    close_silently(s);
                } else {
                    span.record("status", 408);
                    w.proxies[s.fe.idx()].counters.failed_req += 1;
                    s.txn.req_line = None;
                    h1_send_error(w, s, 408, ReplyEnd::Close, SnErr::SN_ERR_CLITO, SnFinst::SN_FINST_R);
                }
                return AnalyserResult::Abort;
            }
            // Wait for more; no server connection until the request is known.
            s.req.buffer_dont_connect();
            if s.req.analyse_exp.is_none() {
                let t = fe.timeout;
                let tmo = if s.txn.wait_next_rq {
                    t.httpka.or(t.httpreq).or(t.client)
                } else {
                    t.httpreq.or(t.client)
                };
                s.req.analyse_exp = tick_add_ifset(now, tmo);
            }
            AnalyserResult::Wait
        }
    }
}

/// proto_http.c:capture_headers() in 1.5-dev8: for each `capture ... header NAME len
/// N` slot, the last value of the header, cut at N bytes (slots of `http-request
/// capture` start empty).
fn capture_headers<'a>(
    caps: impl Iterator<Item = (Option<&'a str>, usize)>,
    head: &Head,
) -> Vec<Option<Vec<u8>>> {
    caps.map(|(name, len)| {
        let v = head.values(name?).last()?;
        Some(v[..v.len().min(len)].to_vec())
    })
    .collect()
}

/// What a request's head says about switching protocols, as HAProxy 2.6's h1 parser
/// reads it: `Connection: upgrade` counts only on a request without a body (otherwise
/// its `Upgrade` header is dropped), and a WebSocket handshake needs a 24-byte
/// `Sec-WebSocket-Key` (400 without one).
fn request_upgrade_flags(head: &mut Head, framing: Framing) -> Result<HttpMsgFlags, H1Error> {
    if !head.connection_has("upgrade") {
        return Ok(HttpMsgFlags::empty());
    }
    if framing != Framing::None {
        head.remove("upgrade");
        return Ok(HttpMsgFlags::empty());
    }
    let mut flags = HttpMsgFlags::HTTP_MSGF_CONN_UPG;
    if head.has_token("upgrade", "websocket") {
        flags |= HttpMsgFlags::HTTP_MSGF_UPG_WEBSOCKET;
        if head.value("sec-websocket-key").is_none_or(|k| k.len() != 24) {
            return Err(H1Error { status: 400, reason: "WebSocket handshake without a valid key" });
        }
    }
    Ok(flags)
}

/// proto_http.c:http_process_req_common() in 1.5-dev8 (`AN_REQ_HTTP_PROCESS_FE`/`_BE`):
/// run the frontend's (or backend's) `http-request` rules.
pub fn http_process_req_common(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let px_id = if an_bit == Analysers::AN_REQ_HTTP_PROCESS_FE { s.fe } else { s.be };
    let span = tracing::debug_span!(
        names::HTTP_PROCESS_REQ_COMMON,
        sess = s.uniq_id,
        an = an_bit.coded(),
        proxy = w.proxies[px_id.idx()].name.as_str(),
        action = tracing::field::Empty
    );
    let _g = span.enter();
    if s.txn.stats_post == Some(px_id) {
        // A POST to the statistics page waits for its body.
        return http_handle_stats(w, s, px_id, an_bit);
    }
    // `option http-buffer-request` (2.6's AN_REQ_HTTP_BODY, which runs just before).
    if an_bit == Analysers::AN_REQ_HTTP_PROCESS_FE && s.txn.current_rule.is_none() {
        let opts = w.proxies[s.fe.idx()].options | w.proxies[s.be.idx()].options;
        if opts.contains(ProxyOptions::PR_O_WREQ_BODY) {
            let time = w.proxies[s.be.idx()].timeout.httpreq;
            match http_wait_for_msg_body(w, s, Side::Cli, time, 0) {
                MsgBodyWait::Ready => {}
                MsgBodyWait::Yield => {
                    // Hold the server connection back while the body arrives (dev8's rule).
                    s.req.buffer_dont_connect();
                    return AnalyserResult::Wait;
                }
                MsgBodyWait::Abort => return AnalyserResult::Abort,
            }
        }
        if w.proxies[px_id.idx()].unique_id_format.is_some() {
            stream_generate_unique_id(w, s);
        }
    }
    if w.proxies[px_id.idx()].http_req_rules.is_empty() {
        s.req.analysers.remove(an_bit);
        return if http_stats_check_uri(w, s, px_id) {
            http_handle_stats(w, s, px_id, an_bit)
        } else {
            AnalyserResult::Continue
        };
    }
    let result = http_get_intercept_rule(w, s, px_id, RuleSet::Req);
    if !matches!(result, RuleResult::Yield) {
        s.req.analysers.remove(an_bit);
    }
    match result {
        RuleResult::Cont | RuleResult::Stop if http_stats_check_uri(w, s, px_id) => {
            http_handle_stats(w, s, px_id, an_bit)
        }
        RuleResult::Cont | RuleResult::Stop => AnalyserResult::Continue,
        RuleResult::Yield => {
            s.req.buffer_dont_connect();
            AnalyserResult::Wait
        }
        RuleResult::Abort => AnalyserResult::Abort,
        RuleResult::Reject => {
            span.record("action", "reject");
            http_reject(w, s, px_id);
            AnalyserResult::Abort
        }
        RuleResult::Error => {
            span.record("action", "error");
            http_rules_int_err(w, s, SnFinst::SN_FINST_R);
            AnalyserResult::Abort
        }
        RuleResult::Deny(reply) => {
            span.record("action", "deny");
            crate::haproxy::stick_table::stream_inc_http_err_ctr(w, s);
            // 2.6 reads the persistence cookie of a denied request, for the log.
            if w.proxies[s.be.idx()].cookie.is_some() {
                manage_client_side_cookies(w, s);
            }
            w.proxies[px_id.idx()].counters.denied_req += 1;
            if px_id != s.fe {
                w.proxies[s.fe.idx()].counters.denied_req += 1;
            }
            send_rule_reply(w, s, reply, SnErr::SN_ERR_PRXCOND, SnFinst::SN_FINST_R);
            AnalyserResult::Abort
        }
        RuleResult::Done(reply) => {
            span.record("action", "return");
            w.proxies[px_id.idx()].counters.intercepted += 1;
            send_rule_reply(w, s, reply, SnErr::SN_ERR_LOCAL, SnFinst::SN_FINST_R);
            AnalyserResult::Abort
        }
    }
}

/// `UNIQUEID_LEN`: the longest unique id kept.
const UNIQUEID_LEN: usize = 128;

/// stream.c:stream_generate_unique_id() in 2.6: this transaction's id from the
/// frontend's `unique-id-format`.
/// Divergence: made once the request head is parsed, before the frontend's rules;
/// 2.6 makes it when first used (a rule, the log, the header).
fn stream_generate_unique_id(w: &mut Haproxy, s: &mut Session) {
    let fe = s.fe;
    let mut id = crate::haproxy::sample::with_smp_ctx(w, s, crate::haproxy::sample::SmpDir::Req, |ctx| {
        let w = ctx.strm.map(|(w, _)| w);
        match w.and_then(|w| w.proxies[fe.idx()].unique_id_format.as_ref()) {
            Some(f) => crate::haproxy::log::build_logline(f, ctx, true),
            None => Vec::new(),
        }
    });
    id.truncate(UNIQUEID_LEN);
    s.unique_id = Some(id.into_boxed_slice());
}

/// proto_http.c:stats_check_uri() in 1.5.0 (http_ana.c:http_stats_check_uri() in 2.6): a
/// GET, HEAD or POST whose URI (from its path on, query included, when the prefix starts
/// with `/`) starts with the
/// `stats uri` of proxy `px`.
fn http_stats_check_uri(w: &Haproxy, s: &Session, px: ProxyId) -> bool {
    let Some(ua) = w.proxies[px.idx()].uri_auth.as_deref() else { return false };
    let Some(StartLine::Request { method, uri, .. }) = s.txn.req.head.as_ref().map(|h| &h.start) else {
        return false;
    };
    if !matches!(method.as_str(), "GET" | "HEAD" | "POST") {
        return false;
    }
    let target = if ua.uri_prefix.starts_with('/') {
        crate::haproxy::sample::uri_path(uri.as_bytes(), true)
    } else {
        uri.as_bytes()
    };
    target.starts_with(ua.uri_prefix.as_bytes())
}

/// proto_http.c:http_handle_stats() in 1.5.0 (http_ana.c in 2.6), with the stats applet's
/// answers (2.6's stats.c): reads the URL's options after the `stats uri` (`;csv`, `;up`,
/// `;no-maint`, `;norefresh`, `;st=`, `scope=`), evaluates `stats admin`, then answers a
/// GET or HEAD with the page (HTML or CSV, chunked for HTTP/1.1), and a POST with a 303 to
/// the page once its form is applied (`stats_process_http_post`), waiting for the body
/// first. The request never reaches a backend; it counts as intercepted.
/// Divergence: `;typed`, `;json` and `;json-schema` are answered 501 (haflow renders HTML
/// and CSV only); a chunked POST body is refused (`IVAL`), as in 1.5.0.
fn http_handle_stats(w: &mut Haproxy, s: &mut Session, px: ProxyId, an_bit: Analysers) -> AnalyserResult {
    let span = tracing::debug_span!(
        names::HTTP_HANDLE_STATS,
        sess = s.uniq_id,
        proxy = w.proxies[px.idx()].name.as_str(),
        status = tracing::field::Empty
    );
    let _g = span.enter();
    let Some(ua) = w.proxies[px.idx()].uri_auth.clone() else { return AnalyserResult::Continue };
    let Some(head) = s.txn.req.head.as_ref() else { return missing_head(w, s, Side::Cli) };
    let StartLine::Request { method, uri, .. } = &head.start else { return missing_head(w, s, Side::Cli) };
    let (method, uri, http11) = (method.clone(), uri.clone(), head.minor() >= 1);
    // The options follow the prefix in the raw URI (as 2.6 reads them).
    let lookup = uri.get(ua.uri_prefix.len().min(uri.len())..).unwrap_or("").to_string();
    let has = |opt: &str| lookup.contains(opt);
    let scope = lookup.find("scope=").map(|i| {
        let v = &lookup[i + 6..];
        let end = v.find([';', '&', ' ']).unwrap_or(v.len());
        // STAT_SCOPE_TXT_MAXLEN
        v[..end.min(20)].to_string()
    });
    let scope = scope
        .filter(|v| !v.is_empty() && v.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c)));
    let st_code = lookup.find(";st=").map(|i| lookup[i + 4..].chars().take(4).collect::<String>());
    let admin = !ua.admin_rules.is_empty() && {
        let (fe_acls_px, rules) = (px, ua.admin_rules.clone());
        with_smp_ctx(w, s, SmpDir::Req, |ctx| {
            let Some((w, _)) = ctx.strm else { return false };
            let acls = &w.proxies[fe_acls_px.idx()].acls;
            rules.iter().any(|c| crate::haproxy::acl::acl_match_cond(c, acls, ctx))
        })
    };
    if s.txn.stats_post.is_none() {
        w.proxies[s.fe.idx()].counters.intercepted += 1;
    }
    s.logs.logged = false;
    let uri_prefix = ua.uri_prefix.clone();
    let redirect = |w: &mut Haproxy, s: &mut Session, code: &str| {
        let mut loc = format!("{uri_prefix};st={code}");
        if has(";up") {
            loc.push_str(";up");
        }
        if has(";norefresh") {
            loc.push_str(";norefresh");
        }
        if let Some(sc) = &scope {
            loc.push_str(&format!("&scope={sc}"));
        }
        let msg = format!(
            "HTTP/1.1 303 See Other\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\ncontent-length: 0\r\nlocation: {loc}\r\n\r\n"
        );
        http_reply(w, s, 303, msg.as_bytes(), ReplyEnd::KeepAlive, SnErr::SN_ERR_LOCAL, SnFinst::SN_FINST_R);
        AnalyserResult::Abort
    };
    if method == "POST" {
        s.txn.stats_post = None;
        if !admin {
            span.record("status", 303);
            return redirect(w, s, "DENY");
        }
        let Some(Framing::Length(n)) = s.txn.req.framing else {
            let code = if matches!(s.txn.req.framing, Some(Framing::None)) { "NONE" } else { "IVAL" };
            return redirect(w, s, code);
        };
        let want = s.txn.req.head_len + n as usize;
        if want > s.req.size - s.req.maxrewrite {
            return redirect(w, s, "EXCD");
        }
        if s.req.i() < want {
            if s.req
                .flags
                .intersects(BufFlags::BF_SHUTR | BufFlags::BF_READ_ERROR | BufFlags::BF_READ_TIMEOUT)
            {
                return redirect(w, s, "EXCD");
            }
            // Come back here, not to the rules, when more of the body is in.
            s.txn.stats_post = Some(px);
            s.req.analysers.insert(an_bit);
            s.req.buffer_dont_connect();
            return AnalyserResult::Wait;
        }
        let body = s.req.input()[s.txn.req.head_len..want].to_vec();
        let code = crate::haproxy::stats::stats_process_http_post(w, &body);
        // The body is consumed with the head: the next request starts after it.
        s.req.bi_skip(want);
        s.txn.req.state = MsgState::HTTP_MSG_DONE;
        span.record("status", 303);
        return redirect(w, s, code);
    }
    if has(";typed") || has(";json") {
        span.record("status", 501);
        let close = s.txn.cli_close;
        http_error_reply(
            w,
            s,
            501,
            http::analyser_error(501, close),
            ReplyEnd::KeepAlive,
            SnErr::SN_ERR_LOCAL,
            SnFinst::SN_FINST_R,
        );
        return AnalyserResult::Abort;
    }
    span.record("status", 200);
    let csv = has(";csv");
    let refresh = if has(";norefresh") { 0 } else { ua.refresh };
    let cfg_scope: Vec<String> = ua
        .scope
        .iter()
        .map(|n| if n == "." { w.proxies[s.be.idx()].name.clone() } else { n.clone() })
        .collect();
    let html = (!csv).then(|| crate::haproxy::stats::HtmlOpts {
        uri_prefix: ua.uri_prefix.clone(),
        admin,
        hide_version: ua.hide_version,
        refresh,
        st_code,
        scope: scope.clone(),
    });
    let head_only = method == "HEAD";
    let close = s.txn.cli_close || !http11;
    let mut msg = format!(
        "HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: {}\r\n",
        if csv { "text/plain" } else { "text/html" }
    );
    if refresh > 0 {
        msg.push_str(&format!("refresh: {refresh}\r\n"));
    }
    if http11 && !head_only {
        msg.push_str("transfer-encoding: chunked\r\n");
    } else if !head_only {
        msg.push_str("connection: close\r\n");
    }
    msg.push_str("\r\n");
    let end = if close && head_only { ReplyEnd::Close } else { ReplyEnd::KeepAlive };
    http_reply(w, s, 200, msg.as_bytes(), end, SnErr::SN_ERR_LOCAL, SnFinst::SN_FINST_R);
    if !head_only {
        let dump = crate::haproxy::stats::http_stat_ctx(has(";up"), has(";no-maint"), scope, cfg_scope, html);
        s.stats_ctx = Some(Box::new(crate::haproxy::stats::HttpStatsCtx::new(dump, http11, close)));
        if close {
            // The applet closes once the page is out (http_reply asked for it at once).
            s.rep.flags.remove(BufFlags::BF_SHUTW_NOW);
        }
    }
    AnalyserResult::Abort
}

/// What http_wait_for_msg_body() decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgBodyWait {
    /// Enough of the body is in the buffer, or no more is coming (`HTTP_RULE_RES_CONT`).
    Ready,
    /// Wait for more (`HTTP_RULE_RES_YIELD`).
    Yield,
    /// Time ran out: 408 (request) or 504 (response) was sent (`HTTP_RULE_RES_ABRT`).
    Abort,
}

/// The body bytes of a message whose body starts `body` (decoded data for a chunked
/// one), and how far it arrived.
fn body_in_buffer(body: &[u8], framing: Framing) -> (u64, h1::BodyEnd) {
    let end = |complete: bool| if complete { h1::BodyEnd::Complete } else { h1::BodyEnd::Partial };
    match framing {
        Framing::None => (0, h1::BodyEnd::Complete),
        Framing::Length(n) => (n.min(body.len() as u64), end(body.len() as u64 >= n)),
        Framing::UntilClose => (body.len() as u64, h1::BodyEnd::Partial),
        Framing::Chunked => {
            let (data, end) = h1::chunked_data(body);
            (data.iter().map(|d| d.len() as u64).sum(), end)
        }
    }
}

/// http_ana.c:http_wait_for_msg_body() in 2.6 (`option http-buffer-request` and
/// `wait-for-body`): ready once the whole body of the message on `chn`'s side is in the
/// buffer, the buffer is full, or `bytes` body bytes (when not 0) arrived; otherwise
/// waits, up to `time` milliseconds (then 408 to the client for a request, 504 for a
/// response). A bodyless message or a `CONNECT` does not wait; nor does a side that
/// closed.
pub fn http_wait_for_msg_body(
    w: &mut Haproxy,
    s: &mut Session,
    chn: Side,
    time: Option<u64>,
    bytes: u64,
) -> MsgBodyWait {
    let req = chn == Side::Cli;
    let span = tracing::debug_span!(
        names::HTTP_WAIT_FOR_MSG_BODY,
        sess = s.uniq_id,
        side = if req { "request" } else { "response" },
        have = tracing::field::Empty,
        result = tracing::field::Empty
    );
    let _g = span.enter();
    let r = wait_for_msg_body(w, s, req, time, bytes, &span);
    span.record("result", tracing::field::debug(&r));
    r
}

/// The body of http_wait_for_msg_body(), under its span.
fn wait_for_msg_body(
    w: &mut Haproxy,
    s: &mut Session,
    req: bool,
    time: Option<u64>,
    bytes: u64,
    span: &tracing::Span,
) -> MsgBodyWait {
    let (buf, msg) = if req { (&s.req, &s.txn.req) } else { (&s.rep, &s.txn.rsp) };
    let Some(framing) = msg.framing else { return MsgBodyWait::Ready };
    if s.txn.meth == HttpMeth::HTTP_METH_CONNECT || framing == Framing::None {
        return MsgBodyWait::Ready;
    }
    let body = buf.input().get(msg.head_len..).unwrap_or_default();
    let (have, end) = body_in_buffer(body, framing);
    span.record("have", have);
    let flags = buf.flags;
    // A malformed body is not waited for: the body analyser rejects it (400 or 502), as
    // 2.6's H1 parser does at once.
    let ready = end != h1::BodyEnd::Partial || buf.room() == 0 || (bytes > 0 && have >= bytes);
    let buf = if req { &mut s.req } else { &mut s.rep };
    if ready {
        buf.analyse_exp = TICK_ETERNITY;
        buf.flags.remove(BufFlags::BF_ANA_TIMEOUT);
        return MsgBodyWait::Ready;
    }
    if flags.intersects(BufFlags::BF_READ_TIMEOUT | BufFlags::BF_ANA_TIMEOUT) {
        buf.analyse_exp = TICK_ETERNITY;
        // 2.6 logs both with `R` as the final state (`cR--`, `sR--`), and keeps the client
        // connection after the 504.
        let (status, err) = if req {
            w.proxies[s.fe.idx()].counters.failed_req += 1;
            (408, SnErr::SN_ERR_CLITO)
        } else {
            w.proxies[s.be.idx()].counters.failed_resp += 1;
            (504, SnErr::SN_ERR_SRVTO)
        };
        // The 408 page announces its close itself.
        let close = req || s.txn.cli_close;
        let page = http::analyser_error(status, close);
        http_error_reply(w, s, status, page, ReplyEnd::KeepAlive, err, SnFinst::SN_FINST_R);
        return MsgBodyWait::Abort;
    }
    if flags.intersects(BufFlags::BF_SHUTR | BufFlags::BF_READ_ERROR) {
        return MsgBodyWait::Ready;
    }
    if buf.analyse_exp.is_none() {
        buf.analyse_exp = tick_add_ifset(w.clock.now_ms, time);
    }
    MsgBodyWait::Yield
}

/// `http-request reject` (http_act.c:http_action_reject() in 2.6): the client
/// connection is closed at once, with nothing sent; counted as a denied request.
fn http_reject(w: &mut Haproxy, s: &mut Session, px: ProxyId) {
    w.proxies[px.idx()].counters.denied_req += 1;
    if px != s.fe {
        w.proxies[s.fe.idx()].counters.denied_req += 1;
    }
    s.set_err(SnErr::SN_ERR_PRXCOND);
    s.set_finst(SnFinst::SN_FINST_R);
    s.si[0].flags.insert(SiFlags::SI_FL_NOLINGER);
    close_silently(s);
    s.logs.logged = false;
}

/// A rule failed in strict mode (2.6's `return_int_err` of http_process_req_common()
/// and http_process_res_common()): 500 to the client, as an analyser answer (the
/// `http-after-response` rules run on it; the connection stays if the request was
/// wholly read).
fn http_rules_int_err(w: &mut Haproxy, s: &mut Session, finst: SnFinst) {
    let close = s.txn.cli_close;
    http_error_reply(
        w,
        s,
        500,
        http::analyser_error(500, close),
        ReplyEnd::KeepAlive,
        SnErr::SN_ERR_INTERNAL,
        finst,
    );
}

/// Sends the reply a rule built, or the proxy's error message for its status.
fn send_rule_reply(w: &mut Haproxy, s: &mut Session, reply: ReplyMsg, err: SnErr, finst: SnFinst) {
    match reply.msg {
        Some(msg) => http_reply(w, s, reply.status, &msg, ReplyEnd::KeepAlive, err, finst),
        None => {
            let close = s.txn.cli_close;
            http_error_reply(
                w,
                s,
                reply.status,
                http::analyser_error(reply.status, close),
                ReplyEnd::KeepAlive,
                err,
                finst,
            )
        }
    }
}

/// An analyser that needs the parsed head of its message ran without it (an
/// analyser-ordering bug): the transaction ends with a 500 instead of a panic of the
/// proxy thread.
fn missing_head(w: &mut Haproxy, s: &mut Session, side: Side) -> AnalyserResult {
    tracing::error!(sess = s.uniq_id, ?side, "an analyser ran before its message's head was parsed");
    let finst = if side == Side::Cli { SnFinst::SN_FINST_R } else { SnFinst::SN_FINST_H };
    http_error_reply(
        w,
        s,
        500,
        http::analyser_error(500, true),
        ReplyEnd::Close,
        SnErr::SN_ERR_INTERNAL,
        finst,
    );
    AnalyserResult::Abort
}

/// The stronger of the frontend's and backend's `option http-*` modes.
fn conn_mode(w: &Haproxy, s: &Session) -> HttpConnMode {
    w.proxies[s.fe.idx()].http_mode.max(w.proxies[s.be.idx()].http_mode)
}

/// proto_http.c:http_process_request() in 1.5-dev8 (`AN_REQ_HTTP_INNER`): the last
/// changes before the request leaves (`X-Forwarded-For`, the `Connection` header toward
/// the server), then the head is written back to the buffer and forwarded.
pub fn http_process_request(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let mode = conn_mode(w, s);
    let span = tracing::debug_span!(names::HTTP_PROCESS_REQUEST, sess = s.uniq_id, an = an_bit.coded(), mode = ?mode, backend = w.proxies[s.be.idx()].name.as_str());
    let _g = span.enter();
    // 1.5.0 looks at the persistence cookie here, before the server is chosen.
    if w.proxies[s.be.idx()].cookie.is_some() && !s.flags.contains(SessFlags::SN_ASSIGNED) {
        manage_client_side_cookies(w, s);
    }
    let be = &w.proxies[s.be.idx()];
    let fe = &w.proxies[s.fe.idx()];
    let fwdfor = (fe.options | be.options).contains(ProxyOptions::PR_O_FWDFOR);
    let ifnone = (fe.options | be.options).contains(ProxyOptions::PR_O_FF_IFNONE);
    // The backend's header name when it has the option, else the frontend's; an address
    // in either's `except` network gets no header (http_ana.c in 2.6).
    let excepted = |x: &crate::haproxy::proxy::XffOpts, ip: IpAddr| {
        x.except.is_some_and(|(n, l)| crate::haproxy::pattern::net_match(ip, n, l))
    };
    let xff_hdr = if be.options.contains(ProxyOptions::PR_O_FWDFOR) {
        be.fwdfor.hdr.clone()
    } else {
        fe.fwdfor.hdr.clone()
    };
    let src = s.cli_addr.map(|a| a.ip());
    let fwdfor = fwdfor
        && src.is_some_and(|ip| {
            let except = |p: &crate::haproxy::proxy::Proxy| {
                p.options.contains(ProxyOptions::PR_O_FWDFOR) && excepted(&p.fwdfor, ip)
            };
            !except(fe) && !except(be)
        });
    let orgto = be.originalto.as_ref().or(fe.originalto.as_ref()).cloned();
    let dst = if orgto.is_some() {
        s.frt_addr.or_else(|| s.si[0].fd.and_then(|fd| w.fdtab.local_addr(fd))).map(|a| a.ip())
    } else {
        None
    };
    let orgto = orgto.zip(dst).filter(|(x, ip)| {
        ![fe.originalto.as_ref(), be.originalto.as_ref()].into_iter().flatten().any(|o| excepted(o, *ip))
            && !excepted(x, *ip)
    });
    let restrict = [fe.hdr_names, be.hdr_names];
    let unique_id_hdr = fe.unique_id_header.clone().zip(s.unique_id.clone());
    if mode == HttpConnMode::Close {
        s.txn.cli_close = true;
    }
    // The server side is kept alive whatever the client does, unless an option says no.
    s.txn.srv_close = mode != HttpConnMode::KeepAlive;
    let http10 = s.txn.cli_http10;
    let upgrade = s.txn.req.flags.contains(HttpMsgFlags::HTTP_MSGF_CONN_UPG);
    let Some(head) = s.txn.req.head.as_mut() else { return missing_head(w, s, Side::Cli) };
    // `option http-restrict-req-hdr-names`: names with other characters than letters,
    // digits and `-`.
    let odd_name = |n: &str| !n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
    if restrict.contains(&crate::haproxy::proxy::HdrNamesPolicy::Reject)
        && head.headers.iter().any(|(n, _)| odd_name(n))
    {
        let close = s.txn.cli_close;
        w.proxies[s.be.idx()].counters.denied_req += 1;
        http_error_reply(
            w,
            s,
            403,
            http::analyser_error(403, close),
            ReplyEnd::KeepAlive,
            SnErr::SN_ERR_PRXCOND,
            SnFinst::SN_FINST_R,
        );
        return AnalyserResult::Abort;
    }
    if restrict.contains(&crate::haproxy::proxy::HdrNamesPolicy::Delete) {
        head.headers.retain(|(n, _)| !odd_name(n));
    }
    // 2.6's order: the unique id (its step 8), then `X-Forwarded-For` and `X-Original-To`.
    if let Some((name, id)) = unique_id_hdr {
        head.add(&name, id.into_vec());
    }
    if fwdfor
        && let Some(ip) = src
        && !(ifnone && head.value(&xff_hdr).is_some())
    {
        head.add(&xff_hdr, ip.to_string());
    }
    if let Some((x, ip)) = orgto {
        head.add(&x.hdr, ip.to_string());
    }
    // An upgrade request keeps its `Connection` header as sent: the server must see the
    // `upgrade` token (HAProxy 2.6 leaves it alone too).
    let hop_by_hop: &[&str] = if upgrade {
        &["proxy-connection", "keep-alive"]
    } else {
        &["connection", "proxy-connection", "keep-alive"]
    };
    for h in hop_by_hop {
        head.remove(h);
    }
    if fe.comp.is_some() || be.comp.is_some() {
        let _sp = tracing::debug_span!(
            names::SELECT_COMPRESSION_REQUEST_HEADER,
            sess = s.uniq_id,
            algo = tracing::field::Empty
        )
        .entered();
        s.comp_algo = select_compression_request_header(head, be.comp.as_ref(), fe.comp.as_ref());
        if let Some(a) = s.comp_algo {
            _sp.record("algo", a.cfg_name());
        }
    }
    if !upgrade {
        if mode != HttpConnMode::KeepAlive {
            if !http10 {
                head.add("connection", "close");
            }
        } else if http10 {
            // Keep the server connection usable: HTTP/1.0 closes by default.
            head.add("connection", "keep-alive");
        }
    }
    let out = head.to_bytes();
    let len = s.txn.req.head_len;
    if !s.req.replace_input(0, len, &out) {
        http_error_reply(
            w,
            s,
            500,
            http::analyser_error(500, true),
            ReplyEnd::Close,
            SnErr::SN_ERR_PRXCOND,
            SnFinst::SN_FINST_R,
        );
        return AnalyserResult::Abort;
    }
    s.req.b_adv(out.len());
    s.txn.req.head_len = 0;
    s.txn.req.head = None;
    s.txn.req.state = match s.txn.req.framing {
        Some(Framing::Chunked) => MsgState::HTTP_MSG_CHUNK_SIZE,
        Some(Framing::Length(n)) => {
            s.req.buffer_forward(n);
            MsgState::HTTP_MSG_DATA
        }
        _ => MsgState::HTTP_MSG_DONE,
    };
    s.req.analysers.remove(an_bit);
    s.req.analysers.insert(Analysers::AN_REQ_HTTP_XFER_BODY);
    // The server's answer will be awaited with `timeout server`; until then the request
    // must reach it even if the client goes quiet.
    s.req.buffer_dont_close();
    AnalyserResult::Continue
}

/// Moves a message's body through the buffer: Content-Length bodies by `to_forward`,
/// chunked bodies one chunk at a time (size lines rewritten without extensions, trailers
/// re-serialised), as HAProxy 2.6 forwards them. Returns `Err` on a framing error.
///
/// A response being compressed (`s.comp_ctx`) is not forwarded but read: its data go
/// through `http_compression_buffer_add_data`, its chunk framing is dropped, and each
/// pass ends with `http_compression_buffer_end`, which puts one chunk of compressed data
/// in the output (1.5.0's `http_response_forward_body`).
fn forward_body(w: &Haproxy, s: &mut Session, req: bool) -> Result<(), H1Error> {
    let maxhdr = w.global.tune.http_maxhdr;
    let comp_failed = |_| H1Error { status: 500, reason: "compression failed" };
    if !req && let Some(ctx) = s.comp_ctx.as_deref_mut() {
        // Chunks of the last pass that did not fit go first.
        if !http_compression_buffer_init(ctx, &mut s.rep) {
            return Ok(());
        }
    }
    loop {
        let (buf, msg, comp, cache) = if req {
            (&mut s.req, &mut s.txn.req, None, None)
        } else {
            (&mut s.rep, &mut s.txn.rsp, s.comp_ctx.as_deref_mut(), s.txn.cache.as_deref_mut())
        };
        // `cache-store` keeps a copy of the data as they pass.
        let store = cache.map(|c| &mut c.store).filter(|st| st.is_some());
        match msg.state {
            MsgState::HTTP_MSG_DATA => {
                if let Some(ctx) = comp {
                    if let Some(store) = store {
                        cache_copy_data(buf, msg.chunk_len, store);
                    }
                    http_compression_buffer_add_data(ctx, buf, &mut msg.chunk_len).map_err(comp_failed)?;
                    let end = if msg.chunk_len == 0 { CompEnd::Done } else { CompEnd::More };
                    http_compression_buffer_end(ctx, buf, end).map_err(comp_failed)?;
                    if ctx.finished && !ctx.has_pending_output() {
                        msg.state = MsgState::HTTP_MSG_DONE;
                    }
                    return Ok(());
                }
                if let Some(store) = store {
                    body_copy_to_cache(buf, &mut msg.chunk_len, store);
                }
                if matches!(msg.framing, Some(Framing::UntilClose)) {
                    if buf.flags.contains(BufFlags::BF_SHUTR) && buf.i() == 0 {
                        msg.state = MsgState::HTTP_MSG_DONE;
                    }
                    return Ok(());
                }
                if buf.to_forward == 0 && msg.chunk_len == 0 {
                    msg.state = MsgState::HTTP_MSG_DONE;
                }
                return Ok(());
            }
            MsgState::HTTP_MSG_CHUNK_SIZE => match h1::parse_chunk_size(buf.input())? {
                ChunkLine::Incomplete => break,
                ChunkLine::Size { size, len } => {
                    if comp.is_some() {
                        // The compressor makes its own chunks: the server's framing goes.
                        buf.bi_skip(len);
                    } else {
                        let line = format!("{size:x}\r\n");
                        if !buf.replace_input(0, len, line.as_bytes()) {
                            return Err(H1Error { status: 400, reason: "no room to rewrite a chunk size" });
                        }
                        buf.b_adv(line.len());
                    }
                    if size == 0 {
                        if let Some(ctx) = comp {
                            http_compression_buffer_end(ctx, buf, CompEnd::Trailers).map_err(comp_failed)?;
                        }
                        msg.state = MsgState::HTTP_MSG_TRAILERS;
                    } else {
                        if comp.is_some() || store.is_some() {
                            // Read by the compressor or copied to the cache, not forwarded blindly.
                            msg.chunk_len = size;
                        } else {
                            buf.buffer_forward(size);
                        }
                        msg.body_bytes += size;
                        msg.state = MsgState::HTTP_MSG_CHUNK_DATA;
                    }
                }
            },
            MsgState::HTTP_MSG_CHUNK_DATA => {
                if let Some(ctx) = comp {
                    if let Some(store) = store {
                        cache_copy_data(buf, msg.chunk_len, store);
                    }
                    http_compression_buffer_add_data(ctx, buf, &mut msg.chunk_len).map_err(comp_failed)?;
                } else if let Some(store) = store {
                    body_copy_to_cache(buf, &mut msg.chunk_len, store);
                }
                if msg.chunk_len > 0 {
                    break;
                }
                if buf.to_forward > 0 {
                    return Ok(());
                }
                msg.state = MsgState::HTTP_MSG_CHUNK_CRLF;
            }
            MsgState::HTTP_MSG_CHUNK_CRLF => {
                let inp = buf.input();
                let eol = if inp.starts_with(b"\r\n") {
                    2
                } else if inp.starts_with(b"\n") {
                    1
                } else if inp.is_empty() || inp == b"\r" {
                    break;
                } else {
                    return Err(H1Error { status: 400, reason: "missing CRLF after chunk data" });
                };
                if comp.is_some() {
                    buf.bi_skip(eol);
                } else {
                    if eol == 1 && !buf.replace_input(0, 1, b"\r\n") {
                        return Err(H1Error { status: 400, reason: "no room to rewrite a chunk end" });
                    }
                    buf.b_adv(2);
                }
                msg.state = MsgState::HTTP_MSG_CHUNK_SIZE;
            }
            MsgState::HTTP_MSG_TRAILERS => {
                if comp.as_deref().is_some_and(|ctx| ctx.has_pending_output()) {
                    // The trailers follow the last compressed chunk.
                    return Ok(());
                }
                let inp = buf.input();
                let Some(end) = h1::trailers_len(inp) else {
                    if inp.len() >= buf.size - buf.maxrewrite {
                        return Err(H1Error { status: 400, reason: "trailers too large" });
                    }
                    return Ok(());
                };
                let mut out = Vec::new();
                if end > 2 {
                    let mut storage = vec![httparse::EMPTY_HEADER; maxhdr + 1];
                    match httparse::parse_headers(&inp[..end], &mut storage) {
                        Ok(httparse::Status::Complete((_, hs))) => {
                            for h in hs.iter() {
                                out.extend_from_slice(h.name.to_ascii_lowercase().as_bytes());
                                out.extend_from_slice(b": ");
                                out.extend_from_slice(h.value);
                                out.extend_from_slice(b"\r\n");
                            }
                        }
                        _ => return Err(H1Error { status: 400, reason: "invalid trailers" }),
                    }
                }
                if let Some(Some(p)) = store {
                    p.add_trailers(&out);
                }
                out.extend_from_slice(b"\r\n");
                if !buf.replace_input(0, end, &out) {
                    return Err(H1Error { status: 400, reason: "no room to rewrite trailers" });
                }
                buf.b_adv(out.len());
                msg.state = MsgState::HTTP_MSG_DONE;
            }
            _ => return Ok(()),
        }
    }
    // Missing data in a chunked body: what was compressed so far goes out.
    if !req
        && let Some(ctx) = s.comp_ctx.as_deref_mut()
        && !ctx.finished
    {
        http_compression_buffer_end(ctx, &mut s.rep, CompEnd::More).map_err(comp_failed)?;
    }
    Ok(())
}

/// Copies to the entry `cache-store` fills the body data at the start of the input (up
/// to `chunk_len`, what is left of the current block) and lets them go. An object grown
/// past `max-object-size` is dropped, and the rest of the block is forwarded blindly.
fn body_copy_to_cache(
    buf: &mut crate::haproxy::buffers::Buffer,
    chunk_len: &mut u64,
    store: &mut Option<PendingEntry>,
) {
    let n = cache_copy_data(buf, *chunk_len, store);
    buf.b_adv(n);
    *chunk_len -= n as u64;
    if store.is_none() {
        buf.buffer_forward(*chunk_len);
        *chunk_len = 0;
    }
}

/// Copies to the entry `cache-store` fills the body data at the start of the input (up
/// to `chunk_len`) without taking them, for the compressor to read next: as in 2.6, where
/// the cache filter comes before the compression filter of its proxy, the cache keeps
/// the server's data. Returns how many bytes that was; an object grown past
/// `max-object-size` is dropped.
fn cache_copy_data(
    buf: &crate::haproxy::buffers::Buffer,
    chunk_len: u64,
    store: &mut Option<PendingEntry>,
) -> usize {
    let n = (buf.i() as u64).min(chunk_len) as usize;
    if !store.as_mut().is_some_and(|p| p.add_data(&buf.input()[..n])) {
        *store = None;
    }
    n
}

/// proto_http.c:http_request_forward_body() in 1.5-dev8 (`AN_REQ_HTTP_XFER_BODY`): forward
/// the request body; once both messages are done, end the transaction.
pub fn http_request_forward_body(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let span = tracing::debug_span!(
        names::HTTP_REQUEST_FORWARD_BODY,
        sess = s.uniq_id,
        an = an_bit.coded(),
        state = tracing::field::Empty,
        bytes = s.req.o()
    );
    let _g = span.enter();
    if let Err(e) = forward_body(w, s, true) {
        span.record("state", MsgState::HTTP_MSG_ERROR.coded());
        s.txn.req.state = MsgState::HTTP_MSG_ERROR;
        w.proxies[s.fe.idx()].counters.failed_req += 1;
        if s.txn.status.is_none() && s.si[1].state < SiState::SI_ST_EST {
            // Nothing reached the server yet: refuse the request as a whole.
            s.txn.req_line = None;
            h1_send_error(w, s, e.status, ReplyEnd::Close, SnErr::SN_ERR_PRXCOND, SnFinst::SN_FINST_R);
        } else {
            abort_txn(w, s, SnErr::SN_ERR_PRXCOND, SnFinst::SN_FINST_D);
        }
        return AnalyserResult::Abort;
    }
    span.record("state", s.txn.req.state.coded());
    if s.txn.req.state == MsgState::HTTP_MSG_DONE {
        // The whole request is in (1.5.0): `timeout client` no longer applies to it.
        s.req.flags.insert(BufFlags::BF_READ_NOEXP);
        s.req.rex = TICK_ETERNITY;
        return http_resync_states(w, s);
    }
    if s.req.flags.intersects(BufFlags::BF_SHUTR | BufFlags::BF_READ_ERROR) {
        // The client closed in the middle of its body: whatever is left in the buffer
        // (a partial chunk-size line) can never be completed.
        abort_txn(w, s, SnErr::SN_ERR_CLICL, SnFinst::SN_FINST_D);
        return AnalyserResult::Abort;
    }
    AnalyserResult::Wait
}

/// Closes both sides of a broken transaction (a body cannot be completed).
fn abort_txn(w: &mut Haproxy, s: &mut Session, err: SnErr, finst: SnFinst) {
    s.set_err(err);
    s.set_finst(finst);
    s.req.analysers = Analysers::empty();
    s.rep.analysers = Analysers::empty();
    s.req.buffer_abort();
    s.rep.buffer_abort();
    // What was not parsed will never be: drop it, so that both buffers can empty and the
    // client side's shutdown (waiting for an empty `rep`) happens.
    s.req.buffer_cut_tail();
    s.rep.buffer_cut_tail();
    s.si[1].flags.insert(SiFlags::SI_FL_NOLINGER);
    si_shutr(w, s, Side::Srv);
    si_shutw(w, s, Side::Srv);
}

/// The `abort_keep_alive` exit of proto_http.c:http_wait_for_response() in 1.5.0 (the
/// same in 2.6): a request that is not the connection's first met a server that closed
/// or failed before a byte of the response. The client is closed without a status and
/// without a log line: a kept-alive connection may be closed at any time, and its client
/// retries the request (RFC 7230 6.3.1), where a 502 would be final. A response already
/// on its way to the client (pipelining) still leaves first.
fn abort_keep_alive(w: &mut Haproxy, s: &mut Session) {
    s.txn.status = None;
    abort_txn(w, s, SnErr::SN_ERR_NONE, SnFinst::SN_FINST_H);
    s.logs.logged = true;
}

/// Why a response being forwarded can no longer be completed: the first test of 1.5.0's
/// `http_response_forward_body` (errors, timeouts, the output closed under us), made
/// before anything is forwarded, so that a client gone while the last bytes arrive is
/// still a client abort.
fn response_xfer_abort(s: &Session) -> Option<(SnErr, Side)> {
    let f = s.rep.flags;
    if f.intersects(BufFlags::BF_WRITE_ERROR | BufFlags::BF_SHUTW) {
        Some((SnErr::SN_ERR_CLICL, Side::Cli))
    } else if f.contains(BufFlags::BF_WRITE_TIMEOUT) {
        Some((SnErr::SN_ERR_CLITO, Side::Cli))
    } else if f.contains(BufFlags::BF_READ_TIMEOUT) {
        Some((SnErr::SN_ERR_SRVTO, Side::Srv))
    } else if f.contains(BufFlags::BF_READ_ERROR) {
        Some((SnErr::SN_ERR_SRVCL, Side::Srv))
    } else {
        None
    }
}

/// Ends a response transfer that cannot complete (`CD--`, `cD--`, `SD--`, `sD--`). The
/// abort is counted once, by whoever sees its cause first.
fn response_xfer_aborted(w: &mut Haproxy, s: &mut Session, err: SnErr, side: Side) {
    if s.err == SnErr::SN_ERR_NONE {
        count_abort(w, s, side);
    }
    abort_txn(w, s, err, SnFinst::SN_FINST_D);
}

// ---------------------------------------------------------------------------------------
// Response analysers

/// proto_http.c:http_wait_for_response() in 1.5-dev8 (`AN_RES_WAIT_HTTP`): wait for the
/// server's response head and parse it. 502 when it is invalid or the server closes
/// first, 504 when `timeout server` expires first; 1xx interim responses are passed on.
pub fn http_wait_for_response(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let span = tracing::debug_span!(
        names::HTTP_WAIT_FOR_RESPONSE,
        sess = s.uniq_id,
        an = an_bit.coded(),
        bytes = s.rep.i(),
        status = tracing::field::Empty
    );
    let _g = span.enter();
    crate::haproxy::step_point(names::HTTP_WAIT_FOR_RESPONSE, || crate::haproxy::View::Session(w, &*s));
    let now = w.clock.now_ms;
    let maxhdr = w.global.tune.http_maxhdr;
    let limit = s.rep.size - s.rep.maxrewrite;
    let input = s.rep.input();
    let server_failed = |w: &mut Haproxy, s: &mut Session, status: u16, err: SnErr| {
        let be = s.be;
        crate::haproxy::stick_table::stream_inc_http_fail_ctr(w, s);
        w.proxies[be.idx()].counters.failed_resp += 1;
        if let Some(srv) = s.srv {
            w.server_mut(srv).counters.failed_resp += 1;
        }
        let close = s.txn.cli_close;
        http_error_reply(
            w,
            s,
            status,
            http::analyser_error(status, close),
            ReplyEnd::KeepAlive,
            err,
            SnFinst::SN_FINST_H,
        );
    };
    let Some(len) = h1::head_len(input) else {
        if input.len() >= limit || h1::response_start_hopeless(input) {
            span.record("status", 502);
            server_failed(w, s, 502, SnErr::SN_ERR_PRXCOND);
            return AnalyserResult::Abort;
        }
        let flags = s.rep.flags;
        if flags.contains(BufFlags::BF_READ_TIMEOUT) {
            span.record("status", 504);
            server_failed(w, s, 504, SnErr::SN_ERR_SRVTO);
            return AnalyserResult::Abort;
        }
        if flags.intersects(BufFlags::BF_READ_ERROR | BufFlags::BF_SHUTR) {
            if input.is_empty() && s.txn.not_first {
                abort_keep_alive(w, s);
                return AnalyserResult::Abort;
            }
            span.record("status", 502);
            // Garbage before the close is an invalid response; silence is a server abort.
            let err = if input.is_empty() { SnErr::SN_ERR_SRVCL } else { SnErr::SN_ERR_PRXCOND };
            server_failed(w, s, 502, err);
            return AnalyserResult::Abort;
        }
        if s.rep.flags.contains(BufFlags::BF_SHUTW)
            || s.req.flags.contains(BufFlags::BF_SHUTR) && s.req.flags.contains(BufFlags::BF_READ_ERROR)
        {
            // The client is gone while we wait: abort (`CH--`).
            abort_txn(w, s, SnErr::SN_ERR_CLICL, SnFinst::SN_FINST_H);
            return AnalyserResult::Abort;
        }
        s.rep.buffer_dont_close();
        return AnalyserResult::Wait;
    };
    if len > limit {
        span.record("status", 502);
        server_failed(w, s, 502, SnErr::SN_ERR_PRXCOND);
        return AnalyserResult::Abort;
    }
    let mut head = match h1::parse_response(&input[..len], maxhdr) {
        Ok(h) => h,
        Err(e) => {
            span.record("status", e.status);
            server_failed(w, s, 502, SnErr::SN_ERR_PRXCOND);
            return AnalyserResult::Abort;
        }
    };
    let StartLine::Response { status, .. } = head.start else { unreachable!() };
    span.record("status", status);
    if w.global.debug() {
        let be_name = w.proxies[s.be.idx()].name.clone();
        let (c, sv) = (s.si[0].fd.map_or(0, |f| f.0 as u16), s.si[1].fd.map_or(0, |f| f.0 as u16));
        let line = match &head.start {
            StartLine::Response { version, status, reason } => format!("{version} {status} {reason}"),
            StartLine::Request { .. } => String::new(),
        };
        w.debug_line(format!("{:08x}:{be_name}.srvrep[{c:04x}:{sv:04x}]: {line}", s.uniq_id));
        for (n, v) in &head.headers {
            w.debug_line(format!(
                "{:08x}:{be_name}.srvhdr[{c:04x}:{sv:04x}]: {n}: {}",
                s.uniq_id,
                String::from_utf8_lossy(v)
            ));
        }
    }
    if status == 101
        && let Err(reason) = response_upgrade_check(&head, s.txn.req.flags)
    {
        tracing::debug!(reason, "bad protocol switch");
        server_failed(w, s, 502, SnErr::SN_ERR_PRXCOND);
        return AnalyserResult::Abort;
    }
    if (100..200).contains(&status) && status != 101 {
        // An interim response: pass it on and keep waiting for the final one.
        let out = head.to_bytes();
        if s.rep.replace_input(0, len, &out) {
            s.rep.b_adv(out.len());
        }
        return AnalyserResult::Wait;
    }
    s.txn.status = Some(status);
    // A server authenticating the connection, not the requests (NTLM, Negotiate): its
    // connection is this client's alone from now on, and the client's next requests go
    // back to this server (2.6's `conn_set_private()` and `SESS_FL_PREFER_LAST`).
    let auth_hdr = match status {
        401 => Some("www-authenticate"),
        407 => Some("proxy-authenticate"),
        _ => None,
    };
    if let Some(h) = auth_hdr
        && head.values(h).any(|v| {
            v.len() >= 4 && (v[..4].eq_ignore_ascii_case(b"Nego") || v[..4].eq_ignore_ascii_case(b"NTLM"))
        })
    {
        s.flags.insert(SessFlags::SN_SRV_PRIVATE | SessFlags::SN_PREFER_LAST);
    }
    crate::haproxy::stick_table::stream_inc_http_status_ctr(w, s, status);
    let (framing, te_close) = if s.txn.switches_protocol() {
        // What follows the head belongs to the new protocol.
        (Framing::None, false)
    } else {
        match h1::response_framing(&mut head, s.txn.meth == HttpMeth::HTTP_METH_HEAD) {
            Ok(f) => f,
            Err(_) => {
                s.txn.status = None;
                server_failed(w, s, 502, SnErr::SN_ERR_PRXCOND);
                return AnalyserResult::Abort;
            }
        }
    };
    if let Some(algo) = s.comp_algo {
        let facts = RspFacts {
            req_http11: !s.txn.cli_http10,
            head_request: s.txn.meth == HttpMeth::HTTP_METH_HEAD,
            status,
            has_sized_body: matches!(framing, Framing::Length(_) | Framing::Chunked),
        };
        let (be, fe) = (&w.proxies[s.be.idx()], &w.proxies[s.fe.idx()]);
        let sp = tracing::debug_span!(
            names::SELECT_COMPRESSION_RESPONSE_HEADER,
            sess = s.uniq_id,
            algo = algo.cfg_name(),
            skip = tracing::field::Empty
        )
        .entered();
        match select_compression_response_header(&head, facts, be.comp.as_ref(), fe.comp.as_ref()) {
            Ok(()) => {
                let level = w.global.tune.comp_maxlevel;
                let _p = tracing::trace_span!(names::POOL_ALLOC2, pool = "comp_ctx").entered();
                s.comp_ctx = comp_ctx_alloc(&mut w.pool_comp_ctx, algo, level);
            }
            Err(why) => {
                sp.record("skip", why.as_str());
            }
        }
        if s.comp_ctx.is_none() {
            s.comp_algo = None;
        }
    }
    s.logs.t_data = Some(s.elapsed(now));
    let server_close =
        if head.minor() == 0 { !head.connection_has("keep-alive") } else { head.connection_has("close") };
    if server_close || framing == Framing::UntilClose || te_close {
        s.txn.srv_close = true;
    }
    if framing == Framing::UntilClose || te_close {
        s.txn.cli_close = true;
    }
    let caps = &w.proxies[s.fe.idx()].rsp_cap;
    if !caps.is_empty() {
        s.txn.rsp_cap = capture_headers(caps.iter().map(|(n, l)| (Some(n.as_str()), *l)), &head);
    }
    s.txn.rsp.head = Some(head);
    s.txn.rsp.head_len = len;
    s.txn.rsp.framing = Some(framing);
    s.txn.rsp.state = MsgState::HTTP_MSG_BODY;
    s.rep.analysers.remove(an_bit);
    s.rep.analyse_exp = TICK_ETERNITY;
    AnalyserResult::Continue
}

/// HAProxy 2.6's checks of a `101 Switching Protocols`: both messages carry
/// `Connection: upgrade` (http_ana.c), and a WebSocket answer carries its
/// `Sec-WebSocket-Accept` (mux_h1.c). Otherwise the switch is refused with a 502.
fn response_upgrade_check(head: &Head, req: HttpMsgFlags) -> Result<(), &'static str> {
    if !req.contains(HttpMsgFlags::HTTP_MSGF_CONN_UPG) {
        return Err("101 to a request that asked for no upgrade");
    }
    if !head.connection_has("upgrade") {
        return Err("101 without Connection: upgrade");
    }
    if head.has_token("upgrade", "websocket") && head.value("sec-websocket-accept").is_none() {
        return Err("WebSocket 101 without Sec-WebSocket-Accept");
    }
    Ok(())
}

/// proto_http.c:http_process_res_common() in 1.5-dev8 (`AN_RES_HTTP_PROCESS_BE`): run the
/// backend's then the frontend's `http-response` rules, fix the `Connection` header toward
/// the client, and let the head go.
pub fn http_process_res_common(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let span = tracing::debug_span!(
        names::HTTP_PROCESS_RES_COMMON,
        sess = s.uniq_id,
        an = an_bit.coded(),
        status = s.txn.status.unwrap_or(0),
        action = tracing::field::Empty
    );
    let _g = span.enter();
    let mut pxs = vec![s.be];
    if s.fe != s.be {
        pxs.push(s.fe);
    }
    // A list that yielded resumes where it stopped; the lists before it are done.
    if let Some(r) = s.txn.current_rule
        && let Some(at) = pxs.iter().position(|&p| p == r.px)
    {
        pxs.drain(..at);
    }
    for px_id in pxs {
        if w.proxies[px_id.idx()].http_res_rules.is_empty() {
            continue;
        }
        match http_get_intercept_rule(w, s, px_id, RuleSet::Res) {
            // `allow` ends only its own proxy's list; the frontend's still runs (2.6).
            RuleResult::Cont | RuleResult::Stop => continue,
            RuleResult::Yield => return AnalyserResult::Wait,
            RuleResult::Abort => return AnalyserResult::Abort,
            RuleResult::Reject | RuleResult::Error => {
                span.record("action", "error");
                w.proxies[s.be.idx()].counters.failed_resp += 1;
                http_rules_int_err(w, s, SnFinst::SN_FINST_H);
                return AnalyserResult::Abort;
            }
            RuleResult::Deny(reply) => {
                span.record("action", "deny");
                w.proxies[s.be.idx()].counters.denied_resp += 1;
                send_rule_reply(w, s, reply, SnErr::SN_ERR_PRXCOND, SnFinst::SN_FINST_H);
                return AnalyserResult::Abort;
            }
            RuleResult::Done(reply) => {
                span.record("action", "return");
                w.proxies[px_id.idx()].counters.intercepted += 1;
                send_rule_reply(w, s, reply, SnErr::SN_ERR_LOCAL, SnFinst::SN_FINST_H);
                return AnalyserResult::Abort;
            }
        }
    }
    if w.proxies[s.be.idx()].cookie.is_some() {
        manage_server_side_cookies(w, s);
    }
    s.rep.analysers.remove(an_bit);
    if !http_eval_after_res_rules(w, s) {
        span.record("action", "error");
        http_rules_int_err(w, s, SnFinst::SN_FINST_H);
        return AnalyserResult::Abort;
    }
    if conn_mode(w, s) == HttpConnMode::Close {
        s.txn.cli_close = true;
    }
    let (cli_close, http10, tunnel) = (s.txn.cli_close, s.txn.cli_http10, s.txn.switches_protocol());
    let Some(head) = s.txn.rsp.head.as_mut() else { return missing_head(w, s, Side::Srv) };
    if let Some(ctx) = &s.comp_ctx {
        set_compression_response_header(head, ctx.algo, s.txn.rsp.framing == Some(Framing::Chunked));
    }
    if tunnel {
        // The switch is announced as the server made it.
        for h in ["proxy-connection", "keep-alive"] {
            head.remove(h);
        }
    } else {
        for h in ["connection", "proxy-connection", "keep-alive"] {
            head.remove(h);
        }
        if cli_close {
            head.add("connection", "close");
        } else if http10 {
            head.add("connection", "keep-alive");
        }
    }
    let out = head.to_bytes();
    let len = s.txn.rsp.head_len;
    s.txn.rsp_out_start = s.rep.forwarded();
    if !s.rep.replace_input(0, len, &out) {
        http_error_reply(
            w,
            s,
            500,
            http::analyser_error(500, true),
            ReplyEnd::Close,
            SnErr::SN_ERR_PRXCOND,
            SnFinst::SN_FINST_H,
        );
        return AnalyserResult::Abort;
    }
    s.rep.b_adv(out.len());
    let status = s.txn.status.unwrap_or(0);
    let class = (status / 100).clamp(1, 6) as usize - 1;
    w.proxies[s.fe.idx()].counters.rsp[class] += 1;
    if s.be != s.fe {
        w.proxies[s.be.idx()].counters.rsp[class] += 1;
    }
    if let Some(srv) = s.srv {
        w.server_mut(srv).counters.rsp[class] += 1;
    }
    s.txn.rsp.head = None;
    s.txn.rsp.head_len = 0;
    s.txn.rsp.state = match s.txn.rsp.framing {
        _ if tunnel => MsgState::HTTP_MSG_TUNNEL,
        Some(Framing::Chunked) => MsgState::HTTP_MSG_CHUNK_SIZE,
        Some(Framing::Length(n)) => {
            let storing = s.txn.cache.as_ref().is_some_and(|c| c.store.is_some());
            if s.comp_ctx.is_some() || storing {
                // The compressor reads the body, or it is copied to the cache as it passes.
                s.txn.rsp.chunk_len = n;
            } else {
                s.rep.buffer_forward(n);
            }
            MsgState::HTTP_MSG_DATA
        }
        Some(Framing::UntilClose) => {
            s.rep.buffer_forward(crate::haproxy::buffers::BUF_INFINITE_FORWARD);
            MsgState::HTTP_MSG_DATA
        }
        _ => MsgState::HTTP_MSG_DONE,
    };
    s.rep.analysers.insert(Analysers::AN_RES_HTTP_XFER_BODY);
    AnalyserResult::Continue
}

/// proto_http.c:http_response_forward_body() in 1.5-dev8 (`AN_RES_HTTP_XFER_BODY`):
/// forward the response body; once both messages are done, end the transaction.
pub fn http_response_forward_body(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let span = tracing::debug_span!(
        names::HTTP_RESPONSE_FORWARD_BODY,
        sess = s.uniq_id,
        an = an_bit.coded(),
        state = tracing::field::Empty,
        bytes = s.rep.o()
    );
    let _g = span.enter();
    if let Some((err, side)) = response_xfer_abort(s) {
        span.record("state", MsgState::HTTP_MSG_ERROR.coded());
        response_xfer_aborted(w, s, err, side);
        return AnalyserResult::Abort;
    }
    let was_done = s.txn.rsp.state == MsgState::HTTP_MSG_DONE;
    if forward_body(w, s, false).is_err() {
        span.record("state", MsgState::HTTP_MSG_ERROR.coded());
        w.proxies[s.be.idx()].counters.failed_resp += 1;
        if let Some(srv) = s.srv {
            w.server_mut(srv).counters.failed_resp += 1;
        }
        if s.rep.sent <= s.txn.rsp_out_start {
            // Not a byte of this response has left: the client gets a 502 instead of a
            // head promising a body that will never come, as from HAProxy 2.6.
            let close = s.txn.cli_close;
            http_error_reply(
                w,
                s,
                502,
                http::analyser_error(502, close),
                ReplyEnd::KeepAlive,
                SnErr::SN_ERR_PRXCOND,
                SnFinst::SN_FINST_H,
            );
        } else {
            abort_txn(w, s, SnErr::SN_ERR_PRXCOND, SnFinst::SN_FINST_D);
        }
        return AnalyserResult::Abort;
    }
    span.record("state", s.txn.rsp.state.coded());
    if matches!(s.txn.rsp.state, MsgState::HTTP_MSG_DONE | MsgState::HTTP_MSG_TUNNEL) {
        if !was_done && let Some(ctx) = &s.comp_ctx {
            count_compressed_response(w, s.fe, s.be, ctx);
        }
        if !was_done {
            cache_store_done(w, s);
        }
        return http_resync_states(w, s);
    }
    // Compressed chunks still waiting for the client are not lost when the server leaves.
    if s.rep.flags.contains(BufFlags::BF_SHUTR)
        && !s.comp_ctx.as_ref().is_some_and(|c| c.has_pending_output())
    {
        // The server closed before the end of its message: what is left of it (a partial
        // chunk-size line, say) will never be completed.
        response_xfer_aborted(w, s, SnErr::SN_ERR_SRVCL, Side::Srv);
        return AnalyserResult::Abort;
    }
    AnalyserResult::Wait
}

/// The counters of a compressed response, once it is complete (2.6's `comp_http_end`
/// and the byte counts of `comp_http_payload`): bytes in and out of the compressor, or
/// bypassed for `identity`, on the frontend and the backend.
fn count_compressed_response(
    w: &mut Haproxy,
    fe: crate::ids::ProxyId,
    be: crate::ids::ProxyId,
    ctx: &crate::haproxy::compression::CompCtx,
) {
    for (i, px) in [fe, be].into_iter().enumerate() {
        if i == 1 && be == fe {
            break;
        }
        let c = &mut w.proxies[px.idx()].counters;
        if ctx.algo == crate::haproxy::compression::CompAlgo::Identity {
            c.comp_byp += ctx.bytes_in;
        } else {
            c.comp_in += ctx.bytes_in;
            c.comp_out += ctx.bytes_out;
        }
        c.comp_rsp += 1;
    }
}

/// proto_http.c:http_resync_states() in 1.5.0: once both messages are done, the
/// transaction ends: reset for the next request (keep-alive) or close. A response that
/// switched protocols takes the request with it into `HTTP_MSG_TUNNEL`: the analysers
/// leave, and from then on `process_session` forwards both ways as in TCP mode, under
/// `timeout tunnel`. Only that switch is a span: the other outcomes show as the spans
/// that follow (`http_end_txn_clean_session`, the shutdowns).
fn http_resync_states(w: &mut Haproxy, s: &mut Session) -> AnalyserResult {
    if s.txn.rsp.state == MsgState::HTTP_MSG_TUNNEL && s.txn.req.state == MsgState::HTTP_MSG_DONE {
        let _g = tracing::debug_span!(
            names::HTTP_RESYNC_STATES,
            sess = s.uniq_id,
            from = s.txn.req.state.coded(),
            to = MsgState::HTTP_MSG_TUNNEL.coded(),
            status = s.txn.status.unwrap_or(0)
        )
        .entered();
        s.txn.req.state = MsgState::HTTP_MSG_TUNNEL;
        s.req.analysers = Analysers::empty();
        s.rep.analysers = Analysers::empty();
        for b in [&mut s.req, &mut s.rep] {
            b.buffer_auto_close();
            b.buffer_auto_read();
        }
        return AnalyserResult::Wait;
    }
    if s.txn.req.state != MsgState::HTTP_MSG_DONE || s.txn.rsp.state != MsgState::HTTP_MSG_DONE {
        return AnalyserResult::Wait;
    }
    if s.txn.cli_close {
        // The client connection ends with this transaction: let the bytes drain, then close.
        s.req.analysers = Analysers::empty();
        s.rep.analysers = Analysers::empty();
        s.req.buffer_abort();
        s.rep.buffer_auto_close();
        s.rep.buffer_shutw_now();
        if s.si[1].fd.is_some() {
            // Both messages are complete, so a RST loses nothing and, as HAProxy's close
            // of a finished server connection, leaves no TIME_WAIT on our side for later
            // connect()s to step over.
            s.si[1].flags.insert(SiFlags::SI_FL_NOLINGER | SiFlags::SI_FL_NOHALF);
            si_shutr(w, s, Side::Srv);
            si_shutw(w, s, Side::Srv);
        } else if s.si[1].appctx.is_some() {
            // The cache applet has nothing more to say: it closes with the transaction.
            si_shutw(w, s, Side::Srv);
            si_shutr(w, s, Side::Srv);
        }
        return AnalyserResult::Wait;
    }
    http_end_txn_clean_session(w, s);
    AnalyserResult::Wait
}

/// proto_http.c:http_end_txn_clean_session() in 1.5.0: the transaction is over and the
/// client connection stays: log it, close or keep the server connection, reset the
/// session (buffers' flags, analysers, timers, transaction) for the next request.
pub fn http_end_txn_clean_session(w: &mut Haproxy, s: &mut Session) {
    let span = tracing::debug_span!(
        names::HTTP_END_TXN_CLEAN_SESSION,
        sess = s.uniq_id,
        status = s.txn.status.unwrap_or(0),
        term = tracing::field::Empty,
        keep_srv = tracing::field::Empty
    );
    let _g = span.enter();
    crate::haproxy::step_point(names::HTTP_END_TXN_CLEAN_SESSION, || crate::haproxy::View::Session(w, &*s));
    let now = w.clock.now_ms;
    // The server connection may be kept for the next request if it is clean.
    let reusable = !s.txn.srv_close
        && s.si[1].state == SiState::SI_ST_EST
        && s.si[1].fd.is_some()
        && s.rep.i() == 0
        && !s.rep.flags.intersects(BufFlags::BF_SHUTR | BufFlags::BF_READ_ERROR)
        && !s.req.flags.intersects(BufFlags::BF_SHUTW | BufFlags::BF_SHUTW_NOW);
    // A transaction answered locally (or by the cache) never touched the idle connection
    // kept by the one before: it stays idle, for the next request.
    let parked = s.si[1].appctx.as_deref_mut().and_then(|a| a.idle_fd.take());
    let untouched_idle = (s.si[1].state == SiState::SI_ST_INI || parked.is_some()) && s.idle_conn.is_some();
    span.record("keep_srv", reusable || untouched_idle);
    let mut kept = if untouched_idle { s.idle_conn } else { None };
    if let Some(fd) = parked {
        if kept.is_some() {
            s.si[1].fd = Some(fd);
        } else {
            w.fdtab.fd_delete(fd);
        }
    }
    if reusable {
        let be = &w.proxies[s.be.idx()];
        match (s.srv, s.si[1].fd) {
            // 2.6's h1_detach(): a connection other clients may use goes to its server's
            // idle lists; one the lists refuse is closed below.
            (Some(srv), Some(fd))
                if be.reuse != ReuseMode::Never && !s.flags.contains(SessFlags::SN_SRV_PRIVATE) =>
            {
                let safe = s.flags.contains(SessFlags::SN_SRV_REUSED);
                if srv_add_to_idle_list(w, srv, fd, s.srv_conn_hash, safe) {
                    s.si[1].fd = None;
                }
            }
            // Private (`http-reuse never`, `dispatch`, `option transparent`, an NTLM
            // server): this session's next request may use it, no other.
            _ => kept = Some(KeptConn { srv: s.srv, hash: s.srv_conn_hash }),
        }
    }
    if kept.is_none() && s.si[1].fd.is_some() {
        if matches!(s.si[1].state, SiState::SI_ST_EST | SiState::SI_ST_CON) {
            s.si[1].flags.insert(SiFlags::SI_FL_NOLINGER | SiFlags::SI_FL_NOHALF);
            si_shutr(w, s, Side::Srv);
            si_shutw(w, s, Side::Srv);
        }
        // A socket in another state (an idle one that died) has no shutdown to go through:
        // close it here, or its fd outlives the stream interface that owned it.
        if let Some(fd) = s.si[1].fd.take() {
            w.fdtab.fd_delete(fd);
        }
    }
    // Bytes the server sent beyond its response belong to no request: dropped, with the
    // connection that carried them (it is not reused: `reusable` wants `rep` empty).
    s.rep.buffer_cut_tail();
    // The transaction's bytes go to its backend and server before they are forgotten.
    session_process_counters(w, s);
    // Log this transaction, with the server still counted as HAProxy 2.6 shows it left.
    srv_release_conn(w, s);
    sess_change_server(w, s, None);
    if s.flags.contains(SessFlags::SN_BE_ASSIGNED) {
        let be = &mut w.proxies[s.be.idx()];
        be.beconn = be.beconn.saturating_sub(1);
    }
    s.logs.t_close = Some(s.elapsed(now));
    span.record("term", tracing::field::display(format_args!("{}{}", s.err.log_char(), s.finst.log_char())));
    sess_log(w, s);
    // The entries `http-request track-sc*` tracked for this transaction are released
    // (1.5.0's `session_stop_content_counters`).
    crate::haproxy::stick_table::session_store_counters(w, s, true);
    crate::haproxy::stick_table::session_release_stores(w, s);

    // Reset for the next request.
    let fe = &w.proxies[s.fe.idx()];
    let l = &w.listeners[s.listener.idx()];
    s.logs.logged = false;
    s.logs.bytes_out_base = s.rep.forwarded();
    s.logs.bytes_in = 0;
    s.logs.t_request = None;
    s.logs.t_queue = None;
    s.logs.t_connect = None;
    s.logs.t_data = None;
    s.logs.t_close = None;
    s.logs.tv_accept = now;
    s.logs.request_date = w.clock.date;
    s.logs.srv_queue_size = 0;
    s.logs.prx_queue_size = 0;
    s.logs.retries = 0;
    s.err = SnErr::SN_ERR_NONE;
    s.finst = SnFinst::SN_FINST_NONE;
    s.reset_strm_addrs();
    s.flags.remove(
        SessFlags::SN_DIRECT
            | SessFlags::SN_ASSIGNED
            | SessFlags::SN_ADDR_SET
            | SessFlags::SN_BE_ASSIGNED
            | SessFlags::SN_REDISP
            | SessFlags::SN_CURR_SESS
            | SessFlags::SN_SRV_REUSED,
    );
    s.be = s.fe;
    s.idle_conn = kept;
    s.srv = None;
    s.prev_srv = None;
    let keep_fd = kept.and(s.si[1].fd);
    let mut si = StreamInterface::new(SiState::SI_ST_INI);
    if fe.options.contains(ProxyOptions::PR_O_INDEPSTR) {
        si.flags.insert(SiFlags::SI_FL_INDEP_STR);
    }
    si.fd = keep_fd;
    s.si[1] = si;
    s.req.flags.remove(
        BufFlags::BF_SHUTW
            | BufFlags::BF_SHUTW_NOW
            | BufFlags::BF_AUTO_CONNECT
            | BufFlags::BF_WRITE_ERROR
            | BufFlags::BF_WRITE_TIMEOUT
            | BufFlags::BF_AUTO_CLOSE
            | BufFlags::BF_READ_NOEXP,
    );
    s.rep.flags.remove(
        BufFlags::BF_SHUTR
            | BufFlags::BF_SHUTR_NOW
            | BufFlags::BF_READ_ATTACHED
            | BufFlags::BF_READ_ERROR
            | BufFlags::BF_READ_TIMEOUT
            | BufFlags::BF_READ_NOEXP
            | BufFlags::BF_READ_DONTWAIT,
    );
    s.req.to_forward = 0;
    s.rep.to_forward = 0;
    s.req.wto = None;
    s.req.wex = TICK_ETERNITY;
    s.rep.rto = None;
    s.rep.rex = TICK_ETERNITY;
    s.req.analyse_exp = TICK_ETERNITY;
    s.rep.analyse_exp = TICK_ETERNITY;
    // The PROXY header opens the connection, not each request.
    s.req.analysers = l.analysers - Analysers::AN_REQ_DECODE_PROXY;
    // An upgraded TCP frontend's next requests are HTTP from the start.
    if s.flags.contains(SessFlags::SN_HTX) {
        s.req.analysers |= Analysers::AN_REQ_WAIT_HTTP | Analysers::AN_REQ_HTTP_PROCESS_FE;
    }
    s.rep.analysers = Analysers::empty();
    // A pipelined request may already be waiting: make the analysers look at it now.
    s.req.flags.insert(BufFlags::BF_READ_DONTWAIT | BufFlags::BF_WAKE_ONCE);
    s.req.rto = fe.timeout.client;
    s.rep.wto = fe.timeout.client;
    s.txn.not_first = true;
    comp_ctx_free(&mut w.pool_comp_ctx, s);
    s.txn.reset();
    s.vars.vars_prune();
    s.logs.level = None;
    s.last_rule = None;
    s.unique_id = None;
    s.timeout_server = None;
    s.timeout_tunnel = None;
    s.txn.rsp_out_start = s.rep.forwarded();
    s.txn.wait_next_rq = true;
    let t = fe.timeout;
    s.req.analyse_exp = tick_add_ifset(now, t.httpka.or(t.httpreq).or(t.client));
    s.req.buffer_dont_connect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn cookie_options_parse_as_haproxy_checks_them() {
        let c = parse_cookie(&words("SRV insert indirect nocache domain a.b domain c.d httponly"))
            .expect("valid");
        assert_eq!(c.name, "SRV");
        assert_eq!(
            c.ck_opts,
            CkOpts::PR_CK_INS | CkOpts::PR_CK_IND | CkOpts::PR_CK_NOC | CkOpts::PR_CK_HTTPONLY
        );
        assert_eq!(c.domains, ["a.b", "c.d"]);
        for bad in ["", "S insert prefix", "S preserve", "S maxidle 1h", "S frobnicate"] {
            assert!(parse_cookie(&words(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cookie_headers_split_into_pairs() {
        assert_eq!(
            cookie_pairs(b"a=1; SRV=two ;b"),
            [(&b"a"[..], &b"1"[..]), (&b"SRV"[..], &b"two"[..]), (&b"b"[..], &b""[..])]
        );
    }
}
