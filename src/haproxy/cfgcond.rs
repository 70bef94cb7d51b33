//! Configuration conditions: the expressions of `.if`/`.elif` lines and of `haproxy -cc`.
//!
//! Reproduces HAProxy 2.6's `cfgcond.c` (conditions appeared in 2.4; 1.5 had none). An
//! expression is terms joined by `&&` (binding tighter) and `||`; a term is an optional
//! run of `!`, then a number (non-zero is true, `strtol()` syntax), a parenthesised
//! expression, or a predicate with its arguments: `defined(VAR)`, `feature(NAME)`,
//! `streq(a,b)`, `strneq(a,b)`, `version_atleast(V)`, `version_before(V)`. An empty
//! expression is false. `cfg_parse_cond_expr` builds the tree, `cfg_eval_cond_expr`
//! evaluates it, as HAProxy does in two steps.

/// `build_features`: the feature list `-vv` prints and `feature()` tests, one `+NAME` or
/// `-NAME` per feature, separated by spaces.
pub const BUILD_FEATURES: &str =
    "+EPOLL +LINUX_SPLICE -THREAD -OPENSSL -LUA -PCRE +PCRE2 +PCRE2_JIT -ZLIB -SLZ -QUIC";

/// The HAProxy version whose behaviour haflow follows, for `version_atleast()` and
/// `version_before()`.
pub const HAPROXY_VERSION: &str = "2.6.12";

/// `MAX_CFG_RECURSION`: how deep parentheses may nest.
const MAX_CFG_RECURSION: u32 = 1024;

/// `cond_predicates[]`: the predicates a term may call, with how many arguments each takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CondPred {
    /// `defined(VAR)`: the environment variable exists.
    Defined,
    /// `feature(NAME)`: `+NAME` is in the feature list.
    Feature,
    /// `streq(a,b)`: the two strings are equal.
    Streq,
    /// `strneq(a,b)`: the two strings differ.
    Strneq,
    /// `version_atleast(V)`: this version is V or later.
    VersionAtleast,
    /// `version_before(V)`: this version is older than V.
    VersionBefore,
}

impl CondPred {
    /// cfgcond.c:cfg_lookup_cond_pred() in 2.6: the predicate named at the start of `s`.
    fn lookup(s: &str) -> Option<(CondPred, &'static str)> {
        const PREDS: &[(&str, CondPred)] = &[
            ("defined", CondPred::Defined),
            ("feature", CondPred::Feature),
            ("streq", CondPred::Streq),
            ("strneq", CondPred::Strneq),
            ("version_atleast", CondPred::VersionAtleast),
            ("version_before", CondPred::VersionBefore),
        ];
        let len = s.find([' ', '(']).unwrap_or(s.len());
        PREDS.iter().find(|(w, _)| *w == &s[..len]).map(|&(w, p)| (p, w))
    }

    fn nbargs(self) -> usize {
        match self {
            CondPred::Streq | CondPred::Strneq => 2,
            _ => 1,
        }
    }
}

/// `struct cfg_cond_term`: one term, possibly negated.
#[derive(Debug)]
enum TermKind {
    /// `CCTT_TRUE` / `CCTT_FALSE`: a number.
    Const(bool),
    /// `CCTT_PRED`: a predicate and its arguments.
    Pred(CondPred, Vec<String>),
    /// `CCTT_PAREN`: a sub-expression.
    Paren(Box<CondExpr>),
}

#[derive(Debug)]
struct CondTerm {
    neg: bool,
    kind: TermKind,
}

/// `struct cfg_cond_expr`: terms joined by `&&`, those groups joined by `||`.
#[derive(Debug)]
struct CondExpr {
    ors: Vec<Vec<CondTerm>>,
}

/// The text still to parse.
struct Input<'a> {
    s: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Input<'_> {
    fn skip_blanks(&mut self) {
        self.s = self.s.trim_start_matches([' ', '\t']);
    }
}

/// `strtol(s, &end, 0)`: the length of the number at the start of `s` (0 if none) and
/// whether it is non-zero. Leading blanks, a sign, `0x` hex and `0` octal are accepted.
fn strtol_prefix(s: &str) -> (usize, bool) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let (radix, start) = if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        if b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) { (16, i + 2) } else { (10, i) }
    } else {
        (if b.get(i) == Some(&b'0') { 8 } else { 10 }, i)
    };
    let mut j = start;
    let mut nonzero = false;
    while j < b.len() && (b[j] as char).is_digit(radix) {
        nonzero |= b[j] != b'0';
        j += 1;
    }
    if j == start { (0, false) } else { (j, nonzero) }
}

/// arg.c:make_arg_list() in 2.6 for string arguments: `(a,b)` right after the predicate's
/// name, each argument possibly quoted (`'...'` literal, `"..."` with `$VAR`/`${VAR}`
/// expanded) or backslash-escaped. Returns the arguments and the text after `)`.
fn make_arg_list<'a>(
    s: &'a str,
    want: usize,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<String>, &'a str), String> {
    let Some(rest) = s.strip_prefix('(') else {
        return Err("missing arguments (expected ')')".into());
    };
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        match (quote, c) {
            (None, ')') => {
                if !(args.is_empty() && cur.is_empty()) {
                    args.push(std::mem::take(&mut cur));
                }
                if args.len() != want {
                    return Err(format!("{} argument(s) given, {want} expected", args.len()));
                }
                return Ok((args, &rest[pos + 1..]));
            }
            (None, ',') => args.push(std::mem::take(&mut cur)),
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (Some('"'), '$') => {
                let tail: String = chars[i + 1..].iter().map(|&(_, c)| c).collect();
                let (name, used) = if let Some(t) = tail.strip_prefix('{') {
                    match t.find('}') {
                        Some(end) => (t[..end].to_string(), end + 2),
                        None => return Err("unterminated '${' in argument".into()),
                    }
                } else {
                    let n: String =
                        tail.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    let l = n.chars().count();
                    (n, l)
                };
                if name.is_empty() {
                    cur.push('$');
                } else {
                    cur.push_str(&env(&name).unwrap_or_default());
                    i += used;
                }
            }
            (None | Some('"'), '\\') => {
                if let Some(&(_, n)) = chars.get(i + 1) {
                    cur.push(n);
                    i += 1;
                }
            }
            _ => cur.push(c),
        }
        i += 1;
    }
    Err(if quote.is_some() { "unmatched quote".into() } else { "missing closing ')'".into() })
}

/// cfgcond.c:cfg_parse_cond_term() in 2.6. `Ok(None)`: nothing to parse here.
fn cfg_parse_cond_term(inp: &mut Input, depth: u32) -> Result<Option<CondTerm>, String> {
    inp.skip_blanks();
    if inp.s.is_empty() {
        return Ok(None);
    }
    let text = inp.s;
    if depth == 0 {
        return Err(format!("unparsable conditional expression '{text}'"));
    }
    let mut neg = false;
    while let Some(r) = inp.s.strip_prefix('!') {
        neg = !neg;
        inp.s = r;
        inp.skip_blanks();
    }
    let (len, nonzero) = strtol_prefix(inp.s);
    if len > 0 {
        inp.s = &inp.s[len..];
        return Ok(Some(CondTerm { neg, kind: TermKind::Const(nonzero) }));
    }
    if let Some(r) = inp.s.strip_prefix('(') {
        inp.s = r;
        inp.skip_blanks();
        let Some(expr) = cfg_parse_cond_expr(inp, depth - 1)? else {
            return Err(format!("unparsable conditional expression '{text}'"));
        };
        inp.skip_blanks();
        let Some(r) = inp.s.strip_prefix(')') else {
            return Err(format!("expected ')' after conditional expression '{text}'"));
        };
        inp.s = r;
        inp.skip_blanks();
        return Ok(Some(CondTerm { neg, kind: TermKind::Paren(Box::new(expr)) }));
    }
    if let Some((pred, word)) = CondPred::lookup(inp.s) {
        let (args, rest) = make_arg_list(&inp.s[word.len()..], pred.nbargs(), inp.env)
            .map_err(|e| format!("{e} in argument of predicate '{word}' used in conditional expression"))?;
        inp.s = rest;
        return Ok(Some(CondTerm { neg, kind: TermKind::Pred(pred, args) }));
    }
    Err(format!("unparsable conditional expression '{text}'"))
}

/// cfgcond.c:cfg_parse_cond_and() in 2.6: terms joined by `&&`.
fn cfg_parse_cond_and(inp: &mut Input, depth: u32) -> Result<Option<Vec<CondTerm>>, String> {
    let Some(first) = cfg_parse_cond_term(inp, depth)? else { return Ok(None) };
    let mut terms = vec![first];
    loop {
        inp.skip_blanks();
        let Some(r) = inp.s.strip_prefix("&&") else { return Ok(Some(terms)) };
        inp.s = r;
        match cfg_parse_cond_term(inp, depth)? {
            Some(t) => terms.push(t),
            None => return Err("unexpected end of expression after '&&'".into()),
        }
    }
}

/// cfgcond.c:cfg_parse_cond_expr() in 2.6: `&&` groups joined by `||`.
fn cfg_parse_cond_expr(inp: &mut Input, depth: u32) -> Result<Option<CondExpr>, String> {
    let Some(first) = cfg_parse_cond_and(inp, depth)? else { return Ok(None) };
    let mut ors = vec![first];
    loop {
        inp.skip_blanks();
        let Some(r) = inp.s.strip_prefix("||") else { return Ok(Some(CondExpr { ors })) };
        inp.s = r;
        match cfg_parse_cond_and(inp, depth)? {
            Some(t) => ors.push(t),
            None => return Err("unexpected end of expression after '||'".into()),
        }
    }
}

/// Compares dotted versions by their numbers (`2.5-dev0` is 2.5.0): how `version` stands
/// against haflow's. Divergence: HAProxy 2.6 also orders `-dev` before its release.
fn compare_current_version(version: &str) -> std::cmp::Ordering {
    let nums = |s: &str| -> Vec<u64> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().unwrap_or(u64::MAX))
            .collect()
    };
    nums(version).cmp(&nums(HAPROXY_VERSION))
}

/// `feature(NAME)`: true when `+NAME` is a word of `BUILD_FEATURES`.
fn has_feature(name: &str) -> bool {
    BUILD_FEATURES.split(' ').any(|w| w.strip_prefix('+') == Some(name))
}

/// cfgcond.c:cfg_eval_cond_term() in 2.6.
fn cfg_eval_cond_term(t: &CondTerm, env: &dyn Fn(&str) -> Option<String>) -> bool {
    let v = match &t.kind {
        TermKind::Const(v) => *v,
        TermKind::Paren(e) => cfg_eval_cond_expr(e, env),
        TermKind::Pred(p, a) => match p {
            CondPred::Defined => env(&a[0]).is_some(),
            CondPred::Feature => has_feature(&a[0]),
            CondPred::Streq => a[0] == a[1],
            CondPred::Strneq => a[0] != a[1],
            CondPred::VersionAtleast => compare_current_version(&a[0]) != std::cmp::Ordering::Greater,
            CondPred::VersionBefore => compare_current_version(&a[0]) == std::cmp::Ordering::Greater,
        },
    };
    v != t.neg
}

/// cfgcond.c:cfg_eval_cond_expr() in 2.6: `||` of `&&` groups, evaluated left to right.
fn cfg_eval_cond_expr(e: &CondExpr, env: &dyn Fn(&str) -> Option<String>) -> bool {
    e.ors.iter().any(|and| and.iter().all(|t| cfg_eval_cond_term(t, env)))
}

/// cfgcond.c:cfg_eval_condition() in 2.6: parse then evaluate `text`. An empty text is
/// false; anything left after the expression is an error.
pub fn cfg_eval_condition(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<bool, String> {
    if text.is_empty() {
        return Ok(false);
    }
    let mut inp = Input { s: text, env };
    let Some(expr) = cfg_parse_cond_expr(&mut inp, MAX_CFG_RECURSION)? else {
        return Err(format!("unparsable conditional expression '{text}'"));
    };
    inp.skip_blanks();
    if let Some(c) = inp.s.chars().next() {
        return Err(format!("unexpected character '{c}' at the end of conditional expression '{text}'"));
    }
    Ok(cfg_eval_cond_expr(&expr, env))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> Result<bool, String> {
        let env = |v: &str| (v == "TESTVAR").then(|| "1".to_string());
        cfg_eval_condition(s, &env)
    }

    #[test]
    fn the_expressions_of_check_condition_vtc() {
        assert_eq!(eval("version_atleast(2.4)"), Ok(true));
        assert_eq!(eval("version_atleast(2.5-dev2)"), Ok(true));
        assert_eq!(eval("version_atleast(1024)"), Ok(false));
        assert_eq!(eval("version_before(2.7)"), Ok(true));
        assert_eq!(eval("streq(foo,'foo')"), Ok(true));
        assert_eq!(eval("streq(\"foo bar\",'foo bar')"), Ok(true));
        assert_eq!(eval("streq(foo,bar)"), Ok(false));
        assert_eq!(eval("defined(TESTVAR) && streq(\"$TESTVAR\",\"1\")"), Ok(true));
        assert_eq!(eval("feature(OPENSSL) || !feature(OPENSSL)"), Ok(true));
        assert_eq!(eval("feature(EPOLL)"), Ok(true));
        assert_eq!(eval("1&&!0&&!((streq(a,b)||!streq(a,a)&&1)||strneq(a,a))"), Ok(true));
        assert_eq!(eval("1   &&!   0&&    !((streq(a,b)||!streq(a,a)&&1)||strneq(a,a))"), Ok(true));
        assert_eq!(eval("1 && !0 && !((streq(a,b) || !streq(a,a) && 1) || strneq(a,b))"), Ok(false));
        assert_eq!(eval("1 && !0 && !((streq(a,a) || !streq(a,a) && 1) || strneq(a,a))"), Ok(false));
        assert_eq!(eval(""), Ok(false));
        assert_eq!(eval("-1000 && 200"), Ok(true));
        assert_eq!(eval("0x10"), Ok(true));
        assert!(eval("200rrr").is_err());
        assert!(eval("!(0))").is_err());
        assert!(eval("streq(a,\"a)").is_err());
        assert!(eval("streq(a)").is_err());
        assert!(eval("nosuch(a)").is_err());
    }
}
