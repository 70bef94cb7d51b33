//! HTTP actions: the `http-request`, `http-response` and `http-after-response` rules,
//! parsed and run, and the replies they build (`deny`, `return`, `redirect`,
//! `http-error`).
//!
//! 1.5 parsed and ran these rules in `proto_http.c` (`parse_http_req_cond`,
//! `http_req_get_intercept_rule`, `http_res_get_intercept_rule`); HAProxy 2.6 moved the
//! actions to `http_act.c` and the replies to `http_htx.c`, which this file reproduces with
//! 1.5's function names for the rule loops. A rule is an action and an optional
//! condition. One keyword is one `HttpAct` variant and one arm of `parse_http_rule`, so
//! that a feature adding an action (`cache-use`) adds a variant and an arm.
//!
//! Running a rule is two steps: `eval_rule` evaluates the condition and every sample
//! and log format the action needs, with the session lent read-only (variables are
//! written there: `set-var` is done at that point), and returns what to change as a
//! `RuleStep`; `apply_step` then changes the message. Rules are evaluated only for
//! proxies that have some: a configuration without rules never enters this file.

use std::sync::Arc;

use crate::haproxy::acl::{AclList, Condition, acl_match_cond, parse_acl_cond};
use crate::haproxy::cache::{CacheRef, http_action_req_cache_use, http_action_store_cache};
use crate::haproxy::h1::{Head, StartLine};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::http;
use crate::haproxy::log::{LEVELS, LogFmt, build_logline, parse_logformat_string};
use crate::haproxy::pattern::PatMatch;
use crate::haproxy::proto_http::{HttpMsgFlags, MsgBodyWait, http_wait_for_msg_body};
use crate::haproxy::regex::{MyRegex, exp_replace, regex_comp, regex_exec_match2, regex_exec2};
use crate::haproxy::sample::{
    SampleExpr, SmpCtx, SmpDir, SmpType, sample_fetch_as_type, sample_parse_word, sample_process,
    with_smp_ctx,
};
use crate::haproxy::session::{AddrDir, AddrLevel, Session, SnErr};
use crate::haproxy::stick_table::{StkCtrAct, StkDataType, StkKey};
use crate::haproxy::stream_interface::Side;
use crate::haproxy::vars::{VarName, register_name};
use crate::ids::{CacheId, ProxyId};
use crate::trace::names;

/// Which rule list a rule belongs to (`http-request`, `http-response`,
/// `http-after-response`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleSet {
    /// `http-request`.
    Req,
    /// `http-response`.
    Res,
    /// `http-after-response`.
    AfterRes,
}

impl RuleSet {
    /// The keyword, for messages.
    pub fn keyword(self) -> &'static str {
        match self {
            RuleSet::Req => "http-request",
            RuleSet::Res => "http-response",
            RuleSet::AfterRes => "http-after-response",
        }
    }

    fn dir(self) -> SmpDir {
        if self == RuleSet::Req { SmpDir::Req } else { SmpDir::Res }
    }
}

/// The payload of an `http_reply` (`HTTP_REPLY_*`).
#[derive(Clone, Debug)]
pub enum ReplyBody {
    /// No payload option: `deny` sends the proxy's error message for the status,
    /// `return` an empty body.
    None,
    /// `string TEXT` or `file FILE`: a fixed body.
    Raw(Vec<u8>),
    /// `lf-string FMT` or `lf-file FILE`: a log format evaluated for each reply.
    Lf(LogFmt),
    /// `errorfile FILE`: a whole HTTP message.
    ErrMsg(Arc<[u8]>),
    /// `errorfiles NAME`: the message of an `http-errors` section, resolved once every
    /// section is known (`None` until then, or when it has none for the status).
    ErrFiles(String, Option<Arc<[u8]>>),
    /// `default-errorfiles`: the proxy's own error message for the status.
    DefaultErrorfiles,
}

/// A reply a rule or `http-error` sends (`struct http_reply`).
#[derive(Clone, Debug)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// `content-type`.
    pub ctype: Option<String>,
    /// `hdr NAME FMT` headers, in order.
    pub hdrs: Vec<(String, LogFmt)>,
    /// The payload.
    pub body: ReplyBody,
}

/// What a `redirect` builds its location from (`REDIRECT_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectType {
    /// `location`: used as is.
    Location,
    /// `prefix`: the prefix, then the original path.
    Prefix,
    /// `scheme`: `scheme://host` then the original path.
    Scheme,
}

/// A `redirect` rule (`struct redirect_rule`).
#[derive(Clone, Debug)]
pub struct RedirectRule {
    /// How the location is built.
    pub rtype: RedirectType,
    /// The location, prefix or scheme (a log format).
    pub value: LogFmt,
    /// 301, 302 (default), 303, 307 or 308.
    pub code: u16,
    /// `drop-query`.
    pub drop_query: bool,
    /// `append-slash`.
    pub append_slash: bool,
    /// `ignore-empty`: an empty location skips the rule.
    pub ignore_empty: bool,
    /// `set-cookie` / `clear-cookie`: the `Set-Cookie` value.
    pub cookie: Option<String>,
}

/// The part of the request line a `set-*`/`replace-*` action changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriPart {
    /// The path (`set-path`, `replace-path`).
    Path,
    /// Path and query (`set-pathq`, `replace-pathq`).
    Pathq,
    /// The query string, without `?` (`set-query`).
    Query,
    /// The whole target (`set-uri`, `replace-uri`).
    Uri,
}

/// Which timeout `set-timeout` changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutKind {
    /// `server`.
    Server,
    /// `tunnel`.
    Tunnel,
    /// `client` (2.7's; refused here as in 2.6).
    Client,
}

/// An action (`enum act_name` + `struct act_rule`'s arguments).
#[derive(Clone, Debug)]
pub enum HttpAct {
    /// `allow`: stop evaluating this list.
    Allow,
    /// `deny [deny_status N | status N] [reply options]`.
    Deny(HttpReply),
    /// `return [status N] [reply options]`.
    Return(HttpReply),
    /// `redirect ...`.
    Redirect(RedirectRule),
    /// `set-header NAME FMT` / `add-header NAME FMT`.
    SetHeader {
        /// The header name.
        name: String,
        /// The value.
        value: LogFmt,
        /// `add-header`: keep existing ones.
        add: bool,
    },
    /// `del-header NAME [-m METH]`.
    /// `-m reg` compiles the name when the rule is parsed (case-sensitive, against the
    /// lowercased names of the head, as 2.6 runs it on HTX's names).
    DelHeader(String, PatMatch, Option<MyRegex>),
    /// `replace-header NAME REGEX FMT` (whole lines) or `replace-value` (each
    /// comma-separated value).
    ReplaceHeader {
        /// The header name.
        name: String,
        /// What to match.
        re: MyRegex,
        /// The replacement, with `\N` references.
        with: LogFmt,
        /// `replace-value`.
        values: bool,
    },
    /// `set-path`, `set-pathq`, `set-query`, `set-uri`.
    SetUri(UriPart, LogFmt),
    /// `replace-path`, `replace-pathq`, `replace-uri`.
    ReplaceUri(UriPart, MyRegex, LogFmt),
    /// `set-method FMT`.
    SetMethod(LogFmt),
    /// `set-status CODE [reason TEXT]`.
    SetStatus(u16, Option<String>),
    /// `set-var(NAME) EXPR`.
    SetVar(VarName, SampleExpr),
    /// `set-var-fmt(NAME) FMT`.
    SetVarFmt(VarName, LogFmt),
    /// `unset-var(NAME)`.
    UnsetVar(VarName),
    /// `capture EXPR len N` (request) or `capture EXPR id N`.
    Capture(SampleExpr, CaptureSlot),
    /// `set-log-level LEVEL` (`silent` is 8).
    SetLogLevel(u8),
    /// `set-timeout server|tunnel TIME|EXPR` (an expression gives milliseconds).
    SetTimeout(TimeoutKind, Result<u64, SampleExpr>),
    /// `set-src EXPR`: the client address seen from now on (its port kept).
    SetSrc(SampleExpr),
    /// `set-dst EXPR`: the address the client is taken to have reached.
    SetDst(SampleExpr),
    /// `set-src-port EXPR`: the client port seen from now on (its address kept).
    SetSrcPort(SampleExpr),
    /// `set-dst-port EXPR`: the port the client is taken to have reached (with `option
    /// transparent`, the port the server connection goes to).
    SetDstPort(SampleExpr),
    /// `strict-mode on|off` (2.6): whether a rewrite that does not fit in the buffer
    /// fails the transaction (on, the default at the start of each rule list) or is
    /// skipped (off, `HTTP_MSGF_SOFT_RW`).
    StrictMode(bool),
    /// `wait-for-body time T [at-least N]` (2.6): hold the rules until the body is
    /// complete, the buffer full, `N` body bytes arrived, or `T` milliseconds passed
    /// (then 408 to a request, 504 to a response).
    WaitForBody {
        /// `time`: how long to wait, in milliseconds.
        time: u64,
        /// `at-least`: enough body bytes (0: the whole body).
        bytes: u64,
    },
    /// `auth [realm R]` (1.5): answer 401 with `WWW-Authenticate: Basic realm="R"` (the
    /// proxy's name by default).
    Auth(Option<String>),
    /// `reject` (2.6's `http-request reject`): close the client connection at once,
    /// without an answer.
    Reject,
    /// `http-request cache-use NAME` (2.6): answer from the cache when it holds the object.
    CacheUse(CacheRef),
    /// `http-response cache-store NAME` (2.6): keep the response in the cache.
    CacheStore(CacheRef),
    /// `track-sc0|1|2 KEY [table NAME]`: track the key's entry in counter `slot`.
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
    /// `sc-inc-gpc0(N)`, `sc-inc-gpc1(N)`, `sc-set-gpt0(N) VALUE`.
    ScAct(usize, ScAction),
}

/// What an `sc-*` action does (the value of `sc-set-gpt0` may be an expression).
#[derive(Clone, Debug)]
pub enum ScAction {
    /// `sc-inc-gpc0` / `sc-inc-gpc1`: the counter and its rate.
    IncGpc(StkDataType, StkDataType),
    /// `sc-set-gpt0 INT|EXPR`.
    SetGpt0(Result<i64, SampleExpr>),
}

/// Where `http-request capture` stores its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureSlot {
    /// The slot (`capture.req.hdr(N)`).
    pub id: usize,
    /// Longest value kept.
    pub len: usize,
}

/// Where a rule was written (`rule->conf.file`, `rule->conf.line`): what the
/// `last_rule_file` and `last_rule_line` fetches tell of the rule that ended a list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleConf {
    /// The configuration file.
    pub file: Arc<str>,
    /// The line in it.
    pub line: usize,
}

/// One rule (`struct act_rule`).
#[derive(Clone, Debug)]
pub struct HttpRule {
    /// What to do.
    pub act: HttpAct,
    /// When (none: always).
    pub cond: Option<Condition>,
    /// Where it was written.
    pub conf: RuleConf,
}

/// What a rule list ended with (`enum rule_result`).
#[derive(Debug)]
pub enum RuleResult {
    /// Every rule ran (`HTTP_RULE_RES_CONT`).
    Cont,
    /// `allow` stopped the list (`HTTP_RULE_RES_STOP`).
    Stop,
    /// `deny` (`HTTP_RULE_RES_DENY`): the reply to send.
    Deny(ReplyMsg),
    /// `return`, `redirect` or `auth` (`HTTP_RULE_RES_DONE`): the reply to send.
    Done(ReplyMsg),
    /// `wait-for-body` needs more of the body (`HTTP_RULE_RES_YIELD`): the list resumes
    /// at the same rule on the next call.
    Yield,
    /// `wait-for-body` ran out of time and answered 408 or 504 itself
    /// (`HTTP_RULE_RES_ABRT`).
    Abort,
    /// `reject` (`HTTP_RULE_RES_ABRT` after `stream_abort()`): close without an answer.
    Reject,
    /// A rewrite did not fit in the buffer in strict mode (`HTTP_RULE_RES_ERROR`): the
    /// caller answers 500.
    Error,
}

/// Where a yielded rule list resumes (2.6's `s->current_rule_list` and
/// `s->current_rule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleResume {
    /// The proxy whose list yielded.
    pub px: ProxyId,
    /// Which list.
    pub set: RuleSet,
    /// The rule to run again.
    pub idx: usize,
}

/// A reply ready to go: its status and bytes; `None` bytes mean "the proxy's error
/// message for the status".
#[derive(Debug)]
pub struct ReplyMsg {
    /// The status.
    pub status: u16,
    /// The whole message, or `None` for the error message of the status.
    pub msg: Option<Vec<u8>>,
}

// ---------------------------------------------------------------------------------------
// Parsing

fn status_arg(v: Option<&String>, what: &str) -> Result<u16, String> {
    v.and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| format!("'{what}' expects a status code between 200 and 599"))
}

fn lf(text: &str) -> Result<LogFmt, String> {
    parse_logformat_string(text)
}

/// The regex of a `replace-*` or `del-header -m reg` rule: http_act.c compiles them all
/// case-sensitive, with groups.
fn regex(text: &str) -> Result<MyRegex, String> {
    regex_comp(text, true, true)
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path)
        .map_err(|e| format!("failed to open file '{path}' : {}", crate::haproxy::proto_tcp::os_reason(&e)))
}

/// http_htx.c:http_parse_http_reply() in 2.6: the options of `deny`, `return` and
/// `http-error` from `a[i..]`; returns the reply and where the options stopped.
pub fn http_parse_http_reply(
    a: &[String],
    mut i: usize,
    default_status: u16,
) -> Result<(HttpReply, usize), String> {
    let mut r = HttpReply { status: default_status, ctype: None, hdrs: Vec::new(), body: ReplyBody::None };
    let mut payloads = 0;
    while let Some(kw) = a.get(i) {
        let val = a.get(i + 1);
        let need = || val.cloned().ok_or_else(|| format!("'{kw}' expects an argument."));
        match kw.as_str() {
            "status" | "deny_status" => r.status = status_arg(val, kw)?,
            "content-type" => r.ctype = Some(need()?),
            "string" => r.body = ReplyBody::Raw(need()?.into_bytes()),
            "lf-string" => r.body = ReplyBody::Lf(lf(&need()?)?),
            "file" => r.body = ReplyBody::Raw(read_file(&need()?)?),
            "lf-file" => {
                let f = read_file(&need()?)?;
                r.body = ReplyBody::Lf(lf(&String::from_utf8_lossy(&f))?);
            }
            "errorfile" => r.body = ReplyBody::ErrMsg(read_file(&need()?)?.into()),
            "errorfiles" => r.body = ReplyBody::ErrFiles(need()?, None),
            "default-errorfiles" => {
                r.body = ReplyBody::DefaultErrorfiles;
                payloads += 1;
                i += 1;
                continue;
            }
            "hdr" => {
                let (Some(n), Some(v)) = (a.get(i + 1), a.get(i + 2)) else {
                    return Err("'hdr' expects <name> and <fmt> as arguments.".into());
                };
                let lname = n.to_ascii_lowercase();
                if matches!(lname.as_str(), "content-length" | "transfer-encoding" | "content-type") {
                    return Err(format!("'hdr' : '{n}' header is forbidden."));
                }
                r.hdrs.push((n.clone(), lf(v)?));
                i += 3;
                continue;
            }
            _ => break,
        }
        if matches!(kw.as_str(), "string" | "lf-string" | "file" | "lf-file" | "errorfile" | "errorfiles") {
            payloads += 1;
        }
        i += 2;
    }
    if payloads > 1 {
        return Err("only one payload among 'string', 'lf-string', 'file', 'lf-file', 'errorfile', 'errorfiles' and 'default-errorfiles' is allowed.".into());
    }
    let is_errmsg =
        matches!(r.body, ReplyBody::ErrMsg(_) | ReplyBody::ErrFiles(..) | ReplyBody::DefaultErrorfiles);
    if is_errmsg && (r.ctype.is_some() || !r.hdrs.is_empty()) {
        return Err("'content-type' and 'hdr' are not allowed with an error file.".into());
    }
    let has_body =
        matches!(&r.body, ReplyBody::Raw(b) if !b.is_empty()) || matches!(r.body, ReplyBody::Lf(_));
    if has_body && r.ctype.is_none() {
        return Err("a content type must be defined when non-empty payload is configured.".into());
    }
    if !has_body && !is_errmsg && r.ctype.is_some() {
        // HAProxy drops it with a warning; an empty body has no type.
        r.ctype = None;
    }
    Ok((r, i))
}

/// The text between parentheses of `set-var(NAME)`.
fn paren_arg<'a>(kw: &'a str, prefix: &str) -> Option<&'a str> {
    kw.strip_prefix(prefix)?.strip_prefix('(')?.strip_suffix(')')
}

fn redirect_rule(a: &[String]) -> Result<(RedirectRule, usize), String> {
    let mut rtype = None;
    let mut value = None;
    let mut r = RedirectRule {
        rtype: RedirectType::Location,
        value: LogFmt::default(),
        code: 302,
        drop_query: false,
        append_slash: false,
        ignore_empty: false,
        cookie: None,
    };
    let mut i = 1;
    while let Some(w) = a.get(i) {
        match w.as_str() {
            "location" | "prefix" | "scheme" => {
                rtype = Some(match w.as_str() {
                    "location" => RedirectType::Location,
                    "prefix" => RedirectType::Prefix,
                    _ => RedirectType::Scheme,
                });
                value = Some(a.get(i + 1).ok_or_else(|| format!("'redirect {w}' expects a value"))?.clone());
                i += 2;
            }
            "code" => {
                r.code = a
                    .get(i + 1)
                    .and_then(|c| c.parse().ok())
                    .filter(|c| [301, 302, 303, 307, 308].contains(c))
                    .ok_or("'redirect code' expects 301, 302, 303, 307 or 308.")?;
                i += 2;
            }
            "drop-query" => {
                r.drop_query = true;
                i += 1;
            }
            "append-slash" => {
                r.append_slash = true;
                i += 1;
            }
            "ignore-empty" => {
                r.ignore_empty = true;
                i += 1;
            }
            "set-cookie" | "clear-cookie" => {
                let c = a.get(i + 1).ok_or_else(|| format!("'{w}' expects a cookie name"))?;
                r.cookie = Some(if w == "set-cookie" {
                    format!("{c}; path=/;")
                } else {
                    let name = c.split('=').next().unwrap_or(c);
                    format!("{name}=; path=/; Max-Age=0; Expires=Thu, 01-Jan-1970 00:00:01 GMT;")
                });
                i += 2;
            }
            _ => break,
        }
    }
    let (Some(t), Some(v)) = (rtype, value) else {
        return Err("'redirect' expects 'code', 'prefix', 'location', 'scheme', 'set-cookie', 'clear-cookie', 'drop-query', 'ignore-empty' or 'append-slash'.".into());
    };
    r.rtype = t;
    r.value = lf(&v)?;
    Ok((r, i))
}

/// The actions each list accepts, for the error message.
const REQ_ACTIONS: &str = "'add-header', 'allow', 'auth', 'cache-use', 'capture', 'del-header', 'deny', 'redirect', 'reject', 'replace-header', 'replace-path', 'replace-pathq', 'replace-uri', 'replace-value', 'return', 'sc-inc-gpc0', 'sc-inc-gpc1', 'sc-set-gpt0', 'set-dst', 'set-dst-port', 'set-header', 'set-log-level', 'set-method', 'set-path', 'set-pathq', 'set-query', 'set-src', 'set-src-port', 'set-timeout', 'set-uri', 'set-var', 'set-var-fmt', 'strict-mode', 'track-sc0', 'track-sc1', 'track-sc2', 'unset-var', 'wait-for-body'";
const RES_ACTIONS: &str = "'add-header', 'allow', 'cache-store', 'del-header', 'deny', 'redirect', 'replace-header', 'replace-value', 'return', 'sc-inc-gpc0', 'sc-inc-gpc1', 'sc-set-gpt0', 'set-header', 'set-log-level', 'set-status', 'set-var', 'set-var-fmt', 'strict-mode', 'track-sc0', 'track-sc1', 'track-sc2', 'unset-var', 'wait-for-body'";

/// proto_http.c:parse_http_req_cond() and parse_http_res_cond() in 1.5-dev8 (2.6's
/// actions): the words after `http-request`, `http-response` or `http-after-response`.
/// `captures` counts the proxy's capture slots (`http-request capture ... len` adds one).
pub fn parse_http_rule(
    set: RuleSet,
    a: &[String],
    acls: &AclList,
    captures: &mut usize,
) -> Result<HttpRule, String> {
    let Some(kw) = a.first() else { return Err("expects an action.".into()) };
    let exact = |n: usize, what: &str| -> Result<(), String> {
        if a.len() - 1 < n { Err(format!("'{kw}' expects {what}.")) } else { Ok(()) }
    };
    let (act, used) = match kw.as_str() {
        "allow" => (HttpAct::Allow, 1),
        "deny" => {
            let def = if set == RuleSet::Req { 403 } else { 502 };
            if set == RuleSet::AfterRes {
                return Err(unknown_action(set, kw));
            }
            let (r, i) = http_parse_http_reply(a, 1, def)?;
            (HttpAct::Deny(r), i)
        }
        "return" if set != RuleSet::AfterRes => {
            let (r, i) = http_parse_http_reply(a, 1, 200)?;
            (HttpAct::Return(r), i)
        }
        "redirect" if set != RuleSet::AfterRes => {
            let (r, i) = redirect_rule(a)?;
            (HttpAct::Redirect(r), i)
        }
        "set-header" | "add-header" => {
            exact(2, "exactly 2 arguments")?;
            (HttpAct::SetHeader { name: a[1].clone(), value: lf(&a[2])?, add: kw == "add-header" }, 3)
        }
        "del-header" => {
            exact(1, "at least 1 argument")?;
            let (m, used) = if a.get(2).map(String::as_str) == Some("-m") {
                let m = a.get(3).ok_or("'-m' expects a matching method")?;
                let pm = match m.as_str() {
                    "str" => PatMatch::Str,
                    "beg" => PatMatch::Beg,
                    "end" => PatMatch::End,
                    "sub" => PatMatch::Sub,
                    "reg" => PatMatch::Reg,
                    _ => return Err(format!("'-m' : unsupported matching method '{m}'")),
                };
                (pm, 4)
            } else {
                (PatMatch::Str, 2)
            };
            let re = if m == PatMatch::Reg { Some(regex(&a[1])?) } else { None };
            (HttpAct::DelHeader(a[1].clone(), m, re), used)
        }
        "replace-header" | "replace-value" => {
            exact(3, "exactly 3 arguments")?;
            (
                HttpAct::ReplaceHeader {
                    name: a[1].to_ascii_lowercase(),
                    re: regex(&a[2])?,
                    with: lf(&a[3])?,
                    values: kw == "replace-value",
                },
                4,
            )
        }
        "set-path" | "set-pathq" | "set-query" | "set-uri" if set == RuleSet::Req => {
            exact(1, "exactly 1 argument")?;
            let part = match kw.as_str() {
                "set-path" => UriPart::Path,
                "set-pathq" => UriPart::Pathq,
                "set-query" => UriPart::Query,
                _ => UriPart::Uri,
            };
            (HttpAct::SetUri(part, lf(&a[1])?), 2)
        }
        "replace-path" | "replace-pathq" | "replace-uri" if set == RuleSet::Req => {
            exact(2, "exactly 2 arguments")?;
            let part = match kw.as_str() {
                "replace-path" => UriPart::Path,
                "replace-pathq" => UriPart::Pathq,
                _ => UriPart::Uri,
            };
            (HttpAct::ReplaceUri(part, regex(&a[1])?, lf(&a[2])?), 3)
        }
        "set-method" if set == RuleSet::Req => {
            exact(1, "exactly 1 argument")?;
            (HttpAct::SetMethod(lf(&a[1])?), 2)
        }
        "set-status" if set != RuleSet::Req => {
            let code = a
                .get(1)
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (100..=999).contains(c))
                .ok_or("'set-status' expects an HTTP status code between 100 and 999.")?;
            if a.get(2).map(String::as_str) == Some("reason") {
                let r = a.get(3).ok_or("'set-status' : missing reason")?;
                (HttpAct::SetStatus(code, Some(r.clone())), 4)
            } else {
                (HttpAct::SetStatus(code, None), 2)
            }
        }
        "capture" if set == RuleSet::Req => {
            exact(3, "'<sample> len <length>' or '<sample> id <id>'")?;
            let expr = sample_parse_word(&a[1]).map_err(|e| format!("'capture' : {e}"))?;
            let n: usize = a[3].parse().map_err(|_| format!("'capture' : invalid number '{}'", a[3]))?;
            let slot = match a[2].as_str() {
                "len" => {
                    *captures += 1;
                    CaptureSlot { id: *captures - 1, len: n }
                }
                "id" => CaptureSlot { id: n, len: usize::MAX },
                _ => return Err("'capture' expects 'len' or 'id'".into()),
            };
            (HttpAct::Capture(expr, slot), 4)
        }
        "set-log-level" => {
            let l = a.get(1).ok_or("'set-log-level' expects a level")?;
            let lvl = if l == "silent" {
                8
            } else {
                LEVELS.iter().position(|x| x == l).ok_or_else(|| format!("unknown log level '{l}'"))? as u8
            };
            (HttpAct::SetLogLevel(lvl), 2)
        }
        "set-timeout" if set == RuleSet::Req => {
            let kind = match a.get(1).map(String::as_str) {
                Some("server") => TimeoutKind::Server,
                Some("tunnel") => TimeoutKind::Tunnel,
                Some("client") => TimeoutKind::Client,
                _ => return Err("'set-timeout' expects 'server' or 'tunnel'".into()),
            };
            if kind == TimeoutKind::Client {
                return Err("'set-timeout' : 'client' timeout is not supported (HAProxy 2.6 accepts 'server' and 'tunnel').".into());
            }
            let v = a.get(2).ok_or("'set-timeout' expects a timeout value")?;
            let t = match crate::haproxy::standard::parse_time_err(v) {
                Ok(ms) => Ok(ms),
                Err(_) => Err(sample_parse_word(v).map_err(|e| format!("'set-timeout' : {e}"))?),
            };
            (HttpAct::SetTimeout(kind, t), 3)
        }
        "set-src" | "set-dst" if set == RuleSet::Req => {
            exact(1, "a sample expression")?;
            let e = sample_parse_word(&a[1]).map_err(|e| format!("'{kw}' : {e}"))?;
            (if kw == "set-src" { HttpAct::SetSrc(e) } else { HttpAct::SetDst(e) }, 2)
        }
        "set-src-port" | "set-dst-port" if set == RuleSet::Req => {
            exact(1, "a sample expression")?;
            let e = sample_parse_word(&a[1]).map_err(|e| format!("'{kw}' : {e}"))?;
            (if kw == "set-src-port" { HttpAct::SetSrcPort(e) } else { HttpAct::SetDstPort(e) }, 2)
        }
        "wait-for-body" if set != RuleSet::AfterRes => parse_http_wait_for_body(a)?,
        "auth" if set == RuleSet::Req => match a.get(1).map(String::as_str) {
            Some("realm") => {
                let r = a.get(2).filter(|r| !r.is_empty()).ok_or("missing realm value.")?;
                (HttpAct::Auth(Some(r.clone())), 3)
            }
            _ => (HttpAct::Auth(None), 1),
        },
        "reject" if set == RuleSet::Req => (HttpAct::Reject, 1),
        "strict-mode" => match a.get(1).map(String::as_str) {
            Some("on") => (HttpAct::StrictMode(true), 2),
            Some("off") => (HttpAct::StrictMode(false), 2),
            _ => return Err("'strict-mode' expects 'on' or 'off'".into()),
        },
        "cache-use" if set == RuleSet::Req => (HttpAct::CacheUse(parse_cache_rule(a)?), 2),
        "cache-store" if set == RuleSet::Res => (HttpAct::CacheStore(parse_cache_rule(a)?), 2),
        "track-sc0" | "track-sc1" | "track-sc2" if set != RuleSet::AfterRes => {
            exact(1, "a sample expression")?;
            let expr = sample_parse_word(&a[1]).map_err(|e| format!("'{kw}' : {e}"))?;
            let slot = usize::from(kw.as_bytes()[8] - b'0');
            if a.get(2).map(String::as_str) == Some("table") {
                let t = a.get(3).ok_or("missing table name")?;
                (HttpAct::TrackSc { slot, expr, table_name: Some(t.clone()), table: None }, 4)
            } else {
                (HttpAct::TrackSc { slot, expr, table_name: None, table: None }, 2)
            }
        }
        k if k.starts_with("sc-inc-gpc0(")
            || k.starts_with("sc-inc-gpc1(")
            || k.starts_with("sc-set-gpt0(") =>
        {
            let (name, rest) = k.split_at(11);
            let slot = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n < crate::haproxy::stick_table::MAX_SESS_STKCTR)
                .ok_or_else(|| {
                    format!("'{name}' : invalid stick counter, expects 0 to 2 between parentheses")
                })?;
            use crate::haproxy::stick_table::StkDataType::*;
            match name {
                "sc-inc-gpc0" => {
                    (HttpAct::ScAct(slot, ScAction::IncGpc(STKTABLE_DT_GPC0, STKTABLE_DT_GPC0_RATE)), 1)
                }
                "sc-inc-gpc1" => {
                    (HttpAct::ScAct(slot, ScAction::IncGpc(STKTABLE_DT_GPC1, STKTABLE_DT_GPC1_RATE)), 1)
                }
                _ => {
                    exact(1, "an integer or a sample expression")?;
                    let v = match a[1].parse::<i64>() {
                        Ok(i) => Ok(i),
                        Err(_) => Err(sample_parse_word(&a[1]).map_err(|e| format!("'{name}' : {e}"))?),
                    };
                    (HttpAct::ScAct(slot, ScAction::SetGpt0(v)), 2)
                }
            }
        }
        k if k.starts_with("set-var-fmt(") => {
            let v = register_name(paren_arg(k, "set-var-fmt").ok_or("'set-var-fmt' : missing ')'")?)?;
            exact(1, "a format string")?;
            (HttpAct::SetVarFmt(v, lf(&a[1])?), 2)
        }
        k if k.starts_with("set-var(") => {
            let v = register_name(paren_arg(k, "set-var").ok_or("'set-var' : missing ')'")?)?;
            exact(1, "a sample expression")?;
            let e = sample_parse_word(&a[1]).map_err(|e| format!("'{k}' : {e}"))?;
            (HttpAct::SetVar(v, e), 2)
        }
        k if k.starts_with("unset-var(") => {
            let v = register_name(paren_arg(k, "unset-var").ok_or("'unset-var' : missing ')'")?)?;
            (HttpAct::UnsetVar(v), 1)
        }
        _ => return Err(unknown_action(set, kw)),
    };
    let rest = &a[used.min(a.len())..];
    let cond = match rest.first().map(String::as_str) {
        None => None,
        Some("if" | "unless") => Some(parse_acl_cond(rest, acls)?),
        Some(x) => {
            return Err(format!(
                "'{kw}' : unexpected argument '{x}' (expects 'if', 'unless' or end of line)."
            ));
        }
    };
    Ok(HttpRule { act, cond, conf: RuleConf::default() })
}

/// cache.c:parse_cache_rule() in 2.6: the cache name of `cache-use`/`cache-store`
/// (whether that cache exists is checked once every section is read).
fn parse_cache_rule(a: &[String]) -> Result<CacheRef, String> {
    match a.get(1).map(String::as_str) {
        None | Some("" | "if" | "unless") => Err("expects a cache name".into()),
        Some(name) => Ok(CacheRef { name: name.to_string(), id: None }),
    }
}

/// http_act.c:parse_http_wait_for_body() in 2.6: `time T` (required) and `at-least N`,
/// in any order.
fn parse_http_wait_for_body(a: &[String]) -> Result<(HttpAct, usize), String> {
    use crate::haproxy::standard::TimeErr;
    const USAGE: &str = "expects time <time> [ at-least <bytes> ]";
    let (mut time, mut bytes, mut i) = (None, 0, 1);
    while let Some(kw) = a.get(i).map(String::as_str) {
        match kw {
            "time" | "at-least" => {
                let v = a.get(i + 1).ok_or_else(|| format!("missing argument for '{kw}'"))?;
                if kw == "time" {
                    time = Some(crate::haproxy::standard::parse_time_err(v).map_err(|e| match e {
                        TimeErr::Overflow => {
                            "time overflow (maximum value is 2147483647 ms or ~24.8 days)".into()
                        }
                        TimeErr::Char(c) => format!("unexpected character '{c}'"),
                    })?);
                } else {
                    bytes = crate::haproxy::standard::parse_size_err(v)
                        .map_err(|c| format!("unexpected character '{c}'"))?;
                }
                i += 2;
            }
            _ => break,
        }
    }
    let time = time.ok_or(USAGE)?;
    Ok((HttpAct::WaitForBody { time, bytes }, i))
}

fn unknown_action(set: RuleSet, kw: &str) -> String {
    let list = if set == RuleSet::Req { REQ_ACTIONS } else { RES_ACTIONS };
    format!("unknown action '{kw}' (haflow supports {list}).")
}

// ---------------------------------------------------------------------------------------
// Running

/// What a rule wants done once it was evaluated.
enum RuleStep {
    /// Nothing (its condition did not match, or it was done during evaluation).
    Next,
    /// `allow`.
    Stop,
    /// A finished reply (deny, return, redirect).
    Reply { deny: bool, reply: ReplyMsg },
    /// Set or add a header.
    SetHeader { name: String, value: Vec<u8>, add: bool },
    /// Delete headers (with the compiled name for `-m reg`).
    DelHeader(String, PatMatch, Option<MyRegex>),
    /// Replace header lines or values.
    ReplaceHeader { name: String, re: MyRegex, with: Vec<u8>, values: bool },
    /// Change part of the request target.
    SetUri(UriPart, Vec<u8>),
    /// Regex-replace part of the request target.
    ReplaceUri(UriPart, MyRegex, Vec<u8>),
    /// A replacement `exp_replace` refused (a trailing `\`): a failed rewrite.
    RewriteFailed,
    /// Change the method.
    SetMethod(Vec<u8>),
    /// Change the status.
    SetStatus(u16, Option<String>),
    /// Store a capture.
    Capture(CaptureSlot, Vec<u8>),
    /// Change the log level.
    SetLogLevel(u8),
    /// Change a timeout of this session.
    SetTimeout(TimeoutKind, u64),
    /// Change the client's address.
    SetSrc(std::net::IpAddr),
    /// Change the address the client reached.
    SetDst(std::net::IpAddr),
    /// Change the client's port.
    SetSrcPort(u16),
    /// Change the port the client reached.
    SetDstPort(u16),
    /// New values for header lines, by index (a resolved `ReplaceHeader`).
    HeaderValues(Vec<(usize, Vec<u8>)>),
    /// Switch rewrite failures of this message on or off.
    StrictMode(bool),
    /// Wait for the body.
    WaitForBody { time: u64, bytes: u64 },
    /// Close the client connection without an answer.
    Reject,
    /// Look the request up in a cache, for proxy `px`.
    CacheUse(ProxyId, CacheId),
    /// Store the response in a cache, for proxy `px`.
    CacheStore(ProxyId, CacheId),
    /// Start tracking an entry.
    TrackSc { slot: usize, table: ProxyId, key: StkKey },
    /// Change a tracked entry.
    ScAct(usize, StkCtrAct),
}

/// The rules of `set` of proxy `px`.
pub fn rules_of(w: &Haproxy, px: ProxyId, set: RuleSet) -> &[HttpRule] {
    let p = &w.proxies[px.idx()];
    match set {
        RuleSet::Req => &p.http_req_rules,
        RuleSet::Res => &p.http_res_rules,
        RuleSet::AfterRes => &p.http_after_res_rules,
    }
}

/// Builds a reply's bytes (http_htx.c:http_reply_to_htx() in 2.6): status line, the
/// `hdr` headers, `content-length`, `content-type` when there is a body, the body.
/// `None`: the proxy's error message for the status.
fn http_reply_message(r: &HttpReply, ctx: &mut SmpCtx, is_return: bool) -> Option<Vec<u8>> {
    let body = match &r.body {
        ReplyBody::None if !is_return => return None,
        ReplyBody::DefaultErrorfiles => return None,
        ReplyBody::ErrMsg(m) | ReplyBody::ErrFiles(_, Some(m)) => return Some(m.to_vec()),
        ReplyBody::ErrFiles(_, None) => return None,
        ReplyBody::None => Vec::new(),
        ReplyBody::Raw(b) => b.clone(),
        ReplyBody::Lf(f) => build_logline(f, ctx, false),
    };
    let mut out = format!("HTTP/1.1 {} {}\r\n", r.status, http::reason(r.status)).into_bytes();
    for (n, f) in &r.hdrs {
        // A header whose value comes out empty is not added.
        let v = build_logline(f, ctx, false);
        if v.is_empty() {
            continue;
        }
        out.extend_from_slice(n.to_ascii_lowercase().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    if let Some(ct) = r.ctype.as_ref().filter(|_| !body.is_empty()) {
        out.extend_from_slice(format!("content-type: {ct}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

/// The reply of an `http-error status N` of the frontend or backend, if any, built.
pub fn http_error_override(
    w: &Haproxy,
    s: &Session,
    ctx: &mut SmpCtx,
    status: u16,
) -> Option<Option<Vec<u8>>> {
    let r = [s.be, s.fe].iter().find_map(|px| w.proxies[px.idx()].http_errors.get(&status))?;
    if matches!(r.body, ReplyBody::DefaultErrorfiles) {
        // `default-errorfiles`: HAProxy's own page, whatever the errorfiles say.
        return Some(Some(http::analyser_error(status, false)));
    }
    Some(http_reply_message(r, ctx, true))
}

/// http_ana.c:http_apply_redirect_rule() in 2.6: the location, then the 30x reply
/// (`None` when `ignore-empty` met an empty location).
fn http_apply_redirect_rule(r: &RedirectRule, ctx: &mut SmpCtx) -> Option<ReplyMsg> {
    let value = build_logline(&r.value, ctx, false);
    let head = ctx.strm.and_then(|(_, s)| s.txn.req.head.as_ref());
    let uri = match head.map(|h| &h.start) {
        Some(StartLine::Request { uri, .. }) => uri.as_bytes().to_vec(),
        _ => Vec::new(),
    };
    let mut path = crate::haproxy::sample::uri_path(&uri, true).to_vec();
    if path.is_empty() {
        path = b"/".to_vec();
    }
    if r.drop_query
        && let Some(q) = path.iter().position(|&c| c == b'?')
    {
        path.truncate(q);
    }
    let mut loc = match r.rtype {
        RedirectType::Location => {
            if value.is_empty() && r.ignore_empty {
                return None;
            }
            value
        }
        RedirectType::Prefix => {
            let mut l = if value == b"/" { Vec::new() } else { value };
            l.extend_from_slice(&path);
            l
        }
        RedirectType::Scheme => {
            let mut l = value;
            l.extend_from_slice(b"://");
            l.extend_from_slice(head.and_then(|h| h.value("host")).unwrap_or_default());
            l.extend_from_slice(&path);
            l
        }
    };
    if r.rtype != RedirectType::Location && r.append_slash && loc.last().is_some_and(|&c| c != b'/') {
        loc.push(b'/');
    }
    let msg = http::redirect_reply(r.code, &String::from_utf8_lossy(&loc), r.cookie.as_deref(), false);
    Some(ReplyMsg { status: r.code, msg: Some(msg) })
}

/// Evaluates rule `i` of `set` of `px`: its condition, then what its action needs.
fn eval_rule(ctx: &mut SmpCtx, px: ProxyId, set: RuleSet, i: usize) -> RuleStep {
    let Some((w, s)) = ctx.strm else { return RuleStep::Next };
    let p = &w.proxies[px.idx()];
    let Some(rule) = rules_of(w, px, set).get(i) else { return RuleStep::Next };
    if let Some(c) = &rule.cond
        && !acl_match_cond(c, &p.acls, ctx)
    {
        return RuleStep::Next;
    }
    match &rule.act {
        HttpAct::Allow => RuleStep::Stop,
        HttpAct::Deny(r) => {
            let msg = http_reply_message(r, ctx, false);
            RuleStep::Reply { deny: true, reply: ReplyMsg { status: r.status, msg } }
        }
        HttpAct::Return(r) => {
            let msg = match &r.body {
                ReplyBody::DefaultErrorfiles => http_error_override(w, s, ctx, r.status).flatten(),
                _ => http_reply_message(r, ctx, true),
            };
            RuleStep::Reply { deny: false, reply: ReplyMsg { status: r.status, msg } }
        }
        HttpAct::Redirect(r) => match http_apply_redirect_rule(r, ctx) {
            Some(reply) => RuleStep::Reply { deny: false, reply },
            None => RuleStep::Next,
        },
        HttpAct::SetHeader { name, value, add } => {
            RuleStep::SetHeader { name: name.clone(), value: build_logline(value, ctx, false), add: *add }
        }
        HttpAct::DelHeader(n, m, re) => RuleStep::DelHeader(n.clone(), *m, re.clone()),
        HttpAct::ReplaceHeader { name, re, with, values } => RuleStep::ReplaceHeader {
            name: name.clone(),
            re: re.clone(),
            with: build_logline(with, ctx, false),
            values: *values,
        },
        HttpAct::SetUri(part, f) => RuleStep::SetUri(*part, build_logline(f, ctx, false)),
        HttpAct::ReplaceUri(part, re, f) => {
            RuleStep::ReplaceUri(*part, re.clone(), build_logline(f, ctx, false))
        }
        HttpAct::SetMethod(f) => RuleStep::SetMethod(build_logline(f, ctx, false)),
        HttpAct::SetStatus(c, r) => RuleStep::SetStatus(*c, r.clone()),
        HttpAct::SetVar(v, e) => {
            if let Some(d) = sample_process(e, ctx) {
                ctx.vars.var_set(v, d);
            }
            RuleStep::Next
        }
        HttpAct::SetVarFmt(v, f) => {
            let d = build_logline(f, ctx, false);
            ctx.vars.var_set(v, crate::haproxy::sample::SmpData::Str(d));
            RuleStep::Next
        }
        HttpAct::UnsetVar(v) => {
            ctx.vars.var_unset(v);
            RuleStep::Next
        }
        HttpAct::Capture(e, slot) => {
            match sample_fetch_as_type(e, ctx, SmpType::SMP_T_STR).and_then(|d| d.into_str()) {
                Some(mut v) => {
                    v.truncate(slot.len);
                    RuleStep::Capture(*slot, v)
                }
                None => RuleStep::Next,
            }
        }
        HttpAct::SetLogLevel(l) => RuleStep::SetLogLevel(*l),
        HttpAct::SetTimeout(k, Ok(ms)) => RuleStep::SetTimeout(*k, *ms),
        HttpAct::SetTimeout(k, Err(e)) => match sample_fetch_as_type(e, ctx, SmpType::SMP_T_SINT) {
            Some(crate::haproxy::sample::SmpData::Sint(ms)) if ms >= 0 => RuleStep::SetTimeout(*k, ms as u64),
            _ => RuleStep::Next,
        },
        HttpAct::SetSrc(e) | HttpAct::SetDst(e) => {
            let ip = match sample_fetch_as_type(e, ctx, SmpType::SMP_T_ADDR) {
                Some(crate::haproxy::sample::SmpData::Ipv4(a)) => std::net::IpAddr::V4(a),
                Some(crate::haproxy::sample::SmpData::Ipv6(a)) => std::net::IpAddr::V6(a),
                _ => return RuleStep::Next,
            };
            if matches!(rule.act, HttpAct::SetSrc(_)) { RuleStep::SetSrc(ip) } else { RuleStep::SetDst(ip) }
        }
        HttpAct::SetSrcPort(e) | HttpAct::SetDstPort(e) => {
            let Some(port) = crate::haproxy::tcp_rules::port_of(e, ctx) else { return RuleStep::Next };
            if matches!(rule.act, HttpAct::SetSrcPort(_)) {
                RuleStep::SetSrcPort(port)
            } else {
                RuleStep::SetDstPort(port)
            }
        }
        HttpAct::StrictMode(on) => RuleStep::StrictMode(*on),
        HttpAct::WaitForBody { time, bytes } => RuleStep::WaitForBody { time: *time, bytes: *bytes },
        HttpAct::Auth(realm) => {
            let realm = realm.as_deref().unwrap_or(p.name.as_str());
            RuleStep::Reply {
                deny: false,
                reply: ReplyMsg { status: 401, msg: Some(auth_reply(w, s, realm)) },
            }
        }
        HttpAct::Reject => RuleStep::Reject,
        HttpAct::CacheUse(CacheRef { id: Some(id), .. }) => RuleStep::CacheUse(px, *id),
        HttpAct::CacheStore(CacheRef { id: Some(id), .. }) => RuleStep::CacheStore(px, *id),
        // Unresolved: check_config_validity refused the configuration.
        HttpAct::CacheUse(_) | HttpAct::CacheStore(_) => RuleStep::Next,
        HttpAct::TrackSc { slot, expr, table: Some(px), .. } => {
            // http_action_track_sc() in 2.6: a counter already tracking stays as it is.
            if s.stkctr()[*slot].is_some() {
                return RuleStep::Next;
            }
            let Some(t) = crate::haproxy::stick_table::table_of(w, *px) else { return RuleStep::Next };
            match sample_process(expr, ctx).and_then(|d| t.smp_to_stkey(d)) {
                Some(key) => RuleStep::TrackSc { slot: *slot, table: *px, key },
                None => RuleStep::Next,
            }
        }
        HttpAct::TrackSc { table: None, .. } => RuleStep::Next,
        HttpAct::ScAct(slot, ScAction::IncGpc(dt, rate)) => {
            RuleStep::ScAct(*slot, StkCtrAct::IncGpc(*dt, *rate))
        }
        HttpAct::ScAct(slot, ScAction::SetGpt0(Ok(v))) => RuleStep::ScAct(*slot, StkCtrAct::SetGpt0(*v)),
        HttpAct::ScAct(slot, ScAction::SetGpt0(Err(e))) => {
            match sample_fetch_as_type(e, ctx, SmpType::SMP_T_SINT) {
                Some(crate::haproxy::sample::SmpData::Sint(v)) => {
                    RuleStep::ScAct(*slot, StkCtrAct::SetGpt0(v))
                }
                _ => RuleStep::Next,
            }
        }
    }
}

/// The answer of `http-request auth` (http_act.c:http_action_auth() in 2.6): the
/// proxy's 401 message (its `errorfile 401`, else HAProxy's page) with a
/// `www-authenticate: Basic realm="R"` header in place of any it had.
/// Divergence: always 401; 2.6 answers 407 with `Proxy-Authenticate` to a proxy
/// request under `option http-use-proxy-header`.
fn auth_reply(w: &Haproxy, s: &Session, realm: &str) -> Vec<u8> {
    let base = [s.be, s.fe]
        .iter()
        .find_map(|px| w.proxies[px.idx()].errmsg.get(&401).filter(|m| !m.is_empty()).map(|m| m.to_vec()))
        .unwrap_or_else(|| http::analyser_error(401, false));
    let Some(len) = crate::haproxy::h1::head_len(&base) else { return base };
    let mut out = Vec::with_capacity(base.len() + realm.len() + 40);
    for line in base[..len - 2].split_inclusive(|&c| c == b'\n') {
        let name = line.split(|&c| c == b':').next().unwrap_or_default();
        if !name.eq_ignore_ascii_case(b"www-authenticate") {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(format!("www-authenticate: Basic realm=\"{realm}\"\r\n\r\n").as_bytes());
    out.extend_from_slice(&base[len..]);
    out
}

/// The target's parts: path (with any scheme and authority before it) and query.
fn split_uri(uri: &[u8]) -> (usize, usize, Option<usize>) {
    let path_start = if uri.first() == Some(&b'/') {
        0
    } else {
        match uri.windows(3).position(|w| w == b"://") {
            Some(i) => uri[i + 3..].iter().position(|&c| c == b'/').map_or(uri.len(), |p| i + 3 + p),
            None => 0,
        }
    };
    let q = uri[path_start..].iter().position(|&c| c == b'?').map(|q| q + path_start);
    (path_start, q.unwrap_or(uri.len()), q)
}

fn set_uri_part(uri: &[u8], part: UriPart, v: &[u8]) -> Vec<u8> {
    let (ps, pe, q) = split_uri(uri);
    let mut out = Vec::new();
    match part {
        UriPart::Uri => out.extend_from_slice(v),
        UriPart::Path => {
            out.extend_from_slice(&uri[..ps]);
            out.extend_from_slice(v);
            out.extend_from_slice(&uri[pe..]);
        }
        UriPart::Pathq => {
            out.extend_from_slice(&uri[..ps]);
            out.extend_from_slice(v);
        }
        UriPart::Query => {
            out.extend_from_slice(&uri[..pe]);
            if !v.is_empty() || q.is_some() {
                out.push(b'?');
                out.extend_from_slice(v);
            }
        }
    }
    out
}

/// http.c:http_parse_authority() in 2.6 (with `no_userinfo`): the authority of an
/// absolute-form target (after `scheme://`, or from the start when there is no scheme),
/// up to the path, without any `user@`. `None` for an origin-form (`/...`), `*` or empty
/// target.
fn http_parse_authority(uri: &[u8]) -> Option<&[u8]> {
    if uri.is_empty() || uri[0] == b'/' || uri[0] == b'*' {
        return None;
    }
    let mut rest = uri;
    if uri[0].is_ascii_alphabetic() {
        let scheme =
            uri[1..].iter().take_while(|&&c| c.is_ascii_alphanumeric() || b"+-.".contains(&c)).count() + 1;
        if uri[scheme..].starts_with(b"://") {
            rest = &uri[scheme + 3..];
        }
    }
    let end = rest.iter().position(|&c| c == b'/').unwrap_or(rest.len());
    let start = rest[..end].iter().rposition(|&c| c == b'@').map_or(0, |at| at + 1);
    Some(&rest[start..end])
}

/// http_htx.c:http_update_host() in 2.6: after the target became `uri`, an
/// absolute-form target's authority replaces the value of every Host header. False when
/// the authority is empty (the rewrite fails).
fn http_update_host(h: &mut Head, uri: &str) -> bool {
    match http_parse_authority(uri.as_bytes()) {
        None => true,
        Some([]) => false,
        Some(auth) => {
            for (_, v) in h.headers.iter_mut().filter(|(n, _)| n == "host") {
                *v = auth.to_vec();
            }
            true
        }
    }
}

/// True when the message of `set`, with its head grown by `grow` bytes, still fits in
/// its buffer: 2.6's rewrites fail when the HTX message has no room left, and the
/// buffer keeps `tune.maxrewrite` bytes free for them while reading.
fn rewrite_fits(s: &Session, set: RuleSet, grow: isize) -> bool {
    let (buf, msg) = if set == RuleSet::Req { (&s.req, &s.txn.req) } else { (&s.rep, &s.txn.rsp) };
    let Some(h) = msg.head.as_ref() else { return true };
    let rest = buf.len().saturating_sub(msg.head_len);
    (rest + h.wire_len()) as isize + grow <= buf.size as isize
}

/// A rewrite did not fit (http_act.c's `fail_rewrite` in 2.6): counted in `wrew`;
/// fatal unless `strict-mode off` made this message's rewrites soft.
fn failed_rewrite(w: &mut Haproxy, s: &mut Session, set: RuleSet) -> Option<RuleResult> {
    w.proxies[s.fe.idx()].counters.failed_rewrites += 1;
    if s.be != s.fe {
        w.proxies[s.be.idx()].counters.failed_rewrites += 1;
    }
    if let Some(srv) = s.srv {
        w.server_mut(srv).counters.failed_rewrites += 1;
    }
    let msg = if set == RuleSet::Req { &s.txn.req } else { &s.txn.rsp };
    if msg.flags.contains(HttpMsgFlags::HTTP_MSGF_SOFT_RW) {
        return None;
    }
    s.set_err(SnErr::SN_ERR_PRXCOND);
    Some(RuleResult::Error)
}

/// Works out what a `replace-header`/`replace-value` or `replace-uri`/`-path`/`-pathq`
/// step changes, so that its size can be checked before the head is touched: the new
/// header values by index, or the whole new URI. As in 2.6 (http_ana.c:http_replace_hdrs(),
/// http_act.c:http_action_replace_uri()), a value or target the regex matches anywhere
/// is replaced as a whole by the replacement, whose `\N` pick the match's groups.
fn resolve_replace(s: &Session, set: RuleSet, step: RuleStep) -> RuleStep {
    let head = if set == RuleSet::Req { s.txn.req.head.as_ref() } else { s.txn.rsp.head.as_ref() };
    let Some(h) = head else { return step };
    // `Some(None)`: matched, but exp_replace refused the replacement.
    let replace = |re: &MyRegex, v: &[u8], with: &[u8]| {
        regex_exec_match2(re, v, 0).map(|pmatch| exp_replace(v, with, &pmatch))
    };
    match step {
        RuleStep::ReplaceHeader { name, re, with, values } => {
            let mut new = Vec::new();
            for (i, (_, v)) in h.headers.iter().enumerate().filter(|(_, (n, _))| *n == name) {
                if values {
                    let mut parts = Vec::new();
                    for p in crate::haproxy::sample::split_values(v) {
                        match replace(&re, p, &with) {
                            Some(Some(out)) => parts.push(out),
                            Some(None) => return RuleStep::RewriteFailed,
                            None => parts.push(p.to_vec()),
                        }
                    }
                    new.push((i, parts.join(&b", "[..])));
                } else {
                    match replace(&re, v, &with) {
                        Some(Some(out)) => new.push((i, out)),
                        Some(None) => return RuleStep::RewriteFailed,
                        None => {}
                    }
                }
            }
            RuleStep::HeaderValues(new)
        }
        RuleStep::ReplaceUri(part, re, with) => {
            let StartLine::Request { uri, .. } = &h.start else { return RuleStep::Next };
            let u = uri.as_bytes();
            let (ps, pe, _) = split_uri(u);
            let cur = match part {
                UriPart::Path => &u[ps..pe],
                UriPart::Pathq => &u[ps..],
                _ => u,
            };
            if cur.is_empty() {
                return RuleStep::Next;
            }
            match replace(&re, cur, &with) {
                Some(Some(out)) => RuleStep::SetUri(part, out),
                Some(None) => RuleStep::RewriteFailed,
                None => RuleStep::Next,
            }
        }
        other => other,
    }
}

/// The byte length of header `name`'s lines in `h` (what `set-header` removes).
fn header_lines_len(h: &Head, name: &str) -> usize {
    h.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(n, v)| n.len() + v.len() + 4).sum()
}

/// Applies what a rule asked for. Returns the list's result when the rule ends it.
fn apply_step(w: &mut Haproxy, s: &mut Session, set: RuleSet, step: RuleStep) -> Option<RuleResult> {
    let step = resolve_replace(s, set, step);
    // How much the head grows, for the steps that rewrite it.
    let grow: isize = {
        let head = if set == RuleSet::Req { s.txn.req.head.as_ref() } else { s.txn.rsp.head.as_ref() };
        match (&step, head) {
            (RuleStep::SetHeader { name, value, add }, Some(h)) => {
                let removed = if *add { 0 } else { header_lines_len(h, name) };
                (name.len() + value.len() + 4) as isize - removed as isize
            }
            (RuleStep::HeaderValues(new), Some(h)) => new
                .iter()
                .map(|(i, v)| v.len() as isize - h.headers.get(*i).map_or(0, |(_, o)| o.len()) as isize)
                .sum(),
            (RuleStep::SetUri(part, v), Some(Head { start: StartLine::Request { uri, .. }, .. })) => {
                set_uri_part(uri.as_bytes(), *part, v).len() as isize - uri.len() as isize
            }
            (RuleStep::SetMethod(v), Some(Head { start: StartLine::Request { method, .. }, .. })) => {
                v.len() as isize - method.len() as isize
            }
            (
                RuleStep::SetStatus(code, reason),
                Some(Head { start: StartLine::Response { reason: r, .. }, .. }),
            ) => {
                let new = reason.as_deref().map_or(http::reason(*code).len(), str::len);
                new as isize - r.len() as isize
            }
            _ => 0,
        }
    };
    if grow > 0 && !rewrite_fits(s, set, grow) {
        return failed_rewrite(w, s, set);
    }
    let head: Option<&mut Head> =
        if set == RuleSet::Req { s.txn.req.head.as_mut() } else { s.txn.rsp.head.as_mut() };
    match step {
        RuleStep::Next => {}
        RuleStep::Stop => return Some(RuleResult::Stop),
        RuleStep::Reply { deny, reply } => {
            return Some(if deny { RuleResult::Deny(reply) } else { RuleResult::Done(reply) });
        }
        RuleStep::Reject => return Some(RuleResult::Reject),
        // Left unresolved only when there is no head to change.
        RuleStep::ReplaceHeader { .. } | RuleStep::ReplaceUri(..) => {}
        RuleStep::StrictMode(on) => {
            let msg = if set == RuleSet::Req { &mut s.txn.req } else { &mut s.txn.rsp };
            msg.flags.set(HttpMsgFlags::HTTP_MSGF_SOFT_RW, !on);
        }
        RuleStep::WaitForBody { time, bytes } => {
            let chn = if set == RuleSet::Req { Side::Cli } else { Side::Srv };
            return match http_wait_for_msg_body(w, s, chn, Some(time), bytes) {
                MsgBodyWait::Ready => None,
                MsgBodyWait::Yield => Some(RuleResult::Yield),
                MsgBodyWait::Abort => Some(RuleResult::Abort),
            };
        }
        RuleStep::SetHeader { name, value, add } => {
            if let Some(h) = head {
                if add { h.add(&name, value) } else { h.set(&name, value) }
            }
        }
        RuleStep::DelHeader(name, m, re) => {
            if let Some(h) = head {
                let n = name.to_ascii_lowercase();
                h.headers.retain(|(hn, _)| !match m {
                    PatMatch::Beg => hn.starts_with(&n),
                    PatMatch::End => hn.ends_with(&n),
                    PatMatch::Sub => hn.contains(&n),
                    PatMatch::Reg => re.as_ref().is_some_and(|r| regex_exec2(r, hn.as_bytes())),
                    _ => *hn == n,
                });
            }
        }
        RuleStep::RewriteFailed => return failed_rewrite(w, s, set),
        RuleStep::HeaderValues(new) => {
            if let Some(h) = head {
                for (i, v) in new {
                    if let Some((_, old)) = h.headers.get_mut(i) {
                        *old = v;
                    }
                }
            }
        }
        RuleStep::SetUri(part, v) => {
            if let Some(h) = head
                && let StartLine::Request { uri, method, .. } = &mut h.start
            {
                let new = set_uri_part(uri.as_bytes(), part, &v);
                *uri = String::from_utf8_lossy(&new).into_owned();
                // `set-uri`/`replace-uri` go through 2.6's http_replace_req_uri(), which
                // also updates the Host header; the path and query setters do not.
                if part == UriPart::Uri && !method.eq_ignore_ascii_case("CONNECT") {
                    let uri = uri.clone();
                    if !http_update_host(h, &uri) {
                        return failed_rewrite(w, s, set);
                    }
                }
            }
        }
        RuleStep::SetMethod(v) => {
            if let Some(Head { start: StartLine::Request { method, .. }, .. }) = head {
                *method = String::from_utf8_lossy(&v).into_owned();
                s.txn.meth = crate::haproxy::proto_http::HttpMeth::find_http_meth(method);
            }
        }
        RuleStep::SetStatus(code, reason) => {
            if let Some(Head { start: StartLine::Response { status, reason: r, .. }, .. }) = head {
                *status = code;
                *r = reason.unwrap_or_else(|| http::reason(code).to_string());
            }
            s.txn.status = Some(code);
        }
        RuleStep::Capture(slot, v) => {
            if s.txn.req_cap.len() <= slot.id {
                s.txn.req_cap.resize(slot.id + 1, None);
            }
            s.txn.req_cap[slot.id] = Some(v);
        }
        RuleStep::SetLogLevel(l) => s.logs.level = Some(l),
        RuleStep::SetTimeout(k, ms) => match k {
            TimeoutKind::Server => s.timeout_server = Some(ms),
            TimeoutKind::Tunnel => s.timeout_tunnel = Some(ms),
            TimeoutKind::Client => {}
        },
        RuleStep::SetSrc(ip) => s.set_addr(&w.fdtab, AddrLevel::Strm, AddrDir::Src, Some(ip), None),
        RuleStep::SetDst(ip) => s.set_addr(&w.fdtab, AddrLevel::Strm, AddrDir::Dst, Some(ip), None),
        RuleStep::SetSrcPort(port) => s.set_addr(&w.fdtab, AddrLevel::Strm, AddrDir::Src, None, Some(port)),
        RuleStep::SetDstPort(port) => s.set_addr(&w.fdtab, AddrLevel::Strm, AddrDir::Dst, None, Some(port)),
        RuleStep::CacheUse(px, id) => http_action_req_cache_use(w, s, px, id),
        RuleStep::CacheStore(px, id) => {
            // The head as it is at this rule is what the cache keeps.
            if let Some(h) = head.cloned() {
                http_action_store_cache(w, s, px, id, h);
            }
        }
        RuleStep::TrackSc { slot, table, key } => {
            track_sc(w, s, set, slot, table, key);
        }
        RuleStep::ScAct(slot, act) => crate::haproxy::stick_table::stkctr_apply(w, s, slot, act),
    }
    None
}

/// http_act.c:http_action_track_sc() in 2.6 (1.5.0 had `http-request track-sc*` in
/// proto_http.c, doing the same): the counter starts tracking the entry, which counts
/// one more HTTP request, and after a response a 4xx error or 5xx failure.
fn track_sc(w: &mut Haproxy, s: &mut Session, set: RuleSet, slot: usize, px: ProxyId, key: StkKey) {
    use crate::haproxy::stick_table::{STKCTR_TRACK_BACKEND, STKCTR_TRACK_CONTENT, StkDataType::*};
    let mut flags = STKCTR_TRACK_CONTENT;
    if s.fe != s.be {
        flags |= STKCTR_TRACK_BACKEND;
    }
    if !crate::haproxy::stick_table::session_track_stkctr(w, s, slot, px, key.clone(), flags) {
        return;
    }
    let now = w.clock.now_ms;
    let status = s.txn.status.unwrap_or(0);
    let Some(t) = crate::haproxy::stick_table::table_of(w, px) else { return };
    t.stktable_lookup_key(&key, |ts| {
        t.inc_data(ts, STKTABLE_DT_HTTP_REQ_CNT, now, 1);
        t.inc_data(ts, STKTABLE_DT_HTTP_REQ_RATE, now, 1);
        if set != RuleSet::Req && (400..500).contains(&status) {
            t.inc_data(ts, STKTABLE_DT_HTTP_ERR_CNT, now, 1);
            t.inc_data(ts, STKTABLE_DT_HTTP_ERR_RATE, now, 1);
        }
        if set != RuleSet::Req && (500..600).contains(&status) && status != 501 && status != 505 {
            t.inc_data(ts, STKTABLE_DT_HTTP_FAIL_CNT, now, 1);
            t.inc_data(ts, STKTABLE_DT_HTTP_FAIL_RATE, now, 1);
        }
    });
}

/// proto_http.c:http_req_get_intercept_rule() in 1.5-dev8 (and
/// http_res_get_intercept_rule() for the response lists): runs the rules of `set` of
/// proxy `px` in order until one ends the list. As in 2.6, a list that yielded
/// (`wait-for-body`) resumes at the rule that yielded, and a list starting afresh starts
/// in strict mode.
pub fn http_get_intercept_rule(w: &mut Haproxy, s: &mut Session, px: ProxyId, set: RuleSet) -> RuleResult {
    let n = rules_of(w, px, set).len();
    let pxname = w.proxies[px.idx()].name.as_str();
    let span = if set == RuleSet::Req {
        tracing::debug_span!(
            names::HTTP_REQ_GET_INTERCEPT_RULE,
            sess = s.uniq_id,
            proxy = pxname,
            set = set.keyword(),
            rules = n,
            stopped_at = tracing::field::Empty
        )
    } else {
        tracing::debug_span!(
            names::HTTP_RES_GET_INTERCEPT_RULE,
            sess = s.uniq_id,
            proxy = pxname,
            set = set.keyword(),
            rules = n,
            stopped_at = tracing::field::Empty
        )
    };
    let _g = span.enter();
    let first = match s.txn.current_rule.take() {
        Some(r) if r.px == px && r.set == set => r.idx,
        _ => {
            let msg = if set == RuleSet::Req { &mut s.txn.req } else { &mut s.txn.rsp };
            msg.flags.remove(HttpMsgFlags::HTTP_MSGF_SOFT_RW);
            0
        }
    };
    for i in first..n {
        let step = with_smp_ctx(w, s, set.dir(), |ctx| eval_rule(ctx, px, set, i));
        if let Some(r) = apply_step(w, s, set, step) {
            span.record("stopped_at", i);
            // A final action: `last_rule_file` and `last_rule_line` name this rule.
            s.last_rule = rules_of(w, px, set).get(i).map(|r| r.conf.clone());
            if matches!(r, RuleResult::Yield) {
                s.txn.current_rule = Some(RuleResume { px, set, idx: i });
            }
            return r;
        }
    }
    RuleResult::Cont
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn parse(set: RuleSet, s: &str) -> Result<HttpRule, String> {
        parse_http_rule(set, &words(s), &AclList::default(), &mut 0)
    }

    #[test]
    fn actions_parse_with_their_options() {
        assert!(matches!(
            parse(RuleSet::Req, "deny deny_status 404").unwrap().act,
            HttpAct::Deny(HttpReply { status: 404, .. })
        ));
        assert!(matches!(
            parse(RuleSet::Res, "deny").unwrap().act,
            HttpAct::Deny(HttpReply { status: 502, .. })
        ));
        assert!(parse(RuleSet::Req, "return status 200 content-type text/plain string ok if TRUE").is_ok());
        assert!(parse(RuleSet::Req, "return status 200 string ok").unwrap_err().contains("content type"));
        assert!(parse(RuleSet::Req, "redirect location /x code 301 drop-query").is_ok());
        assert!(parse(RuleSet::Req, "redirect code 301").is_err());
        assert!(parse(RuleSet::Req, "set-var(txn.x) req.hdr(host),lower").is_ok());
        assert!(parse(RuleSet::Req, "set-var(foo) str(x)").is_err());
        assert!(
            parse(RuleSet::Req, "set-var(txn.x) nosuch")
                .unwrap_err()
                .contains("unknown fetch method 'nosuch'")
        );
        assert!(parse(RuleSet::Req, "set-status 200").is_err());
        assert!(parse(RuleSet::AfterRes, "set-status 200 reason Fine").is_ok());
        assert!(parse(RuleSet::Req, "del-header x-a -m beg").is_ok());
        assert!(
            matches!(parse(RuleSet::Req, "cache-use c1 if TRUE").unwrap().act, HttpAct::CacheUse(r) if r.name == "c1")
        );
        assert!(
            matches!(parse(RuleSet::Res, "cache-store c1").unwrap().act, HttpAct::CacheStore(r) if r.name == "c1")
        );
        assert_eq!(parse(RuleSet::Req, "cache-use if TRUE").unwrap_err(), "expects a cache name");
        assert!(parse(RuleSet::Req, "cache-store c1").unwrap_err().contains("unknown action 'cache-store'"));
        assert!(
            parse(RuleSet::AfterRes, "cache-store c1").unwrap_err().contains("unknown action 'cache-store'")
        );
        assert!(parse(RuleSet::Req, "frobnicate").unwrap_err().contains("unknown action 'frobnicate'"));
        assert!(parse(RuleSet::Req, "allow foo").unwrap_err().contains("unexpected argument 'foo'"));
        let mut caps = 0;
        parse_http_rule(RuleSet::Req, &words("capture req.hdr(host) len 10"), &AclList::default(), &mut caps)
            .unwrap();
        assert_eq!(caps, 1);
    }

    #[test]
    fn uri_parts_change_as_haproxy_changes_them() {
        assert_eq!(set_uri_part(b"/a/b?x=1", UriPart::Path, b"/c"), b"/c?x=1");
        assert_eq!(set_uri_part(b"http://h/a?x", UriPart::Path, b"/c"), b"http://h/c?x");
        assert_eq!(set_uri_part(b"/a?x=1", UriPart::Query, b"y=2"), b"/a?y=2");
        assert_eq!(set_uri_part(b"/a", UriPart::Query, b""), b"/a");
        assert_eq!(set_uri_part(b"/a?x", UriPart::Pathq, b"/b?y"), b"/b?y");
    }

    #[test]
    fn the_authority_of_a_new_target_is_found_as_2_6_finds_it() {
        assert_eq!(http_parse_authority(b"/a"), None);
        assert_eq!(http_parse_authority(b"*"), None);
        assert_eq!(http_parse_authority(b"http://u:p@h:8080/a?b"), Some(&b"h:8080"[..]));
        assert_eq!(http_parse_authority(b"https://h"), Some(&b"h"[..]));
        // Without `scheme://`, what comes before the first `/` is the authority.
        assert_eq!(http_parse_authority(b"concat(/bu/,req.uri,/eu)"), Some(&b"concat("[..]));
        assert_eq!(http_parse_authority(b"http:///x"), Some(&b""[..]));
    }
}
