//! ACLs: named tests of samples, and the `if`/`unless` conditions built from them.
//!
//! Reproduces `acl.c` (1.5-dev8's structure and names: `parse_acl_expr`,
//! `find_acl_by_name`, `parse_acl_cond`, `acl_exec_cond`; the syntax of HAProxy 2.6).
//! `acl NAME CRITERION [-i] [-m METHOD] [-f FILE] [--] [VALUE...]` declares a test: the
//! criterion is a sample expression (`req.hdr(host),lower`, see `sample.rs`) or one of
//! the ACL keywords that imply a match method (`hdr_beg(host)` is `hdr(host) -m beg`,
//! `path_reg`, `url_sub`...); without `-m` the method follows the sample's type (string
//! equality, integer ranges, networks, booleans). The values are compiled once into a
//! `PatExpr` (`pattern.rs`). A name declared several times matches if any declaration
//! matches. A condition is `if`/`unless` followed by ACL names, `!` to negate one, `||`
//! (or `or`) between alternatives and nothing (implicit AND) between the terms of one
//! alternative; `{ CRITERION VALUES }` writes an anonymous ACL in place, and HAProxy's
//! predefined ACLs (`TRUE`, `HTTP`, `METH_GET`, `LOCALHOST`...) need no declaration.

use std::collections::HashMap;

use crate::haproxy::pattern::{PatExpr, PatMatch, PatRef, PatRefFlags};
use crate::haproxy::sample::{
    SampleExpr, SmpCtx, SmpData, find_sample_fetch, sample_parse_word, sample_process_all,
};

/// One `acl` line (or an anonymous `{ ... }` ACL): a sample and what to compare it with
/// (`struct acl_expr`).
#[derive(Clone, Debug)]
pub struct AclExpr {
    /// The sample to test (every value it yields is tried).
    pub smp: SampleExpr,
    /// The patterns and the match method.
    pub pat: PatExpr,
    /// The criterion as written (`hdr_beg(host)`), for messages.
    pub kw: String,
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

/// A term of a condition: an ACL, possibly negated (`struct acl_term`).
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
    Inline(Box<AclExpr>),
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

/// The ACL keywords that imply a match method (2.6's `acl_kws` of http_fetch.c and
/// payload.c): `<fetch>_<suffix>` is `<fetch> -m <suffix>` (`_val` matches integers).
fn acl_keyword_alias(name: &str) -> Option<(&'static str, PatMatch)> {
    let (fetch, suffix) = name.rsplit_once('_')?;
    let fetch = match fetch {
        "base" => "base",
        "cook" => "cook",
        "hdr" => "hdr",
        "path" => "path",
        "url" => "url",
        "urlp" => "url_param",
        "scook" => "scook",
        "shdr" => "shdr",
        "req.hdr" => "req.hdr",
        "res.hdr" => "res.hdr",
        _ => return None,
    };
    let m = match suffix {
        "beg" => PatMatch::Beg,
        "dir" => PatMatch::Dir,
        "dom" => PatMatch::Dom,
        "end" => PatMatch::End,
        "len" => PatMatch::Len,
        "reg" => PatMatch::Reg,
        "sub" => PatMatch::Sub,
        "val" => PatMatch::Int,
        _ => return None,
    };
    Some((fetch, m))
}

/// Integer operators before ACL values (`eq`, `ge`, `gt`, `le`, `lt`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum IntOp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// acl.c:parse_acl_expr() in 1.5-dev8 (2.6's syntax): `CRITERION [flags] [--] VALUES`,
/// after `acl NAME` or inside `{ }`.
pub fn parse_acl_expr(args: &[String]) -> Result<AclExpr, String> {
    let Some(crit) = args.first() else { return Err("missing ACL criterion".into()) };
    let name_len = crit.find(['(', ',']).unwrap_or(crit.len());
    let name = &crit[..name_len];
    let (smp, implied) = if find_sample_fetch(name).is_none()
        && let Some((fetch, m)) = acl_keyword_alias(name)
    {
        (sample_parse_word(&format!("{fetch}{}", &crit[name_len..])), Some(m))
    } else {
        (sample_parse_word(crit), None)
    };
    let smp = smp.map_err(|e| {
        if e.starts_with("unknown fetch method") {
            format!("unknown fetch method '{name}' in ACL expression '{crit}'")
        } else {
            format!("{e} in ACL expression '{crit}'")
        }
    })?;
    let mut method = implied;
    let mut icase = false;
    let mut files = Vec::new();
    let mut i = 1;
    while let Some(f) = args.get(i).filter(|a| a.starts_with('-')) {
        match f.as_str() {
            "-i" => icase = true,
            "-n" | "-u" => {}
            "-m" => {
                let m = args.get(i + 1).ok_or("'-m' expects a match method")?;
                method =
                    Some(PatMatch::from_name(m).ok_or_else(|| format!("unknown matching method '{m}'"))?);
                i += 1;
            }
            "-f" | "-M" => {
                let file = args.get(i + 1).ok_or_else(|| format!("'{f}' expects a file name"))?;
                files.push((file.clone(), f == "-M"));
                i += 1;
            }
            "--" => {
                i += 1;
                break;
            }
            _ => break,
        }
        i += 1;
    }
    let method = method.unwrap_or_else(|| PatMatch::default_for(smp.out_type()));
    let mut pat = PatExpr::new(method, icase);
    for (file, is_map) in &files {
        // Divergence: an ACL reads its files on its own; only maps share theirs (and are
        // changed by the CLI).
        let mut flags = PatRefFlags::PAT_REF_ACL;
        flags.set(PatRefFlags::PAT_REF_SMP, *is_map);
        let mut r = PatRef::pat_ref_new(file, String::new(), flags);
        r.pat_ref_read_from_file()?;
        pat.add_ref(&r)?;
    }
    let mut op = IntOp::Eq;
    for v in &args[i.min(args.len())..] {
        if matches!(method, PatMatch::Int | PatMatch::Len) {
            let o = match v.as_str() {
                "eq" => Some(IntOp::Eq),
                "ge" => Some(IntOp::Ge),
                "gt" => Some(IntOp::Gt),
                "le" => Some(IntOp::Le),
                "lt" => Some(IntOp::Lt),
                _ => None,
            };
            if let Some(o) = o {
                op = o;
                continue;
            }
            if op != IntOp::Eq {
                let (n, used) = crate::haproxy::sample::read_int64(v.as_bytes());
                if used != v.len() || v.is_empty() {
                    return Err(format!("'{v}' is not a number"));
                }
                let range = match op {
                    IntOp::Ge => format!("{n}:"),
                    IntOp::Gt => format!("{}:", n.saturating_add(1)),
                    IntOp::Le => format!(":{n}"),
                    _ => format!(":{}", n.saturating_sub(1)),
                };
                pat.add(range.as_bytes(), None)?;
                continue;
            }
        }
        if matches!(method, PatMatch::Found | PatMatch::Bool) {
            return Err(format!(
                "match method '{}' takes no value",
                if method == PatMatch::Found { "found" } else { "bool" }
            ));
        }
        // acl.c:parse_acl_expr() in 2.6 reports the pattern's own error (a regex's is
        // `regex '...' is invalid (error=..., erroffset=N)`).
        pat.add(v.as_bytes(), None)?;
    }
    Ok(AclExpr { smp, pat, kw: crit.clone() })
}

/// acl.c's `default_acl_list` in 2.6: the ACLs every proxy knows.
fn find_acl_default(name: &str) -> Option<AclExpr> {
    let words: &[&str] = match name {
        "TRUE" => &["always_true"],
        "FALSE" => &["always_false"],
        "LOCALHOST" => &["src", "127.0.0.1/8"],
        "HTTP" => &["req.proto_http"],
        "HTTP_1.0" => &["req.ver", "1.0"],
        "HTTP_1.1" => &["req.ver", "1.1"],
        "HTTP_2.0" => &["req.ver", "2.0"],
        "METH_CONNECT" => &["method", "CONNECT"],
        "METH_DELETE" => &["method", "DELETE"],
        "METH_GET" => &["method", "GET", "HEAD"],
        "METH_HEAD" => &["method", "HEAD"],
        "METH_OPTIONS" => &["method", "OPTIONS"],
        "METH_POST" => &["method", "POST"],
        "METH_PUT" => &["method", "PUT"],
        "METH_TRACE" => &["method", "TRACE"],
        "HTTP_URL_ABS" => &["url_reg", "^[^/:]*://"],
        "HTTP_URL_SLASH" => &["url_beg", "/"],
        "HTTP_URL_STAR" => &["url", "*"],
        "HTTP_CONTENT" => &["req.hdr_val(content-length)", "gt", "0"],
        "REQ_CONTENT" => &["req.len", "gt", "0"],
        "WAIT_END" => &["wait_end"],
        _ => return None,
    };
    let args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    parse_acl_expr(&args).ok()
}

/// acl.c:parse_acl_cond() in 1.5-dev8: `if|unless TERMS...` where terms are ACL names,
/// `!`, `||` and `{ ... }`.
pub fn parse_acl_cond(args: &[String], acls: &AclList) -> Result<Condition, String> {
    let Some(kw) = args.first() else { return Err("missing 'if' or 'unless'".into()) };
    let unless = match kw.as_str() {
        "if" => false,
        "unless" => true,
        other => return Err(format!("expects 'if' or 'unless' followed by a condition but found '{other}'")),
    };
    let mut suites: Vec<Vec<Term>> = vec![Vec::new()];
    let mut neg = false;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        let term = match a {
            "!" => {
                neg = !neg;
                i += 1;
                continue;
            }
            "||" | "or" => {
                if suites.last().is_some_and(|s| s.is_empty()) {
                    return Err("'||' must follow a term".into());
                }
                suites.push(Vec::new());
                i += 1;
                continue;
            }
            "{" => {
                let end =
                    args[i..].iter().position(|x| x == "}").ok_or("missing closing '}' in condition")? + i;
                let expr = parse_acl_expr(&args[i + 1..end])?;
                i = end;
                Term { neg, acl: AclRef::Inline(Box::new(expr)) }
            }
            _ => {
                let (neg_prefix, name) = match a.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, a),
                };
                let acl = match acls.find_acl_by_name(name) {
                    Some(idx) => AclRef::Named(idx),
                    None => AclRef::Inline(Box::new(
                        find_acl_default(name).ok_or_else(|| format!("no such ACL : '{name}'"))?,
                    )),
                };
                Term { neg: neg ^ neg_prefix, acl }
            }
        };
        if let Some(s) = suites.last_mut() {
            s.push(term);
        }
        neg = false;
        i += 1;
    }
    if suites.iter().any(|s| s.is_empty()) {
        return Err("condition is missing a term".into());
    }
    Ok(Condition { unless, suites })
}

/// `enum acl_test_res`: the result of an ACL test, three-valued so that a rule can wait
/// for data that is still arriving. The values are HAProxy's bits: AND is `&`, OR is `|`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclTestRes {
    /// `ACL_TEST_FAIL`: no match, and none will come.
    ACL_TEST_FAIL = 0,
    /// `ACL_TEST_MISS`: no match yet, but the data may still change (`SMP_F_MAY_CHANGE`
    /// without `SMP_OPT_FINAL`).
    ACL_TEST_MISS = 1,
    /// `ACL_TEST_PASS`: a match.
    ACL_TEST_PASS = 3,
}

impl AclTestRes {
    fn from_bits(b: u8) -> AclTestRes {
        match b {
            0 => AclTestRes::ACL_TEST_FAIL,
            3 => AclTestRes::ACL_TEST_PASS,
            _ => AclTestRes::ACL_TEST_MISS,
        }
    }

    /// acl.h:acl_neg() in 1.5-dev8: PASS and FAIL swap, MISS stays.
    fn acl_neg(self) -> AclTestRes {
        match self {
            AclTestRes::ACL_TEST_FAIL => AclTestRes::ACL_TEST_PASS,
            AclTestRes::ACL_TEST_PASS => AclTestRes::ACL_TEST_FAIL,
            AclTestRes::ACL_TEST_MISS => AclTestRes::ACL_TEST_MISS,
        }
    }

    /// acl.h:acl_pass() in 1.5-dev8: only PASS passes (a MISS at this point is a fail).
    pub fn acl_pass(self) -> bool {
        self == AclTestRes::ACL_TEST_PASS
    }
}

/// acl.c:acl_exec_cond() in 1.5-dev8, its loop over one expression (HAProxy has no
/// function for it): does any value of the sample match any pattern? MISS when none
/// does yet and the sample said it may change while the data is not final.
pub fn acl_exec_expr(e: &AclExpr, ctx: &mut SmpCtx) -> AclTestRes {
    let vals: Vec<SmpData> = sample_process_all(&e.smp, ctx);
    if vals.iter().any(|v| e.pat.pattern_exec_match(v).is_some()) {
        AclTestRes::ACL_TEST_PASS
    } else if ctx.may_change.get() && !ctx.opt_final {
        AclTestRes::ACL_TEST_MISS
    } else {
        AclTestRes::ACL_TEST_FAIL
    }
}

/// acl.c:acl_exec_cond() in 1.5-dev8: evaluate a condition against the proxy's named
/// ACLs `acls`, in three-valued logic, `unless` applied (HAProxy's callers apply it;
/// MISS stays MISS). Callers that run on final data use `acl_match_cond`.
pub fn acl_exec_cond(cond: &Condition, acls: &AclList, ctx: &mut SmpCtx) -> AclTestRes {
    let mut cond_res = AclTestRes::ACL_TEST_FAIL as u8;
    for suite in &cond.suites {
        let mut suite_res = AclTestRes::ACL_TEST_PASS as u8;
        for t in suite {
            let mut acl_res = match &t.acl {
                AclRef::Named(i) => {
                    let mut r = AclTestRes::ACL_TEST_FAIL as u8;
                    for e in acls.get(*i).map_or(&[][..], |a| &a.exprs[..]) {
                        r |= acl_exec_expr(e, ctx) as u8;
                        if r == AclTestRes::ACL_TEST_PASS as u8 {
                            break;
                        }
                    }
                    AclTestRes::from_bits(r)
                }
                AclRef::Inline(e) => acl_exec_expr(e, ctx),
            };
            if t.neg {
                acl_res = acl_res.acl_neg();
            }
            suite_res &= acl_res as u8;
            // An AND that failed cannot pass: skip its other terms.
            if suite_res == AclTestRes::ACL_TEST_FAIL as u8 {
                break;
            }
        }
        cond_res |= suite_res;
        if cond_res == AclTestRes::ACL_TEST_PASS as u8 {
            break;
        }
    }
    let res = AclTestRes::from_bits(cond_res);
    if cond.unless { res.acl_neg() } else { res }
}

/// `acl_pass(acl_exec_cond(...))` with `unless` applied: the condition on final data.
pub fn acl_match_cond(cond: &Condition, acls: &AclList, ctx: &mut SmpCtx) -> bool {
    acl_exec_cond(cond, acls, ctx).acl_pass()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::sample::SmpDir;
    use crate::haproxy::vars::{VarMap, Vars, register_name};

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn list(acls: &[(&str, &str)]) -> AclList {
        let mut l = AclList::default();
        for (name, expr) in acls {
            l.add(name, parse_acl_expr(&words(expr)).unwrap());
        }
        l
    }

    /// Evaluates `cond` with `proc.path` and `proc.host` set (no session: the tests read
    /// variables, which exercise the same sample and pattern code as headers).
    fn eval(l: &AclList, cond: &str, path: &str, host: &str) -> bool {
        let mut proc = VarMap::default();
        let mut vars = Vars { proc: &mut proc, sess: None };
        vars.var_set(&register_name("proc.path").unwrap(), SmpData::Str(path.into()));
        vars.var_set(&register_name("proc.host").unwrap(), SmpData::Str(host.into()));
        let mut ctx = SmpCtx::new(None, SmpDir::Req, vars);
        acl_match_cond(&parse_acl_cond(&words(cond), l).unwrap(), l, &mut ctx)
    }

    #[test]
    fn and_or_not_and_anonymous_acls() {
        let l =
            list(&[("api", "var(proc.path) -m beg /api/"), ("admin", "var(proc.host) -i admin.example.com")]);
        let c = |s: &str| eval(&l, s, "/api/users", "ADMIN.example.com");
        assert!(c("if api admin"));
        assert!(!c("if api !admin"));
        assert!(c("if !api || admin"));
        assert!(c("if ! api or admin"));
        assert!(!c("unless api"));
        assert!(c("if { var(proc.path) -m end users }"));
        assert!(!c("if { var(proc.path) /api }"));
        assert!(c("if { var(proc.path),field(2,/) api }"));
        assert!(c("if { var(proc.path),length gt 5 }"));
        assert!(!c("if { var(proc.path),length lt 5 }"));
        assert!(c("if { var(proc.nope) -m found } || TRUE"));
        assert!(!c("if { var(proc.nope) -m found }"));
        assert!(c("if { var(proc.path) -m reg ^/[a-z]+/ }"));
        assert!(c("if { var(proc.path) -m dir users }"));
        assert!(c("if { var(proc.host) -i -m dom EXAMPLE }"));
    }

    #[test]
    fn keywords_with_implied_methods_parse() {
        for k in
            ["hdr_beg(host) www.", "path_end .js", "url_sub x", "hdr_val(x) gt 3", "urlp_reg(id) ^[0-9]+$"]
        {
            assert!(parse_acl_expr(&words(k)).is_ok(), "{k}");
        }
        assert_eq!(parse_acl_expr(&words("hdr_beg(host) www.")).unwrap().pat.method, PatMatch::Beg);
        assert_eq!(parse_acl_expr(&words("hdr_cnt(x) 1")).unwrap().pat.method, PatMatch::Int);
        assert_eq!(parse_acl_expr(&words("src 10.0.0.0/8")).unwrap().pat.method, PatMatch::Ip);
    }

    #[test]
    fn repeated_names_are_ored_and_bad_input_rejected() {
        let l = list(&[("static", "var(proc.path) -m end .css"), ("static", "var(proc.path) -m end .js")]);
        assert!(eval(&l, "if static", "/app.js", ""));
        let err = parse_acl_cond(&words("if nosuch"), &l).unwrap_err();
        assert!(err.contains("no such ACL"), "{err}");
        assert!(parse_acl_expr(&words("src 300.1.1.1")).is_err());
        let e = parse_acl_expr(&words("frobnicate x")).unwrap_err();
        assert_eq!(e, "unknown fetch method 'frobnicate' in ACL expression 'frobnicate'");
        assert!(parse_acl_expr(&words("path -m nope x")).is_err());
        assert!(parse_acl_expr(&words("path -f /nonexistent/file")).is_err());
        assert!(parse_acl_cond(&words("if { path /x"), &l).is_err());
        for p in [
            "TRUE",
            "FALSE",
            "HTTP",
            "METH_GET",
            "LOCALHOST",
            "HTTP_CONTENT",
            "HTTP_1.1",
            "REQ_CONTENT",
            "WAIT_END",
        ] {
            assert!(find_acl_default(p).is_some(), "{p}");
        }
    }
}
