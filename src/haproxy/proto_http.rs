//! HTTP: the transaction state and the HTTP analysers.
//!
//! Reproduces `proto_http.c` (1.5-dev8; keep-alive from 1.5.0; answers from HAProxy 2.6).
//! This first part holds the transaction (`struct http_txn`) that the core needs; the
//! analysers follow in the HTTP-mode work.

use std::net::IpAddr;

use crate::haproxy::acl::Sample;
use crate::haproxy::buffers::Analysers;
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::session::{Session, default_srv_error};
use crate::haproxy::stream_interface::Side;

/// `struct http_txn`: one request/response exchange.
#[derive(Clone, Debug, Default)]
pub struct HttpTxn {
    /// Status code of the response sent to the client, if any.
    pub status: Option<u16>,
    /// The request line, for the log (`<BADREQ>` when it could not be parsed).
    pub req_line: Option<String>,
    /// True once the response analysers started waiting for the server's head.
    pub rsp_waiting: bool,
}

impl HttpTxn {
    /// http_init_txn(): a fresh transaction.
    pub fn reset(&mut self) {
        *self = HttpTxn::default();
    }

    /// Marks the start of the wait for the response head (`sess_establish`).
    pub fn rsp_begin(&mut self) {
        self.rsp_waiting = true;
    }

    /// True while the response head has not arrived (`SN_FINST_H` territory).
    pub fn waiting_for_response(&self) -> bool {
        self.rsp_waiting
    }

    /// The request line as the log prints it.
    pub fn log_request_line(&self) -> &str {
        self.req_line.as_deref().unwrap_or("<BADREQ>")
    }
}

/// `http-request` rule.
#[derive(Clone, Debug)]
pub struct HttpReqRule;

impl HttpReqRule {
    /// Parses the words after `http-request`.
    pub fn parse(_args: &[String], _acls: &[crate::haproxy::acl::Acl]) -> Result<HttpReqRule, String> {
        Err("rules are not implemented yet".into())
    }
}

/// `http-response` rule.
#[derive(Clone, Debug)]
pub struct HttpResRule;

impl HttpResRule {
    /// Parses the words after `http-response`.
    pub fn parse(_args: &[String], _acls: &[crate::haproxy::acl::Acl]) -> Result<HttpResRule, String> {
        Err("rules are not implemented yet".into())
    }
}

/// The session seen through the ACL sample fetches.
pub struct SessionSample<'a> {
    src: Option<IpAddr>,
    _s: &'a Session,
}

impl<'a> SessionSample<'a> {
    /// Wraps a session for ACL evaluation.
    pub fn new(_w: &Haproxy, s: &'a Session) -> SessionSample<'a> {
        SessionSample { src: s.cli_addr.map(|a| a.ip()), _s: s }
    }
}

impl Sample for SessionSample<'_> {
    fn src(&self) -> Option<IpAddr> {
        self.src
    }
    fn method(&self) -> Option<&[u8]> {
        None
    }
    fn path(&self) -> Option<&[u8]> {
        None
    }
    fn hdr(&self, _name: &str) -> Vec<&[u8]> {
        Vec::new()
    }
}

/// proto_http.c:http_return_srv_error(): HTTP mode's `srv_error`.
pub fn http_return_srv_error(w: &mut Haproxy, s: &mut Session, side: Side) {
    default_srv_error(w, s, side);
}

/// `AN_REQ_WAIT_HTTP`.
pub fn http_wait_for_request(_w: &mut Haproxy, _s: &mut Session, _an: Analysers) -> bool {
    false
}
/// `AN_REQ_HTTP_PROCESS_FE`/`_BE`.
pub fn http_process_req_common(_w: &mut Haproxy, _s: &mut Session, _an: Analysers) -> bool {
    false
}
/// `AN_REQ_HTTP_INNER`.
pub fn http_process_request(_w: &mut Haproxy, _s: &mut Session, _an: Analysers) -> bool {
    false
}
/// `AN_REQ_HTTP_XFER_BODY`.
pub fn http_request_forward_body(_w: &mut Haproxy, _s: &mut Session, _an: Analysers) -> bool {
    false
}
/// `AN_RES_WAIT_HTTP`.
pub fn http_wait_for_response(_w: &mut Haproxy, _s: &mut Session, _an: Analysers) -> bool {
    false
}
/// `AN_RES_HTTP_PROCESS_BE`.
pub fn http_process_res_common(_w: &mut Haproxy, _s: &mut Session, _an: Analysers) -> bool {
    false
}
/// `AN_RES_HTTP_XFER_BODY`.
pub fn http_response_forward_body(_w: &mut Haproxy, _s: &mut Session, _an: Analysers) -> bool {
    false
}
