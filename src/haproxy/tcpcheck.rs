//! tcp-check rule sets: what a health check or an agent check sends and expects.
//!
//! Reproduces HAProxy 2.6's `tcpcheck.c`. 1.5.0 introduced `tcp-check connect|send|expect`
//! and ran them in `tcpcheck_main`, beside per-protocol code in `event_srv_chk_r` for
//! `option httpchk`, `redis-check`, `mysql-check`, `pgsql-check`, `ldap-check`, `smtpchk`
//! and the agent. HAProxy 2.2 turned every one of those into a rule set run by the same
//! `tcpcheck_main`, and 2.6's messages (which the logs and `show stat` print) come from
//! there, so haflow follows 2.6's design here, under 2.6's names.
//! Divergence: 1.5.0's per-protocol branches of `event_srv_chk_r` are not reproduced.
//!
//! A proxy's rules are built while parsing (`proxy_parse_tcpcheck`, `proxy_parse_httpcheck`
//! and the `option` parsers, into named rule sets shared the way HAProxy shares them),
//! then completed once per proxy by `check_proxy_tcpcheck` (the implicit first `connect`,
//! the implicit final HTTP `expect`, comments folded into the rules they precede). At run
//! time `tcpcheck_main` walks the rules from `check.current_step`: a `connect` opens the
//! check's connection, a `send` writes, an `expect` reads (`tcpcheck_eval_recv`) then
//! matches; `Wait` leaves the check to be resumed by the next I/O event, `Stop` ends it
//! with the status already set, and running out of rules is a success.
//!
//! Log-format strings in checks (`send-lf`, `string-lf`, `on-success`, `on-error`,
//! `status-code`) support the sample fetches `var(check.NAME)`, `res.payload(off,len)`,
//! `date()`, `str(s)`, `int(n)` and the converters `hex`, `htonl`, `cut_crlf`, `ltrim(s)`,
//! which is what HAProxy's own check rule sets use. Divergence: any other fetch or
//! converter is refused with an ALERT.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::haproxy::checks::{
    CheckId, CheckKind, CheckResult, ChkSend, ChkSt, ConnFlags, HchkStatus, SubEvents, chk, chk_conn_open,
    chk_conn_recv, chk_conn_send, chk_report_conn_err, set_server_check_status,
};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::regex::{MyRegex, regex_comp, regex_exec2};
use crate::haproxy::server::{SrvFlags, srv_adm_set_drain, srv_adm_set_maint, srv_adm_set_ready};
use crate::trace::names;

/// `TCPCHK_RULES_*_CHK`: which protocol a rule set speaks (`flags & TCPCHK_RULES_PROTO_CHK`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TcpchkProto {
    /// `flags & TCPCHK_RULES_PROTO_CHK == 0` (2.6 names no constant for it): the
    /// `*tcp-check` default rules of a backend with no check option, a plain connect.
    /// Its messages carry no `tcp-check` step, as for every protocol but `tcp-check`.
    TCPCHK_RULES_NONE,
    /// `option tcp-check` rules.
    #[default]
    TCPCHK_RULES_TCP_CHK,
    /// `option httpchk` and `http-check` rules: expects see an HTTP response.
    TCPCHK_RULES_HTTP_CHK,
    /// `option redis-check`.
    TCPCHK_RULES_REDIS_CHK,
    /// `option ssl-hello-chk`.
    TCPCHK_RULES_SSL3_CHK,
    /// `option smtpchk`.
    TCPCHK_RULES_SMTP_CHK,
    /// `option pgsql-check`.
    TCPCHK_RULES_PGSQL_CHK,
    /// `option mysql-check`.
    TCPCHK_RULES_MYSQL_CHK,
    /// `option ldap-check`.
    TCPCHK_RULES_LDAP_CHK,
    /// `option spop-check`.
    TCPCHK_RULES_SPOP_CHK,
    /// A server's `agent-check`.
    TCPCHK_RULES_AGENT_CHK,
}

bitflags::bitflags! {
    /// `tcpcheck_connect.options` (`TCPCHK_OPT_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct TcpchkOpt: u16 {
        /// `linger`: close without a reset.
        const TCPCHK_OPT_LINGER          = 0x0002;
        /// `default`: use the server's check settings (port, PROXY protocol, SOCKS4).
        const TCPCHK_OPT_DEFAULT_CONNECT = 0x0004;
        /// The connect rule HAProxy adds in front of rules that have none.
        const TCPCHK_OPT_IMPLICIT        = 0x0008;
        /// `via-socks4`: through the server's `socks4` proxy.
        const TCPCHK_OPT_SOCKS4          = 0x0010;
        /// `send-proxy`: open with a PROXY protocol header.
        const TCPCHK_OPT_SEND_PROXY      = 0x0020;
    }
}

/// A value of the check's sample subset (`struct sample`'s data: `SMP_T_STR`/`SMP_T_BIN`
/// or `SMP_T_SINT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmpVal {
    /// A string or binary.
    Str(Vec<u8>),
    /// A signed integer.
    Sint(i64),
}

impl SmpVal {
    /// The value as bytes, as a log-format string prints it.
    fn into_bytes(self) -> Vec<u8> {
        match self {
            SmpVal::Str(s) => s,
            SmpVal::Sint(n) => n.to_string().into_bytes(),
        }
    }
}

/// A sample fetch of the check subset.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SmpFetch {
    /// `var(check.NAME)`.
    Var(String),
    /// `res.payload(off,len)`: `len` 0 means to the end of what was received.
    ResPayload(usize, usize),
    /// `date()`: seconds since the epoch.
    Date,
    /// `str(s)`.
    Str(String),
    /// `int(n)`.
    Int(i64),
}

/// A converter of the check subset.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SmpConv {
    /// `hex`: bytes as upper-case hexadecimal.
    Hex,
    /// `htonl`: an integer as 4 bytes in network order.
    Htonl,
    /// `cut_crlf`: cut at the first CR or LF.
    CutCrlf,
    /// `ltrim(chars)`: drop these characters from the start.
    Ltrim(Vec<u8>),
}

/// A sample expression: a fetch and its converters (`struct sample_expr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmpExpr {
    fetch: SmpFetch,
    convs: Vec<SmpConv>,
}

/// What a sample expression reads: the check's variables and its input buffer.
struct SmpCtx<'a> {
    vars: &'a [(String, SmpVal)],
    bi: &'a [u8],
}

impl SmpExpr {
    /// sample.c:sample_parse_expr() for the check subset: `fetch[(args)][,conv[(args)]]...`.
    fn parse(s: &str) -> Result<SmpExpr, String> {
        let parts = split_top_commas(s);
        let (first, rest) = parts.split_first().ok_or("missing fetch method")?;
        let (name, args) = split_call(first)?;
        let fetch = match name {
            "var" => {
                let v = args.first().ok_or("missing variable name in 'var'")?;
                if !v.starts_with("check.") && !v.starts_with("proc.") {
                    return Err(format!(
                        "variable '{v}': only the 'check' scope is available in health checks"
                    ));
                }
                SmpFetch::Var(v.clone())
            }
            "res.payload" | "req.payload" => {
                let n = |i: usize| -> Result<usize, String> {
                    args.get(i)
                        .and_then(|a| a.parse().ok())
                        .ok_or_else(|| format!("'{name}' expects <offset>,<length>"))
                };
                SmpFetch::ResPayload(n(0)?, n(1)?)
            }
            "date" => SmpFetch::Date,
            "str" => SmpFetch::Str(args.first().cloned().unwrap_or_default()),
            "int" => {
                SmpFetch::Int(args.first().and_then(|a| a.parse().ok()).ok_or("'int' expects an integer")?)
            }
            other => {
                return Err(format!("fetch method '{other}' is not supported in haflow's health checks"));
            }
        };
        let mut convs = Vec::new();
        for c in rest {
            let (name, args) = split_call(c)?;
            convs.push(match name {
                "hex" => SmpConv::Hex,
                "htonl" => SmpConv::Htonl,
                "cut_crlf" => SmpConv::CutCrlf,
                "ltrim" => SmpConv::Ltrim(args.first().cloned().unwrap_or_default().into_bytes()),
                other => {
                    return Err(format!("converter '{other}' is not supported in haflow's health checks"));
                }
            });
        }
        Ok(SmpExpr { fetch, convs })
    }

    /// sample.c:sample_process(): the fetch, then each converter. `None`: no sample.
    fn eval(&self, ctx: &SmpCtx) -> Option<SmpVal> {
        let mut v = match &self.fetch {
            SmpFetch::Var(name) => ctx.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())?,
            SmpFetch::ResPayload(off, len) => {
                let end = if *len == 0 { ctx.bi.len() } else { off.checked_add(*len)? };
                SmpVal::Str(ctx.bi.get(*off..end)?.to_vec())
            }
            SmpFetch::Date => SmpVal::Sint(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
            ),
            SmpFetch::Str(s) => SmpVal::Str(s.clone().into_bytes()),
            SmpFetch::Int(n) => SmpVal::Sint(*n),
        };
        for c in &self.convs {
            v = match (c, v) {
                (SmpConv::Hex, v) => SmpVal::Str(dump_binary(&v.into_bytes()).into_bytes()),
                (SmpConv::Htonl, SmpVal::Sint(n)) => SmpVal::Str((n as u32).to_be_bytes().to_vec()),
                (SmpConv::Htonl, SmpVal::Str(s)) => {
                    let n: i64 = std::str::from_utf8(&s).ok()?.trim().parse().ok()?;
                    SmpVal::Str((n as u32).to_be_bytes().to_vec())
                }
                (SmpConv::CutCrlf, v) => {
                    let b = v.into_bytes();
                    let end = b.iter().position(|&c| c == b'\r' || c == b'\n').unwrap_or(b.len());
                    SmpVal::Str(b[..end].to_vec())
                }
                (SmpConv::Ltrim(set), v) => {
                    let b = v.into_bytes();
                    let start = b.iter().position(|c| !set.contains(c)).unwrap_or(b.len());
                    SmpVal::Str(b[start..].to_vec())
                }
            };
        }
        Some(v)
    }

    /// The sample as an integer (`status-code`), as `sample_casts[][SMP_T_SINT]` reads it.
    fn eval_int(&self, ctx: &SmpCtx) -> Option<i64> {
        match self.eval(ctx)? {
            SmpVal::Sint(n) => Some(n),
            SmpVal::Str(s) => {
                let t = std::str::from_utf8(&s).ok()?;
                let digits = t.trim_start().bytes().take_while(u8::is_ascii_digit).count();
                t.trim_start()[..digits].parse().ok()
            }
        }
    }
}

/// Splits `a(b,c),d` at the commas outside parentheses.
fn split_top_commas(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `name(a,b)` into the name and its arguments (quotes removed).
fn split_call(s: &str) -> Result<(&str, Vec<String>), String> {
    let Some(open) = s.find('(') else { return Ok((s.trim(), Vec::new())) };
    let inner = s[open + 1..].strip_suffix(')').ok_or_else(|| format!("missing closing ')' in '{s}'"))?;
    let args = if inner.is_empty() {
        Vec::new()
    } else {
        inner.split(',').map(|a| a.trim_matches(|c| c == '\'' || c == '"').to_string()).collect()
    };
    Ok((s[..open].trim(), args))
}

/// One part of a log-format string (`struct logformat_node`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum FmtNode {
    Lit(Vec<u8>),
    Expr(SmpExpr),
}

/// A log-format string of the check subset: literal text and `%[expr]` samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChkFmt(Vec<FmtNode>);

impl ChkFmt {
    /// log.c:parse_logformat_string() for the check subset.
    fn parse(s: &str) -> Result<ChkFmt, String> {
        let mut nodes = Vec::new();
        let mut lit = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            match b.get(i + 1) {
                Some(b'%') => {
                    lit.push(b'%');
                    i += 2;
                }
                Some(b'[') => {
                    let close = s[i..].find(']').ok_or("missing ']' after '%['")? + i;
                    if !lit.is_empty() {
                        nodes.push(FmtNode::Lit(std::mem::take(&mut lit)));
                    }
                    nodes.push(FmtNode::Expr(SmpExpr::parse(&s[i + 2..close])?));
                    i = close + 1;
                }
                _ => {
                    return Err(format!(
                        "log-format variable at '{}' is not supported in haflow's health checks (only %[...] samples)",
                        &s[i..]
                    ));
                }
            }
        }
        if !lit.is_empty() {
            nodes.push(FmtNode::Lit(lit));
        }
        Ok(ChkFmt(nodes))
    }

    /// log.c:sess_build_logline(): a sample that cannot be fetched prints nothing.
    fn build(&self, ctx: &SmpCtx) -> Vec<u8> {
        let mut out = Vec::new();
        for n in &self.0 {
            match n {
                FmtNode::Lit(l) => out.extend_from_slice(l),
                FmtNode::Expr(e) => {
                    if let Some(v) = e.eval(ctx) {
                        out.extend(v.into_bytes());
                    }
                }
            }
        }
        out
    }
}

/// tools.c:dump_binary(): bytes as upper-case hexadecimal.
fn dump_binary(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02X}")).collect()
}

/// tools.c:parse_binary(): hexadecimal text into bytes.
fn parse_binary(s: &[u8]) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("an even number of hex digit is expected".into());
    }
    s.chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("'{}' is not a hex digit pair", String::from_utf8_lossy(p)))
        })
        .collect()
}

/// `tcpcheck_connect`: where a `connect` rule goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpcheckConnect {
    /// `port N` (0: the check's or the server's port).
    pub port: u16,
    /// `addr A[:P]`.
    pub addr: Option<SocketAddr>,
    /// `TCPCHK_OPT_*`.
    pub options: TcpchkOpt,
}

/// An `http-check send` request (`tcpcheck_send.http`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpSend {
    /// `meth` (default `OPTIONS`).
    pub meth: Option<String>,
    /// `uri` (default `/`).
    pub uri: Option<String>,
    /// `ver` (default `HTTP/1.0`).
    pub vsn: Option<String>,
    /// `hdr <name> <value>`, in order.
    pub hdrs: Vec<(String, String)>,
    /// `body`.
    pub body: Option<String>,
    /// `TCPCHK_SND_HTTP_FROM_OPT`: the implicit request of an `option httpchk` line.
    pub from_opt: bool,
}

/// `tcpcheck_send`: what a `send` rule writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpcheckSend {
    /// `send` / `send-binary`: fixed bytes.
    Data(Vec<u8>),
    /// `send-lf`: a log-format string.
    StringLf(ChkFmt),
    /// `send-binary-lf`: a log-format string giving hexadecimal.
    BinaryLf(ChkFmt),
    /// `http-check send`.
    Http(Box<HttpSend>),
}

/// `TCPCHK_EXPECT_CUSTOM` functions of HAProxy's own rule sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomExpect {
    /// `tcpcheck_mysql_expect_iniths`.
    MysqlIniths,
    /// `tcpcheck_mysql_expect_ok`.
    MysqlOk,
    /// `tcpcheck_ldap_expect_bindrsp`.
    LdapBindrsp,
    /// `tcpcheck_spop_expect_agenthello`.
    SpopAgenthello,
    /// `tcpcheck_agent_expect_reply`.
    AgentReply,
}

/// How `expect hdr` matches a name or a value (`TCPCHK_EXPT_FL_HTTP_H*_*`).
#[derive(Clone, Debug)]
pub enum HdrPat {
    /// `-m str` (names case-insensitively).
    Str(String),
    /// `-m beg`.
    Beg(String),
    /// `-m end`.
    End(String),
    /// `-m sub`.
    Sub(String),
    /// `-m reg`.
    Reg(MyRegex),
}

impl HdrPat {
    fn matches(&self, s: &str, icase: bool) -> bool {
        let p = match self {
            HdrPat::Str(p) | HdrPat::Beg(p) | HdrPat::End(p) | HdrPat::Sub(p) => p.as_str(),
            HdrPat::Reg(_) => "",
        };
        let (s, p) = if icase {
            (s.to_ascii_lowercase(), p.to_ascii_lowercase())
        } else {
            (s.to_string(), p.to_string())
        };
        match self {
            HdrPat::Str(_) => s == p,
            HdrPat::Beg(_) => s.starts_with(&p),
            HdrPat::End(_) => s.ends_with(&p),
            HdrPat::Sub(_) => s.contains(&p),
            HdrPat::Reg(r) => regex_exec2(r, s.as_bytes()),
        }
    }
}

/// `tcpcheck_expect.type` with its pattern.
#[derive(Clone, Debug)]
pub enum ExpectType {
    /// `string` (`TCPCHK_EXPECT_STRING`).
    String(Vec<u8>),
    /// `rstring`.
    StringRegex(MyRegex),
    /// `binary`.
    Binary(Vec<u8>),
    /// `rbinary`: matched against the hexadecimal dump of the data.
    BinaryRegex(MyRegex),
    /// `string-lf`.
    StringLf(ChkFmt),
    /// `binary-lf`.
    BinaryLf(ChkFmt),
    /// `custom`: one of HAProxy's protocol parsers.
    Custom(CustomExpect),
    /// `status <codes>`: ranges.
    HttpStatus(Vec<(u32, u32)>),
    /// `rstatus`.
    HttpStatusRegex(MyRegex),
    /// `hdr`/`fhdr name ... [value ...]`: (name, value, full).
    HttpHeader(HdrPat, Option<HdrPat>, bool),
    /// `string` in an HTTP check: the body contains it.
    HttpBody(Vec<u8>),
    /// `rstring` in an HTTP check.
    HttpBodyRegex(MyRegex),
    /// `string-lf` in an HTTP check.
    HttpBodyLf(ChkFmt),
}

/// `tcpcheck_expect`.
#[derive(Clone, Debug)]
pub struct TcpcheckExpect {
    /// The pattern.
    pub kind: ExpectType,
    /// `!`: the pattern must not match.
    pub inverse: bool,
    /// `min-recv N` (-1: none).
    pub min_recv: i64,
    /// `ok-status`.
    pub ok_status: Option<HchkStatus>,
    /// `error-status`.
    pub err_status: Option<HchkStatus>,
    /// `tout-status`.
    pub tout_status: Option<HchkStatus>,
    /// `on-success`.
    pub on_success: Option<ChkFmt>,
    /// `on-error`.
    pub on_error: Option<ChkFmt>,
    /// `status-code`: the check's code on success or error.
    pub status_code: Option<SmpExpr>,
    /// `expect.head`: the first rule of the chain of expects this one belongs to, where
    /// a check waiting for more data resumes (set by `check_proxy_tcpcheck`).
    pub head: usize,
}

/// `tcpcheck_rule.action` with its arguments.
#[derive(Clone, Debug)]
pub enum TcpcheckAction {
    /// `TCPCHK_ACT_CONNECT`.
    Connect(TcpcheckConnect),
    /// `TCPCHK_ACT_SEND`.
    Send(TcpcheckSend),
    /// `TCPCHK_ACT_EXPECT`.
    Expect(Box<TcpcheckExpect>),
    /// `TCPCHK_ACT_COMMENT` (folded into the next rules by `check_proxy_tcpcheck`).
    Comment,
    /// `set-var(check.NAME) <expr>` (`TCPCHK_ACT_ACTION_KW`).
    SetVar(String, SmpExpr),
    /// `unset-var(check.NAME)`.
    UnsetVar(String),
}

/// `struct tcpcheck_rule`.
#[derive(Clone, Debug)]
pub struct TcpcheckRule {
    /// `index`: the step number minus one (`tcpcheck_get_step_id`).
    pub index: u32,
    /// What the rule does.
    pub action: TcpcheckAction,
    /// `comment`, shown in messages.
    pub comment: Option<String>,
}

impl TcpcheckRule {
    fn is_active(&self) -> bool {
        !matches!(
            self.action,
            TcpcheckAction::Comment | TcpcheckAction::SetVar(..) | TcpcheckAction::UnsetVar(_)
        )
    }
}

/// `struct tcpcheck_rules` once complete: the rules a check runs.
#[derive(Clone, Debug, Default)]
pub struct TcpcheckRules {
    /// `flags & TCPCHK_RULES_PROTO_CHK`.
    pub proto: TcpchkProto,
    /// The rules, in order.
    pub list: Vec<TcpcheckRule>,
    /// `preset_vars`: variables set before the first rule.
    pub preset_vars: Vec<(String, SmpVal)>,
}

impl TcpcheckRules {
    /// tcpcheck.c:get_next_tcpcheck_rule() in 2.6: the next rule that is not a comment or
    /// an action after position `i`.
    fn next_active(&self, i: usize) -> Option<&TcpcheckRule> {
        self.list[i + 1..].iter().find(|r| r.is_active())
    }
}

/// The rules of a proxy while the configuration is read: which named rule set it uses
/// (`tcpcheck_rules.list`), with what protocol and preset variables.
#[derive(Clone, Debug, Default)]
pub struct TcpcheckCfg {
    /// `(options2 & PR_O2_CHK_ANY) == PR_O2_TCPCHK_CHK`: an `option *-check`,
    /// `option httpchk` or `option tcp-check` line selected rule-based checks.
    pub enabled: bool,
    /// `flags & TCPCHK_RULES_PROTO_CHK`.
    pub proto: TcpchkProto,
    /// The rule set used, by name.
    pub list: Option<String>,
    /// `TCPCHK_RULES_UNUSED_TCP_RS`: `tcp-check` rules wait for `option tcp-check`.
    pub unused_tcp_rs: bool,
    /// `TCPCHK_RULES_UNUSED_HTTP_RS`: `http-check` rules wait for `option httpchk`.
    pub unused_http_rs: bool,
    /// `preset_vars`.
    pub preset_vars: Vec<(String, SmpVal)>,
    /// `PR_O_DISABLE404`: `http-check disable-on-404`.
    pub disable404: bool,
    /// The complete rules (`check_proxy_tcpcheck`), shared by the proxy's server checks.
    pub rules: Arc<TcpcheckRules>,
}

/// The named rule sets of a configuration (`shared_tcpchecks`).
#[derive(Debug, Default)]
pub struct TcpcheckRulesets(std::collections::HashMap<String, Vec<TcpcheckRule>>);

/// What the configuration line concerns: the proxy being parsed and its identity, for
/// the names of its rule sets.
pub struct PxCtx<'a> {
    /// The proxy's (or the `defaults` section's) check settings.
    pub cfg: &'a mut TcpcheckCfg,
    /// The proxy's name, or `None` in a `defaults` section.
    pub name: Option<&'a str>,
    /// Where the proxy was declared (`curpx->conf.file`, `conf.line`).
    pub conf: (&'a str, usize),
    /// The `defaults` section's declaration, for `option tcp-check` to find its rules.
    pub defconf: (&'a str, usize),
}

impl PxCtx<'_> {
    fn ruleset_name(&self, kind: &str) -> String {
        format!("*{kind}-{}_{}-{}", self.name.unwrap_or("defaults"), self.conf.0, self.conf.1)
    }
}

/// `HCHK_STATUS_*` names accepted by `ok-status`, `error-status`, `tout-status`.
fn parse_status(kw: &str, v: &str, allowed: &[&str]) -> Result<HchkStatus, String> {
    use HchkStatus::*;
    let st = match v.to_ascii_uppercase().as_str() {
        "L7OK" => HCHK_STATUS_L7OKD,
        "L7OKC" => HCHK_STATUS_L7OKCD,
        "L6OK" => HCHK_STATUS_L6OK,
        "L4OK" => HCHK_STATUS_L4OK,
        "L7RSP" => HCHK_STATUS_L7RSP,
        "L7STS" => HCHK_STATUS_L7STS,
        "L6RSP" => HCHK_STATUS_L6RSP,
        "L4CON" => HCHK_STATUS_L4CON,
        "L7TOUT" => HCHK_STATUS_L7TOUT,
        "L6TOUT" => HCHK_STATUS_L6TOUT,
        "L4TOUT" => HCHK_STATUS_L4TOUT,
        _ => HCHK_STATUS_UNKNOWN,
    };
    if st == HCHK_STATUS_UNKNOWN || !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
        let list = allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>();
        let (head, last) = list.split_at(list.len() - 1);
        return Err(format!("'{kw}' only supports {} or {} status (got '{v}').", head.join(", "), last[0]));
    }
    Ok(st)
}

/// tcpcheck.c:parse_tcpcheck_connect() in 2.6. `rules` are those before this one.
fn parse_tcpcheck_connect(args: &[String], rules: &[TcpcheckRule]) -> Result<TcpcheckRule, String> {
    for r in rules {
        match &r.action {
            TcpcheckAction::Connect(_) => break,
            TcpcheckAction::Comment | TcpcheckAction::SetVar(..) | TcpcheckAction::UnsetVar(_) => {}
            TcpcheckAction::Send(TcpcheckSend::Http(h)) if h.from_opt => {}
            _ => {
                return Err("first step MUST also be a 'connect', optionally preceded by a 'set-var', an 'unset-var' or a 'comment', when there is a 'connect' step in the tcp-check ruleset".into());
            }
        }
    }
    let mut c = TcpcheckConnect::default();
    let mut comment = None;
    let mut i = 2;
    while let Some(a) = args.get(i) {
        let val = args.get(i + 1).filter(|v| !v.is_empty());
        match a.as_str() {
            "default" => c.options |= TcpchkOpt::TCPCHK_OPT_DEFAULT_CONNECT,
            "addr" => {
                let v = val.ok_or_else(|| format!("'{a}' expects <ipv4|ipv6> as argument."))?;
                c.addr = Some(parse_sockaddr(v).map_err(|e| format!("'{a}' : {e}."))?);
                i += 1;
            }
            "port" => {
                let v = val.ok_or_else(|| {
                    format!("'{a}' expects a port number or a sample expression as argument.")
                })?;
                match v.parse::<u32>() {
                    Ok(p) if (1..=65535).contains(&p) => c.port = p as u16,
                    Ok(_) => {
                        return Err(format!(
                            "expects a valid TCP port (from range 1 to 65535) or a sample expression, got {v}."
                        ));
                    }
                    Err(_) => {
                        return Err(format!(
                            "error detected while parsing port expression : sample expressions as port ('{v}') are not supported by haflow"
                        ));
                    }
                }
                i += 1;
            }
            "comment" => {
                comment = Some(val.ok_or_else(|| format!("'{a}' expects a string as argument."))?.clone());
                i += 1;
            }
            "send-proxy" => c.options |= TcpchkOpt::TCPCHK_OPT_SEND_PROXY,
            "via-socks4" => c.options |= TcpchkOpt::TCPCHK_OPT_SOCKS4,
            "linger" => c.options |= TcpchkOpt::TCPCHK_OPT_LINGER,
            "ssl" | "sni" | "alpn" | "proto" => {
                return Err(format!("'{a}' is not supported by haflow (no TLS, one HTTP/1 mux)"));
            }
            other => {
                return Err(format!(
                    "expects 'comment', 'port', 'addr', 'send-proxy' or 'via-socks4', 'linger', 'default' but got '{other}' as argument."
                ));
            }
        }
        i += 1;
    }
    Ok(TcpcheckRule { index: 0, action: TcpcheckAction::Connect(c), comment })
}

/// `addr[:port]` of a `connect addr` or a server `addr`.
fn parse_sockaddr(v: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = v.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let (host, port) = match v.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse::<u16>().map_err(|_| format!("invalid port '{p}'"))?),
        _ => (v, 0),
    };
    let ip: IpAddr =
        host.trim_matches(|c| c == '[' || c == ']').parse().map_err(|_| format!("invalid address: '{v}'"))?;
    Ok(SocketAddr::new(ip, port))
}

/// tcpcheck.c:parse_tcpcheck_send() in 2.6.
fn parse_tcpcheck_send(args: &[String]) -> Result<TcpcheckRule, String> {
    let kw = args[1].as_str();
    let data = args.get(2).filter(|d| !d.is_empty()).ok_or_else(|| {
        format!(
            "'{kw}' expects a {} as argument",
            if kw == "send-binary" { "binary string" } else { "string" }
        )
    })?;
    let mut comment = None;
    let mut i = 3;
    while let Some(a) = args.get(i) {
        if a != "comment" {
            return Err(format!("expects 'comment' but got '{a}' as argument."));
        }
        comment = Some(
            args.get(i + 1)
                .filter(|v| !v.is_empty())
                .ok_or("'comment' expects a string as argument.")?
                .clone(),
        );
        i += 2;
    }
    let send = match kw {
        "send" => TcpcheckSend::Data(data.clone().into_bytes()),
        "send-binary" => TcpcheckSend::Data(
            parse_binary(data.as_bytes()).map_err(|e| format!("'{data}' invalid binary string ({e}).\n"))?,
        ),
        "send-lf" => TcpcheckSend::StringLf(
            ChkFmt::parse(data).map_err(|e| format!("'{data}' invalid log-format string ({e}).\n"))?,
        ),
        _ => TcpcheckSend::BinaryLf(
            ChkFmt::parse(data).map_err(|e| format!("'{data}' invalid log-format string ({e}).\n"))?,
        ),
    };
    Ok(TcpcheckRule { index: 0, action: TcpcheckAction::Send(send), comment })
}

/// tcpcheck.c:parse_tcpcheck_send_http() in 2.6.
fn parse_tcpcheck_send_http(args: &[String]) -> Result<TcpcheckRule, String> {
    let mut h = HttpSend::default();
    let mut comment = None;
    let mut i = 2;
    let need = |i: usize| -> Result<String, String> {
        args.get(i + 1)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("'{}' expects a string as argument.", args[i]))
    };
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "meth" => h.meth = Some(need(i)?),
            "uri" => h.uri = Some(need(i)?),
            "ver" => h.vsn = Some(need(i)?),
            "body" => h.body = Some(need(i)?),
            "comment" => comment = Some(need(i)?),
            "uri-lf" | "body-lf" => {
                return Err(format!(
                    "'{a}' (a log-format string) is not supported by haflow's http-check send"
                ));
            }
            "hdr" => {
                let (Some(n), Some(v)) =
                    (args.get(i + 1).filter(|s| !s.is_empty()), args.get(i + 2).filter(|s| !s.is_empty()))
                else {
                    return Err(format!("'{a}' expects <name> and <value> as arguments"));
                };
                if n.eq_ignore_ascii_case("host")
                    && let Some((_, prev)) = h.hdrs.iter().find(|(x, _)| x.eq_ignore_ascii_case("host"))
                {
                    return Err(format!("'{n}' header already defined (previous value is '{prev}')"));
                }
                if !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("transfer-encoding") {
                    if v.contains('%') {
                        ChkFmt::parse(v)?;
                    }
                    h.hdrs.push((n.clone(), v.clone()));
                }
                i += 3;
                continue;
            }
            other => {
                return Err(format!(
                    "expects 'comment', 'meth', 'uri', 'uri-lf', 'ver', 'hdr', 'body' or 'body-lf' but got '{other}' as argument."
                ));
            }
        }
        i += 2;
    }
    Ok(TcpcheckRule { index: 0, action: TcpcheckAction::Send(TcpcheckSend::Http(Box::new(h))), comment })
}

/// tcpcheck.c:parse_tcpcheck_expect() in 2.6. `args[1]` is `expect`.
fn parse_tcpcheck_expect(args: &[String], http: bool) -> Result<TcpcheckRule, String> {
    if args.get(2).is_none_or(|a| a.is_empty()) {
        return Err("expects at least a matching pattern as arguments".into());
    }
    let bad = |a: &str| -> String {
        if http {
            format!(
                "'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', '[!]status', '[!]rstatus', [!]hdr, [!]fhdr or comment but got '{a}' as argument."
            )
        } else {
            format!(
                "'only supports min-recv, '[!]binary', '[!]string', '[!]rstring', '[!]string-lf''[!]rbinary', '[!]binary-lf' or comment but got '{a}' as argument."
            )
        }
    };
    let mut kind: Option<ExpectType> = None;
    let (mut inverse, mut min_recv) = (false, -1i64);
    let (mut ok_st, mut err_st, mut tout_st) = (None, None, None);
    let (mut on_success, mut on_error, mut status_code, mut comment) = (None, None, None, None);
    let mut i = 2;
    while i < args.len() {
        let mut a = args[i].as_str();
        let mut in_pattern = false;
        if a.starts_with('!') {
            in_pattern = true;
            while let Some(r) = a.strip_prefix('!') {
                inverse = !inverse;
                a = r;
            }
            if a.is_empty() {
                i += 1;
                a = args.get(i).map_or("", String::as_str);
            }
        }
        let val = args.get(i + 1).filter(|v| !v.is_empty());
        let only_one = |k: &Option<ExpectType>| -> Result<(), String> {
            if k.is_some() { Err("only on pattern expected".into()) } else { Ok(()) }
        };
        let no_bang = |a: &str| -> Result<(), String> {
            if in_pattern { Err(format!("[!] not supported with '{a}'")) } else { Ok(()) }
        };
        let pattern = || -> Result<&String, String> {
            val.ok_or_else(|| format!("'{a}' expects a <pattern> as argument"))
        };
        // tcpcheck.c:parse_tcp_check_expect() in 2.6: case-sensitive, no groups.
        let regex = |p: &str| regex_comp(p, true, false);
        match a {
            "min-recv" => {
                no_bang(a)?;
                let v = val.ok_or_else(|| format!("'{a}' expects a integer as argument"))?;
                min_recv = v.parse::<i64>().unwrap_or(0);
                if !(-1..=i64::from(i32::MAX)).contains(&min_recv) {
                    return Err(format!("'{a}' expects -1 or an integer from 0 to INT_MAX"));
                }
                i += 1;
            }
            "string" | "rstring" => {
                only_one(&kind)?;
                let p = pattern()?;
                kind = Some(match (http, a) {
                    (false, "string") => ExpectType::String(p.clone().into_bytes()),
                    (false, _) => ExpectType::StringRegex(regex(p)?),
                    (true, "string") => ExpectType::HttpBody(p.clone().into_bytes()),
                    (true, _) => ExpectType::HttpBodyRegex(regex(p)?),
                });
                i += 1;
            }
            "binary" | "rbinary" => {
                if http {
                    return Err(bad(a));
                }
                only_one(&kind)?;
                let p = pattern()?;
                kind = Some(if a == "binary" {
                    ExpectType::Binary(
                        parse_binary(p.as_bytes()).map_err(|e| format!("invalid binary string ({e})"))?,
                    )
                } else {
                    ExpectType::BinaryRegex(regex(p)?)
                });
                i += 1;
            }
            "string-lf" | "binary-lf" => {
                only_one(&kind)?;
                if http && a == "binary-lf" {
                    return Err(bad(a));
                }
                let p = pattern()?;
                let f = ChkFmt::parse(p).map_err(|e| format!("'{p}' invalid log-format string ({e}).\n"))?;
                kind = Some(match (http, a) {
                    (true, _) => ExpectType::HttpBodyLf(f),
                    (false, "string-lf") => ExpectType::StringLf(f),
                    (false, _) => ExpectType::BinaryLf(f),
                });
                i += 1;
            }
            "status" | "rstatus" => {
                if !http {
                    return Err(bad(a));
                }
                only_one(&kind)?;
                let p = pattern()?;
                kind = Some(if a == "status" {
                    ExpectType::HttpStatus(parse_status_codes(p)?)
                } else {
                    ExpectType::HttpStatusRegex(regex(p)?)
                });
                i += 1;
            }
            "custom" => {
                no_bang(a)?;
                only_one(&kind)?;
                return Err("'custom' is only available to HAProxy's own rule sets".into());
            }
            "hdr" | "fhdr" => {
                if !http {
                    return Err(bad(a));
                }
                only_one(&kind)?;
                let full = a == "fhdr";
                let (Some(nkw), Some(_)) = (args.get(i + 1), args.get(i + 2)) else {
                    return Err(format!(
                        "'{a}' expects at the name keyword as first argument followed by a pattern"
                    ));
                };
                if nkw != "name" {
                    return Err(if nkw == "name-lf" {
                        format!("'{a}' : 'name-lf' (a log-format string) is not supported by haflow")
                    } else {
                        format!("'{a}' expects at the name keyword as first argument followed by a pattern")
                    });
                }
                i += 2;
                let (npat, next) = parse_hdr_pat(args, i, a, false)?;
                i = next;
                let mut vpat = None;
                if args.get(i + 1).is_some_and(|v| v == "value") {
                    if args.get(i + 2).is_none_or(|v| v.is_empty()) {
                        return Err(format!("'{a}' expect a pattern with the value keyword"));
                    }
                    let (p, next) = parse_hdr_pat(args, i + 2, a, true)?;
                    vpat = Some(p);
                    i = next;
                } else if args.get(i + 1).is_some_and(|v| v == "value-lf") {
                    return Err(format!(
                        "'{a}' : 'value-lf' (a log-format string) is not supported by haflow"
                    ));
                }
                kind = Some(ExpectType::HttpHeader(npat, vpat, full));
            }
            "comment" | "on-success" | "on-error" | "status-code" => {
                no_bang(a)?;
                let v = val.ok_or_else(|| format!("'{a}' expects a string as argument"))?;
                let lf = |v: &str| {
                    ChkFmt::parse(v).map_err(|e| format!("'{v}' invalid log-format string ({e}).\n"))
                };
                match a {
                    "comment" => comment = Some(v.clone()),
                    "on-success" => on_success = Some(lf(v)?),
                    "on-error" => on_error = Some(lf(v)?),
                    _ => {
                        status_code = Some(SmpExpr::parse(v).map_err(|e| {
                            format!("error detected while parsing status-code expression : {e}")
                        })?)
                    }
                }
                i += 1;
            }
            "ok-status" => {
                no_bang(a)?;
                let v = val.ok_or_else(|| format!("'{a}' expects a string as argument"))?;
                ok_st = Some(parse_status(a, v, &["L4OK", "L6OK", "L7OK", "L7OKC"])?);
                i += 1;
            }
            "error-status" => {
                no_bang(a)?;
                let v = val.ok_or_else(|| format!("'{a}' expects a string as argument"))?;
                err_st = Some(parse_status(a, v, &["L4CON", "L6RSP", "L7RSP", "L7STS", "L7OKC"])?);
                i += 1;
            }
            "tout-status" => {
                no_bang(a)?;
                let v = val.ok_or_else(|| format!("'{a}' expects a string as argument"))?;
                tout_st = Some(parse_status(a, v, &["L4TOUT", "L6TOUT", "L7TOUT"])?);
                i += 1;
            }
            other => return Err(bad(other)),
        }
        i += 1;
    }
    let kind = kind.ok_or("pattern not found")?;
    let e = TcpcheckExpect {
        kind,
        inverse,
        min_recv,
        ok_status: ok_st,
        err_status: err_st,
        tout_status: tout_st,
        on_success,
        on_error,
        status_code,
        head: 0,
    };
    Ok(TcpcheckRule { index: 0, action: TcpcheckAction::Expect(Box::new(e)), comment })
}

/// The `[-m str|beg|end|sub|reg] <pattern>` of `expect hdr`, from `args[i]` (the word
/// before it). Returns the pattern and the position of its last word.
fn parse_hdr_pat(args: &[String], i: usize, kw: &str, value: bool) -> Result<(HdrPat, usize), String> {
    let (method, at) = if args.get(i + 1).is_some_and(|a| a == "-m") {
        let m = args.get(i + 2).filter(|m| !m.is_empty()).ok_or_else(|| {
            format!("'{kw}' : '-m' expects at a matching pattern ('str', 'beg', 'end', 'sub' or 'reg')")
        })?;
        (m.as_str(), i + 3)
    } else {
        ("str", i + 1)
    };
    let p = args.get(at).cloned().unwrap_or_default();
    if p.is_empty() && value {
        return Err(format!("'{kw}' expect a pattern with the value keyword"));
    }
    let pat = match method {
        "str" => HdrPat::Str(p),
        "beg" => HdrPat::Beg(p),
        "end" => HdrPat::End(p),
        "sub" => HdrPat::Sub(p),
        // 2.6 matches header names case-insensitively, values case-sensitively.
        "reg" => HdrPat::Reg(regex_comp(&p, value, false)?),
        other => {
            return Err(format!(
                "'{kw}' : '-m' only supports 'str', 'beg', 'end', 'sub' or 'reg' (got '{other}')"
            ));
        }
    };
    Ok((pat, at))
}

/// The `status` list of `http-check expect status`: `200`, `200-399`, `200,302`.
fn parse_status_codes(p: &str) -> Result<Vec<(u32, u32)>, String> {
    let mut codes = Vec::new();
    for part in p.split(',') {
        let num = |s: &str| -> Result<u32, String> {
            let digits = s.bytes().take_while(u8::is_ascii_digit).count();
            if digits != s.len() {
                let c = s.chars().nth(digits).unwrap_or(' ');
                return Err(format!("invalid character '{c}' in the list of status codes"));
            }
            Ok(s.parse().unwrap_or(0))
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let a = num(part)?;
                (a, a)
            }
        };
        if a > b {
            return Err(format!("invalid range of status codes '{p}'"));
        }
        codes.push((a, b));
    }
    Ok(codes)
}

/// `tcp-check set-var(check.NAME) <expr>` / `unset-var(check.NAME)`.
fn parse_tcpcheck_action(args: &[String]) -> Result<TcpcheckRule, String> {
    let a = args[1].as_str();
    let name = |p: &str| -> Result<String, String> {
        let n = a.strip_prefix(p).and_then(|r| r.strip_suffix(')')).unwrap_or_default();
        if !n.starts_with("check.") {
            return Err(format!("'{a}': only variables of the 'check' scope can be set in health checks"));
        }
        Ok(n.to_string())
    };
    let action = if a.starts_with("set-var(") {
        let expr = args
            .get(2)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| format!("'{a}' expects a sample expression"))?;
        TcpcheckAction::SetVar(name("set-var(")?, SmpExpr::parse(expr)?)
    } else {
        TcpcheckAction::UnsetVar(name("unset-var(")?)
    };
    Ok(TcpcheckRule { index: 0, action, comment: None })
}

impl TcpcheckRulesets {
    fn get_or_create(&mut self, name: &str) -> &mut Vec<TcpcheckRule> {
        self.0.entry(name.to_string()).or_default()
    }

    /// The last rule's index plus one (`index` of a new rule).
    fn next_index(rules: &[TcpcheckRule]) -> u32 {
        rules.last().map_or(0, |r| r.index + 1)
    }

    /// tcpcheck.c:proxy_parse_tcpcheck() in 2.6: a `tcp-check` line.
    pub fn proxy_parse_tcpcheck(&mut self, px: &mut PxCtx, args: &[String]) -> Result<(), String> {
        let name = px.ruleset_name("tcp-check");
        let rs = self.get_or_create(&name);
        let index = Self::next_index(rs);
        let sub = args.get(1).map_or("", String::as_str);
        let chk = match sub {
            "connect" => parse_tcpcheck_connect(args, rs),
            "send" | "send-binary" | "send-lf" | "send-binary-lf" => parse_tcpcheck_send(args),
            "expect" => parse_tcpcheck_expect(args, false),
            "comment" => parse_tcpcheck_comment(args),
            s if s.starts_with("set-var(") || s.starts_with("unset-var(") => parse_tcpcheck_action(args),
            other => {
                return Err(format!(
                    "'tcp-check' only supports 'comment', 'connect', 'send', 'send-binary', 'expect', 'set-var', 'unset-var'. but got '{other}'"
                ));
            }
        }
        .map_err(|e| format!("'tcp-check {sub}' : {e}."))?;
        rs.push(TcpcheckRule { index, ..chk });
        if px.cfg.enabled && px.cfg.proto == TcpchkProto::TCPCHK_RULES_TCP_CHK {
            px.cfg.list = Some(name);
            px.cfg.unused_tcp_rs = false;
        } else {
            px.cfg.unused_tcp_rs = true;
        }
        Ok(())
    }

    /// tcpcheck.c:proxy_parse_httpcheck() in 2.6: an `http-check` line.
    pub fn proxy_parse_httpcheck(&mut self, px: &mut PxCtx, args: &[String]) -> Result<(), String> {
        let sub = args.get(1).map_or("", String::as_str);
        match sub {
            "disable-on-404" => {
                if args.len() > 2 {
                    return Err(format!("'{}' cannot handle unexpected argument '{}'.", args[0], args[2]));
                }
                px.cfg.disable404 = true;
                return Ok(());
            }
            "send-state" => {
                return Err("'http-check send-state' is not implemented by haflow.".into());
            }
            _ => {}
        }
        let name = px.ruleset_name("http-check");
        let rs = self.get_or_create(&name);
        let mut index = 0;
        if let Some(last) = rs.last()
            && !matches!(&last.action, TcpcheckAction::Send(TcpcheckSend::Http(h)) if h.from_opt)
        {
            index = last.index + 1;
        }
        let chk = match sub {
            "connect" => parse_tcpcheck_connect(args, rs),
            "send" => parse_tcpcheck_send_http(args),
            "expect" => parse_tcpcheck_expect(args, true),
            "comment" => parse_tcpcheck_comment(args),
            s if s.starts_with("set-var(") || s.starts_with("unset-var(") => parse_tcpcheck_action(args),
            other => {
                return Err(format!(
                    "'http-check' only supports 'disable-on-404', 'send-state', 'comment', 'connect', 'send', 'expect', 'set-var', 'unset-var'. but got '{other}'"
                ));
            }
        }
        .map_err(|e| format!("'http-check {sub}' : {e}."))?;
        let chk = TcpcheckRule { index, ..chk };
        if px.cfg.enabled && px.cfg.proto == TcpchkProto::TCPCHK_RULES_HTTP_CHK {
            px.cfg.list = Some(name.clone());
            px.cfg.unused_http_rs = false;
            tcpcheck_add_http_rule(chk, self.get_or_create(&name))
                .map_err(|e| format!("'http-check {sub}' : {e}."))?;
        } else {
            px.cfg.unused_http_rs = true;
            self.get_or_create(&name).push(chk);
        }
        Ok(())
    }

    /// Selects HAProxy's own rule set `name` (built by `build` the first time) for the
    /// proxy: the common part of `proxy_parse_redis_check_opt()` and its siblings (2.6).
    fn use_builtin(
        &mut self,
        px: &mut PxCtx,
        name: &str,
        proto: TcpchkProto,
        vars: Vec<(String, SmpVal)>,
        build: impl FnOnce() -> Result<Vec<TcpcheckRule>, String>,
    ) -> Result<(), String> {
        if !self.0.contains_key(name) {
            let mut rules = build()?;
            for (i, r) in rules.iter_mut().enumerate() {
                r.index = i as u32;
            }
            self.0.insert(name.to_string(), rules);
        }
        px.cfg.enabled = true;
        px.cfg.preset_vars = vars;
        px.cfg.list = Some(name.to_string());
        px.cfg.proto = proto;
        px.cfg.unused_tcp_rs = false;
        px.cfg.unused_http_rs = false;
        Ok(())
    }

    /// The `option` keywords that select a check type (`redis-check`, `ssl-hello-chk`,
    /// `smtpchk`, `pgsql-check`, `mysql-check`, `ldap-check`, `spop-check`, `httpchk`,
    /// `tcp-check`). `args[0]` is the option's name. Returns a warning, if any.
    pub fn proxy_parse_check_opt(
        &mut self,
        px: &mut PxCtx,
        args: &[String],
    ) -> Result<Option<String>, String> {
        let opt = args[0].as_str();
        let too_many = |max: usize| -> Result<(), String> {
            if args.len() > max + 1 {
                Err(format!("'option {opt}' cannot handle unexpected argument '{}'.", args[max + 1]))
            } else {
                Ok(())
            }
        };
        let e = |e: &str| -> String { e.to_string() };
        use TcpchkProto::*;
        match opt {
            "redis-check" => {
                too_many(0)?;
                self.use_builtin(px, "*redis-check", TCPCHK_RULES_REDIS_CHK, vec![], || {
                    Ok(vec![
                        builtin(parse_tcpcheck_send(&words(&["tcp-check", "send", "*1\r\n$4\r\nPING\r\n"])))?,
                        builtin(parse_tcpcheck_expect(
                            &words(&[
                                "tcp-check",
                                "expect",
                                "string",
                                "+PONG\r\n",
                                "error-status",
                                "L7STS",
                                "on-error",
                                "%[res.payload(0,0),cut_crlf]",
                                "on-success",
                                "Redis server is ok",
                            ]),
                            false,
                        ))?,
                    ])
                })?;
            }
            "ssl-hello-chk" => {
                too_many(0)?;
                self.use_builtin(px, "*ssl-hello-check", TCPCHK_RULES_SSL3_CHK, vec![], || {
                    Ok(vec![
                        builtin(parse_tcpcheck_send(&words(&[
                            "tcp-check",
                            "send-binary-lf",
                            SSLV3_CLIENT_HELLO,
                        ])))?,
                        builtin(parse_tcpcheck_expect(
                            &words(&[
                                "tcp-check",
                                "expect",
                                "rbinary",
                                "^1[56]",
                                "min-recv",
                                "5",
                                "ok-status",
                                "L6OK",
                                "error-status",
                                "L6RSP",
                                "tout-status",
                                "L6TOUT",
                            ]),
                            false,
                        ))?,
                    ])
                })?;
            }
            "smtpchk" => {
                too_many(2)?;
                let cmd = match (args.get(1), args.get(2)) {
                    (Some(h), Some(d)) if (h == "EHLO" || h == "HELO") && !d.is_empty() => format!("{h} {d}"),
                    _ => "HELO localhost".to_string(),
                };
                let vars = vec![("check.smtp_cmd".to_string(), SmpVal::Str(cmd.into_bytes()))];
                self.use_builtin(px, "*smtp-check", TCPCHK_RULES_SMTP_CHK, vars, || {
                    Ok(vec![
                        builtin(parse_tcpcheck_connect(
                            &words(&["tcp-check", "connect", "default", "linger"]),
                            &[],
                        ))?,
                        builtin(parse_tcpcheck_expect(
                            &words(&[
                                "tcp-check",
                                "expect",
                                "rstring",
                                "^[0-9]{3}[ \r]",
                                "min-recv",
                                "4",
                                "error-status",
                                "L7RSP",
                                "on-error",
                                "%[res.payload(0,0),cut_crlf]",
                            ]),
                            false,
                        ))?,
                        builtin(parse_tcpcheck_expect(
                            &words(&[
                                "tcp-check",
                                "expect",
                                "rstring",
                                "^2[0-9]{2}[ \r]",
                                "min-recv",
                                "4",
                                "error-status",
                                "L7STS",
                                "on-error",
                                "%[res.payload(4,0),ltrim(' '),cut_crlf]",
                                "status-code",
                                "res.payload(0,3)",
                            ]),
                            false,
                        ))?,
                        builtin(parse_tcpcheck_send(&words(&[
                            "tcp-check",
                            "send-lf",
                            "%[var(check.smtp_cmd)]\r\n",
                        ])))?,
                        builtin(parse_tcpcheck_expect(
                            &words(&[
                                "tcp-check",
                                "expect",
                                "rstring",
                                "^2[0-9]{2}[- \r]",
                                "min-recv",
                                "4",
                                "error-status",
                                "L7STS",
                                "on-error",
                                "%[res.payload(4,0),ltrim(' '),cut_crlf]",
                                "on-success",
                                "%[res.payload(4,0),ltrim(' '),cut_crlf]",
                                "status-code",
                                "res.payload(0,3)",
                            ]),
                            false,
                        ))?,
                    ])
                })?;
            }
            "pgsql-check" => {
                too_many(2)?;
                let (Some(kw), Some(user)) = (args.get(1), args.get(2).filter(|u| !u.is_empty())) else {
                    return Err(e("'option pgsql-check' expects 'user <username>' as argument."));
                };
                if kw != "user" {
                    return Err(e("'option pgsql-check' only supports optional values: 'user'."));
                }
                let vars = vec![
                    ("check.username".to_string(), SmpVal::Str(user.clone().into_bytes())),
                    ("check.plen".to_string(), SmpVal::Sint(15 + user.len() as i64)),
                ];
                self.use_builtin(px, "*pgsql-check", TCPCHK_RULES_PGSQL_CHK, vars, || {
                    Ok(vec![
                        builtin(parse_tcpcheck_connect(
                            &words(&["tcp-check", "connect", "default", "linger"]),
                            &[],
                        ))?,
                        builtin(parse_tcpcheck_send(&words(&[
                            "tcp-check",
                            "send-binary-lf",
                            "%[var(check.plen),htonl,hex]000300007573657200%[var(check.username),hex]0000",
                        ])))?,
                        builtin(parse_tcpcheck_expect(
                            &words(&[
                                "tcp-check",
                                "expect",
                                "!rstring",
                                "^E",
                                "min-recv",
                                "5",
                                "error-status",
                                "L7RSP",
                                "on-error",
                                "%[res.payload(6,0)]",
                            ]),
                            false,
                        ))?,
                        builtin(parse_tcpcheck_expect(
                            &words(&[
                                "tcp-check",
                                "expect",
                                "rbinary",
                                "^52000000(08|0A|0C)000000(00|02|03|04|05|06)",
                                "min-recv",
                                "9",
                                "error-status",
                                "L7STS",
                                "on-success",
                                "PostgreSQL server is ok",
                                "on-error",
                                "PostgreSQL unknown error",
                            ]),
                            false,
                        ))?,
                    ])
                })?;
            }
            "mysql-check" => {
                too_many(3)?;
                let mut vars = vec![];
                let mut req = None;
                let mut rsname = "*mysql-check";
                if let Some(kw) = args.get(1) {
                    if kw != "user" {
                        return Err(format!(
                            "'option mysql-check' only supports optional values: 'user' (got '{kw}')."
                        ));
                    }
                    let user = args
                        .get(2)
                        .filter(|u| !u.is_empty())
                        .ok_or("'option mysql-check user' expects <username> as argument.")?;
                    let (plen, template, name) = match args.get(3).map(String::as_str) {
                        None | Some("post-41") => (user.len() + 7 + 27, MYSQL41_REQ, "*mysql41-check"),
                        Some("pre-41") => (user.len() + 7, MYSQL40_REQ, "*mysql40-check"),
                        Some(other) => {
                            return Err(format!(
                                "keyword 'user' only supports 'post-41' and 'pre-41' (got '{other}')."
                            ));
                        }
                    };
                    let hdr =
                        vec![(plen & 0xff) as u8, ((plen >> 8) & 0xff) as u8, ((plen >> 16) & 0xff) as u8, 1];
                    vars.push(("check.header".to_string(), SmpVal::Str(hdr)));
                    vars.push(("check.username".to_string(), SmpVal::Str(user.clone().into_bytes())));
                    req = Some(template);
                    rsname = name;
                }
                self.use_builtin(px, rsname, TCPCHK_RULES_MYSQL_CHK, vars, || {
                    let mut r = vec![builtin(parse_tcpcheck_connect(
                        &words(&["tcp-check", "connect", "default", "linger"]),
                        &[],
                    ))?];
                    if let Some(req) = req {
                        r.push(builtin(parse_tcpcheck_send(&words(&["tcp-check", "send-binary-lf", req])))?);
                    }
                    r.push(custom(CustomExpect::MysqlIniths, -1));
                    if req.is_some() {
                        r.push(custom(CustomExpect::MysqlOk, -1));
                    }
                    Ok(r)
                })?;
            }
            "ldap-check" => {
                too_many(0)?;
                self.use_builtin(px, "*ldap-check", TCPCHK_RULES_LDAP_CHK, vec![], || {
                    Ok(vec![
                        builtin(parse_tcpcheck_send(&words(&[
                            "tcp-check",
                            "send-binary",
                            "300C020101600702010304008000",
                        ])))?,
                        builtin(parse_tcpcheck_expect(
                            &words(&[
                                "tcp-check",
                                "expect",
                                "rbinary",
                                "^30",
                                "min-recv",
                                "14",
                                "on-error",
                                "Not LDAPv3 protocol",
                            ]),
                            false,
                        ))?,
                        custom(CustomExpect::LdapBindrsp, -1),
                    ])
                })?;
            }
            "spop-check" => {
                too_many(0)?;
                self.use_builtin(px, "*spop-check", TCPCHK_RULES_SPOP_CHK, vec![], || {
                    let req = spoe_prepare_healthcheck_request();
                    Ok(vec![
                        TcpcheckRule {
                            index: 0,
                            action: TcpcheckAction::Send(TcpcheckSend::Data(req)),
                            comment: None,
                        },
                        custom(CustomExpect::SpopAgenthello, 4),
                    ])
                })?;
            }
            "httpchk" => return proxy_parse_httpchk_opt(self, px, args),
            "tcp-check" => {
                too_many(0)?;
                px.cfg.enabled = true;
                if px.cfg.proto == TCPCHK_RULES_TCP_CHK {
                    if px.cfg.list.is_some() {
                        return Ok(None);
                    }
                    if !px.cfg.unused_tcp_rs {
                        let def = format!("*tcp-check-defaults_{}-{}", px.defconf.0, px.defconf.1);
                        if self.0.contains_key(&def) {
                            px.cfg.preset_vars.clear();
                            px.cfg.list = Some(def);
                            px.cfg.unused_tcp_rs = false;
                            px.cfg.unused_http_rs = false;
                            return Ok(None);
                        }
                    }
                }
                let name = px.ruleset_name("tcp-check");
                self.get_or_create(&name);
                px.cfg.preset_vars.clear();
                px.cfg.list = Some(name);
                px.cfg.proto = TCPCHK_RULES_TCP_CHK;
                px.cfg.unused_tcp_rs = false;
                px.cfg.unused_http_rs = false;
            }
            _ => return Err(format!("unknown check option '{opt}'.")),
        }
        Ok(None)
    }

    /// cfgparse.c's end of a backend (2.6): a backend without any check option uses the
    /// empty `*tcp-check` rule set (a plain connect check); then tcpcheck.c:
    /// check_proxy_tcpcheck() completes the rules. Returns an alert, if any.
    pub fn check_proxy_tcpcheck(
        &mut self,
        cfg: &mut TcpcheckCfg,
        pxname: &str,
        warn: &mut Vec<String>,
    ) -> Result<(), String> {
        if cfg.unused_http_rs {
            warn.push(format!(
                "backend '{pxname}' uses http-check rules without 'option httpchk', so the rules are ignored."
            ));
        }
        if !cfg.enabled {
            cfg.enabled = true;
            cfg.list = Some("*tcp-check".into());
            cfg.proto = TcpchkProto::TCPCHK_RULES_NONE;
            cfg.preset_vars.clear();
        } else if cfg.disable404 && cfg.proto != TcpchkProto::TCPCHK_RULES_HTTP_CHK {
            warn.push(format!(
                "'disable-on-404' will be ignored for backend '{pxname}' (requires 'option httpchk')."
            ));
            cfg.disable404 = false;
        }
        let Some(name) = cfg.list.clone() else {
            return Err(format!("proxy '{pxname}' : tcp-check configured but no ruleset defined."));
        };
        let mut list = self.0.get(&name).cloned().unwrap_or_default();
        if cfg.proto == TcpchkProto::TCPCHK_RULES_HTTP_CHK {
            // Move a remaining implicit send after the first connect, if any.
            if let Some(first) = list.iter().position(TcpcheckRule::is_active)
                && matches!(&list[first].action, TcpcheckAction::Send(TcpcheckSend::Http(h)) if h.from_opt)
                && let Some(next) =
                    list[first + 1..].iter().position(TcpcheckRule::is_active).map(|p| p + first + 1)
                && matches!(list[next].action, TcpcheckAction::Connect(_))
            {
                let mut chk = list.remove(first);
                chk.index = list[next - 1].index + 1;
                list.insert(next, chk);
            }
            // An implicit `expect status 200-399` after a final send.
            if let Some(last) = list.iter().rev().find(|r| r.is_active())
                && matches!(last.action, TcpcheckAction::Send(_))
            {
                let index = last.index + 1;
                let chk = parse_tcpcheck_expect(&words(&["http-check", "expect", "status", "200-399"]), true)
                    .map_err(|e| {
                        format!("proxy '{pxname}': unable to add implicit http-check expect rule ({e}).")
                    })?;
                list.push(TcpcheckRule { index, ..chk });
            }
        }
        if list.iter().find(|r| r.is_active()).is_none_or(|r| !matches!(r.action, TcpcheckAction::Connect(_)))
        {
            let c = TcpcheckConnect {
                options: TcpchkOpt::TCPCHK_OPT_DEFAULT_CONNECT | TcpchkOpt::TCPCHK_OPT_IMPLICIT,
                ..Default::default()
            };
            list.insert(0, TcpcheckRule { index: 0, action: TcpcheckAction::Connect(c), comment: None });
        }
        let list = fold_comments(list);
        cfg.rules = Arc::new(TcpcheckRules {
            proto: cfg.proto,
            list: set_expect_heads(list),
            preset_vars: cfg.preset_vars.clone(),
        });
        Ok(())
    }
}

/// The comment part of check_proxy_tcpcheck() in 2.6: a `comment` rule is removed and its
/// text given to the rules after it, up to the next `connect` or action, or the next rule
/// of another kind.
fn fold_comments(list: Vec<TcpcheckRule>) -> Vec<TcpcheckRule> {
    let mut out = Vec::with_capacity(list.len());
    let mut comment: Option<String> = None;
    let mut prev: Option<std::mem::Discriminant<TcpcheckAction>> = None;
    for mut r in list {
        let d = std::mem::discriminant(&r.action);
        if prev.is_some_and(|p| p != d && p != std::mem::discriminant(&TcpcheckAction::Comment)) {
            comment = None;
        }
        prev = Some(d);
        match r.action {
            TcpcheckAction::Comment => comment = r.comment.take(),
            TcpcheckAction::Connect(_) | TcpcheckAction::SetVar(..) | TcpcheckAction::UnsetVar(_) => {
                if matches!(r.action, TcpcheckAction::Connect(_)) && r.comment.is_none() {
                    r.comment = comment.clone();
                }
                comment = None;
                out.push(r);
            }
            TcpcheckAction::Send(_) | TcpcheckAction::Expect(_) => {
                if r.comment.is_none() {
                    r.comment = comment.clone();
                }
                out.push(r);
            }
        }
    }
    out
}

/// The `expect.head` part of parse_tcpcheck_expect() in 2.6: each expect points back to
/// the first inverted expect of the chain of expects it ends, or to itself.
fn set_expect_heads(mut list: Vec<TcpcheckRule>) -> Vec<TcpcheckRule> {
    for i in 0..list.len() {
        if !matches!(list[i].action, TcpcheckAction::Expect(_)) {
            continue;
        }
        let mut head = i;
        for j in (0..i).rev() {
            match &list[j].action {
                TcpcheckAction::Expect(e) => {
                    if e.inverse {
                        head = j;
                    }
                }
                TcpcheckAction::Comment | TcpcheckAction::SetVar(..) | TcpcheckAction::UnsetVar(_) => {}
                _ => break,
            }
        }
        if let TcpcheckAction::Expect(e) = &mut list[i].action {
            e.head = head;
        }
    }
    list
}

/// tcpcheck.c:parse_tcpcheck_comment() in 2.6.
fn parse_tcpcheck_comment(args: &[String]) -> Result<TcpcheckRule, String> {
    let c = args.get(2).filter(|c| !c.is_empty()).ok_or("expects a string as argument")?;
    Ok(TcpcheckRule { index: 0, action: TcpcheckAction::Comment, comment: Some(c.clone()) })
}

/// tcpcheck.c:tcpcheck_add_http_rule() in 2.6: adds an `http-check` rule to the proxy's
/// rule set, merging the implicit request of `option httpchk` with the first explicit
/// `http-check send`.
fn tcpcheck_add_http_rule(mut chk: TcpcheckRule, rules: &mut Vec<TcpcheckRule>) -> Result<(), String> {
    let is_opt_send =
        |r: &TcpcheckRule| matches!(&r.action, TcpcheckAction::Send(TcpcheckSend::Http(h)) if h.from_opt);
    if is_opt_send(&chk) {
        let mut pos = rules.iter().position(TcpcheckRule::is_active);
        if let Some(p) = pos
            && matches!(rules[p].action, TcpcheckAction::Connect(_))
        {
            pos = rules[p + 1..].iter().position(TcpcheckRule::is_active).map(|q| q + p + 1);
        }
        match pos {
            Some(p) if matches!(rules[p].action, TcpcheckAction::Send(_)) => {
                if is_opt_send(&rules[p]) {
                    rules.remove(p);
                    rules.insert(0, chk);
                } else {
                    tcpcheck_overwrite_send_http_rule(&mut rules[p], chk);
                }
            }
            _ => rules.insert(0, chk),
        }
        return Ok(());
    }
    let last = rules.iter().rev().find(|r| r.is_active());
    if let Some(r) = last
        && !is_opt_send(r)
    {
        let (last_act, new_act) = (&r.action, &chk.action);
        if !matches!(last_act, TcpcheckAction::Connect(_)) && matches!(new_act, TcpcheckAction::Send(_)) {
            return Err(format!(
                "unable to add http-check send rule at step {} (missing connect rule).",
                chk.index + 1
            ));
        }
        if !matches!(last_act, TcpcheckAction::Send(_) | TcpcheckAction::Expect(_))
            && matches!(new_act, TcpcheckAction::Expect(_))
        {
            return Err(format!(
                "unable to add http-check expect rule at step {} (missing send rule).",
                chk.index + 1
            ));
        }
        if !matches!(last_act, TcpcheckAction::Expect(_)) && matches!(new_act, TcpcheckAction::Connect(_)) {
            return Err(format!(
                "unable to add http-check connect rule at step {} (missing expect rule).",
                chk.index + 1
            ));
        }
    }
    if matches!(chk.action, TcpcheckAction::Send(_))
        && let Some(p) = rules.iter().position(TcpcheckRule::is_active)
        && is_opt_send(&rules[p])
    {
        let mut r = rules.remove(p);
        tcpcheck_overwrite_send_http_rule(&mut r, chk);
        if let TcpcheckAction::Send(TcpcheckSend::Http(h)) = &mut r.action {
            h.from_opt = false;
        }
        chk = r;
    }
    rules.push(chk);
    Ok(())
}

/// tcpcheck.c:tcpcheck_overwrite_send_http_rule() in 2.6: what the new request sets
/// replaces the old one's; the headers are always replaced.
fn tcpcheck_overwrite_send_http_rule(old: &mut TcpcheckRule, new: TcpcheckRule) {
    let (TcpcheckAction::Send(TcpcheckSend::Http(o)), TcpcheckAction::Send(TcpcheckSend::Http(n))) =
        (&mut old.action, new.action)
    else {
        return;
    };
    if n.meth.is_some() {
        o.meth = n.meth;
    }
    if n.uri.is_some() {
        o.uri = n.uri;
    }
    if n.vsn.is_some() {
        o.vsn = n.vsn;
    }
    o.hdrs = n.hdrs;
    if n.body.is_some() {
        o.body = n.body;
    }
}

/// tcpcheck.c:proxy_parse_httpchk_req() and proxy_parse_httpchk_opt() in 2.6: `option
/// httpchk [[<method>] <uri> [<version>]]`. Headers and a body hidden after the version
/// (`\r\n` separated) are still read, with HAProxy's deprecation warning.
fn proxy_parse_httpchk_opt(
    sets: &mut TcpcheckRulesets,
    px: &mut PxCtx,
    args: &[String],
) -> Result<Option<String>, String> {
    if args.len() > 4 {
        return Err(format!("'option httpchk' cannot handle unexpected argument '{}'.", args[4]));
    }
    let mut h = HttpSend { from_opt: true, ..Default::default() };
    let mut warning = None;
    match (args.get(1), args.get(2)) {
        (Some(u), None) => h.uri = Some(u.clone()),
        (Some(m), Some(u)) => {
            h.meth = Some(m.clone());
            h.uri = Some(u.clone());
        }
        _ => {}
    }
    if let Some(v) = args.get(3) {
        let (vsn, rest) = match v.find("\r\n") {
            Some(p) => (&v[..p], Some(&v[p..])),
            None => (v.as_str(), None),
        };
        h.vsn = Some(vsn.to_string());
        if let Some(rest) = rest {
            warning = Some("'option httpchk' : hiding headers or body at the end of the version string is deprecated. Please, consider to use 'http-check send' directive instead.".to_string());
            let (hdrs, body) = match rest.find("\r\n\r\n") {
                Some(p) => (&rest[..p], Some(&rest[p + 4..])),
                None => (rest, None),
            };
            for line in hdrs.split("\r\n").filter(|l| !l.is_empty()) {
                let (n, v) = line.split_once(':').ok_or_else(|| {
                    format!("'option httpchk' : unable to parse the request '{}\r\n\r\n'.", hdrs.trim_start())
                })?;
                h.hdrs.push((n.trim().to_string(), v.trim().to_string()));
            }
            h.body = body.map(str::to_string);
        }
    }
    let chk = TcpcheckRule {
        index: 0,
        action: TcpcheckAction::Send(TcpcheckSend::Http(Box::new(h))),
        comment: None,
    };
    px.cfg.enabled = true;
    px.cfg.preset_vars.clear();
    let name = px.ruleset_name("http-check");
    px.cfg.list = Some(name.clone());
    px.cfg.proto = TcpchkProto::TCPCHK_RULES_HTTP_CHK;
    px.cfg.unused_tcp_rs = false;
    px.cfg.unused_http_rs = false;
    tcpcheck_add_http_rule(chk, sets.get_or_create(&name)).map_err(|e| format!("'option httpchk' : {e}."))?;
    Ok(warning)
}

/// An argument list from literal words.
fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// A rule of HAProxy's own rule sets: it cannot fail to parse.
fn builtin(r: Result<TcpcheckRule, String>) -> Result<TcpcheckRule, String> {
    r.map_err(|e| format!("internal tcp-check rule: {e}"))
}

/// A `tcp-check expect custom` rule calling one of HAProxy's protocol parsers.
fn custom(f: CustomExpect, min_recv: i64) -> TcpcheckRule {
    let e = TcpcheckExpect {
        kind: ExpectType::Custom(f),
        inverse: false,
        min_recv,
        ok_status: None,
        err_status: None,
        tout_status: None,
        on_success: None,
        on_error: None,
        status_code: None,
        head: 0,
    };
    TcpcheckRule { index: 0, action: TcpcheckAction::Expect(Box::new(e)), comment: None }
}

/// The agent check's rules (srv_parse_agent_check() in 2.6): an implicit connect, send
/// `agent-send` (if set), then read the agent's line.
pub fn agent_check_rules(agent_send: Option<&str>) -> TcpcheckRules {
    let connect = TcpcheckConnect {
        options: TcpchkOpt::TCPCHK_OPT_DEFAULT_CONNECT | TcpchkOpt::TCPCHK_OPT_IMPLICIT,
        ..Default::default()
    };
    let send = ChkFmt(vec![FmtNode::Expr(SmpExpr {
        fetch: SmpFetch::Var("check.agent_string".into()),
        convs: vec![],
    })]);
    let mut expect = custom(CustomExpect::AgentReply, -1);
    expect.index = 1;
    if let TcpcheckAction::Expect(e) = &mut expect.action {
        e.head = 2;
    }
    TcpcheckRules {
        proto: TcpchkProto::TCPCHK_RULES_AGENT_CHK,
        list: vec![
            TcpcheckRule { index: 0, action: TcpcheckAction::Connect(connect), comment: None },
            TcpcheckRule {
                index: 0,
                action: TcpcheckAction::Send(TcpcheckSend::StringLf(send)),
                comment: None,
            },
            expect,
        ],
        preset_vars: agent_send
            .map(|s| vec![("check.agent_string".to_string(), SmpVal::Str(s.as_bytes().to_vec()))])
            .unwrap_or_default(),
    }
}

/// `sslv3_client_hello` of proxy_parse_ssl_hello_chk_opt() in 2.6: an SSLv3 CLIENT HELLO
/// with the time and a fixed random, offering 39 common ciphers.
const SSLV3_CLIENT_HELLO: &str = concat!(
    "16030000790100007503",
    "00",
    "%[date(),htonl,hex]",
    "%[str(HAPROXYSSLCHK\nHAPROXYSSLCHK\n),hex]",
    "00004E",
    "0001000200030004000500060007000800090",
    "00A000B000C000D000E000F00100011001200130014001500160017001800190",
    "01A001B002F003000310032003300340035003600370038003900",
    "3A0100"
);

/// `mysql41_req` of proxy_parse_mysql_check_opt() in 2.6.
const MYSQL41_REQ: &str = "%[var(check.header),hex]0082000000800001210000000000000000000000000000000000000000000000%[var(check.username),hex]000001000000 01";

/// `mysql40_req` of proxy_parse_mysql_check_opt() in 2.6.
const MYSQL40_REQ: &str = "%[var(check.header),hex]0080000001%[var(check.username),hex]000001000000 01";

/// intops.h:encode_varint() in 2.6, as SPOP writes integers.
fn encode_varint(mut i: u64, out: &mut Vec<u8>) {
    if i < 240 {
        out.push(i as u8);
        return;
    }
    out.push((i as u8) | 240);
    i = (i - 240) >> 4;
    while i >= 128 {
        out.push((i as u8) | 128);
        i = (i - 128) >> 7;
    }
    out.push(i as u8);
}

/// intops.h:decode_varint() in 2.6: the value and the bytes it took.
fn decode_varint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let mut v = u64::from(first);
    if v < 240 {
        return Some((v, 1));
    }
    let mut shift = 4;
    let mut i = 1;
    loop {
        let c = *b.get(i)?;
        v = v.checked_add(u64::from(c).checked_shl(shift)?)?;
        shift += 7;
        i += 1;
        if c < 128 {
            return Some((v, i));
        }
    }
}

/// SPOP constants (`include/haproxy/spoe-t.h`, 2.6).
const SPOE_FRM_T_HAPROXY_HELLO: u8 = 1;
const SPOE_FRM_T_AGENT_HELLO: u8 = 101;
const SPOE_FRM_T_AGENT_DISCON: u8 = 102;
const SPOE_FRM_FL_FIN: u32 = 1;
const SPOE_DATA_T_BOOL: u8 = 1;
const SPOE_DATA_T_INT32: u8 = 2;
const SPOE_DATA_T_UINT32: u8 = 3;
const SPOE_DATA_T_INT64: u8 = 4;
const SPOE_DATA_T_UINT64: u8 = 5;
const SPOE_DATA_T_IPV4: u8 = 6;
const SPOE_DATA_T_IPV6: u8 = 7;
const SPOE_DATA_T_STR: u8 = 8;
const SPOE_DATA_T_BIN: u8 = 9;
const SPOE_DATA_FL_TRUE: u8 = 0x10;
/// `MAX_FRAME_SIZE` (`tune.bufsize - 4`) and `MIN_FRAME_SIZE`.
const SPOE_MAX_FRAME_SIZE: u64 = 16384 - 4;
const SPOE_MIN_FRAME_SIZE: u64 = 256;

/// `SPOE_FRM_ERR_*`, with `spoe_frm_err_reasons[]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SpoeFrmErr {
    Invalid,
    NoVsn,
    NoFrameSize,
    BadVsn,
    BadFrameSize,
    FragNotSupported,
    Unknown,
}

impl SpoeFrmErr {
    fn reason(self) -> &'static str {
        match self {
            SpoeFrmErr::Invalid => "invalid frame received",
            SpoeFrmErr::NoVsn => "version value not found",
            SpoeFrmErr::NoFrameSize => "max-frame-size value not found",
            SpoeFrmErr::BadVsn => "unsupported version",
            SpoeFrmErr::BadFrameSize => "max-frame-size too big or too small",
            SpoeFrmErr::FragNotSupported => "fragmentation not supported",
            SpoeFrmErr::Unknown => "an unknown error occurred",
        }
    }
}

fn spoe_encode_buffer(s: &[u8], out: &mut Vec<u8>) {
    encode_varint(s.len() as u64, out);
    out.extend_from_slice(s);
}

/// flt_spoe.c:spoe_prepare_healthcheck_request() in 2.6: a HAPROXY-HELLO frame with the
/// `healthcheck` item, behind its 4-byte length.
fn spoe_prepare_healthcheck_request() -> Vec<u8> {
    let mut f = vec![SPOE_FRM_T_HAPROXY_HELLO];
    f.extend_from_slice(&SPOE_FRM_FL_FIN.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    spoe_encode_buffer(b"supported-versions", &mut f);
    f.push(SPOE_DATA_T_STR);
    spoe_encode_buffer(b"2.0", &mut f);
    spoe_encode_buffer(b"max-frame-size", &mut f);
    f.push(SPOE_DATA_T_UINT32);
    encode_varint(SPOE_MAX_FRAME_SIZE, &mut f);
    spoe_encode_buffer(b"capabilities", &mut f);
    f.push(SPOE_DATA_T_STR);
    spoe_encode_buffer(b"", &mut f);
    spoe_encode_buffer(b"healthcheck", &mut f);
    f.push(SPOE_DATA_T_BOOL | SPOE_DATA_FL_TRUE);
    let mut out = (f.len() as u32).to_be_bytes().to_vec();
    out.extend(f);
    out
}

/// `spoe_decode_buffer`: a length-prefixed string at the start of `b`.
fn spoe_decode_buffer(b: &[u8]) -> Option<(&[u8], usize)> {
    let (len, n) = decode_varint(b)?;
    let end = n.checked_add(usize::try_from(len).ok()?)?;
    Some((b.get(n..end)?, end))
}

/// spoe.h:spoe_skip_data() in 2.6: the length of the typed value at the start of `b`.
fn spoe_skip_data(b: &[u8]) -> Option<usize> {
    let t = *b.first()? & 0x0F;
    let rest = &b[1..];
    let n = match t {
        SPOE_DATA_T_INT32 | SPOE_DATA_T_INT64 | SPOE_DATA_T_UINT32 | SPOE_DATA_T_UINT64 => {
            decode_varint(rest)?.1
        }
        SPOE_DATA_T_IPV4 => 4,
        SPOE_DATA_T_IPV6 => 16,
        SPOE_DATA_T_STR | SPOE_DATA_T_BIN => spoe_decode_buffer(rest)?.1,
        _ => 0,
    };
    if n > rest.len() {
        return None;
    }
    Some(1 + n)
}

/// flt_spoe.c:spoe_str_to_vsn() in 2.6: `MAJOR.MINOR` as 1000*MAJOR+MINOR.
fn spoe_str_to_vsn(s: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(s).ok()?.trim();
    let (maj, min) = s.split_once('.')?;
    let maj: u32 = maj.parse().ok().filter(|&m| m > 0)?;
    if min.is_empty() || !min.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let min: u32 = min.parse().ok().filter(|&m| m <= 999)?;
    Some(maj * 1000 + min)
}

/// flt_spoe.c:spoe_handle_healthcheck_response() and spoe_handle_agenthello_frame()
/// (2.6): an AGENT-HELLO frame with a supported version and a valid max-frame-size.
fn spoe_handle_healthcheck_response(frame: &[u8]) -> Result<(), SpoeFrmErr> {
    let Some(&t) = frame.first() else { return Err(SpoeFrmErr::Invalid) };
    if t == SPOE_FRM_T_AGENT_DISCON {
        return Err(SpoeFrmErr::Unknown);
    }
    if t != SPOE_FRM_T_AGENT_HELLO || frame.len() < 7 {
        return Err(SpoeFrmErr::Invalid);
    }
    let flags = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
    if flags & SPOE_FRM_FL_FIN == 0 {
        return Err(SpoeFrmErr::FragNotSupported);
    }
    if frame[5] != 0 || frame[6] != 0 {
        return Err(SpoeFrmErr::Invalid);
    }
    let mut p = &frame[7..];
    let (mut vsn, mut max_frame_size) = (0, 0);
    while !p.is_empty() {
        let (key, n) = spoe_decode_buffer(p).filter(|(k, _)| !k.is_empty()).ok_or(SpoeFrmErr::Invalid)?;
        p = &p[n..];
        if key.starts_with(b"version") {
            let (&ty, rest) = p.split_first().ok_or(SpoeFrmErr::Invalid)?;
            if ty & 0x0F != SPOE_DATA_T_STR {
                return Err(SpoeFrmErr::Invalid);
            }
            let (s, n) = spoe_decode_buffer(rest).ok_or(SpoeFrmErr::Invalid)?;
            p = &rest[n..];
            let v = spoe_str_to_vsn(s).ok_or(SpoeFrmErr::BadVsn)?;
            if v != 2000 {
                return Err(SpoeFrmErr::BadVsn);
            }
            vsn = v;
        } else if key.starts_with(b"max-frame-size") {
            let (&ty, rest) = p.split_first().ok_or(SpoeFrmErr::Invalid)?;
            if !matches!(
                ty & 0x0F,
                SPOE_DATA_T_INT32 | SPOE_DATA_T_INT64 | SPOE_DATA_T_UINT32 | SPOE_DATA_T_UINT64
            ) {
                return Err(SpoeFrmErr::Invalid);
            }
            let (sz, n) = decode_varint(rest).ok_or(SpoeFrmErr::Invalid)?;
            p = &rest[n..];
            if !(SPOE_MIN_FRAME_SIZE..=SPOE_MAX_FRAME_SIZE).contains(&sz) {
                return Err(SpoeFrmErr::BadFrameSize);
            }
            max_frame_size = sz;
        } else if key.starts_with(b"capabilities") {
            let (&ty, rest) = p.split_first().ok_or(SpoeFrmErr::Invalid)?;
            if ty & 0x0F != SPOE_DATA_T_STR {
                return Err(SpoeFrmErr::Invalid);
            }
            let (_, n) = spoe_decode_buffer(rest).ok_or(SpoeFrmErr::Invalid)?;
            p = &rest[n..];
        } else {
            let n = spoe_skip_data(p).ok_or(SpoeFrmErr::Invalid)?;
            p = &p[n..];
        }
    }
    if vsn == 0 {
        return Err(SpoeFrmErr::NoVsn);
    }
    if max_frame_size == 0 {
        return Err(SpoeFrmErr::NoFrameSize);
    }
    Ok(())
}

/// `enum tcpcheck_eval_ret`: what evaluating a rule leads to.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpchkEval {
    /// `TCPCHK_EVAL_WAIT`: wait for an I/O event or the timer, then resume here.
    TCPCHK_EVAL_WAIT,
    /// `TCPCHK_EVAL_STOP`: the check is over (its status is set).
    TCPCHK_EVAL_STOP,
    /// `TCPCHK_EVAL_CONTINUE`: go on with the next rule.
    TCPCHK_EVAL_CONTINUE,
}
use TcpchkEval::*;

/// tcpcheck.c:tcpcheck_get_step_id() in 2.6: the step number of rule `i` (or of the
/// current step): 0 for the implicit first connect, 1 when nothing started yet.
pub fn tcpcheck_get_step_id(rules: &TcpcheckRules, i: Option<usize>) -> u32 {
    let Some(r) = i.and_then(|i| rules.list.get(i)) else { return 1 };
    if r.index == 0
        && let TcpcheckAction::Connect(c) = &r.action
        && c.options.contains(TcpchkOpt::TCPCHK_OPT_IMPLICIT)
    {
        return 0;
    }
    r.index + 1
}

/// The part of chk_report_conn_err() (check.c, 2.6) that says where a plain tcp-check
/// stopped: ` at step N of tcp-check (connect port P)` and the rule's comment.
pub fn tcpcheck_step_desc(rules: &TcpcheckRules, cur: Option<usize>) -> String {
    if rules.proto != TcpchkProto::TCPCHK_RULES_TCP_CHK {
        return String::new();
    }
    let step = tcpcheck_get_step_id(rules, cur);
    if step == 0 {
        return " at initial connection step of tcp-check".into();
    }
    let mut s = format!(" at step {step} of tcp-check");
    let Some(r) = cur.and_then(|i| rules.list.get(i)) else { return s };
    match &r.action {
        TcpcheckAction::Connect(c) if c.port != 0 => s.push_str(&format!(" (connect port {})", c.port)),
        TcpcheckAction::Connect(_) => s.push_str(" (connect)"),
        TcpcheckAction::Expect(e) => s.push_str(&match &e.kind {
            ExpectType::String(d) => format!(" (expect string '{}')", String::from_utf8_lossy(d)),
            ExpectType::Binary(d) => format!(" (expect binary '{}')", String::from_utf8_lossy(d)),
            ExpectType::StringRegex(_) => " (expect regex)".into(),
            ExpectType::BinaryRegex(_) => " (expect binary regex)".into(),
            ExpectType::StringLf(_) => " (expect log-format string)".into(),
            ExpectType::BinaryLf(_) => " (expect log-format binary)".into(),
            ExpectType::HttpStatus(_) => " (expect HTTP status codes)".into(),
            ExpectType::HttpStatusRegex(_) => " (expect HTTP status regex)".into(),
            ExpectType::HttpHeader(..) => " (expect HTTP header pattern)".into(),
            ExpectType::HttpBody(d) => {
                format!(" (expect HTTP body content '{}')", String::from_utf8_lossy(d))
            }
            ExpectType::HttpBodyRegex(_) => " (expect HTTP body regex)".into(),
            ExpectType::HttpBodyLf(_) => " (expect log-format HTTP body)".into(),
            ExpectType::Custom(_) => " (expect custom function)".into(),
        }),
        TcpcheckAction::Send(_) => s.push_str(" (send)"),
        _ => {}
    }
    if let Some(c) = &r.comment {
        s.push_str(&format!(" comment: '{c}'"));
    }
    s
}

/// The check's variables and input buffer, for a sample expression.
fn smp_ctx<'a>(w: &'a mut Haproxy, cid: CheckId) -> Option<SmpCtx<'a>> {
    let c = chk(w, cid)?;
    Some(SmpCtx { vars: &c.vars, bi: &c.bi })
}

/// tcpcheck.c:tcpcheck_expect_onerror_message() in 2.6: the `info` of a failed expect.
fn tcpcheck_expect_onerror_message(
    w: &mut Haproxy,
    cid: CheckId,
    rules: &TcpcheckRules,
    i: usize,
    e: &TcpcheckExpect,
    matched: bool,
    info: &[u8],
) -> String {
    let mut msg: Vec<u8> = Vec::new();
    if !info.is_empty() {
        msg.extend_from_slice(info);
    } else if let Some(f) = &e.on_error {
        if let Some(ctx) = smp_ctx(w, cid) {
            msg = f.build(&ctx);
        }
    } else if rules.proto == TcpchkProto::TCPCHK_RULES_TCP_CHK {
        msg.extend_from_slice(if matched {
            b"TCPCHK matched unwanted content"
        } else {
            b"TCPCHK did not match content"
        });
        let step = tcpcheck_get_step_id(rules, Some(i));
        let tail = match &e.kind {
            ExpectType::HttpStatus(_) => format!("(status codes) at step {step}"),
            ExpectType::String(d) | ExpectType::HttpBody(d) => {
                format!(" '{}' at step {step}", String::from_utf8_lossy(d))
            }
            ExpectType::Binary(_) => format!(" (binary) at step {step}"),
            ExpectType::StringRegex(_) | ExpectType::HttpStatusRegex(_) | ExpectType::HttpBodyRegex(_) => {
                format!(" (regex) at step {step}")
            }
            ExpectType::BinaryRegex(_) => format!(" (binary regex) at step {step}"),
            ExpectType::StringLf(_) | ExpectType::HttpBodyLf(_) => {
                format!(" (log-format string) at step {step}")
            }
            ExpectType::BinaryLf(_) => format!(" (log-format binary) at step {step}"),
            ExpectType::Custom(_) => format!(" (custom function) at step {step}"),
            ExpectType::HttpHeader(..) => format!(" (header pattern) at step {step}"),
        };
        msg.extend(tail.into_bytes());
    }
    let mut msg = String::from_utf8_lossy(&msg).into_owned();
    if let Some(c) = &rules.list[i].comment {
        msg.push_str(" comment: ");
        msg.push_str(c);
    }
    tcpcheck_set_status_code(w, cid, e);
    msg
}

/// `rule->expect.status_expr`: the check's code from the answer.
fn tcpcheck_set_status_code(w: &mut Haproxy, cid: CheckId, e: &TcpcheckExpect) {
    let Some(expr) = &e.status_code else { return };
    let code = smp_ctx(w, cid).and_then(|ctx| expr.eval_int(&ctx));
    if let (Some(code), Some(c)) = (code, chk(w, cid)) {
        c.code = u16::try_from(code).ok();
    }
}

/// tcpcheck.c:tcpcheck_expect_onsuccess_message() in 2.6.
fn tcpcheck_expect_onsuccess_message(
    w: &mut Haproxy,
    cid: CheckId,
    rules: &TcpcheckRules,
    e: &TcpcheckExpect,
) -> String {
    let mut msg = String::new();
    if let Some(f) = &e.on_success {
        if let Some(ctx) = smp_ctx(w, cid) {
            msg = String::from_utf8_lossy(&f.build(&ctx)).into_owned();
        }
    } else if rules.proto == TcpchkProto::TCPCHK_RULES_TCP_CHK {
        msg.push_str("(tcp-check)");
    }
    tcpcheck_set_status_code(w, cid, e);
    msg
}

/// Sets the status of the check and stops: the `error:` path of the expect functions.
fn expect_error(w: &mut Haproxy, cid: CheckId, status: HchkStatus, msg: &str) -> TcpchkEval {
    set_server_check_status(w, cid, status, Some(msg));
    TCPCHK_EVAL_STOP
}

/// The first bytes of the check's input buffer, a copy (the custom parsers read it while
/// changing the check).
fn bi_copy(w: &mut Haproxy, cid: CheckId) -> Vec<u8> {
    chk(w, cid).map(|c| c.bi.clone()).unwrap_or_default()
}

/// tcpcheck.c:tcpcheck_mysql_expect_packet() in 2.6: one MySQL packet at `offset`. An
/// error packet (0xff) fails with its code and message; the last rule passes with the
/// server's version as `info`.
fn tcpcheck_mysql_expect_packet(
    w: &mut Haproxy,
    cid: CheckId,
    rules: &TcpcheckRules,
    i: usize,
    e: &TcpcheckExpect,
    offset: usize,
    last_read: bool,
) -> TcpchkEval {
    let bi = bi_copy(w, cid);
    let truncated = |w: &mut Haproxy| -> TcpchkEval {
        if !last_read {
            return TCPCHK_EVAL_WAIT;
        }
        let m = tcpcheck_expect_onerror_message(w, cid, rules, i, e, false, b"");
        expect_error(w, cid, HchkStatus::HCHK_STATUS_L7RSP, &m)
    };
    if bi.len() < offset + 4 {
        return truncated(w);
    }
    let plen = usize::from(bi[offset]) | usize::from(bi[offset + 1]) << 8 | usize::from(bi[offset + 2]) << 16;
    if bi.len() < offset + plen + 4 {
        return truncated(w);
    }
    if bi.get(offset + 4) == Some(&0xff) {
        let err = u16::from(bi.get(offset + 5).copied().unwrap_or(0))
            | u16::from(bi.get(offset + 6).copied().unwrap_or(0)) << 8;
        let desc = bi.get(offset + 7..).unwrap_or_default().to_vec();
        if let Some(c) = chk(w, cid) {
            c.code = Some(err);
        }
        let m = tcpcheck_expect_onerror_message(w, cid, rules, i, e, false, &desc);
        if let Some(c) = chk(w, cid) {
            c.code = Some(err);
        }
        return expect_error(w, cid, HchkStatus::HCHK_STATUS_L7STS, &m);
    }
    if rules.next_active(i).is_some() {
        return TCPCHK_EVAL_CONTINUE;
    }
    // The server's version, a NUL-terminated string at offset 5 of the handshake.
    let version = bi.get(5..).unwrap_or_default();
    let end = version.iter().position(|&b| b == 0).unwrap_or(version.len());
    let status = e.ok_status.unwrap_or(HchkStatus::HCHK_STATUS_L7OKD);
    set_server_check_status(w, cid, status, Some(&String::from_utf8_lossy(&version[..end])));
    TCPCHK_EVAL_CONTINUE
}

/// tcpcheck.c:tcpcheck_ldap_expect_bindrsp() in 2.6: an LDAPv3 bindResponse, resultCode 0.
fn tcpcheck_ldap_expect_bindrsp(
    w: &mut Haproxy,
    cid: CheckId,
    rules: &TcpcheckRules,
    i: usize,
    e: &TcpcheckExpect,
    last_read: bool,
) -> TcpchkEval {
    let bi = bi_copy(w, cid);
    let fail = |w: &mut Haproxy, st: HchkStatus, desc: &str| -> TcpchkEval {
        let m = tcpcheck_expect_onerror_message(w, cid, rules, i, e, false, desc.as_bytes());
        expect_error(w, cid, st, &m)
    };
    let too_short = |w: &mut Haproxy| -> TcpchkEval {
        if !last_read {
            return TCPCHK_EVAL_WAIT;
        }
        fail(w, HchkStatus::HCHK_STATUS_L7RSP, "")
    };
    let not_ldap = "Not LDAPv3 protocol";
    let Some(&b1) = bi.get(1) else { return too_short(w) };
    let mut nbytes = 0usize;
    let msglen = if b1 & 0x80 != 0 {
        nbytes = usize::from(b1 & 0x7f);
        if bi.len() < 1 + nbytes {
            return too_short(w);
        }
        match nbytes {
            4 => bi.get(2..6).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize),
            2 => bi.get(2..4).map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
            _ => return fail(w, HchkStatus::HCHK_STATUS_L7RSP, not_ldap),
        }
    } else {
        usize::from(b1)
    };
    if bi.len() < 2 + nbytes + msglen {
        return too_short(w);
    }
    let mut p = 2 + nbytes;
    if bi.get(p..p + 4) != Some(b"\x02\x01\x01\x61") {
        return fail(w, HchkStatus::HCHK_STATUS_L7RSP, not_ldap);
    }
    p += 4;
    let skip = bi.get(p).map_or(0, |&b| if b & 0x80 != 0 { usize::from(b & 0x7f) } else { 0 });
    p += 1 + skip;
    if bi.get(p..p + 2) != Some(b"\x0a\x01") {
        return fail(w, HchkStatus::HCHK_STATUS_L7RSP, not_ldap);
    }
    p += 2;
    let code = bi.get(p).copied().unwrap_or(0);
    if let Some(c) = chk(w, cid) {
        c.code = Some(u16::from(code));
    }
    if code != 0 {
        let m = tcpcheck_expect_onerror_message(
            w,
            cid,
            rules,
            i,
            e,
            false,
            b"See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9",
        );
        if let Some(c) = chk(w, cid) {
            c.code = Some(u16::from(code));
        }
        return expect_error(w, cid, HchkStatus::HCHK_STATUS_L7STS, &m);
    }
    set_server_check_status(w, cid, e.ok_status.unwrap_or(HchkStatus::HCHK_STATUS_L7OKD), Some("Success"));
    TCPCHK_EVAL_CONTINUE
}

/// tcpcheck.c:tcpcheck_spop_expect_agenthello() in 2.6.
fn tcpcheck_spop_expect_agenthello(
    w: &mut Haproxy,
    cid: CheckId,
    rules: &TcpcheckRules,
    i: usize,
    e: &TcpcheckExpect,
    last_read: bool,
) -> TcpchkEval {
    let bi = bi_copy(w, cid);
    let framesz = bi.get(..4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if !last_read && bi.len() < 4 + framesz {
        return TCPCHK_EVAL_WAIT;
    }
    // As HAProxy reads the frame from a zeroed buffer: what did not come reads as zeros.
    let mut frame = bi.get(4..).unwrap_or_default().to_vec();
    frame.resize(framesz, 0);
    match spoe_handle_healthcheck_response(&frame) {
        Ok(()) => {
            set_server_check_status(
                w,
                cid,
                e.ok_status.unwrap_or(HchkStatus::HCHK_STATUS_L7OKD),
                Some("SPOA server is ok"),
            );
            TCPCHK_EVAL_CONTINUE
        }
        Err(err) => {
            let m = tcpcheck_expect_onerror_message(w, cid, rules, i, e, false, err.reason().as_bytes());
            expect_error(w, cid, HchkStatus::HCHK_STATUS_L7RSP, &m)
        }
    }
}

/// tcpcheck.c:tcpcheck_agent_expect_reply() in 2.6: one line of words from the agent: a
/// weight (`75%`), `maxconn:N`, an administrative state (`ready`, `drain`, `maint`) and a
/// health (`up`, `down`, `stopped`, `fail`), then an optional `#` description.
fn tcpcheck_agent_expect_reply(w: &mut Haproxy, cid: CheckId, last_read: bool) -> TcpchkEval {
    let sid = cid.srv;
    if !chk(w, cid).is_some_and(|c| c.state.contains(ChkSt::CHK_ST_ENABLED)) {
        return TCPCHK_EVAL_STOP;
    }
    let bi = bi_copy(w, cid);
    let Some(eol) = bi.iter().position(|&b| b == b'\n' || b == b'\r' || b == 0) else {
        if !last_read {
            return TCPCHK_EVAL_WAIT;
        }
        let st = chk(w, cid).map_or(HchkStatus::HCHK_STATUS_UNKNOWN, |c| c.status);
        set_server_check_status(w, cid, st, Some("Ignoring incomplete line from agent"));
        return TCPCHK_EVAL_STOP;
    };
    let line = String::from_utf8_lossy(&bi[..eol]).into_owned();
    let (words, desc) = match line.split_once('#') {
        Some((w, d)) => (w, d.trim_start_matches([' ', '\t'])),
        None => (line.as_str(), ""),
    };
    let (mut hs, mut as_, mut ps, mut sc, mut err) = (None, None, None, None, None);
    let mut status = HchkStatus::HCHK_STATUS_CHECKED;
    let (rise, fall) = chk(w, cid).map_or((1, 1), |c| (c.rise, c.fall));
    let mut health = None;
    for word in words.split([' ', '\t', ',']).filter(|x| !x.is_empty()) {
        let lw = word.to_ascii_lowercase();
        match lw.as_str() {
            "up" => {
                health = Some(rise + fall - 1);
                status = HchkStatus::HCHK_STATUS_L7OKD;
                hs = Some(word.to_string());
            }
            "down" | "stopped" | "fail" => {
                health = Some(0);
                status = HchkStatus::HCHK_STATUS_L7STS;
                hs = Some(word.to_string());
            }
            "ready" | "drain" | "maint" => as_ = Some(lw),
            _ if word.starts_with(|c: char| c.is_ascii_digit()) && word.contains('%') => {
                ps = Some(word.to_string())
            }
            _ if lw.starts_with("maxconn:") => sc = Some(word["maxconn:".len()..].to_string()),
            _ => {
                if err.is_none() {
                    err = Some(word.to_string());
                }
            }
        }
    }
    if let (Some(h), Some(c)) = (health, chk(w, cid)) {
        c.health = h;
    }
    match as_.as_deref() {
        Some("drain") => srv_adm_set_drain(w, sid),
        Some("maint") => srv_adm_set_maint(w, sid),
        Some(_) => srv_adm_set_ready(w, sid),
        None => {}
    }
    let mut wrn = String::new();
    if let Some(p) = ps {
        wrn = crate::haproxy::server::server_parse_weight_change_request(w, sid, &p);
    }
    if let Some(s) = sc {
        let m = crate::haproxy::server::server_parse_maxconn_change_request(w, sid, &s);
        if wrn.is_empty() {
            wrn = m;
        }
    }
    let wrn = wrn.trim_end_matches('\n').to_string();
    if let Some(hs) = hs {
        let mut msg = desc.to_string();
        if msg.is_empty() || status == HchkStatus::HCHK_STATUS_L7OKD {
            if let Some(e) = &err {
                msg = e.clone();
            } else if !wrn.is_empty() {
                msg = wrn;
            }
        }
        let info =
            if msg.is_empty() { format!("via agent : {hs}") } else { format!("via agent : {hs} ({msg})") };
        set_server_check_status(w, cid, status, Some(&info));
    } else if let Some(e) = err {
        set_server_check_status(w, cid, status, Some(&format!("agent reports an error : {e}")));
    } else if !wrn.is_empty() {
        set_server_check_status(w, cid, status, Some(&format!("agent warns : {wrn}")));
    } else {
        set_server_check_status(w, cid, status, None);
    }
    TCPCHK_EVAL_STOP
}

/// Where the server's connection goes and how it opens, for `tcpcheck_eval_connect`.
pub struct ConnectPlan {
    /// The address connected to (the SOCKS4 proxy when `socks4` is set).
    pub dst: SocketAddr,
    /// The SOCKS4 request to send first, when going through the server's proxy.
    pub socks4: Option<Vec<u8>>,
    /// The PROXY protocol header to send first, if any.
    pub proxy_hdr: Option<Vec<u8>>,
    /// `linger`: close without a reset.
    pub linger: bool,
}

/// conn_send_socks4_proxy_request() (connection.c, 2.6): VN 4, CD 1 (connect), the
/// destination port and IPv4 address, and the user id "HAProxy".
fn socks4_request(dst: SocketAddr) -> Option<Vec<u8>> {
    let IpAddr::V4(ip) = dst.ip() else { return None };
    let mut r = vec![4, 1];
    r.extend_from_slice(&dst.port().to_be_bytes());
    r.extend_from_slice(&ip.octets());
    r.extend_from_slice(b"HAProxy\0");
    Some(r)
}

/// tcpcheck.c:tcpcheck_eval_connect() in 2.6.
fn tcpcheck_eval_connect(
    w: &mut Haproxy,
    cid: CheckId,
    rules: &TcpcheckRules,
    i: usize,
    c: &TcpcheckConnect,
) -> TcpchkEval {
    let next_is_send = matches!(rules.next_active(i).map(|r| &r.action), Some(TcpcheckAction::Send(_)));
    let Some(ck) = chk(w, cid) else { return TCPCHK_EVAL_STOP };
    let mut ret = TCPCHK_EVAL_CONTINUE;
    if let Some(conn) = &mut ck.conn {
        if conn.flags.intersects(ConnFlags::CO_FL_WAIT_XPRT) {
            if next_is_send {
                conn.sub |= SubEvents::SUB_RETRY_SEND;
                return TCPCHK_EVAL_WAIT;
            }
            return tcpcheck_eval_recv(w, cid, rules, i);
        }
    } else {
        ck.bi.clear();
        ck.bo.clear();
        let default = c.options.contains(TcpchkOpt::TCPCHK_OPT_DEFAULT_CONNECT);
        let (ck_addr, ck_port, via_socks4, send_proxy) = (ck.addr, ck.port, ck.via_socks4, ck.send_proxy);
        let srv = w.server(cid.srv);
        let ip = c.addr.map(|a| a.ip()).or(ck_addr).unwrap_or(srv.addr.ip());
        let mut port = c.port;
        if port == 0 {
            port = c.addr.map_or(0, |a| a.port());
        }
        if port == 0 {
            port = ck_port;
        }
        if port == 0 {
            port = srv.addr.port();
        }
        let dst = SocketAddr::new(ip, port);
        let socks = (c.options.contains(TcpchkOpt::TCPCHK_OPT_SOCKS4) || (default && via_socks4))
            .then_some(srv.socks4)
            .flatten();
        let pp = c.options.contains(TcpchkOpt::TCPCHK_OPT_SEND_PROXY)
            || (default && send_proxy && cid.kind == CheckKind::Health);
        let proxy_hdr = pp.then(|| {
            if srv.pp_opts.contains(crate::haproxy::server::SrvPpOpts::SRV_PP_V2) {
                // A LOCAL command: no addresses (the check has no client).
                let mut h = b"\r\n\r\n\x00\r\nQUIT\n".to_vec();
                h.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
                h
            } else {
                b"PROXY UNKNOWN\r\n".to_vec()
            }
        });
        let plan = ConnectPlan {
            dst: socks.unwrap_or(dst),
            socks4: socks.and_then(|_| socks4_request(dst)),
            proxy_hdr,
            linger: c.options.contains(TcpchkOpt::TCPCHK_OPT_LINGER),
        };
        if let Err(errno) = chk_conn_open(w, cid, &plan) {
            chk_report_conn_err(w, cid, errno, false);
            return TCPCHK_EVAL_STOP;
        }
        // Up to `inter` for the check; only `timeout connect` to connect when `timeout
        // check` is set (it could be too short for a whole check otherwise).
        let now = w.clock.now_ms;
        let inter = chk(w, cid).map_or(0, |c| c.inter);
        let px = &w.proxies[cid.srv.px.idx()];
        let mut exp = crate::haproxy::time::tick_add(now, inter);
        if px.timeout.check.is_some()
            && let Some(con) = px.timeout.connect
        {
            exp = exp.min(crate::haproxy::time::tick_add(now, con));
        }
        if let Some(t) = chk(w, cid).and_then(|c| c.task)
            && let Some(task) = w.sched.get_mut(t)
        {
            task.expire = Some(exp);
            w.sched.task_queue(t);
        }
        if let Some(conn) = chk(w, cid).and_then(|c| c.conn.as_mut()) {
            conn.sub |= if next_is_send { SubEvents::SUB_RETRY_SEND } else { SubEvents::SUB_RETRY_RECV };
        }
        ret = TCPCHK_EVAL_WAIT;
    }
    if ret == TCPCHK_EVAL_CONTINUE
        && let Some(tc) = w.proxies[cid.srv.px.idx()].timeout.check
    {
        let now = w.clock.now_ms;
        if let Some(t) = chk(w, cid).and_then(|c| c.task)
            && let Some(task) = w.sched.get_mut(t)
        {
            task.expire = Some(crate::haproxy::time::tick_add(now, tc));
            w.sched.task_queue(t);
        }
    }
    ret
}

/// HAProxy's H1 multiplexer writing an `http-check send` request (`h1_process_output`,
/// 2.6): the request line, the headers with lower-case names, `content-length` when there
/// is a body, and the `connection` header last, as the version needs it (`close` is
/// implied by HTTP/1.0, `keep-alive` by HTTP/1.1).
fn build_http_request(h: &HttpSend) -> Vec<u8> {
    let meth = h.meth.as_deref().unwrap_or("OPTIONS");
    let uri = h.uri.as_deref().unwrap_or("/");
    let vsn = h.vsn.as_deref().unwrap_or("HTTP/1.0");
    let v = vsn.as_bytes();
    let is11 =
        (v.len() == 6 && v[5] == b'2') || (v.len() == 8 && (v[5] > b'1' || (v[5] == b'1' && v[7] >= b'1')));
    let mut out = format!("{meth} {uri} {vsn}\r\n").into_bytes();
    let mut conn: Option<String> = None;
    for (n, val) in &h.hdrs {
        if n.eq_ignore_ascii_case("connection") {
            conn = Some(val.clone());
            continue;
        }
        out.extend(format!("{}: {val}\r\n", n.to_ascii_lowercase()).into_bytes());
    }
    let body = h.body.as_deref().unwrap_or("");
    if !body.is_empty() {
        out.extend(format!("content-length: {}\r\n", body.len()).into_bytes());
    }
    let conn = conn.unwrap_or_else(|| "close".into());
    let tokens: Vec<String> = conn
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        // The default of the version is implied: keep-alive in 1.1, close in 1.0.
        .filter(|t| !t.is_empty() && t != if is11 { "keep-alive" } else { "close" })
        .collect();
    if !tokens.is_empty() {
        out.extend(format!("connection: {}\r\n", tokens.join(", ")).into_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// tcpcheck.c:tcpcheck_eval_send() in 2.6.
fn tcpcheck_eval_send(
    w: &mut Haproxy,
    cid: CheckId,
    rules: &TcpcheckRules,
    i: usize,
    s: &TcpcheckSend,
) -> TcpchkEval {
    let bufsize = w.global.tune.bufsize;
    let Some(c) = chk(w, cid) else { return TCPCHK_EVAL_STOP };
    if c.bo.is_empty() {
        c.bi.clear();
        let step = tcpcheck_get_step_id(rules, Some(i));
        let ctx = SmpCtx { vars: &c.vars, bi: &c.bi };
        let data = match s {
            TcpcheckSend::Data(d) => {
                if d.len() >= bufsize {
                    let m = format!(
                        "tcp-check send : string too large ({}) for buffer size ({bufsize}) at step {step}",
                        d.len()
                    );
                    return expect_error(w, cid, HchkStatus::HCHK_STATUS_L7RSP, &m);
                }
                d.clone()
            }
            TcpcheckSend::StringLf(f) => f.build(&ctx),
            TcpcheckSend::BinaryLf(f) => {
                let hex: Vec<u8> = f.build(&ctx).into_iter().filter(|b| !b.is_ascii_whitespace()).collect();
                match parse_binary(&hex) {
                    Ok(b) => b,
                    Err(_) => {
                        let m = format!("tcp-check send : failed to build log-format string at step {step}");
                        return expect_error(w, cid, HchkStatus::HCHK_STATUS_L7RSP, &m);
                    }
                }
            }
            TcpcheckSend::Http(h) => build_http_request(h),
        };
        if data.is_empty() {
            return TCPCHK_EVAL_CONTINUE;
        }
        c.bo = data;
    }
    match chk_conn_send(w, cid) {
        ChkSend::Failed => TCPCHK_EVAL_STOP,
        ChkSend::Done => TCPCHK_EVAL_CONTINUE,
        ChkSend::Partial => {
            if let Some(conn) = chk(w, cid).and_then(|c| c.conn.as_mut()) {
                conn.sub |= SubEvents::SUB_RETRY_SEND;
            }
            TCPCHK_EVAL_WAIT
        }
    }
}

/// tcpcheck.c:tcpcheck_eval_recv() in 2.6: read what the server sent before an expect is
/// evaluated. `Wait` when nothing came yet; `Stop` on an error with nothing received, or
/// on an empty answer.
fn tcpcheck_eval_recv(w: &mut Haproxy, cid: CheckId, rules: &TcpcheckRules, i: usize) -> TcpchkEval {
    let bufsize = w.global.tune.bufsize;
    let Some(conn) = chk(w, cid).and_then(|c| c.conn.as_mut()) else { return TCPCHK_EVAL_STOP };
    if conn.sub.contains(SubEvents::SUB_RETRY_RECV) {
        return TCPCHK_EVAL_WAIT;
    }
    if conn.flags.contains(ConnFlags::CO_FL_WAIT_XPRT) && !conn.flags.contains(ConnFlags::CO_FL_ERROR) {
        // Nothing can be read before the connection is ready.
        conn.sub |= SubEvents::SUB_RETRY_RECV;
        return TCPCHK_EVAL_WAIT;
    }
    let cur_read = chk_conn_recv(w, cid, bufsize);
    let Some(c) = chk(w, cid) else { return TCPCHK_EVAL_STOP };
    let Some(conn) = c.conn.as_mut() else { return TCPCHK_EVAL_STOP };
    let is_empty = c.bi.is_empty();
    let (error, eos) =
        (conn.flags.contains(ConnFlags::CO_FL_ERROR), conn.flags.contains(ConnFlags::CO_FL_EOS));
    if is_empty && error {
        return TCPCHK_EVAL_STOP;
    }
    if cur_read == 0 {
        if !error && !eos && c.bi.len() < bufsize {
            conn.sub |= SubEvents::SUB_RETRY_RECV;
            return TCPCHK_EVAL_WAIT;
        }
        if is_empty {
            let mut m =
                format!("TCPCHK got an empty response at step {}", tcpcheck_get_step_id(rules, Some(i)));
            if let Some(cm) = &rules.list[i].comment {
                m.push_str(&format!(" comment: '{cm}'"));
            }
            let st = match &rules.list[i].action {
                TcpcheckAction::Expect(e) => e.err_status,
                _ => None,
            };
            return expect_error(w, cid, st.unwrap_or(HchkStatus::HCHK_STATUS_L7RSP), &m);
        }
    }
    TCPCHK_EVAL_CONTINUE
}

/// An HTTP/1 response as far as it was received (what 2.6's H1 multiplexer gives the
/// check in HTX).
struct HttpRsp {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The whole message was received (`HTX_FL_EOM`).
    eom: bool,
}

/// Parses the response in `data`. `Ok(None)`: the head is not complete yet.
fn parse_http_response(data: &[u8], last_read: bool) -> Result<Option<HttpRsp>, ()> {
    let mut hdrs = [httparse::EMPTY_HEADER; 101];
    let mut r = httparse::Response::new(&mut hdrs);
    let head = match r.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return if last_read { Err(()) } else { Ok(None) },
        Err(_) => return Err(()),
    };
    let status = r.code.unwrap_or(0);
    let headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
        .collect();
    let rest = &data[head..];
    let find = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    let bodyless = (100..200).contains(&status) || status == 204 || status == 304;
    let (body, eom) = if bodyless {
        (Vec::new(), true)
    } else if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        dechunk(rest)
    } else if let Some(cl) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let n = cl.min(rest.len());
        (rest[..n].to_vec(), rest.len() >= cl)
    } else {
        (rest.to_vec(), last_read)
    };
    Ok(Some(HttpRsp { status, reason: r.reason.unwrap_or("").to_string(), headers, body, eom }))
}

/// The data of a chunked body received so far, and whether the last chunk came.
fn dechunk(mut b: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|x| x == b"\r\n") else { return (out, false) };
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size else { return (out, false) };
        b = &b[eol + 2..];
        if size == 0 {
            return (out, true);
        }
        let n = size.min(b.len());
        out.extend_from_slice(&b[..n]);
        if b.len() < size + 2 {
            return (out, false);
        }
        b = &b[size + 2..];
    }
}

/// tcpcheck.c:tcpcheck_eval_expect_http() in 2.6.
fn tcpcheck_eval_expect_http(
    w: &mut Haproxy,
    cid: CheckId,
    rules: &TcpcheckRules,
    i: usize,
    e: &TcpcheckExpect,
    last_read: bool,
) -> TcpchkEval {
    let bufsize = w.global.tune.bufsize;
    let bi = bi_copy(w, cid);
    let mut last_read = last_read || bi.len() >= bufsize;
    let rsp = match parse_http_response(&bi, last_read) {
        Err(()) => {
            let m = tcpcheck_expect_onerror_message(w, cid, rules, i, e, false, b"");
            return expect_error(w, cid, HchkStatus::HCHK_STATUS_L7RSP, &m);
        }
        Ok(None) => {
            if bi.is_empty() && last_read {
                let m = tcpcheck_expect_onerror_message(w, cid, rules, i, e, false, b"");
                return expect_error(w, cid, HchkStatus::HCHK_STATUS_L7RSP, &m);
            }
            return TCPCHK_EVAL_WAIT;
        }
        Ok(Some(r)) => r,
    };
    last_read |= rsp.eom;
    if let Some(c) = chk(w, cid) {
        c.code = Some(rsp.status);
    }
    let server_stopped = !w.server(cid.srv).flags.contains(SrvFlags::SRV_RUNNING);
    if w.proxies[cid.srv.px.idx()].tcpcheck.disable404 && !server_stopped && rsp.status == 404 {
        return TCPCHK_EVAL_CONTINUE;
    }
    let mut status = e.err_status.unwrap_or(HchkStatus::HCHK_STATUS_L7STS);
    let mut desc = rsp.reason.clone().into_bytes();
    let matched = match &e.kind {
        ExpectType::HttpStatus(codes) => codes.iter().any(|&(a, b)| (a..=b).contains(&u32::from(rsp.status))),
        ExpectType::HttpStatusRegex(r) => regex_exec2(r, rsp.status.to_string().as_bytes()),
        ExpectType::HttpHeader(n, v, full) => rsp.headers.iter().any(|(name, value)| {
            if !n.matches(name, true) {
                return false;
            }
            let Some(v) = v else { return true };
            if *full { v.matches(value, false) } else { value.split(',').any(|x| v.matches(x.trim(), false)) }
        }),
        ExpectType::HttpBody(_) | ExpectType::HttpBodyRegex(_) | ExpectType::HttpBodyLf(_) => {
            status = e.err_status.unwrap_or(HchkStatus::HCHK_STATUS_L7RSP);
            if rsp.body.is_empty() {
                if !last_read {
                    return TCPCHK_EVAL_WAIT;
                }
                let info: &[u8] = if e.on_error.is_none() {
                    b"HTTP content check could not find a response body"
                } else {
                    b""
                };
                let m = tcpcheck_expect_onerror_message(w, cid, rules, i, e, false, info);
                return expect_error(w, cid, status, &m);
            }
            let pat: Option<Vec<u8>> = match &e.kind {
                ExpectType::HttpBody(p) => Some(p.clone()),
                ExpectType::HttpBodyLf(f) => smp_ctx(w, cid).map(|ctx| f.build(&ctx)),
                _ => None,
            };
            if !last_read
                && (pat.as_ref().is_some_and(|p| rsp.body.len() < p.len())
                    || (e.min_recv > 0 && (rsp.body.len() as i64) < e.min_recv))
            {
                return TCPCHK_EVAL_WAIT;
            }
            let m = match (&e.kind, &pat) {
                (ExpectType::HttpBodyRegex(r), _) => regex_exec2(r, &rsp.body),
                (_, Some(p)) => memmem(&rsp.body, p),
                _ => false,
            };
            if !m && !last_read && e.min_recv == -1 {
                return TCPCHK_EVAL_WAIT;
            }
            desc = if e.inverse {
                b"HTTP check matched unwanted content".to_vec()
            } else {
                b"HTTP content check did not match".to_vec()
            };
            m
        }
        _ => false,
    };
    if e.on_error.is_some() {
        desc.clear();
    }
    if matched == e.inverse {
        let m = tcpcheck_expect_onerror_message(w, cid, rules, i, e, false, &desc);
        return expect_error(w, cid, status, &m);
    }
    TCPCHK_EVAL_CONTINUE
}

/// `my_memmem`: does `hay` contain `needle`?
fn memmem(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|x| x == needle)
}

/// tcpcheck.c:tcpcheck_eval_expect() in 2.6.
fn tcpcheck_eval_expect(
    w: &mut Haproxy,
    cid: CheckId,
    rules: &TcpcheckRules,
    i: usize,
    e: &TcpcheckExpect,
    last_read: bool,
) -> TcpchkEval {
    let bufsize = w.global.tune.bufsize;
    let bi = bi_copy(w, cid);
    let last_read = last_read || bi.len() >= bufsize;
    if !last_read {
        if let ExpectType::String(d) | ExpectType::Binary(d) = &e.kind
            && bi.len() < d.len()
        {
            return TCPCHK_EVAL_WAIT;
        }
        if e.min_recv > 0 && (bi.len() as i64) < e.min_recv {
            return TCPCHK_EVAL_WAIT;
        }
    }
    let status = e.err_status.unwrap_or(HchkStatus::HCHK_STATUS_L7RSP);
    let matched = match &e.kind {
        ExpectType::String(d) | ExpectType::Binary(d) => memmem(&bi, d),
        ExpectType::StringRegex(r) => regex_exec2(r, &bi[..bi.len().min(bufsize - 1)]),
        ExpectType::BinaryRegex(r) => regex_exec2(r, dump_binary(&bi).as_bytes()),
        ExpectType::StringLf(f) | ExpectType::BinaryLf(f) => {
            let mut pat = smp_ctx(w, cid).map(|ctx| f.build(&ctx)).unwrap_or_default();
            if pat.is_empty() {
                let m = tcpcheck_expect_onerror_message(
                    w,
                    cid,
                    rules,
                    i,
                    e,
                    false,
                    b"log-format string evaluated to an empty string",
                );
                return expect_error(w, cid, HchkStatus::HCHK_STATUS_L7RSP, &m);
            }
            if matches!(e.kind, ExpectType::BinaryLf(_)) {
                match parse_binary(&pat) {
                    Ok(b) => pat = b,
                    Err(_) => {
                        let m = tcpcheck_expect_onerror_message(
                            w,
                            cid,
                            rules,
                            i,
                            e,
                            false,
                            b"Failed to parse hexastring resulting of eval of a log-format string",
                        );
                        return expect_error(w, cid, HchkStatus::HCHK_STATUS_L7RSP, &m);
                    }
                }
            }
            if bi.len() < pat.len() {
                if !last_read {
                    return TCPCHK_EVAL_WAIT;
                }
                false
            } else {
                memmem(&bi, &pat)
            }
        }
        ExpectType::Custom(f) => {
            return match f {
                CustomExpect::MysqlIniths => tcpcheck_mysql_expect_packet(w, cid, rules, i, e, 0, last_read),
                CustomExpect::MysqlOk => {
                    let hslen = bi.get(..3).map_or(0, |b| {
                        4 + (usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16)
                    });
                    tcpcheck_mysql_expect_packet(w, cid, rules, i, e, hslen, last_read)
                }
                CustomExpect::LdapBindrsp => tcpcheck_ldap_expect_bindrsp(w, cid, rules, i, e, last_read),
                CustomExpect::SpopAgenthello => {
                    tcpcheck_spop_expect_agenthello(w, cid, rules, i, e, last_read)
                }
                CustomExpect::AgentReply => tcpcheck_agent_expect_reply(w, cid, last_read),
            };
        }
        _ => return TCPCHK_EVAL_STOP,
    };
    if !matched && !last_read && e.min_recv == -1 {
        return TCPCHK_EVAL_WAIT;
    }
    if matched != e.inverse {
        return TCPCHK_EVAL_CONTINUE;
    }
    let m = tcpcheck_expect_onerror_message(w, cid, rules, i, e, matched, b"");
    expect_error(w, cid, status, &m)
}

/// tcpcheck.c:tcpcheck_main() in 2.6: run the check's rules from its current step. Called
/// when a check starts (`process_chk`) and on each I/O event of its connection
/// (`wake_srv_chk`). Returns -1 when the connection must be closed before going on (the
/// check task does it, then calls again), 0 otherwise.
pub fn tcpcheck_main(w: &mut Haproxy, cid: CheckId) -> i32 {
    let Some(c) = chk(w, cid) else { return 0 };
    if c.result != CheckResult::CHK_RES_UNKNOWN {
        return 0;
    }
    let rules = c.rules.clone();
    let span = tracing::debug_span!(
        names::TCPCHECK_MAIN,
        server = %crate::haproxy::server::srv_fullname(w, cid.srv),
        check = %cid.kind,
        step = tracing::field::Empty,
        eval = tracing::field::Empty,
    );
    let _g = span.enter();
    let mut retcode = 0;
    let mut stop = false;
    let (mut must_read, mut last_read) = (true, false);
    let Some(c) = chk(w, cid) else { return 0 };
    let conn_error = c.conn.as_ref().is_some_and(|k| k.flags.contains(ConnFlags::CO_FL_ERROR));
    let start = match c.current_step {
        _ if conn_error => None,
        Some(s) => Some(s),
        None => {
            c.vars = rules.preset_vars.clone();
            Some(0)
        }
    };
    let mut finished = start.is_none();
    if let Some(start) = start {
        let mut i = start;
        while i < rules.list.len() {
            let rule = &rules.list[i];
            if let Some(c) = chk(w, cid) {
                c.code = None;
            }
            let eval = match &rule.action {
                TcpcheckAction::Connect(conn) => {
                    let Some(c) = chk(w, cid) else { return 0 };
                    if c.conn.is_some() && c.current_step != Some(i) {
                        c.state |= ChkSt::CHK_ST_CLOSE_CONN;
                        retcode = -1;
                    }
                    c.current_step = Some(i);
                    if c.state.contains(ChkSt::CHK_ST_CLOSE_CONN) {
                        TCPCHK_EVAL_WAIT
                    } else {
                        let r = tcpcheck_eval_connect(w, cid, &rules, i, conn);
                        last_read = false;
                        must_read = chk(w, cid).is_none_or(|c| c.bi.is_empty());
                        r
                    }
                }
                TcpcheckAction::Send(s) => {
                    if let Some(c) = chk(w, cid) {
                        c.current_step = Some(i);
                    }
                    must_read = true;
                    tcpcheck_eval_send(w, cid, &rules, i, s)
                }
                TcpcheckAction::Expect(e) => {
                    if let Some(c) = chk(w, cid) {
                        c.current_step = Some(i);
                    }
                    let mut r = TCPCHK_EVAL_CONTINUE;
                    if must_read {
                        r = tcpcheck_eval_recv(w, cid, &rules, i);
                        if r == TCPCHK_EVAL_CONTINUE {
                            last_read = chk(w, cid).and_then(|c| c.conn.as_ref()).is_some_and(|k| {
                                k.flags.intersects(ConnFlags::CO_FL_ERROR | ConnFlags::CO_FL_EOS)
                            });
                            must_read = false;
                        }
                    }
                    if r == TCPCHK_EVAL_CONTINUE {
                        r = if rules.proto == TcpchkProto::TCPCHK_RULES_HTTP_CHK {
                            tcpcheck_eval_expect_http(w, cid, &rules, i, e, last_read)
                        } else {
                            tcpcheck_eval_expect(w, cid, &rules, i, e, last_read)
                        };
                        if r == TCPCHK_EVAL_WAIT
                            && let Some(c) = chk(w, cid)
                        {
                            c.current_step = Some(e.head);
                            if let Some(k) = c.conn.as_mut() {
                                k.sub |= SubEvents::SUB_RETRY_RECV;
                            }
                        }
                    } else if r == TCPCHK_EVAL_WAIT {
                        return retcode;
                    }
                    r
                }
                TcpcheckAction::SetVar(name, expr) => {
                    let v = smp_ctx(w, cid).and_then(|ctx| expr.eval(&ctx));
                    if let (Some(v), Some(c)) = (v, chk(w, cid)) {
                        c.vars.retain(|(n, _)| n != name);
                        c.vars.push((name.clone(), v));
                    }
                    TCPCHK_EVAL_CONTINUE
                }
                TcpcheckAction::UnsetVar(name) => {
                    if let Some(c) = chk(w, cid) {
                        c.vars.retain(|(n, _)| n != name);
                    }
                    TCPCHK_EVAL_CONTINUE
                }
                TcpcheckAction::Comment => TCPCHK_EVAL_CONTINUE,
            };
            span.record("step", tcpcheck_get_step_id(&rules, Some(i)));
            span.record("eval", tracing::field::debug(eval));
            match eval {
                TCPCHK_EVAL_CONTINUE => i += 1,
                TCPCHK_EVAL_WAIT => return retcode,
                TCPCHK_EVAL_STOP => {
                    stop = true;
                    break;
                }
            }
        }
        if !stop {
            finished = true;
            tcpcheck_success(w, cid, &rules);
        }
    }
    let _ = finished;
    // out_end_tcpcheck: a connection error not reported yet.
    if let Some(k) = chk(w, cid).and_then(|c| c.conn.as_ref())
        && k.flags.contains(ConnFlags::CO_FL_ERROR)
    {
        let errno = k.errno;
        chk_report_conn_err(w, cid, errno, false);
    }
    if let Some(c) = chk(w, cid) {
        c.bi.clear();
        c.bo.clear();
    }
    retcode
}

/// The end of tcpcheck_main() when every rule passed (2.6): the status depends on the
/// last rule evaluated.
fn tcpcheck_success(w: &mut Haproxy, cid: CheckId, rules: &TcpcheckRules) {
    let cur = chk(w, cid).and_then(|c| c.current_step);
    let Some(rule) = cur.and_then(|i| rules.list.get(i)) else {
        set_server_check_status(w, cid, HchkStatus::HCHK_STATUS_L7OKD, Some("(tcp-check)"));
        return;
    };
    match &rule.action {
        TcpcheckAction::Expect(e) => {
            let code = chk(w, cid).and_then(|c| c.code);
            let stopped = !w.server(cid.srv).flags.contains(SrvFlags::SRV_RUNNING);
            if w.proxies[cid.srv.px.idx()].tcpcheck.disable404 && !stopped && code == Some(404) {
                set_server_check_status(w, cid, HchkStatus::HCHK_STATUS_L7OKCD, None);
                return;
            }
            let msg = tcpcheck_expect_onsuccess_message(w, cid, rules, e);
            let status = e.ok_status.unwrap_or(HchkStatus::HCHK_STATUS_L7OKD);
            set_server_check_status(w, cid, status, Some(&msg));
        }
        TcpcheckAction::Connect(c) => {
            let msg = (!c.options.contains(TcpchkOpt::TCPCHK_OPT_IMPLICIT)).then_some("(tcp-check)");
            set_server_check_status(w, cid, HchkStatus::HCHK_STATUS_L4OK, msg);
        }
        _ => set_server_check_status(w, cid, HchkStatus::HCHK_STATUS_L7OKD, Some("(tcp-check)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[&str]) -> Vec<String> {
        words(s)
    }

    #[test]
    fn requests_are_written_as_haproxy_2_6_writes_them() {
        let h = |meth: Option<&str>, vsn: Option<&str>, hdrs: &[(&str, &str)], body: Option<&str>| HttpSend {
            meth: meth.map(String::from),
            uri: None,
            vsn: vsn.map(String::from),
            hdrs: hdrs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            body: body.map(String::from),
            from_opt: false,
        };
        // Captured from haproxy 2.6 with a fake server.
        assert_eq!(build_http_request(&h(None, None, &[], None)), b"OPTIONS / HTTP/1.0\r\n\r\n");
        assert_eq!(
            build_http_request(&h(Some("GET"), Some("HTTP/1.1"), &[], None)),
            b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(
            build_http_request(&h(Some("POST"), Some("HTTP/1.1"), &[("Host", "foo")], Some("abc"))),
            b"POST / HTTP/1.1\r\nhost: foo\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc"
        );
        assert_eq!(
            build_http_request(&h(Some("POST"), None, &[("X-Foo", "bar")], Some("abc"))),
            b"POST / HTTP/1.0\r\nx-foo: bar\r\ncontent-length: 3\r\n\r\nabc"
        );
        assert_eq!(
            build_http_request(&h(
                None,
                Some("HTTP/1.1"),
                &[("connection", "keep-alive"), ("Host", "h")],
                None
            )),
            b"OPTIONS / HTTP/1.1\r\nhost: h\r\n\r\n"
        );
    }

    #[test]
    fn builtin_requests_match_haproxy_bytes() {
        let ctx_vars = vec![
            ("check.username".to_string(), SmpVal::Str(b"bob".to_vec())),
            ("check.plen".to_string(), SmpVal::Sint(18)),
        ];
        let ctx = SmpCtx { vars: &ctx_vars, bi: b"" };
        let f = ChkFmt::parse("%[var(check.plen),htonl,hex]000300007573657200%[var(check.username),hex]0000")
            .unwrap();
        assert_eq!(
            parse_binary(&f.build(&ctx)).unwrap(),
            b"\x00\x00\x00\x12\x00\x03\x00\x00user\x00bob\x00\x00"
        );
        let hdr = vec![37u8, 0, 0, 1];
        let vars = vec![
            ("check.header".to_string(), SmpVal::Str(hdr)),
            ("check.username".to_string(), SmpVal::Str(b"bob".to_vec())),
        ];
        let ctx = SmpCtx { vars: &vars, bi: b"" };
        let hex: Vec<u8> = ChkFmt::parse(MYSQL41_REQ)
            .unwrap()
            .build(&ctx)
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let mut want = b"%\x00\x00\x01\x00\x82\x00\x00\x00\x80\x00\x01!".to_vec();
        want.extend([0u8; 23]);
        want.extend(b"bob\x00\x00\x01\x00\x00\x00\x01");
        assert_eq!(parse_binary(&hex).unwrap(), want);
        // The SPOP hello the regtest expects: 82 bytes, announced as 0x4E.
        let spop = spoe_prepare_healthcheck_request();
        assert_eq!(spop.len(), 82);
        assert_eq!(&spop[..4], b"\x00\x00\x00\x4E");
    }

    #[test]
    fn spop_answers_are_judged_like_haproxy() {
        let hex = |s: &str| parse_binary(s.replace(' ', "").as_bytes()).unwrap();
        let ok = hex(
            "65 00000001 0000 0776657273696F6E 0803322E30 0E6D61782D6672616D652D73697A65 03FCF006 0C6361706162696C6974696573 0800",
        );
        assert_eq!(spoe_handle_healthcheck_response(&ok), Ok(()));
        assert_eq!(spoe_handle_healthcheck_response(&[]), Err(SpoeFrmErr::Invalid));
        assert_eq!(
            spoe_handle_healthcheck_response(&hex("65 00000000 0000")),
            Err(SpoeFrmErr::FragNotSupported)
        );
        let v1 = hex("65 00000001 0000 0776657273696F6E 0803312E30");
        assert_eq!(spoe_handle_healthcheck_response(&v1), Err(SpoeFrmErr::BadVsn));
    }

    #[test]
    fn rules_get_their_implicit_connect_steps_and_comments() {
        let mut sets = TcpcheckRulesets::default();
        let mut cfg = TcpcheckCfg::default();
        let mut px = PxCtx { cfg: &mut cfg, name: Some("be1"), conf: ("f", 3), defconf: ("f", 1) };
        sets.proxy_parse_check_opt(&mut px, &w(&["tcp-check"])).unwrap();
        sets.proxy_parse_tcpcheck(&mut px, &w(&["tcp-check", "comment", "hello"])).unwrap();
        sets.proxy_parse_tcpcheck(&mut px, &w(&["tcp-check", "expect", "!rstring", "^error"])).unwrap();
        sets.proxy_parse_tcpcheck(&mut px, &w(&["tcp-check", "expect", "string", "valid"])).unwrap();
        let mut warn = vec![];
        sets.check_proxy_tcpcheck(&mut cfg, "be1", &mut warn).unwrap();
        let r = &cfg.rules;
        assert_eq!(r.list.len(), 3, "implicit connect + 2 expects, the comment folded");
        assert_eq!(tcpcheck_get_step_id(r, Some(0)), 0);
        assert_eq!(tcpcheck_get_step_id(r, Some(1)), 2);
        assert_eq!(r.list[1].comment.as_deref(), Some("hello"));
        let TcpcheckAction::Expect(e) = &r.list[2].action else { panic!() };
        assert_eq!(e.head, 1, "resumes at the inverted expect");
        assert_eq!(tcpcheck_step_desc(r, Some(1)), " at step 2 of tcp-check (expect regex) comment: 'hello'");
        assert_eq!(tcpcheck_step_desc(r, Some(0)), " at initial connection step of tcp-check");
    }

    #[test]
    fn option_httpchk_merges_with_http_check_send() {
        let mut sets = TcpcheckRulesets::default();
        let mut cfg = TcpcheckCfg::default();
        let mut px = PxCtx { cfg: &mut cfg, name: None, conf: ("f", 1), defconf: ("f", 1) };
        let warn = sets
            .proxy_parse_check_opt(
                &mut px,
                &w(&["httpchk", "GET", "/status", "HTTP/1.1\r\nHdr: must-be-removed"]),
            )
            .unwrap();
        assert!(warn.is_some_and(|w| w.contains("deprecated")));
        sets.proxy_parse_httpcheck(
            &mut px,
            &w(&["http-check", "send", "hdr", "Host", "my-www-host", "body", "test"]),
        )
        .unwrap();
        let mut warn = vec![];
        sets.check_proxy_tcpcheck(&mut cfg, "be4", &mut warn).unwrap();
        let TcpcheckAction::Send(TcpcheckSend::Http(h)) = &cfg.rules.list[1].action else { panic!() };
        assert_eq!(
            build_http_request(h),
            b"GET /status HTTP/1.1\r\nhost: my-www-host\r\ncontent-length: 4\r\nconnection: close\r\n\r\ntest"
        );
        assert!(
            matches!(&cfg.rules.list[2].action, TcpcheckAction::Expect(e) if matches!(&e.kind, ExpectType::HttpStatus(c) if c == &[(200, 399)]))
        );
    }

    #[test]
    fn expect_parsing_errors_read_like_haproxy() {
        let e = |a: &[&str]| parse_tcpcheck_expect(&w(a), false).err().unwrap();
        assert_eq!(e(&["tcp-check", "expect"]), "expects at least a matching pattern as arguments");
        assert!(e(&["tcp-check", "expect", "status", "200"]).contains("but got 'status'"));
        assert_eq!(
            e(&["tcp-check", "expect", "!min-recv", "3", "string", "x"]),
            "[!] not supported with 'min-recv'"
        );
        assert!(parse_status_codes("300-200").is_err());
        assert_eq!(parse_status_codes("200,301-302").unwrap(), [(200, 200), (301, 302)]);
    }
}
