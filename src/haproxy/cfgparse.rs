//! The configuration parser: `haproxy.cfg` in, proxies, servers and listeners out.
//!
//! Reproduces `cfgparse.c` (1.5-dev8) with HAProxy 2.6's syntax and messages.
//! `readcfgfile` splits each line into words (quotes, backslash escapes, `"${ENV}"`
//! expansion, `#` comments, `.if`/`.endif` blocks) and hands them to `cfg_parse_global` or
//! `cfg_parse_listen` depending on the current section. A `bind` line goes through
//! `str2listener`, which creates one listener per address and attaches it to its protocol
//! (`tcpv4_add_listener`, `LI_INIT -> LI_ASSIGNED`). Then `check_config_validity` resolves
//! backend names and wires each listener: `accept = session_accept`,
//! `handler = process_session`, frontend `accept = frontend_accept`, analysers from the
//! proxy's mode.
//!
//! Errors are collected, not fatal at once: like HAProxy, every bad line is reported as
//! `parsing [file:line] : ...` and nothing is bound when any ALERT was raised. A keyword
//! HAProxy knows but haflow does not implement yet is a WARNING that names it.

use std::path::Path;

use crate::haproxy::acl::{Condition, parse_acl_cond, parse_acl_expr};
use crate::haproxy::buffers::Analysers;
use crate::haproxy::cache::{Cache, CacheRef, cfg_parse_cache, cfg_post_parse_section_cache};
use crate::haproxy::compression::{Comp, parse_compression_options};
use crate::haproxy::frontend::frontend_accept;
use crate::haproxy::haproxy::{Global, StatsSocketConf};
use crate::haproxy::http_act::{
    HttpAct, HttpReply, ReplyBody, RuleConf, RuleSet, http_parse_http_reply, parse_http_rule,
};
use crate::haproxy::listener::{ListenAddr, Listener, ListenerOptions, ListenerState};
use crate::haproxy::log::{FACILITIES, LEVELS, LogDest, LogFormat, LogTarget, SyslogFormat};
use crate::haproxy::proto_tcp::{PROTO_TCPV4, tcpv4_add_listener};
use crate::haproxy::protocols::ProtoList;
use crate::haproxy::proxy::{
    BalanceAlgo, FltConf, HttpConnMode, Proxy, ProxyCap, ProxyMode, ProxyOptions, ReuseMode, ServerRule,
    SwitchingRule, Timeouts,
};
use crate::haproxy::server::{Server, SrvFlags, srv_parse_kws};
use crate::haproxy::session::{process_session, session_accept};
use crate::haproxy::standard::{ParsedAddr, expand_range, parse_size_err, parse_time_err, str2sa_range};
use crate::haproxy::tcp_rules::{TcpParsed, TcpRuleSet, tcp_parse_tcp_req};
use crate::haproxy::tcpcheck::{PxCtx, TcpcheckRulesets};
use crate::ids::{CacheId, ListenerId, ProxyId, ServerId};
use crate::trace::names;

/// Everything the configuration produced, ready for `init`.
#[derive(Debug, Default)]
pub struct Config {
    /// The `global` section(s).
    pub global: Global,
    /// Proxies in declaration order.
    pub proxies: Vec<Proxy>,
    /// Listeners in declaration order.
    pub listeners: Vec<Listener>,
    /// Registered protocols and their listeners.
    pub protocols: ProtoList,
    /// Warnings raised while parsing (each already formatted, without the prefix).
    pub warnings: Vec<String>,
    /// `cache` sections in declaration order.
    pub caches: Vec<Cache>,
    /// Servers named by sample arguments (`srv_conn(test/s1)`), resolved and marked
    /// non-purgeable by `check_config_validity`.
    pub srv_refs: Vec<SrvRef>,
    /// `pattern_reference`: the map files the converters read.
    pub pat_refs: Vec<crate::haproxy::pattern::PatRef>,
}

/// A `[backend/]server` sample argument waiting to be resolved.
#[derive(Debug, Clone)]
pub struct SrvRef {
    /// The proxy whose line names it (`None`: a `defaults` section).
    pub px: Option<ProxyId>,
    /// The argument as written.
    pub name: String,
    /// `file:line` of the line.
    pub at: String,
}

/// What went wrong: the ALERTs and WARNINGs to print, HAProxy style.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diag {
    /// ALERT messages (without the `[ALERT] (pid) : config : ` prefix).
    pub alerts: Vec<String>,
    /// WARNING messages.
    pub warnings: Vec<String>,
}

/// Where the current line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    None,
    Global,
    Defaults,
    Proxy(ProxyId),
    /// An `http-errors` section: `errorfile` lines filling the set named
    /// `Parser::http_errors_name`.
    HttpErrors,
    /// A `cache` section (index in `Config::caches`).
    Cache(usize),
    /// A section HAProxy has and haflow ignores (warned once).
    Ignored,
}

/// The statuses an `errorfile` may replace (HAProxy 2.6's `http_err_codes[]`).
const ERRORFILE_CODES: &[u16] =
    &[200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504];

/// A whole HTTP response read from an error file, shared by the proxies that use it.
type ErrorMessage = std::sync::Arc<[u8]>;

/// An `errorfile` or `errorfiles` line of a proxy (or of `defaults`), applied in order
/// once every `http-errors` section is known: a later line overrides an earlier one.
#[derive(Debug, Clone)]
enum ErrorDirective {
    /// `errorfile CODE FILE`.
    File(u16, ErrorMessage),
    /// `errorfiles NAME [CODE...]`, with where it was written.
    Files { name: String, codes: Vec<u16>, at: (String, usize) },
}

/// Keywords of the `global` section haflow implements.
const GLOBAL_KW: &[&str] = &[
    "maxconn",
    "nbthread",
    "tune.bufsize",
    "tune.maxrewrite",
    "tune.maxaccept",
    "tune.maxpollevents",
    "tune.http.maxhdr",
    "tune.comp.maxlevel",
    "daemon",
    "pidfile",
    "log",
    "user",
    "group",
    "uid",
    "gid",
    "log-tag",
    "log-send-hostname",
    "stats",
    "quiet",
    "debug",
    "noreuseport",
    "maxpipes",
    "nosplice",
    "tune.pipesize",
    "nbproc",
    "chroot",
    "description",
    "node",
    "ulimit-n",
    "master-worker",
    "set-var",
    "set-var-fmt",
];

/// Valid HAProxy `global` keywords haflow accepts with a warning.
const GLOBAL_KNOWN: &[&str] = &[
    "hard-stop-after",
    "ca-base",
    "crt-base",
    "cpu-map",
    "ssl-default-bind-ciphers",
    "ssl-default-bind-options",
    "ssl-default-server-ciphers",
    "ssl-default-server-options",
    "ssl-default-bind-ciphersuites",
    "ssl-default-server-ciphersuites",
    "ssl-dh-param-file",
    "spread-checks",
    "server-state-file",
    "server-state-base",
    "lua-load",
    "setenv",
    "presetenv",
    "resetenv",
    "unsetenv",
    "localpeer",
    "maxsslconn",
    "maxconnrate",
    "maxsessrate",
    "noepoll",
    "nopoll",
    "thread-groups",
    "set-dumpable",
    "expose-experimental-directives",
    "h1-case-adjust",
    "busy-polling",
    "insecure-fork-wanted",
    "profiling.tasks",
    "zero-warning",
    "strict-limits",
    "maxcomprate",
    "maxcompcpuusage",
    "maxzlibmem",
];

/// `tune.*` keywords of HAProxy 2.6 that only size resources haflow manages its own way
/// (pools, socket buffers, TLS and Lua, HTTP/2, compression): accepted silently, as
/// they change nothing a user can observe.
const TUNE_RESOURCES: &[&str] = &[
    "tune.buffers.limit",
    "tune.buffers.reserve",
    "tune.fail-alloc",
    "tune.fd.edge-triggered",
    "tune.h2.header-table-size",
    "tune.h2.initial-window-size",
    "tune.h2.max-concurrent-streams",
    "tune.h2.max-frame-size",
    "tune.http.cookielen",
    "tune.http.logurilen",
    "tune.idle-pool.shared",
    "tune.idletimer",
    "tune.listener.multi-queue",
    "tune.lua.forced-yield",
    "tune.lua.maxmem",
    "tune.lua.session-timeout",
    "tune.lua.service-timeout",
    "tune.lua.task-timeout",
    "tune.pattern.cache-size",
    "tune.pool-high-fd-ratio",
    "tune.pool-low-fd-ratio",
    "tune.rcvbuf.client",
    "tune.rcvbuf.server",
    "tune.recv_enough",
    "tune.runqueue-depth",
    "tune.sched.low-latency",
    "tune.sndbuf.client",
    "tune.sndbuf.server",
    "tune.ssl.cachesize",
    "tune.ssl.capture-buffer-size",
    "tune.ssl.default-dh-param",
    "tune.ssl.force-private-cache",
    "tune.ssl.keylog",
    "tune.ssl.lifetime",
    "tune.ssl.maxrecord",
    "tune.ssl.ssl-ctx-cache-size",
    "tune.stick-counters",
    "tune.vars.global-max-size",
    "tune.vars.proc-max-size",
    "tune.vars.reqres-max-size",
    "tune.vars.sess-max-size",
    "tune.vars.txn-max-size",
    "tune.zlib.memlevel",
    "tune.zlib.windowsize",
];

/// Keywords of proxy sections haflow implements.
const PROXY_KW: &[&str] = &[
    "mode",
    "bind",
    "server",
    "default_backend",
    "use_backend",
    "use-server",
    "balance",
    "retries",
    "option",
    "no",
    "timeout",
    "maxconn",
    "log",
    "acl",
    "http-request",
    "http-response",
    "http-after-response",
    "http-error",
    "log-format",
    "capture",
    "http-check",
    "description",
    "disabled",
    "enabled",
    "id",
    "default-server",
    "compression",
    "monitor",
    "monitor-uri",
    "tcp-check",
    "tcp-request",
    "tcp-response",
    "unique-id-format",
    "unique-id-header",
    "stick-table",
    "stick",
    "cookie",
];

/// Valid HAProxy proxy keywords haflow accepts with a warning.
const PROXY_KNOWN: &[&str] = &[
    "backlog",
    "bind-process",
    "cookie",
    "email-alert",
    "errorloc",
    "errorloc302",
    "errorloc303",
    "external-check",
    "force-persist",
    "filter",
    "fullconn",
    "grace",
    "hash-type",
    "hash-balance-factor",
    "http-after-response",
    "http-error",
    "http-send-name-header",
    "ignore-persist",
    "load-server-state-from-file",
    "log-format-sd",
    "log-tag",
    "max-keep-alive-queue",
    "persist",
    "rate-limit",
    "redirect",
    "server-state-file-name",
    "server-template",
    "source",
    "declare",
    "retry-on",
    "guid",
];

/// `option` names haflow implements.
const OPTIONS: &[&str] = &[
    "redispatch",
    "httplog",
    "tcplog",
    "dontlognull",
    "forwardfor",
    "http-keep-alive",
    "http-server-close",
    "httpclose",
    "abortonclose",
    "clitcpka",
    "srvtcpka",
    "tcpka",
    "nolinger",
    "logasap",
    "httpchk",
    "redis-check",
    "mysql-check",
    "pgsql-check",
    "ldap-check",
    "spop-check",
    "smtpchk",
    "ssl-hello-chk",
    "tcp-check",
    "independent-streams",
    "http-no-delay",
    "log-health-checks",
    "originalto",
    "http-buffer-request",
    "http-restrict-req-hdr-names",
    "transparent",
    "prefer-last-server",
    "splice-auto",
    "splice-request",
    "splice-response",
];

/// Valid HAProxy `option` names haflow accepts with a warning.
const OPTIONS_KNOWN: &[&str] = &[
    "allbackups",
    "checkcache",
    "contstats",
    "dontlog-normal",
    "http-ignore-probes",
    "http-pretend-keepalive",
    "http-use-proxy-header",
    "log-separate-errors",
    "persist",
    "socket-stats",
    "tcp-smart-accept",
    "tcp-smart-connect",
    "accept-invalid-http-request",
    "accept-invalid-http-response",
    "external-check",
    "disable-h2-upgrade",
    "h1-case-adjust-bogus-client",
    "h1-case-adjust-bogus-server",
    "idle-close-on-response",
    "httpslog",
];

/// Sections HAProxy has and haflow skips with a warning.
const OTHER_SECTIONS: &[&str] = &[
    "userlist",
    "peers",
    "resolvers",
    "ring",
    "mailers",
    "program",
    "traces",
    "log-forward",
    "crt-store",
    "fcgi-app",
];

/// Most words on one configuration line (`MAX_LINE_ARGS`).
const MAX_LINE_ARGS: usize = 64;

/// The words of one configuration line, or why it could not be split.
enum LineWords {
    Words(Vec<String>),
    /// A quote never closed, at this character position.
    UnmatchedQuote(usize),
    /// More than `MAX_LINE_ARGS` words: the last one kept and its position in the words
    /// laid end to end with one separator (HAProxy's output buffer), from 1.
    TooMany(usize, String),
}

/// Where the private-use characters standing for raw bytes `\x80`-`\xff` start.
const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// The bytes a configuration word stands for: the UTF-8 of its text, except the
/// characters `\xHH` escapes above `\x7f` made, which are the byte itself again.
pub fn cfg_raw_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // U+10FF80..U+10FFFF is F4 8F BE|BF xx in UTF-8.
        if b[i] == 0xf4
            && b.get(i + 1) == Some(&0x8f)
            && matches!(b.get(i + 2), Some(0xbe | 0xbf))
            && let Some(&last) = b.get(i + 3)
        {
            out.push(((u32::from(b[i + 2] & 0x3f) << 6) | u32::from(last & 0x3f)) as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A backslash as tools.c:parse_line() in 2.6 reads it (outside single quotes): `\\`,
/// `\ `, `\t`, `\n`, `\r`, `\#`, `\'`, `\"`, `\$` (in double quotes) and `\xHH` are
/// escapes; any other combination is kept as written (`\1` stays `\1` for regexes).
/// Returns the characters consumed after the backslash. A line is text here, so
/// `\xHH` above `\x7f` (a lone byte, not UTF-8) becomes a private-use character
/// (U+10FF80 to U+10FFFF) that `cfg_raw_bytes` turns back into the byte where bytes are
/// wanted: sample arguments and log-format text.
fn backslash(rest: &[char], dquote: bool, cur: &mut String) -> usize {
    match rest.get(1) {
        Some(&c @ (' ' | '\\' | '#' | '\'' | '"')) => {
            cur.push(c);
            1
        }
        Some('$') if dquote => {
            cur.push('$');
            1
        }
        Some('t') => {
            cur.push('\t');
            1
        }
        Some('n') => {
            cur.push('\n');
            1
        }
        Some('r') => {
            cur.push('\r');
            1
        }
        Some('x') => {
            match (rest.get(2).and_then(|c| c.to_digit(16)), rest.get(3).and_then(|c| c.to_digit(16))) {
                (Some(h), Some(l)) => {
                    let b = h * 16 + l;
                    cur.push(if b < 0x80 {
                        char::from(b as u8)
                    } else {
                        char::from_u32(RAW_BYTE_BASE + b).unwrap_or('?')
                    });
                    3
                }
                _ => {
                    cur.push('\\');
                    0
                }
            }
        }
        _ => {
            cur.push('\\');
            0
        }
    }
}

/// Splits a line into words like HAProxy's parser: spaces separate words, `#` starts a
/// comment, `"..."` and `'...'` quote, `\` escapes, and `$VAR`/`${VAR}`/`${VAR-default}`
/// expand inside double quotes only.
fn split_line(line: &str, env: &dyn Fn(&str) -> Option<String>) -> LineWords {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let bytes: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut quote: Option<(char, usize)> = None;
    // Once a `${` has no closing `}`, no later one has: do not look again (a long line of
    // `"${${${...` would otherwise be scanned to its end once per `$`).
    let mut unclosed = false;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            None => match c {
                ' ' | '\t' | '\r' | '\n' => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                    // HAProxy opens the next word at each separator: one after the last
                    // word allowed is one too many, even if only blanks or a comment follow.
                    if words.len() == MAX_LINE_ARGS {
                        let last = words.pop().unwrap_or_default();
                        let pos = words.iter().map(|w| w.len() + 1).sum::<usize>() + 1;
                        return LineWords::TooMany(pos, last);
                    }
                }
                '#' => break,
                '"' | '\'' => {
                    quote = Some((c, i));
                    in_word = true;
                }
                '\\' => {
                    i += backslash(&bytes[i..], false, &mut cur);
                    in_word = true;
                }
                _ => {
                    cur.push(c);
                    in_word = true;
                }
            },
            Some((q, _)) => {
                if c == q {
                    quote = None;
                } else if c == '\\' && q == '"' {
                    i += backslash(&bytes[i..], true, &mut cur);
                } else if c == '$' && q == '"' {
                    // ${NAME}, ${NAME-default} or $NAME
                    let (name, default, end) = if bytes.get(i + 1) == Some(&'{') {
                        let close = if unclosed {
                            None
                        } else {
                            bytes[i + 2..].iter().position(|&x| x == '}').map(|p| p + i + 2)
                        };
                        unclosed = close.is_none();
                        match close {
                            Some(close) => {
                                let inner: String = bytes[i + 2..close].iter().collect();
                                match inner.split_once('-') {
                                    Some((n, d)) => (n.to_string(), Some(d.to_string()), close),
                                    None => (inner, None, close),
                                }
                            }
                            None => {
                                cur.push(c);
                                i += 1;
                                continue;
                            }
                        }
                    } else {
                        let n: String = bytes[i + 1..]
                            .iter()
                            .take_while(|x| x.is_ascii_alphanumeric() || **x == '_')
                            .collect();
                        let len = n.len();
                        (n, None, i + len)
                    };
                    if name.is_empty() {
                        cur.push('$');
                    } else {
                        cur.push_str(&env(&name).or(default).unwrap_or_default());
                    }
                    i = end;
                } else {
                    cur.push(c);
                }
            }
        }
        i += 1;
    }
    if let Some((_, pos)) = quote {
        return LineWords::UnmatchedQuote(pos);
    }
    if in_word {
        words.push(cur);
    }
    LineWords::Words(words)
}

/// Levenshtein distance, for HAProxy's "did you mean ... maybe ?" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn suggest(word: &str, candidates: &[&[&str]]) -> String {
    // The distance is at least the difference of the lengths: skipping the candidates too
    // far off keeps a 1 MB unknown word from costing a million steps per keyword.
    let best = candidates
        .iter()
        .flat_map(|l| l.iter())
        .filter(|c| word.len().abs_diff(c.len()) <= 2)
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= 2 && *d * 3 <= c.len())
        .min();
    match best {
        Some((_, c)) => format!("; did you mean '{c}' maybe ?"),
        None => String::new(),
    }
}

fn parse_uint<T: std::str::FromStr>(kw: &str, v: Option<&String>) -> Result<T, String> {
    v.and_then(|s| s.parse::<T>().ok()).ok_or_else(|| format!("'{kw}' expects an integer argument."))
}

/// HAProxy's `atol()`-like reading used for `maxconn`: digits up to the first non-digit,
/// so `maxconn abc` is 0 (which HAProxy silently accepts).
fn atol(s: &str) -> u32 {
    s.bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0u32, |n, d| n.saturating_mul(10).saturating_add(u32::from(d - b'0')))
}

/// Parses `log` arguments (after the keyword), as `parse_logsrv()`.
pub fn parse_log(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<LogTarget, String> {
    let usage = "'log' expects either <address[:port]> and <facility> or 'global' as arguments.";
    let Some(addr) = args.first() else { return Err(usage.into()) };
    let dest = match addr.as_str() {
        "stdout" => LogDest::Stdout,
        "stderr" => LogDest::Stderr,
        a if a.starts_with('/') => LogDest::Unix(a.into()),
        a => {
            let a = a.strip_prefix("udp@").or_else(|| a.strip_prefix("udp4@")).unwrap_or(a);
            let a = a.strip_prefix("ipv4@").unwrap_or(a);
            match str2sa_range(a, false, env) {
                Ok(ParsedAddr::Inet(ip, p, _)) => {
                    LogDest::Udp(std::net::SocketAddr::new(ip, if p == 0 { 514 } else { p }))
                }
                Ok(_) => return Err(format!("'log' : unsupported address '{addr}'")),
                Err(e) => return Err(format!("'log' : {e}")),
            }
        }
    };
    let mut target = LogTarget { dest, format: SyslogFormat::Rfc3164, facility: 16, level: 7, maxlen: 1024 };
    let mut i = 1;
    loop {
        match args.get(i).map(String::as_str) {
            Some("len") => {
                target.maxlen = parse_uint("len", args.get(i + 1))?;
                i += 2;
            }
            Some("format") => {
                target.format = match args.get(i + 1).map(String::as_str) {
                    Some("rfc3164") => SyslogFormat::Rfc3164,
                    Some("rfc5424") => SyslogFormat::Rfc5424,
                    Some("short") => SyslogFormat::Short,
                    Some("raw") => SyslogFormat::Raw,
                    Some("priority") => SyslogFormat::Priority,
                    Some("iso") => SyslogFormat::Iso,
                    Some("timed") => SyslogFormat::Timed,
                    Some("local") => SyslogFormat::Local,
                    Some(other) => return Err(format!("unknown log format '{other}'")),
                    None => return Err("'format' expects an argument".into()),
                };
                i += 2;
            }
            _ => break,
        }
    }
    let Some(fac) = args.get(i) else { return Err(usage.into()) };
    target.facility =
        FACILITIES.iter().position(|f| f == fac).ok_or_else(|| format!("unknown log facility '{fac}'"))?
            as u8;
    if let Some(lvl) = args.get(i + 1) {
        target.level = LEVELS
            .iter()
            .position(|l| l == lvl)
            .ok_or_else(|| format!("unknown optional log level '{lvl}'"))? as u8;
    }
    Ok(target)
}

/// The parser's state while reading files (`curproxy`, the current `defaults`...).
struct Parser<'e> {
    cfg: Config,
    diag: Diag,
    file: String,
    line: usize,
    section: Section,
    defaults: Proxy,
    defaults_logs_global: bool,
    env: &'e dyn Fn(&str) -> Option<String>,
    /// `.if` nesting: for each level, (this branch active, a branch was already taken).
    conds: Vec<(bool, bool)>,
    /// The `http-errors` section being parsed.
    http_errors_name: String,
    /// `http-errors` sections by name.
    http_errors: std::collections::HashMap<String, std::collections::BTreeMap<u16, ErrorMessage>>,
    /// The `errorfile(s)` lines of each proxy, in order (those of its `defaults` first).
    error_directives: Vec<(ProxyId, ErrorDirective)>,
    /// The `errorfile(s)` lines of the current `defaults` section.
    defaults_error_directives: Vec<ErrorDirective>,
    /// The current `defaults` section's name (`None`: anonymous).
    defaults_name: Option<String>,
    /// Named `defaults` sections, for `from NAME` (2.5+).
    named_defaults: std::collections::HashMap<String, DefaultsSnapshot>,
    /// The named tcp-check rule sets (`shared_tcpchecks`).
    tcpchecks: TcpcheckRulesets,
}

/// A named `defaults` section as it ended, for the sections that say `from NAME`.
#[derive(Clone)]
struct DefaultsSnapshot {
    px: Proxy,
    logs_global: bool,
    error_directives: Vec<ErrorDirective>,
    /// The capabilities of the proxies that inherited it so far: one with TCP/HTTP rules
    /// may serve frontends or backends, not both (2.6).
    used_by: ProxyCap,
}

impl Parser<'_> {
    fn alert(&mut self, msg: impl AsRef<str>) {
        self.diag.alerts.push(format!("parsing [{}:{}] : {}", self.file, self.line, msg.as_ref()));
    }

    fn warn(&mut self, msg: impl AsRef<str>) {
        self.diag.warnings.push(format!("parsing [{}:{}] : {}", self.file, self.line, msg.as_ref()));
    }

    fn active(&self) -> bool {
        self.conds.iter().all(|(a, _)| *a)
    }

    /// `.if`/`.elif`/`.else`/`.endif` with `defined(VAR)`, `feature(X)` (always false),
    /// `version_atleast(V)` (haflow answers as HAProxy 2.6), `streq`, `strneq`, `0`, `1`.
    fn cond_directive(&mut self, args: &[String]) -> bool {
        let eval = |p: &Parser, words: &[String]| {
            crate::haproxy::cfgcond::cfg_eval_condition(&words.join(" "), p.env)
        };
        match args[0].as_str() {
            ".if" => {
                let parent = self.active();
                match eval(self, &args[1..]) {
                    Ok(v) => self.conds.push((parent && v, v)),
                    Err(e) => {
                        self.alert(e);
                        self.conds.push((false, true));
                    }
                }
            }
            ".elif" => {
                let Some(&(_, taken)) = self.conds.last() else {
                    self.alert("'.elif' without matching '.if'");
                    return true;
                };
                self.conds.pop();
                let parent = self.active();
                let v = !taken && eval(self, &args[1..]).unwrap_or(false);
                self.conds.push((parent && v, taken || v));
            }
            ".else" => {
                let Some(&(_, taken)) = self.conds.last() else {
                    self.alert("'.else' without matching '.if'");
                    return true;
                };
                self.conds.pop();
                let parent = self.active();
                self.conds.push((parent && !taken, true));
            }
            ".endif" => {
                if self.conds.pop().is_none() {
                    self.alert("'.endif' without matching '.if'");
                }
            }
            ".diag" | ".notice" | ".warning" | ".alert" => {
                if self.active() {
                    let msg = args[1..].join(" ");
                    match args[0].as_str() {
                        ".alert" => self.alert(msg),
                        ".warning" => self.warn(msg),
                        _ => {}
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn parse_line(&mut self, args: Vec<String>) {
        if args[0].starts_with('.') && self.cond_directive(&args) {
            return;
        }
        if !self.active() {
            return;
        }
        match args[0].as_str() {
            "global" => {
                self.end_defaults();
                self.section = Section::Global
            }
            "defaults" => {
                self.end_defaults();
                self.section = Section::Defaults;
                let line = self.line;
                let file = self.file.clone();
                let (name, from) = match (args.get(1).map(String::as_str), args.get(2)) {
                    (Some("from"), _) => (None, args.get(2)),
                    (Some(n), Some(f)) if f == "from" => (Some(n.to_string()), args.get(3)),
                    (n, _) => (n.map(String::from), None),
                };
                match from.map(|f| self.named_defaults.get(f).cloned().ok_or(f)) {
                    Some(Ok(d)) => {
                        self.defaults = d.px;
                        self.defaults_logs_global = d.logs_global;
                        self.defaults_error_directives = d.error_directives;
                    }
                    Some(Err(f)) => {
                        let f = f.clone();
                        self.alert(format!(
                            "defaults section '{}': unable to find defaults section '{f}'.",
                            name.clone().unwrap_or_default()
                        ));
                        self.defaults = Proxy::new(ProxyId(0), "", ProxyCap::PR_CAP_LISTEN, &file, line);
                        self.defaults_logs_global = false;
                        self.defaults_error_directives.clear();
                    }
                    None => {
                        self.defaults = Proxy::new(ProxyId(0), "", ProxyCap::PR_CAP_LISTEN, &file, line);
                        self.defaults_logs_global = false;
                        self.defaults_error_directives.clear();
                    }
                }
                self.defaults.name = name.clone().unwrap_or_default();
                self.defaults.conf = (file, line);
                self.defaults_name = name;
            }
            "frontend" | "backend" | "listen" => {
                self.end_defaults();
                self.new_proxy(&args)
            }
            "http-errors" => match args.get(1) {
                Some(name) => {
                    self.http_errors.entry(name.clone()).or_default();
                    self.http_errors_name = name.clone();
                    self.section = Section::HttpErrors;
                }
                None => {
                    self.alert("missing name for http-errors section.");
                    self.section = Section::Ignored;
                }
            },
            "cache" => match args.get(1) {
                Some(name) => {
                    if self.cfg.caches.iter().any(|c| c.id == *name) {
                        let msg =
                            format!("parsing [{}:{}]: Duplicate cache name '{name}'.", self.file, self.line);
                        self.diag.alerts.push(msg);
                        self.section = Section::Ignored;
                    } else {
                        self.cfg.caches.push(Cache::new(name, &self.file, self.line));
                        self.section = Section::Cache(self.cfg.caches.len() - 1);
                    }
                }
                None => {
                    self.alert("'cache' expects a <name> argument");
                    self.section = Section::Ignored;
                }
            },
            s if OTHER_SECTIONS.contains(&s) => {
                self.warn(format!("section '{s}' is not supported by haflow yet; its content is ignored"));
                self.section = Section::Ignored;
            }
            _ => match self.section {
                Section::Global => {
                    if let Err(e) = self.cfg_parse_global(&args) {
                        self.alert(e);
                    }
                }
                Section::Defaults | Section::Proxy(_) => {
                    if let Err(e) = self.cfg_parse_listen(&args) {
                        self.alert(e);
                    }
                    let px = match self.section {
                        Section::Proxy(id) => Some(id),
                        _ => None,
                    };
                    for name in crate::haproxy::sample::take_srv_refs() {
                        let at = format!("{}:{}", self.file, self.line);
                        self.cfg.srv_refs.push(SrvRef { px, name, at });
                    }
                }
                Section::HttpErrors => {
                    let name = self.http_errors_name.clone();
                    let parsed = match args[0].as_str() {
                        "errorfile" => self.errorfile(&args),
                        k => Err(format!(
                            "unknown keyword '{k}' in 'http-errors' section (expects 'errorfile')."
                        )),
                    };
                    match parsed {
                        Ok(Some((code, msg))) => {
                            self.http_errors.entry(name).or_default().insert(code, msg);
                        }
                        Ok(None) => {}
                        Err(e) => self.alert(e),
                    }
                }
                Section::Cache(i) => match cfg_parse_cache(&mut self.cfg.caches[i], &args) {
                    Ok(Some(w)) => self.warn(w),
                    Ok(None) => {}
                    Err(e) => self.alert(e),
                },
                Section::Ignored => {}
                Section::None => {
                    let msg = format!(
                        "parsing [{}:{}]: unknown keyword '{}' out of section.",
                        self.file, self.line, args[0]
                    );
                    self.diag.alerts.push(msg);
                }
            },
        }
    }

    /// Keeps the `defaults` section that just ended under its name, for `from NAME`.
    fn end_defaults(&mut self) {
        if self.section == Section::Defaults
            && let Some(n) = self.defaults_name.clone()
        {
            let snap = DefaultsSnapshot {
                px: self.defaults.clone(),
                logs_global: self.defaults_logs_global,
                error_directives: self.defaults_error_directives.clone(),
                used_by: ProxyCap::empty(),
            };
            self.named_defaults.insert(n, snap);
        }
    }

    /// The section-opening part of cfgparse.c:cfg_parse_listen() in 1.5-dev8: a
    /// `frontend`, `backend`, `listen` or `defaults` line starts a proxy (its span).
    fn new_proxy(&mut self, args: &[String]) {
        let kw = args[0].as_str();
        let Some(name) = args.get(1) else {
            self.alert(format!("'{kw}' expects <name> as an argument"));
            self.section = Section::Ignored;
            return;
        };
        if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c))) {
            self.alert(format!("character '{c}' is not permitted in '{kw}' name '{name}'."));
        }
        let cap = match kw {
            "frontend" => ProxyCap::PR_CAP_FE,
            "backend" => ProxyCap::PR_CAP_BE,
            _ => ProxyCap::PR_CAP_LISTEN,
        };
        if let Some(other) = self.cfg.proxies.iter().find(|p| p.name == *name && p.cap.intersects(cap)) {
            let msg = format!(
                "Parsing [{}:{}]: {} '{}' has the same name as {} '{}' declared at {}:{}.",
                self.file,
                self.line,
                kw,
                name,
                other.section_name(),
                other.name,
                other.conf.0,
                other.conf.1
            );
            self.diag.alerts.push(msg);
        }
        let id = ProxyId::from(self.cfg.proxies.len());
        let _sp = tracing::info_span!(names::CFG_PARSE_LISTEN, section = %kw, name = %name).entered();
        let mut p = Proxy::new(id, name, cap, &self.file, self.line);
        // `from NAME`: a named `defaults` section instead of the last one (2.5+).
        let from = args.iter().position(|a| a == "from").and_then(|i| args.get(i + 1));
        let named = match from {
            Some(f) => match self.named_defaults.get(f) {
                Some(d) => Some(d.clone()),
                None => {
                    self.alert(format!("{kw} '{name}': unable to find defaults section '{f}'."));
                    None
                }
            },
            None => None,
        };
        let (d, d_errs) = match named {
            Some(n) => (n.px, n.error_directives),
            None => (self.defaults.clone(), self.defaults_error_directives.clone()),
        };
        let has_rules = !d.http_req_rules.is_empty()
            || !d.http_res_rules.is_empty()
            || !d.http_after_res_rules.is_empty()
            || !d.tcp_req.l4_rules.is_empty()
            || !d.tcp_req.l5_rules.is_empty()
            || !d.tcp_req.inspect_rules.is_empty()
            || !d.tcp_rep.inspect_rules.is_empty();
        if has_rules && cap == ProxyCap::PR_CAP_LISTEN {
            let msg = format!(
                "{kw} '{name}' : defaults section '{}' with TCP/HTTP rules cannot be used to init a listen section.",
                d.name
            );
            self.alert(msg);
        } else if has_rules && let Some(snap) = from.and_then(|f| self.named_defaults.get_mut(f)) {
            snap.used_by |= cap;
            if snap.used_by == ProxyCap::PR_CAP_LISTEN {
                let msg = format!(
                    "parsing [{}:{}]: frontends and backends cannot inherit from the same defaults section if it defines TCP/HTTP rules (defaults section at {}:{}).",
                    self.file, self.line, d.conf.0, d.conf.1
                );
                self.diag.alerts.push(msg);
            }
        }
        // Rules and ACLs of a named `defaults` run before the proxy's own.
        p.acls = d.acls.clone();
        p.http_req_rules = d.http_req_rules.clone();
        p.http_res_rules = d.http_res_rules.clone();
        p.http_after_res_rules = d.http_after_res_rules.clone();
        p.filters = d.filters.clone();
        // 2.6 keeps the defaults' TCP rules apart (`defpx`) and runs them first; a
        // copy ahead of the proxy's own does the same. Connection and session rules
        // apply to frontends only, response rules to backends only.
        if cap.contains(ProxyCap::PR_CAP_FE) {
            p.tcp_req.l4_rules = d.tcp_req.l4_rules.clone();
            p.tcp_req.l5_rules = d.tcp_req.l5_rules.clone();
        }
        if cap.contains(ProxyCap::PR_CAP_BE) {
            p.tcp_rep = d.tcp_rep.clone();
        }
        p.tcp_req.inspect_rules = d.tcp_req.inspect_rules.clone();
        p.tcp_req.inspect_delay = d.tcp_req.inspect_delay;
        p.http_errors = d.http_errors.clone();
        p.mode = d.mode;
        p.timeout = d.timeout;
        p.options = d.options;
        p.http_mode = d.http_mode;
        p.conn_retries = d.conn_retries;
        p.lbprm.algo = d.lbprm.algo;
        p.lbprm.kind_set = d.lbprm.kind_set;
        p.reuse = d.reuse;
        p.maxconn = d.maxconn;
        p.logs = d.logs.clone();
        p.monitor_uri = d.monitor_uri.clone();
        p.uri_auth = d.uri_auth.clone();
        p.uri_auth_inherited = p.uri_auth.is_some();
        p.log_format = d.log_format;
        p.log_format_str = d.log_format_str.clone();
        p.unique_id_format = d.unique_id_format.clone();
        p.unique_id_header = d.unique_id_header.clone();
        p.tcpcheck = d.tcpcheck.clone();
        p.default_server = d.default_server.clone();
        // 2.6's proxy_defproxy_cpy(): the algorithms and types, not `offload`.
        p.comp = d.comp.as_ref().map(|c| Comp { offload: false, ..c.clone() });
        p.fwdfor = d.fwdfor.clone();
        p.originalto = d.originalto.clone();
        p.hdr_names = d.hdr_names;
        for d in d_errs {
            self.error_directives.push((id, d));
        }
        self.cfg.proxies.push(p);
        self.section = Section::Proxy(id);
        if kw == "listen" && args.len() > 2 {
            let addrs = args[2].clone();
            if let Err(e) = self.str2listener(&addrs, id) {
                self.alert(e);
            }
        }
    }

    /// cfgparse.c:cfg_parse_global() in 1.5-dev8.
    fn cfg_parse_global(&mut self, args: &[String]) -> Result<(), String> {
        let kw = args[0].as_str();
        // One call per line of the `global` section, as in HAProxy.
        let _sp = tracing::info_span!(names::CFG_PARSE_GLOBAL, kw).entered();
        let g = &mut self.cfg.global;
        let arg1 = args.get(1);
        match kw {
            "maxconn" => {
                let v = arg1.ok_or("'maxconn' expects an integer argument.")?;
                g.maxconn = atol(v);
            }
            "nbthread" => {
                let n: u32 = parse_uint(kw, arg1)?;
                if n != 1 {
                    self.warn(format!(
                        "haflow runs one event-loop thread; 'nbthread {n}' is ignored (using 1)."
                    ));
                }
            }
            "tune.bufsize" => {
                let v = arg1.ok_or("'tune.bufsize' expects an integer argument.")?;
                let n =
                    parse_size_err(v).map_err(|_| "'tune.bufsize' expects a positive integer argument.")?;
                if !(1024..=1 << 30).contains(&n) {
                    return Err("'tune.bufsize' expects a positive integer argument.".into());
                }
                g.tune.bufsize = n as usize;
            }
            "tune.maxrewrite" => g.tune.maxrewrite = Some(parse_uint(kw, arg1)?),
            "tune.maxaccept" => {
                let v: i64 = parse_uint(kw, arg1)?;
                g.tune.maxaccept = if v < 0 { u32::MAX } else { v as u32 };
            }
            "tune.maxpollevents" => g.tune.maxpollevents = parse_uint(kw, arg1)?,
            "tune.http.maxhdr" => {
                let n: usize = parse_uint(kw, arg1)?;
                if !(1..=32767).contains(&n) {
                    return Err("'tune.http.maxhdr' expects a numeric value between 1 and 32767".into());
                }
                g.tune.http_maxhdr = n;
            }
            "tune.comp.maxlevel" => {
                let v = arg1.ok_or("'tune.comp.maxlevel' requires a numeric value between 1 and 9.")?;
                g.tune.comp_maxlevel = Some(crate::haproxy::checks::atol_i32(v))
                    .filter(|n| (1..=9).contains(n))
                    .ok_or("'tune.comp.maxlevel' expects a numeric value between 1 and 9.")?
                    as u32;
            }
            "daemon" => {
                self.warn("'daemon' is not implemented by haflow: it stays in the foreground.");
            }
            "ulimit-n" => {
                let v = arg1.ok_or("'ulimit-n' expects an integer argument.")?;
                g.rlimit_nofile = Some(atol(v).into());
            }
            "master-worker" | "user" | "group" | "uid" | "gid" | "chroot" => {
                self.warn(format!("'{kw}' is not implemented by haflow; ignored."));
            }
            "pidfile" => {
                g.pidfile = Some(arg1.ok_or("'pidfile' expects a file name as an argument.")?.into())
            }
            "log" => {
                if arg1.map(String::as_str) == Some("global") {
                    return Err("'log global' is only allowed in proxy sections".into());
                }
                let t = parse_log(&args[1..], self.env)?;
                self.cfg.global.logs.push(t);
            }
            "log-tag" => g.log_tag = Some(arg1.ok_or("'log-tag' expects a tag as an argument.")?.clone()),
            "log-send-hostname" => {
                g.log_send_hostname = Some(arg1.cloned().unwrap_or_else(|| {
                    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
                }))
            }
            "set-var" | "set-var-fmt" => {
                let (Some(name), Some(val)) = (args.get(1), args.get(2)) else {
                    return Err(format!(
                        "'{kw}' expects a variable name and a {}.",
                        if kw == "set-var" { "sample expression" } else { "format string" }
                    ));
                };
                let v = crate::haproxy::vars::register_name(name).map_err(|e| format!("'{kw}' : {e}"))?;
                if v.scope != crate::haproxy::vars::VarsScope::SCOPE_PROC {
                    return Err(format!(
                        "'{kw}' : only 'proc.' variables may be set in the global section ('{name}')."
                    ));
                }
                let mut proc = std::mem::take(&mut g.vars_proc);
                let res = {
                    let vars = crate::haproxy::vars::Vars { proc: &mut proc, sess: None };
                    let mut ctx =
                        crate::haproxy::sample::SmpCtx::new(None, crate::haproxy::sample::SmpDir::Req, vars);
                    if kw == "set-var" {
                        crate::haproxy::sample::sample_parse_word(val)
                            .map(|e| crate::haproxy::sample::sample_process(&e, &mut ctx))
                    } else {
                        crate::haproxy::log::parse_logformat_string(val).map(|f| {
                            Some(crate::haproxy::sample::SmpData::Str(crate::haproxy::log::build_logline(
                                &f, &mut ctx, false,
                            )))
                        })
                    }
                };
                let res = res.map_err(|e| format!("'{kw}' : {e}"));
                if let Ok(Some(d)) = &res {
                    proc.set(&v.name, d.clone());
                }
                self.cfg.global.vars_proc = proc;
                res?;
            }
            "quiet" => g.quiet = true,
            "debug" => g.debug = true,
            "noreuseport" => g.noreuseport = true,
            "nosplice" => g.tune.use_splice = false,
            "maxpipes" => {
                if g.maxpipes != 0 {
                    return Err("'maxpipes' already specified.".into());
                }
                g.maxpipes = atol(arg1.ok_or("'maxpipes' expects an integer argument.")?);
            }
            "tune.pipesize" => {
                g.tune.pipesize = atol(arg1.ok_or("'tune.pipesize' expects an integer argument.")?) as usize;
            }
            "nbproc" | "description" | "node" => {}
            "stats" => self.parse_stats_global(args)?,
            k if TUNE_RESOURCES.contains(&k) => {
                if arg1.is_none() {
                    return Err(format!("'{k}' expects an argument."));
                }
            }
            k if GLOBAL_KNOWN.contains(&k) => {
                self.warn(format!("keyword '{k}' in 'global' section is not implemented by haflow; ignored."))
            }
            k => {
                let hint = suggest(k, &[GLOBAL_KW, GLOBAL_KNOWN, TUNE_RESOURCES]);
                return Err(format!("unknown keyword '{k}' in 'global' section{hint}"));
            }
        }
        Ok(())
    }

    /// cfgparse-listen.c's `stats` keyword in 2.6 (1.5-dev8's cfgparse.c): the proxy's
    /// statistics page (`uri_auth`).
    fn parse_stats_proxy(&mut self, args: &[String]) -> Result<(), String> {
        use crate::haproxy::uri_auth::stats_check_init_uri_auth;
        let in_def = self.in_defaults();
        let sub = args.get(1).map(String::as_str).unwrap_or("");
        let arg2 = args.get(2).map(String::as_str).unwrap_or("");
        let p = self.cur();
        if !in_def && p.uri_auth_inherited {
            // We must detach from the default config.
            p.uri_auth = None;
            p.uri_auth_inherited = false;
        }
        match sub {
            "admin" => {
                if in_def {
                    return Err("'stats admin' not allowed in 'defaults' section.".into());
                }
                if !matches!(arg2, "if" | "unless") {
                    return Err("'stats admin' requires either 'if' or 'unless' followed by a condition.".into());
                }
                let p = self.cur();
                let cond = crate::haproxy::acl::parse_acl_cond(&args[2..], &p.acls)
                    .map_err(|e| format!("error detected while parsing a 'stats admin' rule : {e}."))?;
                stats_check_init_uri_auth(&mut p.uri_auth).admin_rules.push(cond);
            }
            "uri" if arg2.is_empty() => return Err("'uri' needs an URI prefix.".into()),
            "uri" => stats_check_init_uri_auth(&mut p.uri_auth).uri_prefix = arg2.to_string(),
            "realm" if arg2.is_empty() => return Err("'realm' needs an realm name.".into()),
            "realm" => stats_check_init_uri_auth(&mut p.uri_auth).auth_realm = Some(arg2.to_string()),
            "refresh" => {
                let ms = parse_time_err(arg2).map_err(|e| {
                    e.alert(arg2, "stats refresh", |c| {
                        format!("unexpected character '{c}' in argument to stats refresh interval.")
                    })
                })?;
                // A bare number is in seconds here.
                let secs = if arg2.chars().any(|c| c.is_ascii_alphabetic()) { ms / 1000 } else { ms };
                stats_check_init_uri_auth(&mut p.uri_auth).refresh = secs;
            }
            "scope" if arg2.is_empty() => return Err("'scope' needs a proxy name.".into()),
            "scope" => stats_check_init_uri_auth(&mut p.uri_auth).scope.push(arg2.to_string()),
            "enable" => {
                stats_check_init_uri_auth(&mut p.uri_auth);
            }
            "hide-version" => stats_check_init_uri_auth(&mut p.uri_auth).hide_version = true,
            "show-legends" => stats_check_init_uri_auth(&mut p.uri_auth).show_legends = true,
            "show-node" => {
                let ok = arg2.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !ok {
                    return Err("'stats show-node' invalid node name - should be a stringwith digits(0-9), letters(A-Z, a-z), hyphen(-) or underscode(_).".into());
                }
                stats_check_init_uri_auth(&mut p.uri_auth).node = Some(arg2.to_string());
            }
            "show-desc" => {
                let desc = args[2..].join(" ");
                stats_check_init_uri_auth(&mut p.uri_auth).desc = Some(desc);
            }
            // Ignoring these would open the page to everyone: refuse them.
            "auth" | "http-request" | "show-modules" => {
                return Err(format!("'stats {sub}' is not implemented by haflow."));
            }
            "" => return Err("missing keyword in 'stats', expects 'admin', 'uri', 'realm', 'auth', 'scope', 'enable', 'hide-version', 'show-node', 'show-desc' or 'show-legends'.".into()),
            other => return Err(format!("unknown stats parameter '{other}', expects 'admin', 'uri', 'realm', 'auth', 'scope', 'enable', 'hide-version', 'show-node', 'show-desc' or 'show-legends'.")),
        }
        Ok(())
    }

    fn parse_stats_global(&mut self, args: &[String]) -> Result<(), String> {
        match args.get(1).map(String::as_str) {
            Some("socket") => {
                let addr = args.get(2).ok_or(
                    "'stats socket' in global section expects an address or a path to a UNIX socket",
                )?;
                crate::haproxy::dumpstats::parse_cli_addr(addr)
                    .map_err(|e| format!("'stats socket' : {e}"))?;
                let mut sock = StatsSocketConf {
                    addr: addr.clone(),
                    level: "operator".into(),
                    mode: None,
                    conf: (self.file.clone(), self.line),
                };
                let mut i = 3;
                while i < args.len() {
                    match args[i].as_str() {
                        "level" => {
                            let l = args.get(i + 1).ok_or("'level' expects an argument")?;
                            if !matches!(l.as_str(), "user" | "operator" | "admin") {
                                return Err(format!(
                                    "'level' only supports 'user', 'operator', and 'admin' (got '{l}')"
                                ));
                            }
                            sock.level = l.clone();
                            i += 2;
                        }
                        "mode" => {
                            let m = args.get(i + 1).ok_or("'mode' expects an argument")?;
                            sock.mode =
                                Some(u32::from_str_radix(m, 8).map_err(|_| format!("invalid mode '{m}'"))?);
                            i += 2;
                        }
                        "user" | "group" | "uid" | "gid" | "expose-fd" | "process" | "name" => i += 2,
                        _ => i += 1,
                    }
                }
                self.cfg.global.stats_sockets.push(sock);
                Ok(())
            }
            Some("timeout") => {
                let v = args.get(2).ok_or("'stats timeout' expects a timeout")?;
                self.cfg.global.stats_timeout = parse_time_err(v).map_err(|e| {
                    e.alert(v, "stats timeout", |c| format!("unexpected character '{c}' in 'stats timeout'"))
                })?;
                Ok(())
            }
            Some("maxconn") => {
                let n = args.get(2).map_or(0, |v| atol(v));
                if n == 0 {
                    return Err("'stats maxconn' expects a positive value".into());
                }
                self.cfg.global.stats_maxconn = n;
                Ok(())
            }
            Some("bind-process") => Ok(()),
            _ => {
                Err("'stats' expects 'socket', 'maxconn', 'bind-process' or 'timeout' as first argument."
                    .into())
            }
        }
    }

    fn cur(&mut self) -> &mut Proxy {
        match self.section {
            Section::Proxy(id) => &mut self.cfg.proxies[id.idx()],
            _ => &mut self.defaults,
        }
    }

    /// Where the line being parsed is, for a rule (`rule->conf`).
    fn rule_conf(&self) -> RuleConf {
        RuleConf { file: self.file.as_str().into(), line: self.line }
    }

    fn in_defaults(&self) -> bool {
        self.section == Section::Defaults
    }

    /// cfgparse.c:cfg_parse_listen() in 1.5-dev8: one keyword of a `frontend`, `backend`,
    /// `listen` or `defaults` section.
    fn cfg_parse_listen(&mut self, args: &[String]) -> Result<(), String> {
        let kw = args[0].as_str();
        // One call per line, as in HAProxy: a `bind` line's `str2listener` nests under it.
        let _sp = tracing::info_span!(names::CFG_PARSE_LISTEN, kw).entered();
        let section = if self.in_defaults() { "defaults" } else { self.cur().section_name() };
        let cap = if self.in_defaults() { ProxyCap::PR_CAP_LISTEN } else { self.cur().cap };
        let need = |c: ProxyCap, kw: &str| -> Result<(), String> {
            if cap.intersects(c) {
                Ok(())
            } else {
                Err(format!(
                    "'{kw}' not allowed in '{section}' section (proxy has no {} capability).",
                    if c == ProxyCap::PR_CAP_FE { "frontend" } else { "backend" }
                ))
            }
        };
        match kw {
            "mode" => {
                let m = args.get(1).ok_or("'mode' expects one of 'tcp', 'http', 'log' or 'spop'.")?;
                self.cur().mode = match m.as_str() {
                    "tcp" => ProxyMode::PR_MODE_TCP,
                    "http" => ProxyMode::PR_MODE_HTTP,
                    "health" | "log" | "spop" => {
                        return Err(format!("proxy mode '{m}' is not implemented by haflow."));
                    }
                    other => return Err(format!("unknown proxy mode '{other}'.")),
                };
            }
            "bind" => {
                if self.in_defaults() || !cap.contains(ProxyCap::PR_CAP_FE) {
                    return Err(format!("'bind' not allowed in '{section}' section."));
                }
                // An empty word (`"${UNSET}"`) is no address either.
                let addrs = args.get(1).filter(|a| !a.is_empty()).ok_or(
                    "'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments.",
                )?;
                let Section::Proxy(id) = self.section else { unreachable!() };
                self.str2listener(addrs, id).map_err(|e| format!("'bind' : {e}"))?;
                self.bind_options(&args[2..])?;
            }
            "default-server" => {
                need(ProxyCap::PR_CAP_BE, kw)?;
                self.parse_default_server(args)?;
            }
            "server" => {
                if self.in_defaults() || !cap.contains(ProxyCap::PR_CAP_BE) {
                    return Err(format!("'server' not allowed in '{section}' section."));
                }
                self.parse_server(args)?;
            }
            "tcp-check" => {
                need(ProxyCap::PR_CAP_BE, kw)?;
                self.tcpcheck_kw(|sets, px| sets.proxy_parse_tcpcheck(px, args).map(|()| None))?;
            }
            "default_backend" => {
                need(ProxyCap::PR_CAP_FE, kw)?;
                let name = args.get(1).ok_or("'default_backend' expects a backend name.")?.clone();
                let line = self.line;
                self.cur().defbe_name = Some((name, line));
            }
            "use_backend" => {
                need(ProxyCap::PR_CAP_FE, kw)?;
                if self.in_defaults() {
                    return Err("'use_backend' not allowed in 'defaults' section.".into());
                }
                let name = args.get(1).ok_or("'use_backend' expects a backend name.")?.clone();
                // `use_backend %[expr]`: the name is a log format, evaluated per request.
                let dynamic = if name.contains('%') {
                    Some(crate::haproxy::log::parse_logformat_string(&name)?)
                } else {
                    None
                };
                let cond = if args.len() > 2 {
                    parse_acl_cond(&args[2..], &self.cur().acls)
                        .map_err(|e| format!("error detected while parsing switching rule : {e}."))?
                } else {
                    Condition::always()
                };
                let line = self.line;
                self.cur().switching_rules.push(SwitchingRule {
                    cond,
                    be_name: name,
                    be: None,
                    dynamic,
                    line,
                });
            }
            "use-server" => {
                // cfgparse.c in 1.5.0: a backend keyword, one condition required.
                if self.in_defaults() {
                    return Err("'use-server' not allowed in 'defaults' section.".into());
                }
                need(ProxyCap::PR_CAP_BE, kw)?;
                let name =
                    args.get(1).filter(|a| !a.is_empty()).ok_or("'use-server' expects a server name.")?;
                if !matches!(args.get(2).map(String::as_str), Some("if" | "unless")) {
                    return Err(
                        "'use-server' requires either 'if' or 'unless' followed by a condition.".into()
                    );
                }
                let cond = parse_acl_cond(&args[2..], &self.cur().acls)
                    .map_err(|e| format!("error detected while parsing switching rule : {e}."))?;
                let srv_name = name.clone();
                self.cur().server_rules.push(ServerRule { cond, srv_name, srv: None });
                self.cur().be_req_ana |= Analysers::AN_REQ_SRV_RULES;
            }
            "balance" => {
                need(ProxyCap::PR_CAP_BE, kw)?;
                self.cur().lbprm.kind_set = true;
                self.cur().lbprm.algo = match args.get(1).map(String::as_str) {
                    Some("roundrobin") => BalanceAlgo::RoundRobin,
                    Some("static-rr") => BalanceAlgo::StaticRr,
                    Some("leastconn") => BalanceAlgo::LeastConn,
                    Some("first") => BalanceAlgo::First,
                    Some("source") => BalanceAlgo::Source,
                    Some(a @ ("uri" | "url_param" | "random" | "hash" | "rdp-cookie")) => {
                        self.warn(format!("'balance {a}' is not implemented by haflow; using 'roundrobin'."));
                        BalanceAlgo::RoundRobin
                    }
                    Some(a) if a.starts_with("hdr(") || a.starts_with("rdp-cookie(") => {
                        self.warn(format!("'balance {a}' is not implemented by haflow; using 'roundrobin'."));
                        BalanceAlgo::RoundRobin
                    }
                    _ => return Err("balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.".into()),
                };
            }
            "retries" => {
                need(ProxyCap::PR_CAP_BE, kw)?;
                self.cur().conn_retries = parse_uint::<i32>(kw, args.get(1))
                    .map_err(|_| "'retries' expects an integer value.".to_string())?;
            }
            "maxconn" => {
                need(ProxyCap::PR_CAP_FE, kw)?;
                let v = args.get(1).ok_or("'maxconn' expects an integer argument.")?;
                self.cur().maxconn = atol(v);
            }
            "timeout" => self.parse_timeout(args)?,
            "option" => self.parse_option(&args[1..], false)?,
            "no" => {
                if args.get(1).map(String::as_str) != Some("option") {
                    return Err("'no' only supports 'option'.".into());
                }
                self.parse_option(&args[2..], true)?;
            }
            "log" => match args.get(1).map(String::as_str) {
                Some("global") => {
                    let g = self.cfg.global.logs.clone();
                    if self.in_defaults() {
                        self.defaults_logs_global = true;
                    }
                    self.cur().logs.extend(g);
                }
                _ => {
                    let t = parse_log(&args[1..], self.env)?;
                    self.cur().logs.push(t);
                }
            },
            "acl" => {
                if self.in_defaults() && self.defaults_name.is_none() {
                    return Err("'acl' not allowed in anonymous 'defaults' section.".into());
                }
                let name = args.get(1).ok_or("'acl' expects an ACL name")?.clone();
                if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c))) {
                    return Err(format!("character '{c}' is not permitted in acl name '{name}'."));
                }
                let expr = parse_acl_expr(&args[2..])
                    .map_err(|e| format!("error detected while parsing ACL '{name}' : {e}."))?;
                self.cur().acls.add(&name, expr);
            }
            "http-request" | "http-response" | "http-after-response" => {
                if self.in_defaults() && self.defaults_name.is_none() {
                    return Err(format!("'{kw}' not allowed in anonymous 'defaults' section."));
                }
                let set = match kw {
                    "http-request" => RuleSet::Req,
                    "http-response" => RuleSet::Res,
                    _ => RuleSet::AfterRes,
                };
                let conf = self.rule_conf();
                let p = self.cur();
                let mut caps = p.req_cap.len();
                let mut rule = parse_http_rule(set, &args[1..], &p.acls, &mut caps).map_err(|e| {
                    format!("error detected in {section} '{}' while parsing '{kw}' rule : {e}", p.name)
                })?;
                rule.conf = conf;
                if caps > p.req_cap.len()
                    && let crate::haproxy::http_act::HttpAct::Capture(_, slot) = &rule.act
                {
                    p.req_cap.push((None, slot.len));
                }
                if let HttpAct::CacheUse(CacheRef { name, .. }) | HttpAct::CacheStore(CacheRef { name, .. }) =
                    &rule.act
                    && !p.filters.iter().any(|f| matches!(f, FltConf::Cache { name: n, .. } if n == name))
                {
                    // cache.c:parse_cache_rule() in 2.6: the first rule naming a cache
                    // declares its filter implicitly, here.
                    p.filters.push(FltConf::Cache { name: name.clone(), explicit: false });
                }
                match set {
                    RuleSet::Req => p.http_req_rules.push(rule),
                    RuleSet::Res => p.http_res_rules.push(rule),
                    RuleSet::AfterRes => p.http_after_res_rules.push(rule),
                }
            }
            "http-reuse" => {
                need(ProxyCap::PR_CAP_BE, kw)?;
                self.cur().reuse = match args.get(1).map(String::as_str) {
                    Some("never") => ReuseMode::Never,
                    Some("safe") => ReuseMode::Safe,
                    Some("aggressive") => ReuseMode::Aggressive,
                    Some("always") => ReuseMode::Always,
                    _ => {
                        return Err(
                            "'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'".into()
                        );
                    }
                };
                if args.len() > 2 {
                    return Err("'http-reuse' cannot handle unexpected argument '".to_string()
                        + &args[2]
                        + "'.");
                }
            }
            "dispatch" => {
                if self.in_defaults() {
                    return Err("'dispatch' not allowed in 'defaults' section.".into());
                }
                need(ProxyCap::PR_CAP_BE, kw)?;
                let a = args.get(1).filter(|a| !a.is_empty()).ok_or("'dispatch' : missing address")?;
                let addr = match str2sa_range(a, false, self.env).map_err(|e| format!("'dispatch' : {e}"))? {
                    ParsedAddr::Inet(ip, port, _) if port != 0 => std::net::SocketAddr::new(ip, port),
                    _ => {
                        return Err(format!(
                            "'dispatch' : missing port number in '{a}', expects 'address:port'."
                        ));
                    }
                };
                if args.len() > 2 {
                    return Err(format!("'dispatch' cannot handle unexpected argument '{}'.", args[2]));
                }
                let p = self.cur();
                p.dispatch_addr = Some(addr);
                p.options.insert(ProxyOptions::PR_O_DISPATCH);
            }
            "tcp-request" | "tcp-response" => {
                let conf = self.rule_conf();
                let anonymous = self.in_defaults() && self.defaults_name.is_none();
                let p = self.cur();
                let pxdesc = if anonymous {
                    "defaults section".to_string()
                } else {
                    format!("{section} '{}'", p.name)
                };
                let parsed = tcp_parse_tcp_req(args, cap, &pxdesc, &p.acls)?;
                match parsed {
                    TcpParsed::InspectDelay(ms) => {
                        if anonymous {
                            return Err(format!(
                                "{kw} inspect-delay is not allowed in anonymous 'defaults' sections"
                            ));
                        }
                        let slot = if kw == "tcp-request" {
                            &mut p.tcp_req.inspect_delay
                        } else {
                            &mut p.tcp_rep.inspect_delay
                        };
                        *slot = Some(ms);
                    }
                    TcpParsed::Rule(set, mut rule) => {
                        if anonymous {
                            return Err(format!(
                                "{} is not allowed in anonymous 'defaults' sections",
                                set.keyword()
                            ));
                        }
                        rule.conf = conf;
                        match set {
                            TcpRuleSet::Connection => p.tcp_req.l4_rules.push(rule),
                            TcpRuleSet::Session => p.tcp_req.l5_rules.push(rule),
                            TcpRuleSet::Content => p.tcp_req.inspect_rules.push(rule),
                            TcpRuleSet::ResContent => p.tcp_rep.inspect_rules.push(rule),
                        }
                    }
                }
            }
            "unique-id-format" => {
                let f = args.get(1).ok_or("'unique-id-format' expects an argument.")?;
                if args.len() > 2 {
                    return Err("'unique-id-format' expects only one argument, possibly quoted.".into());
                }
                // An empty format removes one inherited from `defaults`.
                self.cur().unique_id_format =
                    if f.is_empty() { None } else { Some(crate::haproxy::log::parse_logformat_string(f)?) };
            }
            "unique-id-header" => {
                let h = args.get(1).ok_or("'unique-id-header' expects an argument.")?;
                self.cur().unique_id_header = Some(h.clone());
            }
            "log-format" => {
                let f = args.get(1).ok_or("'log-format' expects a format string.")?;
                if args.len() > 2 {
                    return Err("'log-format' expects only one argument, possibly quoted.".into());
                }
                let lf = crate::haproxy::log::parse_logformat_string(f)?;
                self.cur().log_format_str = Some(lf);
            }
            "http-error" => {
                if args.get(1).map(String::as_str) != Some("status") {
                    return Err("'http-error' expects 'status <code>' as first argument.".into());
                }
                let (reply, used) = http_parse_http_reply(args, 1, 0)?;
                if let Some(extra) = args.get(used) {
                    return Err(format!("'http-error' : unknown keyword '{extra}'."));
                }
                if !ERRORFILE_CODES.contains(&reply.status) {
                    self.warn(format!(
                        "status code '{}' not handled by 'http-error', error customization will be ignored.",
                        reply.status
                    ));
                    return Ok(());
                }
                self.cur().http_errors.insert(reply.status, reply);
            }
            "capture" => {
                need(ProxyCap::PR_CAP_FE, kw)?;
                match (
                    args.get(1).map(String::as_str),
                    args.get(2).map(String::as_str),
                    args.get(3),
                    args.get(4),
                ) {
                    (Some(dir @ ("request" | "response")), Some("header"), Some(name), Some(l))
                        if l == "len" =>
                    {
                        let len: usize = args
                            .get(5)
                            .and_then(|v| v.parse().ok())
                            .ok_or("'capture request header' expects 'len' <length>.")?;
                        let p = self.cur();
                        if dir == "request" {
                            p.req_cap.push((Some(name.to_ascii_lowercase()), len));
                        } else {
                            p.rsp_cap.push((name.to_ascii_lowercase(), len));
                        }
                    }
                    (Some("cookie"), _, _, _) => {
                        return Err("'capture cookie' is not implemented by haflow.".into());
                    }
                    _ => {
                        return Err(
                            "'capture' expects 'cookie', 'request header' or 'response header'.".into()
                        );
                    }
                }
            }
            "http-check" => {
                need(ProxyCap::PR_CAP_BE, kw)?;
                self.tcpcheck_kw(|sets, px| sets.proxy_parse_httpcheck(px, args).map(|()| None))?;
            }
            "monitor-uri" => {
                need(ProxyCap::PR_CAP_FE, kw)?;
                let uri = args.get(1).filter(|u| !u.is_empty()).ok_or("'monitor-uri' expects an URI.")?;
                self.cur().monitor_uri = Some(uri.clone());
            }
            "stats" => self.parse_stats_proxy(args)?,
            "monitor" => {
                need(ProxyCap::PR_CAP_FE, kw)?;
                if self.in_defaults() {
                    return Err("'monitor' not allowed in 'defaults' section.".into());
                }
                if args.get(1).map(String::as_str) != Some("fail") {
                    return Err("'monitor' expects 'fail'.".into());
                }
                let p = self.cur();
                let cond = match args.get(2).map(String::as_str) {
                    Some("if" | "unless") => crate::haproxy::acl::parse_acl_cond(&args[2..], &p.acls)
                        .map_err(|e| {
                            format!("error detected while parsing a 'monitor fail' condition : {e}.")
                        })?,
                    _ => {
                        return Err("'monitor fail' expects 'if' or 'unless' followed by a condition.".into());
                    }
                };
                p.mon_fail_cond.push(cond);
            }
            "errorfile" => {
                if let Some((code, msg)) = self.errorfile(args)? {
                    self.error_directive(ErrorDirective::File(code, msg));
                }
            }
            "errorfiles" => {
                let name = args
                    .get(1)
                    .ok_or("'errorfiles' expects <name> and optional status codes as arguments.")?;
                let mut codes = Vec::new();
                for c in &args[2..] {
                    match c.parse::<u16>() {
                        Ok(code) if ERRORFILE_CODES.contains(&code) => codes.push(code),
                        _ => self.warn(format!(
                            "status code '{c}' not handled by 'errorfiles', error customization will be ignored."
                        )),
                    }
                }
                let at = (self.file.clone(), self.line);
                self.error_directive(ErrorDirective::Files { name: name.clone(), codes, at });
            }
            "compression" => {
                let in_defaults = self.in_defaults();
                let comp = self.cur().comp.get_or_insert_with(Comp::default);
                if let Some(warning) = parse_compression_options(comp, &args[1..], in_defaults)? {
                    self.warn(warning);
                }
            }
            "stick-table" => {
                if self.in_defaults() {
                    return Err("'stick-table' not allowed in 'defaults' section.".into());
                }
                let p = self.cur();
                if p.table.is_some() {
                    return Err(format!("only one stick-table per proxy is allowed ('{}').", p.name));
                }
                let t = crate::haproxy::stick_table::parse_stick_table(&args[1..], &p.name)?;
                p.table = Some(Box::new(t));
            }
            "stick" => {
                need(ProxyCap::PR_CAP_BE, kw)?;
                if self.in_defaults() {
                    return Err("'stick' not allowed in 'defaults' section.".into());
                }
                let p = self.cur();
                let rule = crate::haproxy::stick_table::parse_sticking_rule(&args[1..], &p.acls)?;
                if rule.flags & crate::haproxy::stick_table::STK_ON_RSP != 0 {
                    p.storersp_rules.push(rule);
                } else {
                    p.sticking_rules.push(rule);
                }
            }
            "cookie" => {
                need(ProxyCap::PR_CAP_BE, kw)?;
                let c = crate::haproxy::proto_http::parse_cookie(&args[1..])?;
                self.cur().cookie = Some(c);
            }
            "id" => {
                if self.in_defaults() {
                    return Err("'id' not allowed in 'defaults' section.".into());
                }
                let v = args.get(1).ok_or("'id' expects an integer argument.")?;
                let uuid = atol(v);
                if uuid == 0 {
                    return Err("custom id has to be > 0.".into());
                }
                let me = self.cur().id;
                if let Some(o) = self.cfg.proxies.iter().find(|o| o.id != me && o.custom_id && o.uuid == uuid)
                {
                    return Err(format!(
                        "custom id {uuid} already used at {}:{} ('proxy {}').",
                        o.conf.0, o.conf.1, o.name
                    ));
                }
                let p = self.cur();
                p.uuid = uuid;
                p.custom_id = true;
            }
            "description" | "enabled" => {}
            "disabled" => {
                self.cur().state = crate::haproxy::proxy::ProxyState::PR_STSTOPPED;
            }
            "filter" if matches!(args.get(1).map(String::as_str), Some("cache" | "compression")) => {
                let p = self.cur();
                if args[1] == "compression" {
                    p.filters.push(FltConf::Compression);
                } else {
                    // cache.c:parse_cache_flt() in 2.6: an implicit filter of the same
                    // cache gives way to this one, declared here.
                    let name = args
                        .get(2)
                        .filter(|n| !n.is_empty())
                        .ok_or("'filter' : 'cache : expects a <name> argument'")?;
                    let same = |f: &FltConf| matches!(f, FltConf::Cache { name: n, .. } if n == name);
                    if p.filters.iter().any(|f| same(f) && matches!(f, FltConf::Cache { explicit: true, .. }))
                    {
                        return Err(format!(
                            "'filter' : '{}: multiple explicit declarations of the cache filter '{name}''",
                            p.name
                        ));
                    }
                    p.filters.retain(|f| !same(f));
                    p.filters.push(FltConf::Cache { name: name.clone(), explicit: true });
                }
            }
            k if PROXY_KNOWN.contains(&k) => {
                self.warn(format!(
                    "keyword '{k}' in '{section}' section is not implemented by haflow; ignored."
                ));
            }
            k => {
                let hint = suggest(k, &[PROXY_KW, PROXY_KNOWN]);
                return Err(format!("unknown keyword '{k}' in '{section}' section{hint}"));
            }
        }
        Ok(())
    }

    /// An `errorfile <code> <file>` line: the status and the file's content, or `None` (a
    /// warning) for a status HAProxy does not let a file replace.
    fn errorfile(&mut self, args: &[String]) -> Result<Option<(u16, ErrorMessage)>, String> {
        let (Some(code), Some(file)) = (args.get(1), args.get(2)) else {
            return Err("'errorfile' expects <status_code> and <file> as arguments.".into());
        };
        let code: u16 =
            code.parse().map_err(|_| "'errorfile' expects <status_code> and <file> as arguments.")?;
        if !ERRORFILE_CODES.contains(&code) {
            self.warn(format!(
                "status code '{code}' not handled by 'errorfile', error customization will be ignored."
            ));
            return Ok(None);
        }
        let msg = std::fs::read(file).map_err(|e| {
            format!(
                "'errorfile' : error opening file <{file}> : {}.",
                crate::haproxy::proto_tcp::os_reason(&e)
            )
        })?;
        Ok(Some((code, msg.into())))
    }

    /// Records an `errorfile(s)` line of the current section.
    fn error_directive(&mut self, d: ErrorDirective) {
        match self.section {
            Section::Proxy(id) => self.error_directives.push((id, d)),
            _ => self.defaults_error_directives.push(d),
        }
    }

    /// Applies each proxy's `errorfile(s)` lines in order, `errorfiles` taking the
    /// messages of the `http-errors` section it names (all of them, or the listed
    /// statuses), as HAProxy 2.6's proxy_check_errors() does after parsing.
    fn resolve_errorfiles(&mut self) {
        self.resolve_reply_errorfiles();
        for (id, d) in std::mem::take(&mut self.error_directives) {
            match d {
                ErrorDirective::File(code, msg) => {
                    self.cfg.proxies[id.idx()].errmsg.insert(code, msg);
                }
                ErrorDirective::Files { name, codes, at } => {
                    let Some(set) = self.http_errors.get(&name) else {
                        self.diag.alerts.push(format!(
                            "parsing [{}:{}] : proxy '{}': unable to find http-errors section '{name}' referenced by errorfiles directive.",
                            at.0, at.1, self.cfg.proxies[id.idx()].name
                        ));
                        continue;
                    };
                    let errmsg = &mut self.cfg.proxies[id.idx()].errmsg;
                    for (code, msg) in set {
                        if codes.is_empty() || codes.contains(code) {
                            errmsg.insert(*code, msg.clone());
                        }
                    }
                }
            }
        }
    }

    /// `errorfiles NAME` in `deny`, `return` and `http-error`: the message of the named
    /// `http-errors` section for the reply's status.
    fn resolve_reply_errorfiles(&mut self) {
        let sets = &self.http_errors;
        let mut missing = Vec::new();
        for p in &mut self.cfg.proxies {
            let pname = p.name.clone();
            let replies = p
                .http_req_rules
                .iter_mut()
                .chain(p.http_res_rules.iter_mut())
                .filter_map(|r| match &mut r.act {
                    crate::haproxy::http_act::HttpAct::Deny(rep)
                    | crate::haproxy::http_act::HttpAct::Return(rep) => Some(rep),
                    _ => None,
                })
                .chain(p.http_errors.values_mut());
            for rep in replies {
                let HttpReply { status, body: ReplyBody::ErrFiles(name, msg), .. } = rep else { continue };
                match sets.get(name.as_str()) {
                    Some(set) => *msg = set.get(status).cloned(),
                    None => missing.push(format!(
                        "proxy '{pname}': unable to find http-errors section '{name}' referenced by http-reply."
                    )),
                }
            }
        }
        self.diag.alerts.extend(missing);
    }

    /// The listeners the `bind` line being parsed created (one per address of a range).
    fn listeners_of_this_line(&self) -> Vec<ListenerId> {
        let Section::Proxy(id) = self.section else { return Vec::new() };
        let line = self.line;
        self.cfg.proxies[id.idx()]
            .listeners
            .iter()
            .copied()
            .filter(|l| self.cfg.listeners[l.idx()].conf.1 == line)
            .collect()
    }

    fn bind_options(&mut self, opts: &[String]) -> Result<(), String> {
        let mut i = 0;
        while i < opts.len() {
            match opts[i].as_str() {
                "name" => {
                    let n = opts.get(i + 1).ok_or("'bind' : missing name")?.clone();
                    for lid in self.listeners_of_this_line() {
                        self.cfg.listeners[lid.idx()].name = Some(n.clone());
                    }
                    i += 2;
                }
                "maxconn" | "backlog" | "id" | "nice" | "process" | "interface" | "mss" | "tfo" | "v4v6"
                | "v6only" | "transparent" | "defer-accept" | "ssl" | "crt" | "alpn" | "level" | "mode"
                | "user" | "group" | "uid" | "gid" | "thread" => {
                    let takes_value = !matches!(
                        opts[i].as_str(),
                        "v4v6" | "v6only" | "transparent" | "defer-accept" | "ssl" | "tfo"
                    );
                    if opts[i] == "maxconn" || opts[i] == "backlog" {
                        let v: u32 = parse_uint(&opts[i], opts.get(i + 1))?;
                        for lid in self.listeners_of_this_line() {
                            let l = &mut self.cfg.listeners[lid.idx()];
                            if opts[i] == "maxconn" {
                                l.maxconn = v;
                            } else {
                                l.backlog = v;
                            }
                        }
                    } else {
                        self.warn(format!(
                            "'bind' option '{}' is not implemented by haflow; ignored.",
                            opts[i]
                        ));
                    }
                    i += if takes_value { 2 } else { 1 };
                }
                "proto" => {
                    // listener.c:bind_parse_proto() in 2.6; the mode is checked later.
                    let v = opts.get(i + 1).filter(|v| !v.is_empty()).ok_or("'proto' : missing value")?;
                    if !matches!(v.as_str(), "h1" | "h2" | "fcgi" | "none") {
                        return Err(format!("'proto' :  unknown MUX protocol '{v}'"));
                    }
                    for lid in self.listeners_of_this_line() {
                        self.cfg.listeners[lid.idx()].mux_proto = Some(v.clone());
                    }
                    i += 2;
                }
                "accept-proxy" => {
                    for lid in self.listeners_of_this_line() {
                        self.cfg.listeners[lid.idx()].options.insert(ListenerOptions::LI_O_ACC_PROXY);
                    }
                    i += 1;
                }
                other => {
                    return Err(format!("'bind' unknown keyword '{other}'."));
                }
            }
        }
        Ok(())
    }

    /// cfgparse.c:str2listener() in 1.5-dev8: one listener per address of a `bind` line
    /// (comma-separated, with port ranges), each attached to its protocol.
    fn str2listener(&mut self, text: &str, fe: ProxyId) -> Result<(), String> {
        let _sp = tracing::info_span!(names::STR2LISTENER, addr = %text).entered();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let parsed = str2sa_range(part, true, self.env)?;
            let addrs = match parsed {
                ParsedAddr::Inet(ip, a, b) => {
                    expand_range(ip, a, b).into_iter().map(ListenAddr::Inet).collect()
                }
                ParsedAddr::Fd(n) => vec![ListenAddr::InheritedFd(n)],
                ParsedAddr::Unix(p) => vec![ListenAddr::Unix(p)],
            };
            for addr in addrs {
                let id = ListenerId::from(self.cfg.listeners.len());
                let luid = self.cfg.proxies[fe.idx()].listeners.len() as u32 + 1;
                let mut l = Listener {
                    id,
                    luid,
                    state: ListenerState::LI_NEW,
                    proto: &PROTO_TCPV4,
                    addr,
                    fd: None,
                    frontend: fe,
                    accept: None,
                    handler: None,
                    analysers: Analysers::empty(),
                    options: ListenerOptions::empty(),
                    maxconn: 0,
                    nbconn: 0,
                    maxaccept: 0,
                    backlog: 0,
                    conf: (self.file.clone(), self.line),
                    cum_conn: 0,
                    name: None,
                    mux_proto: None,
                };
                l.set_state(ListenerState::LI_INIT);
                match l.addr {
                    ListenAddr::Unix(_) => {
                        crate::haproxy::proto_uxst::uxst_add_listener(&mut self.cfg.protocols, &mut l)
                    }
                    _ => tcpv4_add_listener(&mut self.cfg.protocols, &mut l),
                }
                self.cfg.proxies[fe.idx()].listeners.push(id);
                self.cfg.listeners.push(l);
            }
        }
        Ok(())
    }

    fn parse_server(&mut self, args: &[String]) -> Result<(), String> {
        let (Some(name), Some(addr)) = (args.get(1), args.get(2)) else {
            let msg = format!(
                "[{}:{}] : 'server' expects <name> and <addr>[:<port>] as arguments.",
                self.file, self.line
            );
            self.diag.alerts.push(msg);
            return Ok(());
        };
        let mode = self.cur().mode;
        let parsed = str2sa_range(addr, false, self.env).map_err(|e| format!("'server {name}' : {e}"))?;
        let sa = match parsed {
            ParsedAddr::Inet(ip, p, _) => {
                if p == 0 && mode == ProxyMode::PR_MODE_TCP {
                    self.warn(format!(
                        "'server {name}' has no port: haflow connects to port 0 (use an explicit port)."
                    ));
                }
                std::net::SocketAddr::new(ip, p)
            }
            _ => {
                return Err(format!(
                    "'server {name}' : only IPv4/IPv6 server addresses are supported by haflow."
                ));
            }
        };
        let line = self.line;
        let p = self.cur();
        if let Some(prev) = p.servers.iter().find(|s| s.name == *name) {
            let msg = format!(
                "backend '{}', another server named '{}' was already defined at line {}, please use distinct names.",
                p.name, name, prev.line
            );
            return Err(msg);
        }
        let mut srv = Server::new(p.servers.len() as u32 + 1, name, sa, line);
        let mut words = p.default_server.clone();
        words.extend_from_slice(&args[3..]);
        if let Err(msg) = self.srv_parse_kws(&mut srv, &words) {
            // server.c:parse_server() (HAProxy 2.6) reports a keyword's error this way.
            let be = self.cur().name.clone();
            let msg = format!("[{}:{}] : 'server {be}/{name}' : {msg}.", self.file, self.line);
            self.diag.alerts.push(msg);
            return Ok(());
        }
        self.cur().servers.push(srv);
        Ok(())
    }

    /// The keywords after `server <name> <addr>`, warnings going to the configuration's.
    fn srv_parse_kws(&mut self, srv: &mut Server, args: &[String]) -> Result<(), String> {
        let mut warnings = Vec::new();
        let mode = self.cur().mode;
        let r = srv_parse_kws(srv, args, self.env, false, mode, &mut warnings);
        for w in warnings {
            self.warn(w);
        }
        r
    }

    /// `default-server <settings>`: checked now against a throw-away server, kept as words
    /// for the `server` lines that follow (cfgparse.c and server.c keep a `defsrv`).
    fn parse_default_server(&mut self, args: &[String]) -> Result<(), String> {
        let mut probe =
            Server::new(0, "default-server", std::net::SocketAddr::from(([0, 0, 0, 0], 0)), self.line);
        let words = args[1..].to_vec();
        self.srv_parse_kws(&mut probe, &words).map_err(|e| format!("'default-server' : {e}."))?;
        self.cur().default_server.extend(words);
        Ok(())
    }

    /// Runs a `tcp-check`, `http-check` or check `option` keyword of tcpcheck.rs on the
    /// current proxy (or `defaults`), with the names its rule sets are known by.
    fn tcpcheck_kw(
        &mut self,
        f: impl FnOnce(&mut TcpcheckRulesets, &mut PxCtx) -> Result<Option<String>, String>,
    ) -> Result<(), String> {
        let in_def = self.in_defaults();
        let defconf = self.defaults.conf.clone();
        let px = match self.section {
            Section::Proxy(id) => &mut self.cfg.proxies[id.idx()],
            _ => &mut self.defaults,
        };
        let name = (!in_def).then(|| px.name.clone());
        let conf = px.conf.clone();
        let mut ctx = PxCtx {
            cfg: &mut px.tcpcheck,
            name: name.as_deref(),
            conf: (&conf.0, conf.1),
            defconf: (&defconf.0, defconf.1),
        };
        if let Some(w) = f(&mut self.tcpchecks, &mut ctx)? {
            self.warn(w);
        }
        Ok(())
    }

    /// The end of a backend's parsing for checks (cfgparse.c and tcpcheck.c's
    /// check_proxy_tcpcheck() in 2.6): complete each backend's rules and give them to its
    /// servers' health checks.
    fn tcpcheck_post_parse(&mut self) {
        for px in &mut self.cfg.proxies {
            if !px.cap.contains(ProxyCap::PR_CAP_BE) {
                continue;
            }
            let mut warnings = Vec::new();
            if let Err(e) = self.tcpchecks.check_proxy_tcpcheck(&mut px.tcpcheck, &px.name, &mut warnings) {
                self.diag.alerts.push(e);
            }
            self.diag.warnings.extend(warnings);
            for srv in &mut px.servers {
                if let Some(c) = srv.check.as_mut() {
                    c.rules = px.tcpcheck.rules.clone();
                }
            }
        }
    }

    fn parse_timeout(&mut self, args: &[String]) -> Result<(), String> {
        let name = args.get(1).map(String::as_str).unwrap_or("");
        let t = &mut self.cur().timeout;
        let slot: &mut Option<u64> = match name {
            "client" | "clitimeout" => &mut t.client,
            "server" | "srvtimeout" => &mut t.server,
            "connect" | "contimeout" => &mut t.connect,
            "queue" => &mut t.queue,
            "client-fin" => &mut t.client_fin,
            "server-fin" => &mut t.server_fin,
            "http-request" => &mut t.httpreq,
            "http-keep-alive" => &mut t.httpka,
            "check" => &mut t.check,
            "tunnel" => &mut t.tunnel,
            "tarpit" => {
                self.warn("'timeout tarpit' is not implemented by haflow; ignored.");
                return Ok(());
            }
            other => {
                return Err(format!(
                    "'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin' (got '{other}')"
                ));
            }
        };
        let v = args
            .get(2)
            .ok_or_else(|| format!("'timeout {name}' expects an integer value (in milliseconds)"))?;
        let kw = format!("timeout {name}");
        let ms = parse_time_err(v)
            .map_err(|e| e.alert(v, &kw, |c| format!("unexpected character '{c}' in '{kw}'")))?;
        *slot = if ms == 0 { None } else { Some(ms) };
        Ok(())
    }

    fn parse_option(&mut self, args: &[String], no: bool) -> Result<(), String> {
        let Some(opt) = args.first() else { return Err("'option' expects an option name.".into()) };
        let p = self.cur();
        let flag = |p: &mut Proxy, f: ProxyOptions| {
            if no { p.options.remove(f) } else { p.options.insert(f) }
        };
        match opt.as_str() {
            "redispatch" => flag(p, ProxyOptions::PR_O_REDISP),
            "dontlognull" => flag(p, ProxyOptions::PR_O_NULLNOLOG),
            "abortonclose" => flag(p, ProxyOptions::PR_O_ABRT_CLOSE),
            "clitcpka" => flag(p, ProxyOptions::PR_O_TCP_CLI_KA),
            "srvtcpka" => flag(p, ProxyOptions::PR_O_TCP_SRV_KA),
            "tcpka" => flag(p, ProxyOptions::PR_O_TCP_CLI_KA | ProxyOptions::PR_O_TCP_SRV_KA),
            "nolinger" => flag(p, ProxyOptions::PR_O_TCP_NOLING),
            "logasap" => flag(p, ProxyOptions::PR_O_LOGASAP),
            "independent-streams" => flag(p, ProxyOptions::PR_O_INDEPSTR),
            "http-no-delay" => flag(p, ProxyOptions::PR_O_NODELAY),
            "log-health-checks" => flag(p, ProxyOptions::PR_O2_LOGHCHKS),
            "splice-auto" => flag(p, ProxyOptions::PR_O2_SPLIC_AUT),
            "splice-request" => flag(p, ProxyOptions::PR_O2_SPLIC_REQ),
            "splice-response" => flag(p, ProxyOptions::PR_O2_SPLIC_RTR),
            "httplog" => {
                p.log_format = if no {
                    LogFormat::None
                } else if args.get(1).map(String::as_str) == Some("clf") {
                    LogFormat::Clf
                } else {
                    LogFormat::Http
                }
            }
            "tcplog" => p.log_format = if no { LogFormat::None } else { LogFormat::Tcp },
            "forwardfor" | "originalto" => {
                let mut x = crate::haproxy::proxy::XffOpts {
                    except: None,
                    hdr: if opt == "forwardfor" { "x-forwarded-for" } else { "x-original-to" }.into(),
                };
                let mut ifnone = false;
                let mut i = 1;
                while let Some(a) = args.get(i) {
                    match a.as_str() {
                        "except" => {
                            let n = args.get(i + 1).ok_or_else(|| {
                                format!("'option {opt}' : 'except' expects <address>[/mask] as argument.")
                            })?;
                            match crate::haproxy::pattern::pat_parse_ip(n.as_bytes()) {
                                Ok(crate::haproxy::pattern::Pattern::Net(ip, len)) => {
                                    x.except = Some((ip, len))
                                }
                                _ => {
                                    return Err(format!(
                                        "'option {opt}' : 'except' expects <address>[/mask] as argument."
                                    ));
                                }
                            }
                            i += 2;
                        }
                        "header" => {
                            let h = args.get(i + 1).ok_or_else(|| {
                                format!("'option {opt}' : 'header' expects <header_name> as argument.")
                            })?;
                            x.hdr = h.to_ascii_lowercase();
                            i += 2;
                        }
                        "if-none" if opt == "forwardfor" => {
                            ifnone = true;
                            i += 1;
                        }
                        other => {
                            return Err(format!("'option {opt}' : unknown parameter '{other}'."));
                        }
                    }
                }
                if opt == "forwardfor" {
                    flag(p, ProxyOptions::PR_O_FWDFOR);
                    p.options.set(ProxyOptions::PR_O_FF_IFNONE, ifnone && !no);
                    p.fwdfor = x;
                } else {
                    p.originalto = if no { None } else { Some(x) };
                }
            }
            "http-buffer-request" => flag(p, ProxyOptions::PR_O_WREQ_BODY),
            "transparent" => flag(p, ProxyOptions::PR_O_TRANSP),
            "prefer-last-server" => flag(p, ProxyOptions::PR_O_PREF_LAST),
            "http-restrict-req-hdr-names" => {
                p.hdr_names =
                    match args.get(1).map(String::as_str) {
                        Some("preserve") => crate::haproxy::proxy::HdrNamesPolicy::Preserve,
                        Some("delete") => crate::haproxy::proxy::HdrNamesPolicy::Delete,
                        Some("reject") => crate::haproxy::proxy::HdrNamesPolicy::Reject,
                        _ => return Err(
                            "'option http-restrict-req-hdr-names' expects 'preserve', 'delete' or 'reject'."
                                .into(),
                        ),
                    };
            }
            "http-keep-alive" => p.http_mode = HttpConnMode::KeepAlive,
            "http-server-close" => {
                p.http_mode = if no { HttpConnMode::KeepAlive } else { HttpConnMode::ServerClose }
            }
            "httpclose" => p.http_mode = if no { HttpConnMode::KeepAlive } else { HttpConnMode::Close },
            "httpchk" | "redis-check" | "mysql-check" | "pgsql-check" | "ldap-check" | "spop-check"
            | "smtpchk" | "ssl-hello-chk" | "tcp-check" => {
                if no {
                    return Err(format!("'no option {opt}' is not supported: it cannot be negated."));
                }
                let words = args.to_vec();
                self.tcpcheck_kw(|sets, px| sets.proxy_parse_check_opt(px, &words))?;
            }
            "forceclose" | "http-tunnel" | "http-use-htx" => {
                return Err(format!(
                    "option '{opt}' is not supported any more since HAProxy 2.1. Please just remove it."
                ));
            }
            o if OPTIONS_KNOWN.contains(&o) => {
                self.warn(format!("option '{o}' is not implemented by haflow; ignored."));
            }
            o => {
                let _ = suggest(o, &[OPTIONS, OPTIONS_KNOWN]);
                return Err(format!("unknown option '{o}'."));
            }
        }
        Ok(())
    }
}

/// cfgparse.c:readcfgfile() in 1.5-dev8: read and parse each file in order into one
/// configuration, then run `check_config_validity`. `env` resolves `${VAR}`.
pub fn readcfgfile(paths: &[impl AsRef<Path>], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Diag> {
    let mut p = Parser {
        cfg: Config::default(),
        diag: Diag::default(),
        file: String::new(),
        line: 0,
        section: Section::None,
        defaults: Proxy::new(ProxyId(0), "", ProxyCap::PR_CAP_LISTEN, "", 0),
        defaults_logs_global: false,
        env,
        conds: Vec::new(),
        http_errors_name: String::new(),
        http_errors: std::collections::HashMap::new(),
        error_directives: Vec::new(),
        defaults_error_directives: Vec::new(),
        defaults_name: None,
        named_defaults: std::collections::HashMap::new(),
        tcpchecks: TcpcheckRulesets::default(),
    };
    // Map files left by a configuration that failed on this thread are not ours.
    crate::haproxy::pattern::pattern_finalize_config();
    for path in paths {
        let path = path.as_ref();
        let name = path.display().to_string();
        let _sp = tracing::info_span!(names::READCFGFILE, file = %name).entered();
        let text = match std::fs::read(path) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) => {
                p.diag.alerts.push(format!(
                    "Cannot open configuration file/directory {name} : {}",
                    crate::haproxy::proto_tcp::os_reason(&e)
                ));
                return Err(p.diag);
            }
        };
        let errors_before = p.diag.alerts.len();
        p.file = name.clone();
        CFG_POSITION.with(|c| c.borrow_mut().0.clone_from(&name));
        p.section = Section::None;
        for (n, line) in text.lines().enumerate() {
            p.line = n + 1;
            CFG_POSITION.with(|c| c.borrow_mut().1 = n + 1);
            match split_line(line, env) {
                LineWords::Words(w) if w.is_empty() => {}
                LineWords::Words(w) => p.parse_line(w),
                LineWords::TooMany(pos, word) => {
                    let msg = format!(
                        "parsing [{}:{}]: too many words, truncating after word {MAX_LINE_ARGS}, position {pos}: <{word}>.",
                        p.file, p.line
                    );
                    p.diag.alerts.push(msg);
                }
                LineWords::UnmatchedQuote(pos) => {
                    // HAProxy shows the line without its indentation, the caret under the quote.
                    let lead = line.len() - line.trim_start().len();
                    let msg = format!(
                        "parsing [{}:{}]: unmatched quote at position {}:\n  {}\n  {}^",
                        p.file,
                        p.line,
                        pos + 1,
                        line.trim(),
                        " ".repeat(pos.saturating_sub(lead))
                    );
                    p.diag.alerts.push(msg);
                }
            }
        }
        if !p.conds.is_empty() {
            p.alert("missing '.endif' at end of file");
            p.conds.clear();
        }
        if p.diag.alerts.len() > errors_before {
            p.diag.alerts.push(format!("Error(s) found in configuration file : {name}"));
        }
    }
    p.resolve_errorfiles();
    for c in &mut p.cfg.caches {
        if let Err(e) = cfg_post_parse_section_cache(c) {
            p.diag.alerts.push(e);
        }
    }
    p.tcpcheck_post_parse();
    if !p.diag.alerts.is_empty() {
        p.diag.alerts.push("Fatal errors found in configuration.".into());
        return Err(p.diag);
    }
    let mut cfg = p.cfg;
    cfg.warnings = std::mem::take(&mut p.diag.warnings);
    cfg.pat_refs = crate::haproxy::pattern::pattern_finalize_config();
    check_config_validity(&mut cfg)?;
    Ok(cfg)
}

thread_local! {
    /// The file and line being parsed, for what records where it was configured without
    /// being handed the parser (HAProxy passes `file` and `line` down to each keyword).
    static CFG_POSITION: std::cell::RefCell<(String, usize)> = const { std::cell::RefCell::new((String::new(), 0)) };
}

/// The configuration file and line being parsed on this thread.
pub fn cfg_position() -> (String, usize) {
    CFG_POSITION.with(|c| c.borrow().clone())
}

/// The parts of cfgparse.c:check_config_validity() in 1.5.0 and sample.c:smp_resolve_args()
/// (2.6) that find the servers the configuration names: `srv_*` sample arguments,
/// `use-server` rules, `track`. Each server found is marked non-purgeable (2.6).
fn resolve_server_refs(cfg: &mut Config, diag: &mut Diag, find_be: &dyn Fn(&str) -> Option<ProxyId>) {
    let find = |px: &[Proxy], be: ProxyId, name: &str| px[be.idx()].find_server(name);
    for r in std::mem::take(&mut cfg.srv_refs) {
        let (be, sname) = match r.name.rsplit_once('/') {
            Some((pname, sname)) => match find_be(pname) {
                Some(be) => (be, sname),
                None => {
                    diag.alerts.push(format!(
                        "parsing [{}]: unable to find proxy '{pname}' referenced in arg 1 of a sample fetch.",
                        r.at
                    ));
                    continue;
                }
            },
            None => match r.px {
                Some(px) => (px, r.name.as_str()),
                None => {
                    diag.alerts.push(format!(
                        "parsing [{}]: backend name must be set in arg 1 of a sample fetch.",
                        r.at
                    ));
                    continue;
                }
            },
        };
        match find(&cfg.proxies, be, sname) {
            Some(i) => cfg.proxies[be.idx()].servers[i].non_purgeable = true,
            None => diag.alerts.push(format!(
                "parsing [{}]: unable to find server '{sname}' in proxy '{}', referenced in arg 1 of a sample fetch.",
                r.at,
                cfg.proxies[be.idx()].name
            )),
        }
    }
    for pi in 0..cfg.proxies.len() {
        let px = ProxyId::from(pi);
        let mut rules = std::mem::take(&mut cfg.proxies[pi].server_rules);
        for rule in &mut rules {
            rule.srv = find(&cfg.proxies, px, &rule.srv_name);
            match rule.srv {
                Some(i) => cfg.proxies[pi].servers[i].non_purgeable = true,
                None => diag.alerts.push(format!(
                    "config : {} '{}' : unable to find server '{}' referenced in a 'use-server' rule.",
                    cfg.proxies[pi].section_name(),
                    cfg.proxies[pi].name,
                    rule.srv_name
                )),
            }
        }
        cfg.proxies[pi].server_rules = rules;
        for si in 0..cfg.proxies[pi].servers.slots() {
            let Some(name) = cfg.proxies[pi].servers.get(si).and_then(|s| s.track_name.clone()) else {
                continue;
            };
            let p = &cfg.proxies[pi];
            let me_name = format!("{}/{}", p.name, p.servers[si].name);
            let what = format!("config : {} '{}', server '{}'", p.section_name(), p.name, p.servers[si].name);
            let (be, sname) = match name.rsplit_once('/') {
                Some((pname, sname)) => match find_be(pname) {
                    Some(be) => (be, sname),
                    None => {
                        diag.alerts
                            .push(format!("{what}: unable to find required proxy '{pname}' for tracking."));
                        continue;
                    }
                },
                None => (px, name.as_str()),
            };
            let Some(ti) = find(&cfg.proxies, be, sname) else {
                diag.alerts.push(format!("{what}: unable to find required server '{sname}' for tracking."));
                continue;
            };
            let t = &cfg.proxies[be.idx()].servers[ti];
            let tname = format!("{}/{}", cfg.proxies[be.idx()].name, t.name);
            if t.check.is_none() && t.agent.is_none() && t.track_name.is_none() {
                diag.alerts.push(format!(
                    "{what}: unable to use {tname} for tracking as it does not have any check nor agent enabled."
                ));
                continue;
            }
            let me = ServerId { px, idx: si as u32 };
            let mut at = t.track;
            while let Some(l) = at.filter(|&l| l != me) {
                at = cfg.proxies[l.px.idx()].servers[l.idx as usize].track;
            }
            if at.is_some() {
                diag.alerts.push(format!(
                    "{what}: unable to track {tname} as it belongs to a tracking chain looping back to {me_name}."
                ));
                continue;
            }
            let maint = t.flags.contains(SrvFlags::SRV_MAINTAIN);
            cfg.proxies[be.idx()].servers[ti].non_purgeable = true;
            let sv = &mut cfg.proxies[pi].servers[si];
            sv.track = Some(ServerId { px: be, idx: ti as u32 });
            if maint {
                sv.flags.insert(SrvFlags::SRV_MAINTAIN);
            }
        }
    }
}

/// cfgparse.c:check_config_validity() in 1.5-dev8: resolve names, check what cannot work,
/// and wire each frontend and listener to the functions that will run: `p->accept =
/// frontend_accept`, `l->accept = session_accept`, `l->handler = process_session`, and
/// the analysers implied by each proxy's mode.
pub fn check_config_validity(cfg: &mut Config) -> Result<(), Diag> {
    let _sp = tracing::info_span!(
        names::CHECK_CONFIG_VALIDITY,
        proxies = cfg.proxies.len(),
        listeners = cfg.listeners.len()
    )
    .entered();
    crate::haproxy::step_point(names::CHECK_CONFIG_VALIDITY, || {
        crate::haproxy::View::Listeners(&cfg.proxies, &cfg.listeners)
    });
    let mut diag = Diag { alerts: Vec::new(), warnings: std::mem::take(&mut cfg.warnings) };
    // The fds set aside before connections (2.6's initial `maxsock`): its base (10, plus
    // 3 its start-up always adds: measured, 8017 fds for `maxconn 4000` and one `bind`),
    // a listener each, a stats socket with its clients, a health check per checked server.
    let checks = cfg.proxies.iter().flat_map(|p| &p.servers).filter(|s| s.check.is_some()).count();
    let stats_conns = u64::from(if cfg.global.stats_maxconn == 0 { 10 } else { cfg.global.stats_maxconn });
    let reserved = 13
        + cfg.listeners.len() as u64
        + cfg.global.stats_sockets.len() as u64 * (1 + stats_conns)
        + checks as u64;
    // Proxies without an `id` take the next ids nobody set (2.6's `get_next_id()` on
    // `used_proxy_id`), in order, from haflow's first.
    let custom: Vec<u32> = cfg.proxies.iter().filter(|p| p.custom_id).map(|p| p.uuid).collect();
    if !custom.is_empty() {
        let mut next = 2;
        for p in cfg.proxies.iter_mut().filter(|p| !p.custom_id) {
            while custom.contains(&next) {
                next += 1;
            }
            p.uuid = next;
            next += 1;
        }
    }
    let g = &mut cfg.global;
    if g.maxconn == 0 {
        let pipes = crate::haproxy::haproxy::compute_ideal_maxpipes(&cfg.proxies, 0);
        g.maxconn = crate::haproxy::haproxy::compute_ideal_maxconn(reserved, pipes);
    }
    if g.maxpipes == 0 {
        g.maxpipes = crate::haproxy::haproxy::compute_ideal_maxpipes(&cfg.proxies, g.maxconn).unwrap_or(0);
    }
    // Each pipe takes two fds.
    g.maxsock =
        crate::haproxy::haproxy::compute_ideal_maxsock(g.maxconn, reserved) + u64::from(g.maxpipes) * 2;
    let maxrewrite = g.tune.maxrewrite.unwrap_or(1024).min(g.tune.bufsize / 2);
    g.tune.maxrewrite = Some(maxrewrite);
    let names: Vec<(String, ProxyCap)> = cfg.proxies.iter().map(|p| (p.name.clone(), p.cap)).collect();
    let tables: Vec<(String, ProxyId)> =
        cfg.proxies.iter().filter(|p| p.table.is_some()).map(|p| (p.name.clone(), p.id)).collect();
    let mut server_id_tables = Vec::new();
    for name in crate::haproxy::stick_table::take_table_refs() {
        if !tables.iter().any(|(n, _)| *n == name) {
            diag.alerts
                .push(format!("unable to find table '{name}' referenced by a sample fetch or converter."));
        }
    }
    let find_be = |name: &str| {
        names.iter().position(|(n, c)| n == name && c.contains(ProxyCap::PR_CAP_BE)).map(ProxyId::from)
    };
    resolve_server_refs(cfg, &mut diag, &find_be);
    for p in &mut cfg.proxies {
        if p.state == crate::haproxy::proxy::ProxyState::PR_STSTOPPED {
            // proxy.c:stop_proxy() at this point in 1.5-dev8: a `disabled` proxy's
            // listeners leave their protocol's list, so nothing binds them.
            for lid in &p.listeners {
                crate::haproxy::listener::delete_listener(&mut cfg.listeners[lid.idx()], &mut cfg.protocols);
            }
            continue;
        }
        if let Some((name, _)) = &p.defbe_name {
            match find_be(name) {
                Some(id) if id != p.id => p.defbe = Some(id),
                _ => diag
                    .alerts
                    .push(format!("Proxy '{}': unable to find required default_backend: '{name}'.", p.name)),
            }
        }
        // cache.c:cache_store_check() in 2.6, for each cache filter: its cache exists, and
        // no compression filter comes before it.
        for (i, f) in p.filters.iter().enumerate() {
            let FltConf::Cache { name, .. } = f else { continue };
            let what = format!("config: {} '{}'", p.section_name(), p.name);
            if !cfg.caches.iter().any(|c| c.id == *name) {
                diag.alerts.push(format!(
                    "{what}: unable to find the cache '{name}' referenced by the filter 'cache'."
                ));
            } else if p.filters[..i].contains(&FltConf::Compression) {
                diag.alerts.push(format!(
                    "{what}: unable to enable the compression filter before the cache '{name}'."
                ));
            }
        }
        // The cache rules find their section.
        for rule in p.http_req_rules.iter_mut().chain(p.http_res_rules.iter_mut()) {
            if let HttpAct::CacheUse(r) | HttpAct::CacheStore(r) = &mut rule.act {
                r.id = cfg.caches.iter().position(|c| c.id == r.name).map(CacheId::from);
            }
        }
        for rule in p.switching_rules.iter_mut().filter(|r| r.dynamic.is_none()) {
            match find_be(&rule.be_name) {
                Some(id) => rule.be = Some(id),
                None => diag.alerts.push(format!(
                    "Proxy '{}': unable to find required use_backend: '{}'.",
                    p.name, rule.be_name
                )),
            }
        }
        if p.is_frontend() && p.listeners.is_empty() {
            diag.warnings.push(format!(
                "{} '{}' has no 'bind' directive. Please declare it as a backend if this was intended.",
                p.section_name(),
                p.name
            ));
        }
        if p.is_backend() {
            let what = format!("{} '{}'", p.section_name(), p.name);
            if p.lbprm.kind_set && p.options.contains(ProxyOptions::PR_O_TRANSP) {
                diag.alerts.push(format!("{what} cannot use both transparent and balance mode."));
            } else if p.lbprm.kind_set && p.options.contains(ProxyOptions::PR_O_DISPATCH) {
                diag.warnings.push(format!("dispatch address of {what} will be ignored in balance mode."));
            }
            // One of the two only: `dispatch` wins (2.6).
            if p.options.contains(ProxyOptions::PR_O_DISPATCH) {
                p.options.remove(ProxyOptions::PR_O_TRANSP);
            }
            // Only HTTP connections are shared (2.6 drops the mode for the others).
            if p.mode != ProxyMode::PR_MODE_HTTP {
                p.reuse = ReuseMode::Never;
            }
        }
        let needs_server_timeouts = p.is_backend();
        if (p.is_frontend() && p.timeout.client.is_none())
            || (needs_server_timeouts && (p.timeout.connect.is_none() || p.timeout.server.is_none()))
        {
            diag.warnings.push(format!(
                "missing timeouts for {} '{}'.\n   | While not properly invalid, you will certainly encounter various problems\n   | with such a configuration. To fix this, please ensure that all following\n   | timeouts are set to a non-zero value: 'client', 'connect', 'server'.",
                p.section_name(),
                p.name
            ));
        }
        if p.mode == ProxyMode::PR_MODE_TCP
            && matches!(p.log_format, LogFormat::Http | LogFormat::Clf)
            && p.is_frontend()
        {
            diag.warnings.push(format!(
                "parsing [{}:{}] : 'option httplog' not usable with {} '{}' (needs 'mode http'). Falling back to 'option tcplog'.",
                p.conf.0,
                p.conf.1,
                p.section_name(),
                p.name
            ));
            p.log_format = LogFormat::Tcp;
        }
        if p.tcp_req
            .inspect_rules
            .iter()
            .any(|r| matches!(r.act, crate::haproxy::tcp_rules::TcpAct::SwitchModeHttp))
        {
            p.options.insert(ProxyOptions::PR_O_HTTP_UPG);
            if p.mode == ProxyMode::PR_MODE_TCP
                && p.defbe.is_none()
                && p.switching_rules.is_empty()
                && !p.servers.is_empty()
            {
                diag.warnings.push(format!(
                    "Proxy '{}' : 'switch-mode http' configured for a tcp {} with no backend. Incoming connections upgraded to HTTP cannot be routed to TCP servers",
                    p.name,
                    // proxy_type_str() in 2.6: a `listen` section is a "proxy".
                    if p.is_backend() { "proxy" } else { "frontend" }
                ));
            }
        }
        if p.mode == ProxyMode::PR_MODE_TCP
            && !p.options.contains(ProxyOptions::PR_O_HTTP_UPG)
            && (!p.http_req_rules.is_empty()
                || !p.http_res_rules.is_empty()
                || !p.http_after_res_rules.is_empty())
        {
            diag.warnings.push(format!(
                "'http-request' rules ignored for {} '{}' as they require HTTP mode.",
                p.section_name(),
                p.name
            ));
        }
        if p.log_format != LogFormat::None && p.logs.is_empty() && p.is_frontend() {
            diag.warnings.push(format!(
                "log format ignored for {} '{}' since it has no log address.",
                p.section_name(),
                p.name
            ));
        }
        server_id_tables.extend(resolve_stick_tables(p, &tables, &mut diag));
        // ANCHOR: analysers_wiring
        // Analysers: what each session going through this proxy will run.
        if p.is_frontend() && !p.tcp_req.inspect_rules.is_empty() {
            p.fe_req_ana |= Analysers::AN_REQ_INSPECT_FE;
        }
        if p.is_backend() {
            if !p.tcp_req.inspect_rules.is_empty() {
                p.be_req_ana |= Analysers::AN_REQ_INSPECT_BE;
            }
            if !p.tcp_rep.inspect_rules.is_empty() {
                p.be_rsp_ana |= Analysers::AN_RES_INSPECT;
            }
        }
        if p.is_frontend() {
            p.accept = Some(frontend_accept);
            if p.mode == ProxyMode::PR_MODE_HTTP {
                p.fe_req_ana |= Analysers::AN_REQ_WAIT_HTTP | Analysers::AN_REQ_HTTP_PROCESS_FE;
                p.fe_rsp_ana |= Analysers::AN_RES_WAIT_HTTP | Analysers::AN_RES_HTTP_PROCESS_BE;
            }
            p.fe_req_ana |= Analysers::AN_REQ_SWITCHING_RULES;
        }
        if p.is_backend() && p.mode == ProxyMode::PR_MODE_HTTP {
            p.be_req_ana |= Analysers::AN_REQ_WAIT_HTTP
                | Analysers::AN_REQ_HTTP_INNER
                | Analysers::AN_REQ_HTTP_PROCESS_BE;
            p.be_rsp_ana |= Analysers::AN_RES_WAIT_HTTP | Analysers::AN_RES_HTTP_PROCESS_BE;
        }
        // ANCHOR_END: analysers_wiring
    }
    for px in server_id_tables {
        if let Some(t) = cfg.proxies[px.idx()].table.as_mut() {
            use crate::haproxy::stick_table::StkDataType::{STKTABLE_DT_SERVER_ID, STKTABLE_DT_SERVER_KEY};
            // 1.5.0 stores the server's id; 2.6 also its name (`server_key`).
            t.stored[STKTABLE_DT_SERVER_ID.idx()] = true;
            t.stored[STKTABLE_DT_SERVER_KEY.idx()] = true;
        }
    }
    // Frontend and backend modes must agree (HAProxy refuses mixing them).
    for p in &cfg.proxies {
        let targets = p.defbe.into_iter().chain(p.switching_rules.iter().filter_map(|r| r.be));
        for be in targets {
            let b = &cfg.proxies[be.idx()];
            // 2.6: a TCP frontend may hand over to an HTTP backend (the stream upgrades).
            if b.mode != p.mode && !(p.mode == ProxyMode::PR_MODE_TCP && b.mode == ProxyMode::PR_MODE_HTTP) {
                diag.alerts.push(format!(
                    "{} {} '{}' can't route to backend '{}' which is in mode {} (frontend in mode {}).",
                    if p.mode == ProxyMode::PR_MODE_HTTP { "HTTP" } else { "TCP" },
                    p.section_name(),
                    p.name,
                    b.name,
                    b.mode,
                    p.mode
                ));
            }
        }
    }
    // ANCHOR: listener_wiring
    let global_maxconn = cfg.global.maxconn;
    let maxaccept = cfg.global.tune.maxaccept;
    for l in &mut cfg.listeners {
        let p = &mut cfg.proxies[l.frontend.idx()];
        if p.maxconn == 0 {
            p.maxconn = global_maxconn;
        }
        l.accept = Some(session_accept);
        l.handler = Some(process_session);
        l.analysers |= p.fe_req_ana;
        // cfgparse.c:check_config_validity() in 2.6: the forced multiplexer must serve the
        // frontend's mode.
        if let Some(proto) = &l.mux_proto {
            let http = p.mode == ProxyMode::PR_MODE_HTTP;
            let (file, line) = &l.conf;
            match (proto.as_str(), http) {
                ("h1", true) => {}
                ("none", false) => l.options.insert(ListenerOptions::LI_O_NO_UPG),
                ("h2", true) => diag.alerts.push(format!(
                    "parsing [{file}:{line}] : 'bind {}' option 'proto h2' is not implemented by haflow; it speaks HTTP/1.1.",
                    l.addr
                )),
                _ => diag.alerts.push(format!(
                    "{} '{}' : MUX protocol '{proto}' is not usable for 'bind {}' at [{file}:{line}].",
                    p.section_name(),
                    p.name,
                    l.addr
                )),
            }
        }
        if l.options.contains(ListenerOptions::LI_O_ACC_PROXY) {
            l.analysers |= Analysers::AN_REQ_DECODE_PROXY;
        }
        if l.maxconn == 0 {
            l.maxconn = p.maxconn;
        }
        if l.backlog == 0 {
            l.backlog = l.maxconn.max(1);
        }
        l.maxaccept = maxaccept;
    }
    // ANCHOR_END: listener_wiring
    cfg.warnings = std::mem::take(&mut diag.warnings);
    if !diag.alerts.is_empty() {
        diag.alerts.push("Fatal errors found in configuration.".into());
        diag.warnings = cfg.warnings.clone();
        return Err(diag);
    }
    Ok(())
}

/// Resolves the tables `stick` rules and `track-sc*` actions of `p` name (their own
/// proxy's table when they name none), as 1.5.0's `check_config_validity` does, and adds
/// the sticking analysers to a backend that has `stick` rules.
/// Returns the tables `stick` rules use, which store the server's id.
fn resolve_stick_tables(p: &mut Proxy, tables: &[(String, ProxyId)], diag: &mut Diag) -> Vec<ProxyId> {
    let (pname, own) = (p.name.clone(), p.table.as_ref().map(|_| p.id));
    let find = |name: &Option<String>| match name {
        Some(n) => tables.iter().find(|(t, _)| t == n).map(|(_, id)| *id),
        None => own,
    };
    let mut missing = Vec::new();
    for r in p.sticking_rules.iter_mut().chain(p.storersp_rules.iter_mut()) {
        r.table = find(&r.table_name);
        if r.table.is_none() {
            missing.push(format!(
                "proxy '{pname}': unable to find stick-table '{}'.",
                r.table_name.as_deref().unwrap_or(&pname)
            ));
        }
    }
    let mut track = |table_name: &Option<String>, table: &mut Option<ProxyId>| {
        *table = find(table_name);
        if table.is_none() {
            missing.push(format!(
                "proxy '{pname}': unable to find table '{}' required by a 'track-sc' action.",
                table_name.as_deref().unwrap_or(&pname)
            ));
        }
    };
    let tcp = p
        .tcp_req
        .l4_rules
        .iter_mut()
        .chain(p.tcp_req.l5_rules.iter_mut())
        .chain(p.tcp_req.inspect_rules.iter_mut());
    for r in tcp {
        if let crate::haproxy::tcp_rules::TcpAct::TrackSc { table_name, table, .. } = &mut r.act {
            track(table_name, table);
        }
    }
    for r in p.http_req_rules.iter_mut().chain(p.http_res_rules.iter_mut()) {
        if let crate::haproxy::http_act::HttpAct::TrackSc { table_name, table, .. } = &mut r.act {
            track(table_name, table);
        }
    }
    diag.alerts.extend(missing);
    if !p.sticking_rules.is_empty() {
        p.be_req_ana |= Analysers::AN_REQ_STICKING_RULES;
    }
    let stores = p.sticking_rules.iter().any(|r| r.flags & crate::haproxy::stick_table::STK_IS_STORE != 0);
    if stores || !p.storersp_rules.is_empty() {
        p.be_rsp_ana |= Analysers::AN_RES_STORE_RULES;
    }
    p.sticking_rules.iter().chain(&p.storersp_rules).filter_map(|r| r.table).collect()
}

/// A `Timeouts` value used by tests that build proxies by hand.
pub fn timeouts_ms(client: u64, server: u64, connect: u64) -> Timeouts {
    Timeouts { client: Some(client), server: Some(server), connect: Some(connect), ..Timeouts::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str, env: &[(&str, &str)]) -> Vec<String> {
        let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let f = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match split_line(line, &f) {
            LineWords::Words(w) => w,
            LineWords::UnmatchedQuote(p) => vec![format!("UNMATCHED@{p}")],
            LineWords::TooMany(p, w) => vec![format!("TOOMANY@{p}:{w}")],
        }
    }

    #[test]
    fn hex_escapes_above_ascii_stay_single_bytes() {
        let w = words(r#"x "a\x41\xe0b" caf\xc3\xa9 é"#, &[]);
        assert_eq!(cfg_raw_bytes(w[1].as_bytes()), b"aA\xe0b");
        // Escaped UTF-8 and UTF-8 written as is give the same bytes.
        assert_eq!(cfg_raw_bytes(w[2].as_bytes()), "café".as_bytes());
        assert_eq!(cfg_raw_bytes(w[3].as_bytes()), "é".as_bytes());
    }

    #[test]
    fn words_quotes_comments_and_env() {
        assert_eq!(words("  bind 127.0.0.1:80   # comment", &[]), ["bind", "127.0.0.1:80"]);
        assert_eq!(words(r#"x "a b" 'c d' e\ f"#, &[]), ["x", "a b", "c d", "e f"]);
        assert_eq!(words(r#"bind "127.0.0.1:${PORT}""#, &[("PORT", "81")]), ["bind", "127.0.0.1:81"]);
        assert_eq!(words(r#"bind 127.0.0.1:${PORT}"#, &[("PORT", "81")]), ["bind", "127.0.0.1:${PORT}"]);
        assert_eq!(words(r#"x "${NOPE-dflt}""#, &[]), ["x", "dflt"]);
        assert_eq!(words(r#"x "$HOME/y""#, &[("HOME", "/h")]), ["x", "/h/y"]);
        assert_eq!(words(r#"set-header X "abc"#, &[]), ["UNMATCHED@13"]);
    }

    #[test]
    fn at_most_64_words_then_haproxys_position() {
        let line = |n: usize, tail: &str| format!("  {}{tail}", vec!["ab"; n].join(" "));
        assert_eq!(words(&line(64, ""), &[]).len(), 64);
        assert_eq!(words(&line(64, "#x"), &[]).len(), 64, "a comment glued to the last word");
        // Each word counts its length plus one separator, from 1: word 64 is at 3*63+1.
        assert_eq!(words(&line(65, ""), &[]), ["TOOMANY@190:ab"]);
        assert_eq!(words(&line(64, " "), &[]), ["TOOMANY@190:ab"], "a blank opens word 65");
        assert_eq!(words(&line(64, " # comment"), &[]), ["TOOMANY@190:ab"]);
        // A million words cost one pass and keep 64.
        assert_eq!(words(&"w ".repeat(1 << 20), &[]), ["TOOMANY@127:w"]);
    }

    #[test]
    fn unclosed_braces_are_not_scanned_again() {
        let line = format!("x \"{}\"", "${".repeat(1 << 16));
        assert_eq!(words(&line, &[]), ["x", &"${".repeat(1 << 16)]);
    }

    #[test]
    fn suggestions_for_typos() {
        assert_eq!(suggest("maxcon", &[GLOBAL_KW]), "; did you mean 'maxconn' maybe ?");
        assert_eq!(suggest("tiemout", &[PROXY_KW]), "; did you mean 'timeout' maybe ?");
        assert_eq!(suggest("frobnicate", &[PROXY_KW]), "");
    }
}
