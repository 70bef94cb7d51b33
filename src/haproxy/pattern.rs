//! Patterns: the values an ACL compares a sample with, and the keys of a map, with the
//! match methods (`-m str|beg|end|sub|reg|dir|dom|int|ip|len|bool|found|bin`).
//!
//! Reproduces `pattern.c` (1.5.0 split it out of `acl.c`; the match functions keep its
//! names: `pat_match_str`, `pat_match_beg`...; behaviour of 2.6). A pattern file (`-f` of
//! an ACL, the file of a `map` converter) is read once into a `PatRef` of keys and
//! values; a `PatExpr` is those keys compiled for one match method (a regex, a network,
//! an integer range), in file order. `pattern_exec_match` returns the first pattern that
//! matches (for `ip`, the longest prefix, as HAProxy's tree does).

use std::net::IpAddr;

use crate::haproxy::regex::{MyRegex, regex_comp, regex_exec2};
use crate::haproxy::sample::{SmpData, SmpType, read_int64, smp_cast};

/// A match method (`PAT_MATCH_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatMatch {
    /// `found`: the sample exists.
    Found,
    /// `bool`: the sample is true (non-zero).
    Bool,
    /// `int`: an integer within a range.
    Int,
    /// `ip`: an address within a network.
    Ip,
    /// `bin`: binary equality with a hex pattern.
    Bin,
    /// `len`: the length within a range.
    Len,
    /// `str`: string equality.
    Str,
    /// `beg`: prefix.
    Beg,
    /// `end`: suffix.
    End,
    /// `sub`: substring.
    Sub,
    /// `reg`: regular expression.
    Reg,
    /// `PAT_MATCH_REGM`: `reg` whose groups are kept for the value (`map_regm`).
    Regm,
    /// `dir`: a `/`-delimited part.
    Dir,
    /// `dom`: a `.`-delimited part (domain name labels).
    Dom,
}

impl PatMatch {
    /// The method named after `-m` (`pat_match_names[]`).
    pub fn from_name(n: &str) -> Option<PatMatch> {
        Some(match n {
            "found" => PatMatch::Found,
            "bool" => PatMatch::Bool,
            "int" => PatMatch::Int,
            "ip" => PatMatch::Ip,
            "bin" => PatMatch::Bin,
            "len" => PatMatch::Len,
            "str" => PatMatch::Str,
            "beg" => PatMatch::Beg,
            "end" => PatMatch::End,
            "sub" => PatMatch::Sub,
            "reg" => PatMatch::Reg,
            "dir" => PatMatch::Dir,
            "dom" => PatMatch::Dom,
            _ => return None,
        })
    }

    /// The default method for a fetch's output type (`pat_match_defaults`).
    pub fn default_for(t: SmpType) -> PatMatch {
        match t {
            SmpType::SMP_T_BOOL => PatMatch::Bool,
            SmpType::SMP_T_SINT => PatMatch::Int,
            SmpType::SMP_T_ADDR | SmpType::SMP_T_IPV4 | SmpType::SMP_T_IPV6 => PatMatch::Ip,
            SmpType::SMP_T_BIN => PatMatch::Bin,
            _ => PatMatch::Str,
        }
    }

    /// The type the sample is cast to before matching.
    fn sample_type(self) -> SmpType {
        match self {
            PatMatch::Found => SmpType::SMP_T_ANY,
            PatMatch::Bool | PatMatch::Int => SmpType::SMP_T_SINT,
            PatMatch::Ip => SmpType::SMP_T_ADDR,
            PatMatch::Bin => SmpType::SMP_T_BIN,
            _ => SmpType::SMP_T_STR,
        }
    }
}

/// One compiled pattern (`struct pattern`).
#[derive(Clone, Debug)]
pub enum Pattern {
    /// A string (lowercased when case is ignored) or binary block.
    Str(Vec<u8>),
    /// A regular expression.
    Reg(MyRegex),
    /// An integer range, bounds included (`None`: unbounded).
    Range(Option<i64>, Option<i64>),
    /// A network: address and prefix length.
    Net(IpAddr, u8),
}

/// A pattern file's content (`struct pat_ref`): keys and, for maps, values.
#[derive(Clone, Debug, Default)]
pub struct PatRef {
    /// Where it was read from.
    pub reference: String,
    /// Keys and values in file order.
    pub entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// pattern.c:pattern_read_from_file() in 2.6: one pattern per line (or a key and the
/// rest of the line as its value for maps); blank lines and `#` comments skipped.
pub fn pattern_read_from_file(path: &str, with_value: bool) -> Result<PatRef, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!("failed to open pattern file <{path}> : {}", crate::haproxy::proto_tcp::os_reason(&e))
    })?;
    let mut entries = Vec::new();
    for line in text.split(|&c| c == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        if with_value {
            let k = line.iter().position(|c| c.is_ascii_whitespace()).unwrap_or(line.len());
            let v = line[k..].trim_ascii();
            entries.push((line[..k].to_vec(), Some(v.to_vec())));
        } else {
            entries.push((line.to_vec(), None));
        }
    }
    Ok(PatRef { reference: path.to_string(), entries })
}

/// A set of compiled patterns with their method (`struct pattern_expr` + `pattern_head`).
#[derive(Clone, Debug)]
pub struct PatExpr {
    /// How samples are compared.
    pub method: PatMatch,
    /// `-i`.
    pub icase: bool,
    /// The patterns, each with its map value.
    pub patterns: Vec<(Pattern, Option<Vec<u8>>)>,
}

/// Parses an integer range: `N`, `N:M`, `:M`, `N:` (pattern.c:pat_parse_int()).
fn pat_parse_int(text: &[u8]) -> Result<Pattern, String> {
    let t = String::from_utf8_lossy(text);
    let num = |s: &str| -> Result<i64, String> {
        let (v, n) = read_int64(s.as_bytes());
        if n != s.len() || s.is_empty() { Err(format!("'{t}' is not a number")) } else { Ok(v) }
    };
    match t.find([':', '-']).filter(|&p| p > 0 || t.len() > 1) {
        None => {
            let v = num(&t)?;
            Ok(Pattern::Range(Some(v), Some(v)))
        }
        Some(0) => Ok(Pattern::Range(None, Some(num(&t[1..])?))),
        Some(p) if p + 1 == t.len() => Ok(Pattern::Range(Some(num(&t[..p])?), None)),
        Some(p) => {
            let (lo, hi) = (num(&t[..p])?, num(&t[p + 1..])?);
            if lo > hi {
                return Err(format!("'{t}' is not a valid integer range"));
            }
            Ok(Pattern::Range(Some(lo), Some(hi)))
        }
    }
}

/// Parses a network: `a.b.c.d[/mask]` or an IPv6 address with a prefix length
/// (pattern.c:pat_parse_ip()).
pub fn pat_parse_ip(text: &[u8]) -> Result<Pattern, String> {
    let t = String::from_utf8_lossy(text);
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (&*t, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("'{t}' is not a valid IPv4 or IPv6 address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => match (ip, l.parse::<std::net::Ipv4Addr>()) {
                (IpAddr::V4(_), Ok(m)) => u32::from(m).leading_ones() as u8,
                _ => return Err(format!("'{t}' is not a valid IPv4 or IPv6 address")),
            },
        },
    };
    Ok(Pattern::Net(ip, len))
}

impl PatExpr {
    /// An empty set for `method`.
    pub fn new(method: PatMatch, icase: bool) -> PatExpr {
        PatExpr { method, icase, patterns: Vec::new() }
    }

    /// pattern.c:pat_ref_push() + the method's `parse` function: adds one pattern.
    pub fn add(&mut self, key: &[u8], value: Option<Vec<u8>>) -> Result<(), String> {
        let pat = match self.method {
            PatMatch::Found | PatMatch::Bool => {
                return Err("this match method does not take a pattern".into());
            }
            PatMatch::Int | PatMatch::Len => pat_parse_int(key)?,
            PatMatch::Ip => pat_parse_ip(key)?,
            // pattern.c:pat_idx_list_reg_cap(): groups are captured for `map_regm` only.
            PatMatch::Reg | PatMatch::Regm => Pattern::Reg(regex_comp(
                &String::from_utf8_lossy(key),
                !self.icase,
                self.method == PatMatch::Regm,
            )?),
            PatMatch::Bin => Pattern::Str(
                key.chunks(2)
                    .map(|p| {
                        std::str::from_utf8(p)
                            .ok()
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .filter(|_| p.len() == 2)
                    })
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| format!("'{}' is not a valid hex string", String::from_utf8_lossy(key)))?,
            ),
            _ => Pattern::Str(if self.icase { key.to_ascii_lowercase() } else { key.to_vec() }),
        };
        self.patterns.push((pat, value));
        Ok(())
    }

    /// Adds every entry of a pattern file.
    pub fn add_ref(&mut self, r: &PatRef) -> Result<(), String> {
        for (k, v) in &r.entries {
            self.add(k, v.clone()).map_err(|e| format!("{e} in file '{}'", r.reference))?;
        }
        Ok(())
    }

    /// pattern.c:pattern_exec_match() in 2.6: the first matching pattern's entry
    /// (`Some(None)` for a match without a value; `None`: no match).
    pub fn pattern_exec_match(&self, d: &SmpData) -> Option<Option<&[u8]>> {
        if self.method == PatMatch::Found {
            return Some(None);
        }
        let d = smp_cast(d.clone(), self.method.sample_type())?;
        if self.method == PatMatch::Bool {
            return matches!(d, SmpData::Sint(v) if v != 0).then_some(None);
        }
        if self.method == PatMatch::Ip {
            let ip = match d {
                SmpData::Ipv4(a) => IpAddr::V4(a),
                SmpData::Ipv6(a) => IpAddr::V6(a),
                _ => return None,
            };
            // The longest prefix wins, as in HAProxy's tree.
            return self
                .patterns
                .iter()
                .filter(|(p, _)| matches!(p, Pattern::Net(n, l) if net_match(ip, *n, *l)))
                .max_by_key(|(p, _)| match p {
                    Pattern::Net(_, l) => *l,
                    _ => 0,
                })
                .map(|(_, v)| v.as_deref());
        }
        self.patterns.iter().find(|(p, _)| self.match_one(p, &d)).map(|(_, v)| v.as_deref())
    }

    fn match_one(&self, p: &Pattern, d: &SmpData) -> bool {
        match (p, self.method) {
            (Pattern::Range(lo, hi), PatMatch::Int | PatMatch::Len) => {
                let v = match (d, self.method) {
                    (SmpData::Sint(v), PatMatch::Int) => *v,
                    (_, PatMatch::Len) => d.bytes().map_or(0, |b| b.len() as i64),
                    _ => return false,
                };
                lo.is_none_or(|l| v >= l) && hi.is_none_or(|h| v <= h)
            }
            (Pattern::Reg(r), _) => d.bytes().is_some_and(|b| regex_exec2(r, b)),
            (Pattern::Str(pat), m) => {
                let Some(v) = d.bytes() else { return false };
                let lower;
                let v = if self.icase {
                    lower = v.to_ascii_lowercase();
                    &lower[..]
                } else {
                    v
                };
                match m {
                    PatMatch::Beg => v.starts_with(pat),
                    PatMatch::End => v.ends_with(pat),
                    PatMatch::Sub => pat.is_empty() || v.windows(pat.len()).any(|w| w == &pat[..]),
                    PatMatch::Dir => match_word(v, pat, b"/?"),
                    PatMatch::Dom => match_word(v, pat, b"/?.:"),
                    _ => v == &pat[..],
                }
            }
            _ => false,
        }
    }
}

/// pattern.c:match_word() in 2.6: `pat` (trimmed of delimiters) appears in `v` between
/// delimiters or the ends.
fn match_word(v: &[u8], pat: &[u8], delims: &[u8]) -> bool {
    let is_d = |c: &u8| delims.contains(c);
    let start = pat.iter().position(|c| !is_d(c)).unwrap_or(pat.len());
    let end = pat.iter().rposition(|c| !is_d(c)).map_or(start, |e| e + 1);
    let p = &pat[start..end];
    if p.len() > v.len() {
        return false;
    }
    (0..=v.len() - p.len()).any(|i| {
        (i == 0 || is_d(&v[i - 1]))
            && &v[i..i + p.len()] == p
            && (i + p.len() == v.len() || is_d(&v[i + p.len()]))
    })
}

/// An address within a network (an IPv4 network also matches its IPv4-mapped IPv6 form).
pub fn net_match(addr: IpAddr, net: IpAddr, len: u8) -> bool {
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
        (IpAddr::V4(a), IpAddr::V6(_)) => net_match(IpAddr::V6(a.to_ipv6_mapped()), net, len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(m: PatMatch, icase: bool, pats: &[&str]) -> PatExpr {
        let mut e = PatExpr::new(m, icase);
        for p in pats {
            e.add(p.as_bytes(), None).unwrap();
        }
        e
    }

    fn s(v: &str) -> SmpData {
        SmpData::Str(v.as_bytes().to_vec())
    }

    #[test]
    fn string_methods() {
        assert!(expr(PatMatch::Str, true, &["ABC"]).pattern_exec_match(&s("abc")).is_some());
        assert!(expr(PatMatch::Str, false, &["ABC"]).pattern_exec_match(&s("abc")).is_none());
        assert!(expr(PatMatch::Beg, false, &["/api"]).pattern_exec_match(&s("/api/x")).is_some());
        assert!(expr(PatMatch::End, false, &[".js"]).pattern_exec_match(&s("/a.js")).is_some());
        assert!(expr(PatMatch::Sub, false, &["pi/"]).pattern_exec_match(&s("/api/x")).is_some());
        assert!(expr(PatMatch::Dir, false, &["api"]).pattern_exec_match(&s("/v1/api/x")).is_some());
        assert!(expr(PatMatch::Dir, false, &["ap"]).pattern_exec_match(&s("/v1/api/x")).is_none());
        assert!(expr(PatMatch::Dom, false, &["example"]).pattern_exec_match(&s("www.example.com")).is_some());
        assert!(expr(PatMatch::Reg, false, &["^/[0-9]+$"]).pattern_exec_match(&s("/42")).is_some());
        assert!(expr(PatMatch::Len, false, &["3:"]).pattern_exec_match(&s("abcd")).is_some());
    }

    #[test]
    fn ints_and_networks() {
        let e = expr(PatMatch::Int, false, &["1:3", "10"]);
        assert!(e.pattern_exec_match(&SmpData::Sint(2)).is_some());
        assert!(e.pattern_exec_match(&SmpData::Sint(10)).is_some());
        assert!(e.pattern_exec_match(&SmpData::Sint(4)).is_none());
        assert!(e.pattern_exec_match(&s("2")).is_some());
        let mut m = PatExpr::new(PatMatch::Ip, false);
        m.add(b"10.0.0.0/8", Some(b"wide".to_vec())).unwrap();
        m.add(b"10.1.0.0/16", Some(b"narrow".to_vec())).unwrap();
        let ip = SmpData::Ipv4("10.1.2.3".parse().unwrap());
        assert_eq!(m.pattern_exec_match(&ip), Some(Some(&b"narrow"[..])));
        assert!(m.pattern_exec_match(&s("10.9.9.9")).is_some());
        assert!(pat_parse_ip(b"300.1.1.1").is_err());
        assert!(pat_parse_int(b"x").is_err());
    }
}
