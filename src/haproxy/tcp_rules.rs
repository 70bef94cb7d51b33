//! TCP rules: `tcp-request connection|session|content` and `tcp-response content`, with
//! their `inspect-delay`.
//!
//! Reproduces the rule part of `proto_tcp.c` in 1.5.0 (`tcp_exec_req_rules`,
//! `tcp_inspect_request`, `tcp_inspect_response`, `tcp_parse_tcp_req`,
//! `tcp_parse_tcp_rep`), which HAProxy 2.6 moved to `tcp_rules.c`, with 2.6's syntax
//! (`tcp-request session` rules, `set-var`, `set-src`...). Three moments, three lists:
//! - `tcp-request connection` rules run in `session_accept`, right after `accept()`,
//!   before anything was read (`tcp_exec_req_rules`): a `reject` closes the socket
//!   with a RST and no session is ever logged.
//! - `tcp-request session` rules (1.7+) run once the session exists, after a PROXY
//!   protocol header if the listener expects one (`tcp_exec_l5_rules`).
//! - `tcp-request content` rules are the request analyser `tcp_inspect_request`
//!   (`AN_REQ_INSPECT_FE` in the frontend, `AN_REQ_INSPECT_BE` in the backend), and
//!   `tcp-response content` rules the response analyser `tcp_inspect_response`
//!   (`AN_RES_INSPECT`). They can wait: a condition over data still arriving
//!   (`req.payload(0,10)` on 4 bytes) is `ACL_TEST_MISS`, and the analyser returns
//!   until more data comes, the buffer fills, the peer closes or the `inspect-delay`
//!   expires (`SMP_OPT_FINAL`: the last pass, where a missing sample is a non-match).
//!
//! A proxy without TCP rules has none of these analyser bits: its sessions never enter
//! this file.

use std::net::IpAddr;

use crate::haproxy::acl::{AclList, AclTestRes, Condition, acl_exec_cond, parse_acl_cond};
use crate::haproxy::buffers::{Analysers, BufFlags};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::http_act::RuleConf;
use crate::haproxy::log::{LEVELS, LogFmt, build_logline, parse_logformat_string};
use crate::haproxy::proxy::{ProxyCap, ProxyMode};
use crate::haproxy::sample::{
    SampleExpr, SmpData, SmpDir, SmpType, sample_fetch_as_type, sample_parse_word, sample_process,
    with_smp_ctx,
};
use crate::haproxy::session::{AddrDir, AddrLevel, AnalyserResult, Session, SnErr, SnFinst};
use crate::haproxy::stream_interface::SiFlags;
use crate::haproxy::time::{TICK_ETERNITY, tick_add, tick_first, tick_is_expired};
use crate::haproxy::vars::{VarName, register_name};
use crate::ids::ProxyId;
use crate::trace::fields::Coded;
use crate::trace::names;

/// Which list a TCP rule belongs to (`ACT_F_TCP_REQ_CON`, `_SES`, `_CNT`,
/// `ACT_F_TCP_RES_CNT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpRuleSet {
    /// `tcp-request connection`.
    Connection,
    /// `tcp-request session`.
    Session,
    /// `tcp-request content`.
    Content,
    /// `tcp-response content`.
    ResContent,
}

impl TcpRuleSet {
    /// The keywords, for messages.
    pub fn keyword(self) -> &'static str {
        match self {
            TcpRuleSet::Connection => "tcp-request connection",
            TcpRuleSet::Session => "tcp-request session",
            TcpRuleSet::Content => "tcp-request content",
            TcpRuleSet::ResContent => "tcp-response content",
        }
    }

    fn dir(self) -> SmpDir {
        if self == TcpRuleSet::ResContent { SmpDir::Res } else { SmpDir::Req }
    }
}

/// A TCP rule's action (`enum act_name` and `struct act_rule`'s arguments).
#[derive(Clone, Debug)]
pub enum TcpAct {
    /// `accept` (`ACT_ACTION_ALLOW`): stop evaluating the list, let the data through.
    Accept,
    /// `reject` (`ACT_ACTION_DENY`): close the connection.
    Reject,
    /// `close` (`ACT_TCP_CLOSE`, `tcp-response content` only): close the server side.
    Close,
    /// `set-var(NAME) EXPR`.
    SetVar(VarName, SampleExpr),
    /// `set-var-fmt(NAME) FMT`.
    SetVarFmt(VarName, LogFmt),
    /// `unset-var(NAME)`.
    UnsetVar(VarName),
    /// `set-src EXPR` (request rules).
    SetSrc(SampleExpr),
    /// `set-dst EXPR` (request rules).
    SetDst(SampleExpr),
    /// `set-src-port EXPR` (request rules).
    SetSrcPort(SampleExpr),
    /// `set-dst-port EXPR` (request rules).
    SetDstPort(SampleExpr),
    /// `set-log-level LEVEL` (session, content; `silent` is 8).
    SetLogLevel(u8),
    /// `switch-mode http [proto h1]` (`tcp-request content` of a frontend, 2.6): the
    /// stream becomes HTTP (`session.rs:stream_set_http_mode`).
    SwitchModeHttp,
    /// `track-sc0|1|2 KEY [table NAME]` (request rules): the session tracks the key's
    /// entry (`stick_table.rs`).
    TrackSc {
        /// The counter (0 to 2).
        slot: usize,
        /// The key.
        expr: SampleExpr,
        /// `table NAME` (`None`: the proxy's own table).
        table_name: Option<String>,
        /// The proxy whose table is used, resolved by `check_config_validity`.
        table: Option<ProxyId>,
    },
}

/// One TCP rule (`struct act_rule`).
#[derive(Clone, Debug)]
pub struct TcpRule {
    /// What to do.
    pub act: TcpAct,
    /// When (none: always).
    pub cond: Option<Condition>,
    /// Where it was written (`last_rule_file`, `last_rule_line`).
    pub conf: RuleConf,
}

/// A proxy's `tcp-request` settings (`px->tcp_req`).
#[derive(Clone, Debug, Default)]
pub struct TcpReqRules {
    /// `tcp-request inspect-delay` (ms): how long content rules may wait for data.
    pub inspect_delay: Option<u64>,
    /// `tcp-request connection` rules (`l4_rules`).
    pub l4_rules: Vec<TcpRule>,
    /// `tcp-request session` rules (`l5_rules`).
    pub l5_rules: Vec<TcpRule>,
    /// `tcp-request content` rules (`inspect_rules`).
    pub inspect_rules: Vec<TcpRule>,
}

/// A proxy's `tcp-response` settings (`px->tcp_rep`).
#[derive(Clone, Debug, Default)]
pub struct TcpRepRules {
    /// `tcp-response inspect-delay` (ms).
    pub inspect_delay: Option<u64>,
    /// `tcp-response content` rules.
    pub inspect_rules: Vec<TcpRule>,
}

// ---------------------------------------------------------------------------------------
// Parsing

/// Supported actions, for the message about an unknown one.
fn actions_of(set: TcpRuleSet) -> &'static str {
    match set {
        TcpRuleSet::Connection => {
            "'accept', 'reject', 'set-dst', 'set-dst-port', 'set-src', 'set-src-port', 'set-var', 'set-var-fmt', 'track-sc0', 'track-sc1', 'track-sc2', 'unset-var'"
        }
        TcpRuleSet::Session => {
            "'accept', 'reject', 'set-dst', 'set-dst-port', 'set-log-level', 'set-src', 'set-src-port', 'set-var', 'set-var-fmt', 'track-sc0', 'track-sc1', 'track-sc2', 'unset-var'"
        }
        TcpRuleSet::Content => {
            "'accept', 'reject', 'set-dst', 'set-dst-port', 'set-log-level', 'set-src', 'set-src-port', 'set-var', 'set-var-fmt', 'switch-mode', 'track-sc0', 'track-sc1', 'track-sc2', 'unset-var'"
        }
        TcpRuleSet::ResContent => {
            "'accept', 'close', 'reject', 'set-log-level', 'set-var', 'set-var-fmt', 'unset-var'"
        }
    }
}

fn paren_arg<'a>(kw: &'a str, prefix: &str) -> Option<&'a str> {
    kw.strip_prefix(prefix)?.strip_prefix('(')?.strip_suffix(')')
}

/// proto_tcp.c:tcp_parse_request_rule() in 1.5.0 (and 2.6's action keywords): the
/// action and condition after `tcp-request <where>` or `tcp-response content`.
pub fn tcp_parse_request_rule(set: TcpRuleSet, a: &[String], acls: &AclList) -> Result<TcpRule, String> {
    let Some(kw) = a.first() else {
        return Err(format!("'{}' expects an action, among {}.", set.keyword(), actions_of(set)));
    };
    let one = |what: &str| -> Result<&String, String> {
        a.get(1).ok_or_else(|| format!("'{} {kw}' expects {what}.", set.keyword()))
    };
    let req = set != TcpRuleSet::ResContent;
    let (act, used) = match kw.as_str() {
        "accept" => (TcpAct::Accept, 1),
        "reject" => (TcpAct::Reject, 1),
        "close" if !req => (TcpAct::Close, 1),
        "set-src" | "set-dst" if req => {
            let e = sample_parse_word(one("a sample expression")?).map_err(|e| format!("'{kw}' : {e}"))?;
            (if kw == "set-src" { TcpAct::SetSrc(e) } else { TcpAct::SetDst(e) }, 2)
        }
        "set-src-port" | "set-dst-port" if req => {
            let e = sample_parse_word(one("a sample expression")?).map_err(|e| format!("'{kw}' : {e}"))?;
            (if kw == "set-src-port" { TcpAct::SetSrcPort(e) } else { TcpAct::SetDstPort(e) }, 2)
        }
        "track-sc0" | "track-sc1" | "track-sc2" if req => {
            let expr = sample_parse_word(one("a sample expression")?).map_err(|e| format!("'{kw}' : {e}"))?;
            let slot = usize::from(kw.as_bytes()[8] - b'0');
            if a.get(2).map(String::as_str) == Some("table") {
                let t = a.get(3).ok_or_else(|| format!("'{kw}' : missing table name"))?;
                (TcpAct::TrackSc { slot, expr, table_name: Some(t.clone()), table: None }, 4)
            } else {
                (TcpAct::TrackSc { slot, expr, table_name: None, table: None }, 2)
            }
        }
        "set-log-level" if set != TcpRuleSet::Connection => {
            let l = one("a log level")?;
            let lvl = if l == "silent" {
                8
            } else {
                LEVELS.iter().position(|x| x == l).ok_or_else(|| format!("unknown log level '{l}'"))? as u8
            };
            (TcpAct::SetLogLevel(lvl), 2)
        }
        "switch-mode" if set == TcpRuleSet::Content => (TcpAct::SwitchModeHttp, parse_switch_mode(&a[1..])?),
        k if k.starts_with("set-var-fmt(") => {
            let v = register_name(paren_arg(k, "set-var-fmt").ok_or("'set-var-fmt' : missing ')'")?)?;
            let f = parse_logformat_string(one("a format string")?)?;
            (TcpAct::SetVarFmt(v, f), 2)
        }
        k if k.starts_with("set-var(") => {
            let v = register_name(paren_arg(k, "set-var").ok_or("'set-var' : missing ')'")?)?;
            let e = sample_parse_word(one("a sample expression")?).map_err(|e| format!("'{k}' : {e}"))?;
            (TcpAct::SetVar(v, e), 2)
        }
        k if k.starts_with("unset-var(") => {
            let v = register_name(paren_arg(k, "unset-var").ok_or("'unset-var' : missing ')'")?)?;
            (TcpAct::UnsetVar(v), 1)
        }
        k => {
            return Err(format!(
                "'{}' expects {} but got '{k}' (haflow implements these actions).",
                set.keyword(),
                actions_of(set)
            ));
        }
    };
    let rest = &a[used.min(a.len())..];
    let cond = match rest.first().map(String::as_str) {
        None => None,
        Some("if" | "unless") => Some(parse_acl_cond(rest, acls).map_err(|e| {
            format!("error detected in '{}' while parsing '{}' condition : {e}", set.keyword(), rest[0])
        })?),
        Some(x) => {
            return Err(format!(
                "'{} {kw}' : unexpected argument '{x}' (expects 'if', 'unless' or end of line).",
                set.keyword()
            ));
        }
    };
    Ok(TcpRule { act, cond, conf: RuleConf::default() })
}

/// stream.c:stream_parse_switch_mode() and check_tcp_switch_stream_mode() in 2.6: the
/// words after `switch-mode` (`http [proto h1]`); returns how many words the action
/// used, `switch-mode` included. Only `http` exists (no downgrade), and its only
/// frontend multiplexer haflow has is HTTP/1.
fn parse_switch_mode(a: &[String]) -> Result<usize, String> {
    const KW: &str = "'tcp-request switch-mode'";
    match a.first().map(String::as_str) {
        None | Some("") => return Err(format!("{KW} expects a mode as argument.")),
        Some("http") => {}
        Some(m) => return Err(format!("{KW} expects a valid mode (got '{m}').")),
    }
    if a.get(1).map(String::as_str) != Some("proto") {
        return Ok(2);
    }
    match a.get(2).map(String::as_str) {
        None | Some("") => Err(format!("{KW}: 'proto' expects a protocol as argument.")),
        Some("h1") => Ok(4),
        Some("h2") => Err(format!("{KW}: 'proto h2' is not implemented by haflow; it speaks HTTP/1.1.")),
        Some(p @ ("none" | "fcgi")) => {
            Err(format!("MUX protocol '{p}' is not compatible with the selected mode"))
        }
        Some(p) => Err(format!("{KW}: 'proto' expects a valid MUX protocol, if specified (got '{p}')")),
    }
}

/// What a `tcp-request`/`tcp-response` line gave the proxy.
pub enum TcpParsed {
    /// An `inspect-delay` (ms).
    InspectDelay(u64),
    /// A rule for one of the lists.
    Rule(TcpRuleSet, TcpRule),
}

/// proto_tcp.c:tcp_parse_tcp_req() and tcp_parse_tcp_rep() in 1.5.0: one `tcp-request`
/// or `tcp-response` line (`a[0]` is the keyword) of a proxy with capabilities `cap`,
/// named `pxdesc` in messages (`frontend 'fe1'`).
pub fn tcp_parse_tcp_req(
    a: &[String],
    cap: ProxyCap,
    pxdesc: &str,
    acls: &AclList,
) -> Result<TcpParsed, String> {
    let kw = a[0].as_str();
    let Some(what) = a.get(1) else {
        return Err(format!("missing argument for '{kw}' in {pxdesc}"));
    };
    let response = kw == "tcp-response";
    if response && !cap.contains(ProxyCap::PR_CAP_BE) {
        return Err(format!("{kw} ({pxdesc}) has no backend capability"));
    }
    if what == "inspect-delay" {
        let ms = a
            .get(2)
            .and_then(|t| crate::haproxy::standard::parse_time_err(t).ok())
            .ok_or_else(|| format!("'{kw} {what}' expects a positive delay in milliseconds, in {pxdesc}"))?;
        return Ok(TcpParsed::InspectDelay(ms));
    }
    let set = match (response, what.as_str()) {
        (false, "content") => TcpRuleSet::Content,
        (false, "connection") => TcpRuleSet::Connection,
        (false, "session") => TcpRuleSet::Session,
        (true, "content") => TcpRuleSet::ResContent,
        (false, w) => {
            return Err(format!(
                "'{kw}' expects 'inspect-delay', 'connection', 'session' or 'content' in {pxdesc}, found '{w}'"
            ));
        }
        (true, w) => {
            return Err(format!("'{kw}' expects 'inspect-delay' or 'content' in {pxdesc}, found '{w}'"));
        }
    };
    if matches!(set, TcpRuleSet::Connection | TcpRuleSet::Session) && !cap.contains(ProxyCap::PR_CAP_FE) {
        return Err(format!("{kw} {what} is not allowed because {pxdesc} is not a frontend"));
    }
    let rule = tcp_parse_request_rule(set, &a[2..], acls)?;
    if matches!(rule.act, TcpAct::SwitchModeHttp) && !cap.contains(ProxyCap::PR_CAP_FE) {
        return Err(format!("'{kw} switch-mode' not allowed because {pxdesc} has no frontend capability"));
    }
    Ok(TcpParsed::Rule(set, rule))
}

// ---------------------------------------------------------------------------------------
// Running

/// What a rule asks for once evaluated.
enum TcpStep {
    /// Its condition misses data that may still come (`ACL_TEST_MISS`).
    Miss,
    /// Nothing (no match, or done during evaluation: variables).
    Next,
    /// `accept`.
    Accept,
    /// `reject`.
    Reject,
    /// `close`.
    Close,
    /// Change the client's address.
    SetSrc(IpAddr),
    /// Change the address the client reached.
    SetDst(IpAddr),
    /// Change the client's port.
    SetSrcPort(u16),
    /// Change the port the client reached.
    SetDstPort(u16),
    /// Change the log level.
    SetLogLevel(u8),
    /// Make the stream HTTP.
    SwitchModeHttp,
    /// Track an entry.
    TrackSc(usize, ProxyId, crate::haproxy::stick_table::StkKey),
}

/// The rules of `set` of proxy `px`.
fn rules_of(w: &Haproxy, px: ProxyId, set: TcpRuleSet) -> &[TcpRule] {
    let p = &w.proxies[px.idx()];
    match set {
        TcpRuleSet::Connection => &p.tcp_req.l4_rules,
        TcpRuleSet::Session => &p.tcp_req.l5_rules,
        TcpRuleSet::Content => &p.tcp_req.inspect_rules,
        TcpRuleSet::ResContent => &p.tcp_rep.inspect_rules,
    }
}

fn addr_of(e: &SampleExpr, ctx: &mut crate::haproxy::sample::SmpCtx) -> Option<IpAddr> {
    match sample_fetch_as_type(e, ctx, SmpType::SMP_T_ADDR)? {
        SmpData::Ipv4(a) => Some(IpAddr::V4(a)),
        SmpData::Ipv6(a) => Some(IpAddr::V6(a)),
        _ => None,
    }
}

/// The port a `set-src-port`/`set-dst-port` sets: the integer modulo 65536, like 2.6's
/// action_set_src_port().
pub fn port_of(e: &SampleExpr, ctx: &mut crate::haproxy::sample::SmpCtx) -> Option<u16> {
    match sample_fetch_as_type(e, ctx, SmpType::SMP_T_SINT)? {
        SmpData::Sint(n) => Some(n as u16),
        _ => None,
    }
}

/// Evaluates rule `i` of `set` of `px` over session `s`: its condition (on final data
/// or not), then what its action needs; variables are written here.
fn eval_tcp_rule(
    w: &mut Haproxy,
    s: &mut Session,
    px: ProxyId,
    set: TcpRuleSet,
    i: usize,
    final_: bool,
) -> TcpStep {
    with_smp_ctx(w, s, set.dir(), |ctx| {
        ctx.opt_final = final_;
        let Some((w, _)) = ctx.strm else { return TcpStep::Next };
        let p = &w.proxies[px.idx()];
        let Some(rule) = rules_of(w, px, set).get(i) else { return TcpStep::Next };
        if let Some(c) = &rule.cond {
            match acl_exec_cond(c, &p.acls, ctx) {
                AclTestRes::ACL_TEST_MISS => return TcpStep::Miss,
                AclTestRes::ACL_TEST_FAIL => return TcpStep::Next,
                AclTestRes::ACL_TEST_PASS => {}
            }
        }
        // Actions evaluate their samples on final data (`SMP_OPT_FINAL`), as 2.6 does.
        ctx.opt_final = true;
        match &rule.act {
            TcpAct::Accept => TcpStep::Accept,
            TcpAct::Reject => TcpStep::Reject,
            TcpAct::Close => TcpStep::Close,
            TcpAct::SetVar(v, e) => {
                if let Some(d) = sample_process(e, ctx) {
                    ctx.vars.var_set(v, d);
                }
                TcpStep::Next
            }
            TcpAct::SetVarFmt(v, f) => {
                let d = build_logline(f, ctx, false);
                ctx.vars.var_set(v, SmpData::Str(d));
                TcpStep::Next
            }
            TcpAct::UnsetVar(v) => {
                ctx.vars.var_unset(v);
                TcpStep::Next
            }
            TcpAct::SetSrc(e) => addr_of(e, ctx).map_or(TcpStep::Next, TcpStep::SetSrc),
            TcpAct::SetDst(e) => addr_of(e, ctx).map_or(TcpStep::Next, TcpStep::SetDst),
            TcpAct::SetSrcPort(e) => port_of(e, ctx).map_or(TcpStep::Next, TcpStep::SetSrcPort),
            TcpAct::SetDstPort(e) => port_of(e, ctx).map_or(TcpStep::Next, TcpStep::SetDstPort),
            TcpAct::SetLogLevel(l) => TcpStep::SetLogLevel(*l),
            TcpAct::SwitchModeHttp => TcpStep::SwitchModeHttp,
            TcpAct::TrackSc { slot, expr, table: Some(t), .. } => {
                let Some(tab) = crate::haproxy::stick_table::table_of(w, *t) else { return TcpStep::Next };
                match sample_process(expr, ctx).and_then(|d| tab.smp_to_stkey(d)) {
                    Some(key) => TcpStep::TrackSc(*slot, *t, key),
                    None => TcpStep::Next,
                }
            }
            TcpAct::TrackSc { table: None, .. } => TcpStep::Next,
        }
    })
}

/// What a rule list ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpVerdict {
    /// Every rule ran, or `accept`.
    Accept,
    /// `reject`.
    Reject,
    /// `close` (response rules).
    Close,
    /// A condition waits for data.
    Miss,
    /// An action failed (`ACT_RET_ABRT`): `switch-mode http` over a connection that
    /// cannot become HTTP.
    Abort,
}

/// The address level a `set-src`/`set-dst` of `set` changes (`rule->from` in 2.6).
fn addr_level(set: TcpRuleSet) -> AddrLevel {
    match set {
        TcpRuleSet::Connection => AddrLevel::Conn,
        TcpRuleSet::Session => AddrLevel::Sess,
        TcpRuleSet::Content | TcpRuleSet::ResContent => AddrLevel::Strm,
    }
}

/// Runs the rules of `set` of `px` in order; `final_` is `SMP_OPT_FINAL`. Records the
/// rule that ended the list in `s.last_rule`.
fn tcp_exec_rules(
    w: &mut Haproxy,
    s: &mut Session,
    px: ProxyId,
    set: TcpRuleSet,
    final_: bool,
) -> (TcpVerdict, Option<usize>) {
    let n = rules_of(w, px, set).len();
    for i in 0..n {
        let verdict = match eval_tcp_rule(w, s, px, set, i, final_) {
            TcpStep::Miss => return (TcpVerdict::Miss, Some(i)),
            TcpStep::Next => continue,
            TcpStep::Accept => TcpVerdict::Accept,
            TcpStep::Reject => TcpVerdict::Reject,
            TcpStep::Close => TcpVerdict::Close,
            TcpStep::SetSrc(ip) => {
                s.set_addr(&w.fdtab, addr_level(set), AddrDir::Src, Some(ip), None);
                continue;
            }
            TcpStep::SetDst(ip) => {
                s.set_addr(&w.fdtab, addr_level(set), AddrDir::Dst, Some(ip), None);
                continue;
            }
            TcpStep::SetSrcPort(port) => {
                s.set_addr(&w.fdtab, addr_level(set), AddrDir::Src, None, Some(port));
                continue;
            }
            TcpStep::SetDstPort(port) => {
                s.set_addr(&w.fdtab, addr_level(set), AddrDir::Dst, None, Some(port));
                continue;
            }
            TcpStep::SetLogLevel(l) => {
                s.logs.level = Some(l);
                continue;
            }
            // tcp_action_switch_stream_mode() in 2.6: the rules stop (`ACT_RET_STOP`).
            TcpStep::SwitchModeHttp if crate::haproxy::session::stream_set_http_mode(w, s) => {
                TcpVerdict::Accept
            }
            TcpStep::SwitchModeHttp => TcpVerdict::Abort,
            TcpStep::TrackSc(slot, table, key) => {
                // A content rule's tracking ends with the transaction, a connection's or
                // session's with the session (`STKCTR_TRACK_CONTENT`).
                use crate::haproxy::stick_table::{STKCTR_TRACK_BACKEND, STKCTR_TRACK_CONTENT};
                let mut flags = if set == TcpRuleSet::Content { STKCTR_TRACK_CONTENT } else { 0 };
                if px != s.fe {
                    flags |= STKCTR_TRACK_BACKEND;
                }
                crate::haproxy::stick_table::session_track_stkctr(w, s, slot, table, key, flags);
                continue;
            }
        };
        if set != TcpRuleSet::Connection {
            s.last_rule = rules_of(w, px, set).get(i).map(|r| r.conf.clone());
        }
        return (verdict, Some(i));
    }
    (TcpVerdict::Accept, None)
}

/// proto_tcp.c:tcp_exec_req_rules() in 1.5.0: the `tcp-request connection` rules of the
/// frontend, at accept time, before anything is read. False: reject the connection
/// (counted in `denied_conn`).
pub fn tcp_exec_req_rules(w: &mut Haproxy, s: &mut Session) -> bool {
    let fe = s.fe;
    let _sp = tracing::debug_span!(
        names::TCP_EXEC_REQ_RULES,
        sess = s.uniq_id,
        rules = w.proxies[fe.idx()].tcp_req.l4_rules.len()
    )
    .entered();
    let (v, _) = tcp_exec_rules(w, s, fe, TcpRuleSet::Connection, true);
    if v == TcpVerdict::Reject {
        w.proxies[fe.idx()].counters.denied_conn += 1;
        return false;
    }
    true
}

/// tcp_rules.c:tcp_exec_l5_rules() in 2.6: the `tcp-request session` rules of the
/// frontend, once the session exists (after the PROXY protocol header, if any). False:
/// reject the session (counted in `denied_sess`).
pub fn tcp_exec_l5_rules(w: &mut Haproxy, s: &mut Session) -> bool {
    let fe = s.fe;
    let _sp = tracing::debug_span!(
        names::TCP_EXEC_L5_RULES,
        sess = s.uniq_id,
        rules = w.proxies[fe.idx()].tcp_req.l5_rules.len()
    )
    .entered();
    let (v, _) = tcp_exec_rules(w, s, fe, TcpRuleSet::Session, true);
    if v == TcpVerdict::Reject {
        w.proxies[fe.idx()].counters.denied_sess += 1;
        return false;
    }
    true
}

/// Whether the HTTP message at the start of `buf` is complete (HAProxy 2.6's `CF_EOI`,
/// which its HTTP multiplexer sets once the whole message arrived): a head, then a body
/// of known length, all present. A body delimited by the close never completes here.
fn http_msg_complete(buf: &[u8], response: bool) -> bool {
    /// `tune.http.maxhdr`'s default: enough to tell a head's framing.
    const MAXHDR: usize = 101;
    let Some(hl) = crate::haproxy::h1::head_len(buf) else { return false };
    let head = if response {
        crate::haproxy::h1::parse_response(&buf[..hl], MAXHDR)
    } else {
        crate::haproxy::h1::parse_request(&buf[..hl], MAXHDR)
    };
    let Ok(mut head) = head else { return true };
    let framing = if response {
        crate::haproxy::h1::response_framing(&mut head, false)
    } else {
        crate::haproxy::h1::request_framing(&mut head)
    };
    match framing {
        Ok((crate::haproxy::h1::Framing::None, _)) => true,
        Ok((crate::haproxy::h1::Framing::Length(n), _)) => (buf.len() - hl) as u64 >= n,
        Ok((crate::haproxy::h1::Framing::Chunked, _)) => buf[hl..].ends_with(b"0\r\n\r\n"),
        Ok(_) => false,
        Err(_) => true,
    }
}

/// The last pass (`SMP_OPT_FINAL`) of the content rules of one direction: the data is
/// complete or cannot grow (`BF_SHUTR`, an error, a full buffer), there is no
/// `inspect-delay`, or it expired.
fn inspect_is_final(w: &Haproxy, s: &Session, response: bool, delay: Option<u64>) -> bool {
    let b = if response { &s.rep } else { &s.req };
    let now = w.clock.now_ms;
    b.flags.intersects(BufFlags::BF_SHUTR | BufFlags::BF_READ_ERROR | BufFlags::BF_FULL)
        || delay.is_none_or(|d| d == 0)
        || tick_is_expired(s.rules_exp, now)
        || (w.proxies[s.be.idx()].mode == ProxyMode::PR_MODE_HTTP && http_msg_complete(b.input(), response))
}

/// Missing data: the delay counts from the first pass that missed (`s->rules_exp`),
/// and the analyser's timer wakes the session when it ends.
fn arm_rules_exp(w: &Haproxy, s: &mut Session, response: bool, delay: Option<u64>) {
    let now = w.clock.now_ms;
    if s.rules_exp.is_none()
        && let Some(d) = delay.filter(|&d| d > 0)
    {
        s.rules_exp = Some(tick_add(now, d));
    }
    let b = if response { &mut s.rep } else { &mut s.req };
    let cur = if tick_is_expired(b.analyse_exp, now) { TICK_ETERNITY } else { b.analyse_exp };
    b.analyse_exp = tick_first(cur, s.rules_exp);
}

/// proto_tcp.c:tcp_inspect_request() in 1.5.0 (`AN_REQ_INSPECT_FE`, `AN_REQ_INSPECT_BE`):
/// the `tcp-request content` rules of `s->be` (the frontend until a backend is chosen).
/// A condition missing data makes the analyser wait, at most `inspect-delay`; `reject`
/// aborts both buffers and kills the connection (`PR--` in the log). In an HTTP
/// frontend the request head is parsed first (`http_wait_for_request`).
pub fn tcp_inspect_request(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    // An HTTP stream's rules see its parsed head, as 1.5's smp_prefetch_http() made sure
    // (and as 2.6's HTX streams always have it): parse it first.
    if s.req.analysers.contains(Analysers::AN_REQ_WAIT_HTTP) {
        let r = crate::haproxy::proto_http::http_wait_for_request(w, s, Analysers::AN_REQ_WAIT_HTTP);
        if r != AnalyserResult::Continue {
            return r;
        }
    }
    let px = s.be;
    let delay = w.proxies[px.idx()].tcp_req.inspect_delay;
    let final_ = inspect_is_final(w, s, false, delay);
    let span = tracing::debug_span!(
        names::TCP_INSPECT_REQUEST,
        sess = s.uniq_id,
        an = an_bit.coded(),
        proxy = w.proxies[px.idx()].name.as_str(),
        bytes = s.req.i(),
        final_,
        verdict = tracing::field::Empty,
        rule = tracing::field::Empty,
    );
    let _g = span.enter();
    crate::haproxy::step_point(names::TCP_INSPECT_REQUEST, || crate::haproxy::View::Session(w, &*s));
    let (verdict, at) = tcp_exec_rules(w, s, px, TcpRuleSet::Content, final_);
    span.record("verdict", tracing::field::debug(verdict));
    if let Some(i) = at {
        span.record("rule", i);
    }
    match verdict {
        TcpVerdict::Miss => {
            s.req.buffer_dont_connect();
            arm_rules_exp(w, s, false, delay);
            AnalyserResult::Wait
        }
        TcpVerdict::Accept | TcpVerdict::Close => {
            s.req.analysers.remove(an_bit);
            s.req.analyse_exp = TICK_ETERNITY;
            s.rules_exp = TICK_ETERNITY;
            s.req.flags.remove(BufFlags::BF_ANA_TIMEOUT);
            AnalyserResult::Continue
        }
        TcpVerdict::Reject | TcpVerdict::Abort => {
            if verdict == TcpVerdict::Reject {
                w.proxies[s.fe.idx()].counters.denied_req += 1;
            }
            s.si[0].flags.insert(SiFlags::SI_FL_NOLINGER);
            s.req.buffer_abort();
            s.rep.buffer_abort();
            // What waited for the rules never leaves: the buffers empty, the shutdowns
            // (which wait for an empty buffer) happen.
            s.req.buffer_cut_tail();
            s.rep.buffer_cut_tail();
            // Nothing more to analyse on either side: the session ends.
            s.req.analysers = Analysers::empty();
            s.rep.analysers = Analysers::empty();
            s.req.analyse_exp = TICK_ETERNITY;
            s.rules_exp = TICK_ETERNITY;
            s.req.flags.remove(BufFlags::BF_ANA_TIMEOUT);
            s.set_err(SnErr::SN_ERR_PRXCOND);
            s.set_finst(SnFinst::SN_FINST_R);
            AnalyserResult::Abort
        }
    }
}

/// proto_tcp.c:tcp_inspect_response() in 1.5.0 (`AN_RES_INSPECT`): the backend's
/// `tcp-response content` rules, waiting at most `tcp-response inspect-delay` for data.
/// `reject` aborts both buffers; `close` closes the server side once the rules end.
pub fn tcp_inspect_response(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let px = s.be;
    let delay = w.proxies[px.idx()].tcp_rep.inspect_delay;
    let final_ = inspect_is_final(w, s, true, delay);
    let span = tracing::debug_span!(
        names::TCP_INSPECT_RESPONSE,
        sess = s.uniq_id,
        an = an_bit.coded(),
        proxy = w.proxies[px.idx()].name.as_str(),
        bytes = s.rep.i(),
        final_,
        verdict = tracing::field::Empty,
        rule = tracing::field::Empty,
    );
    let _g = span.enter();
    crate::haproxy::step_point(names::TCP_INSPECT_RESPONSE, || crate::haproxy::View::Session(w, &*s));
    let (verdict, at) = tcp_exec_rules(w, s, px, TcpRuleSet::ResContent, final_);
    span.record("verdict", tracing::field::debug(verdict));
    if let Some(i) = at {
        span.record("rule", i);
    }
    match verdict {
        TcpVerdict::Miss => {
            arm_rules_exp(w, s, true, delay);
            AnalyserResult::Wait
        }
        TcpVerdict::Accept => {
            s.rep.analysers.remove(an_bit);
            s.rep.analyse_exp = TICK_ETERNITY;
            s.rules_exp = TICK_ETERNITY;
            s.rep.flags.remove(BufFlags::BF_ANA_TIMEOUT);
            AnalyserResult::Continue
        }
        TcpVerdict::Close => {
            s.si[1].flags.insert(SiFlags::SI_FL_NOLINGER | SiFlags::SI_FL_NOHALF);
            s.rep.buffer_shutr_now();
            s.req.buffer_shutw_now();
            s.rep.analysers.remove(an_bit);
            s.rep.analyse_exp = TICK_ETERNITY;
            s.rules_exp = TICK_ETERNITY;
            s.rep.flags.remove(BufFlags::BF_ANA_TIMEOUT);
            AnalyserResult::Continue
        }
        TcpVerdict::Reject | TcpVerdict::Abort => {
            w.proxies[s.fe.idx()].counters.denied_resp += 1;
            if s.be != s.fe {
                w.proxies[s.be.idx()].counters.denied_resp += 1;
            }
            s.si[1].flags.insert(SiFlags::SI_FL_NOLINGER);
            s.rep.buffer_abort();
            s.req.buffer_abort();
            s.req.buffer_cut_tail();
            s.rep.buffer_cut_tail();
            s.rep.analysers = Analysers::empty();
            s.req.analysers = Analysers::empty();
            s.rep.analyse_exp = TICK_ETERNITY;
            s.rules_exp = TICK_ETERNITY;
            s.rep.flags.remove(BufFlags::BF_ANA_TIMEOUT);
            s.set_err(SnErr::SN_ERR_PRXCOND);
            s.set_finst(SnFinst::SN_FINST_D);
            AnalyserResult::Abort
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn parse(line: &str, cap: ProxyCap) -> Result<TcpParsed, String> {
        tcp_parse_tcp_req(&words(line), cap, "frontend 'fe'", &AclList::default())
    }

    #[test]
    fn lines_parse_into_delays_and_rules_of_the_right_list() {
        assert!(matches!(
            parse("tcp-request inspect-delay 5s", ProxyCap::PR_CAP_FE),
            Ok(TcpParsed::InspectDelay(5000))
        ));
        assert!(matches!(
            parse("tcp-request content reject if { req.len lt 4 }", ProxyCap::PR_CAP_FE),
            Ok(TcpParsed::Rule(TcpRuleSet::Content, TcpRule { act: TcpAct::Reject, cond: Some(_), .. }))
        ));
        assert!(matches!(
            parse("tcp-request session set-var(sess.a) src", ProxyCap::PR_CAP_FE),
            Ok(TcpParsed::Rule(TcpRuleSet::Session, TcpRule { act: TcpAct::SetVar(..), .. }))
        ));
        assert!(matches!(
            parse("tcp-response content close", ProxyCap::PR_CAP_BE),
            Ok(TcpParsed::Rule(TcpRuleSet::ResContent, TcpRule { act: TcpAct::Close, .. }))
        ));
    }

    #[test]
    fn bad_lines_are_refused_with_haproxys_reasons() {
        let e = |l: &str, c| parse(l, c).err().unwrap_or_default();
        assert!(e("tcp-request connection accept", ProxyCap::PR_CAP_BE).contains("is not a frontend"));
        assert!(e("tcp-response content accept", ProxyCap::PR_CAP_FE).contains("has no backend capability"));
        assert!(e("tcp-request inspect-delay x", ProxyCap::PR_CAP_FE).contains("expects a positive delay"));
        assert!(e("tcp-request content frob", ProxyCap::PR_CAP_FE).contains("but got 'frob'"));
        assert!(e("tcp-request connection set-log-level info", ProxyCap::PR_CAP_FE).contains("but got"));
        assert!(
            e("tcp-request content accept foo", ProxyCap::PR_CAP_FE).contains("unexpected argument 'foo'")
        );
        assert!(e("tcp-request", ProxyCap::PR_CAP_FE).contains("missing argument"));
        // switch-mode (2.6): a frontend's content rules, mode http, an HTTP/1 multiplexer.
        let fe = ProxyCap::PR_CAP_FE;
        assert_eq!(
            e("tcp-request content switch-mode http", ProxyCap::PR_CAP_BE),
            "'tcp-request switch-mode' not allowed because frontend 'fe' has no frontend capability"
        );
        assert_eq!(
            e("tcp-request content switch-mode", fe),
            "'tcp-request switch-mode' expects a mode as argument."
        );
        assert_eq!(
            e("tcp-request content switch-mode tcp", fe),
            "'tcp-request switch-mode' expects a valid mode (got 'tcp')."
        );
        assert_eq!(
            e("tcp-request content switch-mode http proto", fe),
            "'tcp-request switch-mode': 'proto' expects a protocol as argument."
        );
        assert_eq!(
            e("tcp-request content switch-mode http proto none", fe),
            "MUX protocol 'none' is not compatible with the selected mode"
        );
        assert!(e("tcp-request content switch-mode http proto h2", fe).contains("not implemented by haflow"));
        assert!(e("tcp-request session switch-mode http", fe).contains("but got 'switch-mode'"));
        assert!(matches!(
            parse("tcp-request content switch-mode http proto h1 if { req.len gt 0 }", fe),
            Ok(TcpParsed::Rule(
                TcpRuleSet::Content,
                TcpRule { act: TcpAct::SwitchModeHttp, cond: Some(_), .. }
            ))
        ));
    }

    #[test]
    fn http_messages_complete_as_2_6_sets_eoi() {
        assert!(http_msg_complete(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", true));
        assert!(!http_msg_complete(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nab", true));
        assert!(http_msg_complete(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc", true));
        assert!(!http_msg_complete(b"HTTP/1.1 200 OK\r\n", true));
        assert!(http_msg_complete(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", false));
    }
}
