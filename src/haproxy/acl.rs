//! ACLs: named tests on a request, and the `if`/`unless` conditions built from them.
//!
//! Reproduces `acl.c` (1.5-dev8). `acl NAME CRITERION [-i] VALUE...` declares a test; a
//! name declared several times matches if any declaration matches. A condition is
//! `if`/`unless` followed by ACL names, `!` to negate one, `||` between alternatives and
//! nothing (implicit AND) between the terms of one alternative; `{ CRITERION VALUES }`
//! writes an anonymous ACL in place. Matching reads the request through `Sample`, so this
//! module does not depend on how sessions store their data.

use std::collections::HashMap;
use std::net::IpAddr;

use regex::bytes::{Regex, RegexBuilder};

use crate::haproxy::proxy::Proxy;

/// What a criterion can read from the session (the sample fetch functions).
pub trait Sample {
    /// Client address (`src`).
    fn src(&self) -> Option<IpAddr>;
    /// Request method (`method`).
    fn method(&self) -> Option<&[u8]>;
    /// Request path, without the query string (`path`).
    fn path(&self) -> Option<&[u8]>;
    /// Every value of header `name` (case-insensitive name), in order.
    fn hdr(&self, name: &str) -> Vec<&[u8]>;
    /// The cache this response comes from (`res.cache_hit`, `res.cache_name`).
    fn cache_name(&self) -> Option<&str> {
        None
    }
}

/// The sample an ACL tests, and how (`path_beg` = `path` matched by prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// `path`: exact match.
    Path,
    /// `path_beg`: prefix.
    PathBeg,
    /// `path_end`: suffix.
    PathEnd,
    /// `path_sub`: substring.
    PathSub,
    /// `path_reg`: regular expression.
    PathReg,
    /// `hdr(NAME)`: exact match on one of the (comma-separated) values.
    Hdr(String),
    /// `hdr_beg(NAME)`: prefix.
    HdrBeg(String),
    /// `hdr_end(NAME)`: suffix.
    HdrEnd(String),
    /// `hdr_sub(NAME)`: substring.
    HdrSub(String),
    /// `hdr_reg(NAME)`: regular expression.
    HdrReg(String),
    /// `method`: exact match.
    Method,
    /// `src`: address or network.
    Src,
    /// A predefined ACL that is constant (`TRUE`, `FALSE`).
    Always(bool),
}

/// One value an ACL compares with.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// A string (already lowercased when `-i`).
    Str(Vec<u8>),
    /// A compiled regular expression.
    Reg(Regex),
    /// An address with a prefix length.
    Net(IpAddr, u8),
}

/// One `acl` line (or an anonymous `{ ... }` ACL).
#[derive(Clone, Debug)]
pub struct AclExpr {
    /// What to read and how to compare.
    pub criterion: Criterion,
    /// `-i`: compare case-insensitively.
    pub ignore_case: bool,
    /// The values; the expression matches if any does.
    pub patterns: Vec<Pattern>,
}

/// A named ACL: all the lines declaring this name (OR).
#[derive(Clone, Debug)]
pub struct Acl {
    /// The ACL's name.
    pub name: String,
    /// Its declarations.
    pub exprs: Vec<AclExpr>,
}

/// The named ACLs of a proxy (`px->acl`), in declaration order, with an index by name:
/// every condition looks its ACLs up by name while the configuration is parsed, and a
/// configuration may declare and use tens of thousands of them.
#[derive(Clone, Debug, Default)]
pub struct AclList {
    list: Vec<Acl>,
    index: HashMap<String, usize>,
}

impl AclList {
    /// acl.c:find_acl_by_name() in 1.5-dev8: the position of ACL `name`. Divergence:
    /// HAProxy walks its list (20,000 ACLs used by 20,000 rules cost 200 million string
    /// comparisons, ~2 s); haflow looks the name up in an index.
    pub fn find_acl_by_name(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The ACL at `i` (from `find_acl_by_name`).
    pub fn get(&self, i: usize) -> Option<&Acl> {
        self.list.get(i)
    }

    /// Adds a declaration of `name`: a new ACL, or one more alternative of an existing one.
    pub fn add(&mut self, name: &str, expr: AclExpr) {
        match self.find_acl_by_name(name) {
            Some(i) => self.list[i].exprs.push(expr),
            None => {
                self.index.insert(name.to_string(), self.list.len());
                self.list.push(Acl { name: name.to_string(), exprs: vec![expr] });
            }
        }
    }
}

/// A term of a condition: an ACL, possibly negated.
#[derive(Clone, Debug)]
pub struct Term {
    /// `!` before the ACL.
    pub neg: bool,
    /// Index of a named ACL in the proxy's list, or an anonymous expression.
    pub acl: AclRef,
}

/// Where a term's ACL is.
#[derive(Clone, Debug)]
pub enum AclRef {
    /// A named ACL of the proxy (its position in `Proxy::acls`).
    Named(usize),
    /// An anonymous ACL written inside `{ }`, or a predefined one.
    Inline(AclExpr),
}

/// `if`/`unless` and an OR of ANDs of terms (`struct acl_cond`).
#[derive(Clone, Debug)]
pub struct Condition {
    /// True for `unless`.
    pub unless: bool,
    /// Alternatives separated by `||`; each is a list of terms that must all match.
    pub suites: Vec<Vec<Term>>,
}

impl Condition {
    /// A condition that always matches (a rule without `if`/`unless`).
    pub fn always() -> Condition {
        Condition { unless: false, suites: vec![vec![]] }
    }
}

/// Parses `CRITERION [-i] VALUE...` (after `acl NAME`, or inside `{ }`).
pub fn parse_acl_expr(args: &[String]) -> Result<AclExpr, String> {
    let Some(crit) = args.first() else { return Err("missing ACL criterion".into()) };
    let criterion = parse_criterion(crit)?;
    let mut ignore_case = false;
    let mut values = &args[1..];
    while let Some(f) = values.first() {
        match f.as_str() {
            "-i" => ignore_case = true,
            "-m" => {
                return Err("'-m' match methods are not supported; use the criterion's suffix form".into());
            }
            "--" => {
                values = &values[1..];
                break;
            }
            _ => break,
        }
        values = &values[1..];
    }
    let mut patterns = Vec::new();
    for v in values {
        patterns.push(match &criterion {
            Criterion::PathReg | Criterion::HdrReg(_) => Pattern::Reg(
                RegexBuilder::new(v)
                    .case_insensitive(ignore_case)
                    .build()
                    .map_err(|e| format!("regex '{v}' is invalid: {e}"))?,
            ),
            Criterion::Src => parse_net(v)?,
            _ => Pattern::Str(if ignore_case {
                v.to_ascii_lowercase().into_bytes()
            } else {
                v.clone().into_bytes()
            }),
        });
    }
    if patterns.is_empty() && !matches!(criterion, Criterion::Always(_)) {
        return Err(format!("no value specified for criterion '{crit}'"));
    }
    Ok(AclExpr { criterion, ignore_case, patterns })
}

fn parse_criterion(c: &str) -> Result<Criterion, String> {
    let arg = |prefix: &str| -> Option<String> {
        c.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
            .map(|s| s.to_ascii_lowercase())
    };
    Ok(match c {
        "path" => Criterion::Path,
        "path_beg" => Criterion::PathBeg,
        "path_end" => Criterion::PathEnd,
        "path_sub" => Criterion::PathSub,
        "path_reg" => Criterion::PathReg,
        "method" => Criterion::Method,
        "src" => Criterion::Src,
        _ => {
            if let Some(n) = arg("hdr_beg") {
                Criterion::HdrBeg(n)
            } else if let Some(n) = arg("hdr_end") {
                Criterion::HdrEnd(n)
            } else if let Some(n) = arg("hdr_sub") {
                Criterion::HdrSub(n)
            } else if let Some(n) = arg("hdr_reg") {
                Criterion::HdrReg(n)
            } else if let Some(n) = arg("hdr") {
                Criterion::Hdr(n)
            } else {
                return Err(format!("unknown fetch method '{c}' in ACL expression '{c}'"));
            }
        }
    })
}

fn parse_net(v: &str) -> Result<Pattern, String> {
    let (addr, len) = match v.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (v, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("'{v}' is not a valid IPv4 or IPv6 address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => {
            l.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(|| format!("'{v}' has an invalid mask"))?
        }
        None => max,
    };
    Ok(Pattern::Net(ip, len))
}

/// Predefined ACLs HAProxy always knows.
fn predefined(name: &str) -> Option<AclExpr> {
    let e = |criterion, pats: &[&str]| AclExpr {
        criterion,
        ignore_case: false,
        patterns: pats.iter().map(|p| Pattern::Str(p.as_bytes().to_vec())).collect(),
    };
    Some(match name {
        "TRUE" => e(Criterion::Always(true), &[]),
        "FALSE" => e(Criterion::Always(false), &[]),
        "METH_GET" => e(Criterion::Method, &["GET", "HEAD"]),
        "METH_POST" => e(Criterion::Method, &["POST"]),
        "METH_HEAD" => e(Criterion::Method, &["HEAD"]),
        "LOCALHOST" => AclExpr {
            criterion: Criterion::Src,
            ignore_case: false,
            patterns: vec![Pattern::Net("127.0.0.1".parse().ok()?, 8)],
        },
        _ => return None,
    })
}

/// Parses `if|unless TERMS...` where terms are ACL names, `!`, `||` and `{ ... }`.
pub fn parse_cond(args: &[String], acls: &AclList) -> Result<Condition, String> {
    let Some(kw) = args.first() else { return Err("missing 'if' or 'unless'".into()) };
    let unless = match kw.as_str() {
        "if" => false,
        "unless" => true,
        other => return Err(format!("expects 'if' or 'unless' followed by a condition but found '{other}'")),
    };
    let mut suites = vec![Vec::new()];
    let mut neg = false;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "!" => neg = !neg,
            "||" | "or" => {
                if suites.last().is_some_and(|s| s.is_empty()) {
                    return Err("'||' must follow a term".into());
                }
                suites.push(Vec::new());
            }
            "{" => {
                let end =
                    args[i..].iter().position(|x| x == "}").ok_or("missing closing '}' in condition")? + i;
                let expr = parse_acl_expr(&args[i + 1..end])?;
                suites.last_mut().expect("never empty").push(Term { neg, acl: AclRef::Inline(expr) });
                neg = false;
                i = end;
            }
            _ => {
                let (neg_prefix, name) = match a.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, a),
                };
                let acl = match acls.find_acl_by_name(name) {
                    Some(idx) => AclRef::Named(idx),
                    None => {
                        AclRef::Inline(predefined(name).ok_or_else(|| format!("no such ACL : '{name}'"))?)
                    }
                };
                suites.last_mut().expect("never empty").push(Term { neg: neg ^ neg_prefix, acl });
                neg = false;
            }
        }
        i += 1;
    }
    if suites.iter().any(|s| s.is_empty()) {
        return Err("condition is missing a term".into());
    }
    Ok(Condition { unless, suites })
}

fn str_match(crit: &Criterion, value: &[u8], pat: &[u8], icase: bool) -> bool {
    let lower;
    let v = if icase {
        lower = value.to_ascii_lowercase();
        &lower[..]
    } else {
        value
    };
    match crit {
        Criterion::PathBeg | Criterion::HdrBeg(_) => v.starts_with(pat),
        Criterion::PathEnd | Criterion::HdrEnd(_) => v.ends_with(pat),
        Criterion::PathSub | Criterion::HdrSub(_) => pat.is_empty() || v.windows(pat.len()).any(|w| w == pat),
        _ => v == pat,
    }
}

fn net_match(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V4(_)) => {
            a.to_ipv4_mapped().is_some_and(|a4| net_match(IpAddr::V4(a4), net, len))
        }
        _ => false,
    }
}

/// acl.c:acl_exec_cond() in 1.5-dev8, its loop over one expression (HAProxy has no
/// function for it): does any fetched value match any pattern?
/// Divergence: a plain yes or no, without dev8's `ACL_PAT_MISS` for data that may still
/// change; haflow evaluates conditions on parsed heads only.
pub fn acl_exec_expr(e: &AclExpr, smp: &dyn Sample) -> bool {
    let any = |vals: Vec<&[u8]>| {
        vals.iter().any(|v| {
            e.patterns.iter().any(|p| match p {
                Pattern::Str(s) => str_match(&e.criterion, v, s, e.ignore_case),
                Pattern::Reg(r) => r.is_match(v),
                Pattern::Net(..) => false,
            })
        })
    };
    match &e.criterion {
        Criterion::Always(b) => *b,
        Criterion::Src => smp.src().is_some_and(|a| {
            e.patterns.iter().any(|p| matches!(p, Pattern::Net(n, l) if net_match(a, *n, *l)))
        }),
        Criterion::Method => any(smp.method().into_iter().collect()),
        Criterion::Path
        | Criterion::PathBeg
        | Criterion::PathEnd
        | Criterion::PathSub
        | Criterion::PathReg => any(smp.path().into_iter().collect()),
        Criterion::Hdr(n)
        | Criterion::HdrBeg(n)
        | Criterion::HdrEnd(n)
        | Criterion::HdrSub(n)
        | Criterion::HdrReg(n) => {
            // Like HAProxy's hdr(), each comma-separated value is tested on its own.
            let vals: Vec<&[u8]> = smp
                .hdr(n)
                .into_iter()
                .flat_map(|v| v.split(|&c| c == b','))
                .map(|v| v.trim_ascii())
                .collect();
            any(vals)
        }
    }
}

/// acl.c:acl_exec_cond() in 1.5-dev8: evaluate a condition, `unless` included.
pub fn acl_exec_cond(cond: &Condition, px: &Proxy, smp: &dyn Sample) -> bool {
    let term = |t: &Term| {
        let m = match &t.acl {
            AclRef::Named(i) => {
                px.acls.get(*i).is_some_and(|a| a.exprs.iter().any(|e| acl_exec_expr(e, smp)))
            }
            AclRef::Inline(e) => acl_exec_expr(e, smp),
        };
        m != t.neg
    };
    let res = cond.suites.iter().any(|suite| suite.iter().all(term));
    res != cond.unless
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Req<'a> {
        path: &'a str,
        host: &'a str,
    }

    impl Sample for Req<'_> {
        fn src(&self) -> Option<IpAddr> {
            "10.1.2.3".parse().ok()
        }
        fn method(&self) -> Option<&[u8]> {
            Some(b"GET")
        }
        fn path(&self) -> Option<&[u8]> {
            Some(self.path.as_bytes())
        }
        fn hdr(&self, name: &str) -> Vec<&[u8]> {
            if name == "host" { vec![self.host.as_bytes()] } else { vec![] }
        }
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn proxy_with(acls: &[(&str, &str)]) -> Proxy {
        let mut p =
            Proxy::new(crate::ids::ProxyId(0), "fe", crate::haproxy::proxy::ProxyCap::PR_CAP_FE, "t", 1);
        for (name, expr) in acls {
            p.acls.add(name, parse_acl_expr(&words(expr)).unwrap());
        }
        p
    }

    #[test]
    fn and_or_not_and_anonymous_acls() {
        let p = proxy_with(&[("api", "path_beg /api/"), ("admin", "hdr(host) -i admin.example.com")]);
        let r = Req { path: "/api/users", host: "ADMIN.example.com" };
        let c = |s: &str| acl_exec_cond(&parse_cond(&words(s), &p.acls).unwrap(), &p, &r);
        assert!(c("if api admin"));
        assert!(!c("if api !admin"));
        assert!(c("if !api || admin"));
        assert!(!c("unless api"));
        assert!(c("if { path_end users }"));
        assert!(!c("if { path /api }"));
        assert!(c("if { src 10.0.0.0/8 } api"));
        assert!(c("if TRUE"));
    }

    #[test]
    fn repeated_names_are_ored_and_unknown_names_rejected() {
        let p = proxy_with(&[("static", "path_end .css"), ("static", "path_end .js")]);
        let r = Req { path: "/app.js", host: "" };
        assert!(acl_exec_cond(&parse_cond(&words("if static"), &p.acls).unwrap(), &p, &r));
        let err = parse_cond(&words("if nosuch"), &p.acls).unwrap_err();
        assert!(err.contains("no such ACL"), "{err}");
    }

    #[test]
    fn path_reg_and_bad_values() {
        let p = proxy_with(&[("num", "path_reg ^/[0-9]+$")]);
        assert!(acl_exec_cond(
            &parse_cond(&words("if num"), &p.acls).unwrap(),
            &p,
            &Req { path: "/42", host: "" }
        ));
        assert!(parse_acl_expr(&words("src 300.1.1.1")).is_err());
        assert!(parse_acl_expr(&words("frobnicate x")).is_err());
        assert!(parse_acl_expr(&words("path_beg")).is_err());
    }
}
