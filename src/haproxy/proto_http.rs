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
use crate::haproxy::http_act::{ReplyMsg, RuleResult, RuleSet, http_error_override, http_get_intercept_rule};
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
    /// `rep.sent + rep.o()` when this transaction's response began: the bytes before it
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
    let earlier = s.txn.rsp_out_start.saturating_sub(s.rep.sent) as usize;
    s.rep.bo_truncate(earlier);
    let keep = end == ReplyEnd::KeepAlive && !s.txn.cli_close && request_consumed(s);
    let msg = if end == ReplyEnd::KeepAlive
        && !keep
        && !msg.windows(17).any(|x| x.eq_ignore_ascii_case(b"connection: close"))
    {
        // An analyser answer that must close announces it, as HAProxy 2.6 does.
        let mut m = msg.to_vec();
        if let Some(pos) = m.windows(4).position(|x| x == b"\r\n\r\n") {
            m.splice(pos + 2..pos + 2, b"connection: close\r\n".iter().copied());
        }
        m
    } else {
        msg.to_vec()
    };
    let msg = if end == ReplyEnd::KeepAlive { after_res_on_reply(w, s, msg) } else { msg };
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
/// its own proxy's list).
fn http_eval_after_res_rules(w: &mut Haproxy, s: &mut Session) {
    if !has_after_res_rules(w, s) {
        return;
    }
    let mut pxs = vec![s.be];
    if s.fe != s.be {
        pxs.push(s.fe);
    }
    for px in pxs {
        if !w.proxies[px.idx()].http_after_res_rules.is_empty() {
            // Only `allow` or the end can come out: the list has no `deny` nor `return`.
            http_get_intercept_rule(w, s, px, RuleSet::AfterRes);
        }
    }
}

/// A reply haflow produced goes through the `http-after-response` rules too, as in
/// 2.6's http_forward_proxy_resp(): its head is parsed, changed, and written again.
fn after_res_on_reply(w: &mut Haproxy, s: &mut Session, msg: Vec<u8>) -> Vec<u8> {
    if !has_after_res_rules(w, s) {
        return msg;
    }
    let Some(len) = h1::head_len(&msg) else { return msg };
    let Ok(head) = h1::parse_response(&msg[..len], w.global.tune.http_maxhdr) else { return msg };
    let saved = s.txn.rsp.head.replace(head);
    let saved_status = s.txn.status;
    if let Some(StartLine::Response { status, .. }) = s.txn.rsp.head.as_ref().map(|h| &h.start) {
        s.txn.status = Some(*status);
    }
    http_eval_after_res_rules(w, s);
    let head = std::mem::replace(&mut s.txn.rsp.head, saved);
    if s.txn.status.is_none() {
        s.txn.status = saved_status;
    }
    match head {
        Some(h) => {
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
    if an_bit == Analysers::AN_REQ_HTTP_PROCESS_FE && waiting_for_body(w, s) {
        return AnalyserResult::Wait;
    }
    if an_bit == Analysers::AN_REQ_HTTP_PROCESS_FE && w.proxies[px_id.idx()].unique_id_format.is_some() {
        stream_generate_unique_id(w, s);
    }
    s.req.analysers.remove(an_bit);
    if w.proxies[px_id.idx()].http_req_rules.is_empty() {
        return AnalyserResult::Continue;
    }
    match http_get_intercept_rule(w, s, px_id, RuleSet::Req) {
        RuleResult::Cont | RuleResult::Stop => AnalyserResult::Continue,
        RuleResult::Deny(reply) => {
            span.record("action", "deny");
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

/// http_ana.c:http_wait_for_request_body() in 2.6, for `option http-buffer-request`:
/// true while a Content-Length body is still arriving and fits in the buffer, so that
/// the rules see it (`req.body`). The client closing or going quiet ends the wait.
fn waiting_for_body(w: &Haproxy, s: &Session) -> bool {
    let opts = w.proxies[s.fe.idx()].options | w.proxies[s.be.idx()].options;
    if !opts.contains(ProxyOptions::PR_O_WREQ_BODY) {
        return false;
    }
    let Some(Framing::Length(n)) = s.txn.req.framing else { return false };
    let want = s.txn.req.head_len + n as usize;
    let room = s.req.size - s.req.maxrewrite;
    s.req.i() < want
        && want <= room
        && !s.req.flags.intersects(BufFlags::BF_SHUTR | BufFlags::BF_READ_ERROR | BufFlags::BF_READ_TIMEOUT)
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
            !(fe.options.contains(ProxyOptions::PR_O_FWDFOR) && excepted(&fe.fwdfor, ip))
                && !(be.options.contains(ProxyOptions::PR_O_FWDFOR) && excepted(&be.fwdfor, ip))
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
    s.req.buffer_auto_connect();
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
    s.rep.analysers.remove(an_bit);
    let mut pxs = vec![s.be];
    if s.fe != s.be {
        pxs.push(s.fe);
    }
    for px_id in pxs {
        if w.proxies[px_id.idx()].http_res_rules.is_empty() {
            continue;
        }
        match http_get_intercept_rule(w, s, px_id, RuleSet::Res) {
            RuleResult::Cont => continue,
            RuleResult::Stop => break,
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
    http_eval_after_res_rules(w, s);
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
    s.txn.rsp_out_start = s.rep.sent + s.rep.o() as u64;
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

    // Reset for the next request.
    let fe = &w.proxies[s.fe.idx()];
    let l = &w.listeners[s.listener.idx()];
    s.logs.logged = false;
    s.logs.bytes_out_base = s.rep.sent + s.rep.o() as u64;
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
    s.txn.rsp_out_start = s.rep.sent + s.rep.o() as u64;
    s.txn.wait_next_rq = true;
    let t = fe.timeout;
    s.req.analyse_exp = tick_add_ifset(now, t.httpka.or(t.httpreq).or(t.client));
    s.req.buffer_dont_connect();
}
