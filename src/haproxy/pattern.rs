//! Patterns: the values an ACL compares a sample with, and the keys of a map, with the
//! match methods (`-m str|beg|end|sub|reg|dir|dom|int|ip|len|bool|found|bin`).
//!
//! Reproduces `pattern.c` (1.5.0 split it out of `acl.c`; the match functions keep its
//! names: `pat_match_str`, `pat_match_beg`...; behaviour of 2.6). A pattern file (`-f` of
//! an ACL, the file of a `map` converter) is read into a `PatRef` of keys and values; a
//! `PatExpr` is those keys compiled for one match method (a regex, a network, an integer
//! range), in file order. `pattern_exec_match` returns the first pattern that matches (for
//! `ip`, the longest prefix, as HAProxy's tree does). A map file is read once per
//! configuration and shared (`pattern_reference`, handed to `Haproxy::pat_refs`): every
//! converter naming it reads the same lines, and the CLI's map commands change the lines
//! and every expression compiled from them at once.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

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

bitflags::bitflags! {
    /// `pat_ref->flags` (`PAT_REF_*`): who uses a pattern file.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct PatRefFlags: u32 {
        /// Used by at least one map.
        const PAT_REF_MAP = 0x1;
        /// Used by at least one ACL.
        const PAT_REF_ACL = 0x2;
        /// Its lines carry a value (a map's second column).
        const PAT_REF_SMP = 0x4;
    }
}

/// One line of a pattern file (`struct pat_ref_elt`): a key as written and, for a map,
/// its value. `show map` names it by its address, as HAProxy does (`del map <map> #0x...`).
#[derive(Debug)]
pub struct PatRefElt {
    /// The key, as written.
    pub pattern: Vec<u8>,
    /// The value (maps only).
    pub sample: Option<Vec<u8>>,
    /// Its line in the file (0: added at run time).
    pub line: usize,
}

/// A pattern file as read (`struct pat_ref`): its lines in order, and every expression
/// compiled from them. One file read by several converters is read once and shared, and
/// the CLI's `add map`/`del map`/`set map`/`clear map` change it and all its expressions.
#[derive(Debug, Default)]
pub struct PatRef {
    /// The file name, as the configuration wrote it.
    pub reference: String,
    /// `#<id>` on the CLI, given once the configuration is read (`pattern_finalize_config`).
    pub unique_id: i32,
    /// Who uses it, for `show map`: `pattern loaded from file '...' used by map...`.
    pub display: String,
    /// Who uses it.
    pub flags: PatRefFlags,
    /// `entry_cnt` as 2.6 counts it for `show map`: one per pattern compiled into any of
    /// `exprs`, less one per line deleted (with two expressions, twice the lines).
    pub entry_cnt: u64,
    /// The lines, in file order; each boxed so that its address, its CLI name, stays put.
    pub head: Vec<Box<PatRefElt>>,
    /// The expressions compiled from it (`ref->pat`). Invariant: each holds one pattern
    /// per line of `head`, in the same order, so a line's index is its pattern's index.
    /// Each has HAProxy's per-expression lock (`expr->lock`): matching reads, the CLI writes.
    pub exprs: Vec<Arc<RwLock<PatExpr>>>,
}

impl PatRef {
    /// pattern.c:pat_ref_new() in 2.6 (the id is given later).
    pub fn pat_ref_new(reference: &str, display: String, flags: PatRefFlags) -> PatRef {
        PatRef { reference: reference.to_string(), unique_id: -1, display, flags, ..PatRef::default() }
    }

    /// pattern.c:pat_ref_read_from_file_smp() and pat_ref_read_from_file() in 2.6: one
    /// pattern per line (with `PAT_REF_SMP`, a key and the rest of the line as its value);
    /// blank lines and `#` comments skipped.
    pub fn pat_ref_read_from_file(&mut self) -> Result<(), String> {
        let path = &self.reference;
        let text = std::fs::read(path).map_err(|e| {
            format!("failed to open pattern file <{path}> : {}", crate::haproxy::proto_tcp::os_reason(&e))
        })?;
        let with_value = self.flags.contains(PatRefFlags::PAT_REF_SMP);
        for (n, line) in text.split(|&c| c == b'\n').enumerate() {
            let line = line.trim_ascii();
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            let (pattern, sample) = if with_value {
                let k = line.iter().position(|c| c.is_ascii_whitespace()).unwrap_or(line.len());
                (line[..k].to_vec(), Some(line[k..].trim_ascii().to_vec()))
            } else {
                (line.to_vec(), None)
            };
            self.head.push(Box::new(PatRefElt { pattern, sample, line: n + 1 }));
        }
        Ok(())
    }

    /// pattern.c:pat_ref_load() in 2.6 (current generation): appends a line and compiles
    /// it into every expression; if one refuses it, the line is taken back out of all.
    pub fn pat_ref_load(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let elt = PatRefElt { pattern: key.to_vec(), sample: value.map(<[u8]>::to_vec), line: 0 };
        for (i, e) in self.exprs.iter().enumerate() {
            if let Err(err) = write(e).add(&elt.pattern, elt.sample.clone()) {
                for done in &self.exprs[..i] {
                    write(done).patterns.pop();
                }
                // As pat_ref_delete_by_ptr() counts the rollback.
                self.entry_cnt = (self.entry_cnt + i as u64).saturating_sub(1);
                return Err(err);
            }
        }
        self.entry_cnt += self.exprs.len() as u64;
        self.head.push(Box::new(elt));
        Ok(())
    }

    /// pattern.c:pat_ref_delete_by_ptr() in 2.6: removes line `i` and its patterns.
    fn pat_ref_delete_by_ptr(&mut self, i: usize) {
        for e in &self.exprs {
            let mut e = write(e);
            if i < e.patterns.len() {
                e.patterns.remove(i);
            }
        }
        self.head.remove(i);
        self.entry_cnt = self.entry_cnt.saturating_sub(1);
    }

    /// pattern.c:pat_ref_delete() in 2.6: removes every line whose key is `key`; false
    /// when there was none.
    pub fn pat_ref_delete(&mut self, key: &[u8]) -> bool {
        let before = self.head.len();
        while let Some(i) = self.head.iter().position(|elt| elt.pattern == key) {
            self.pat_ref_delete_by_ptr(i);
        }
        self.head.len() != before
    }

    /// pattern.c:pat_ref_delete_by_id() in 2.6: removes the line at address `id` (as
    /// `show map` prints it); false when no line has it.
    pub fn pat_ref_delete_by_id(&mut self, id: usize) -> bool {
        match self.find_by_id(id) {
            Some(i) => {
                self.pat_ref_delete_by_ptr(i);
                true
            }
            None => false,
        }
    }

    /// The index of the line at address `id`.
    fn find_by_id(&self, id: usize) -> Option<usize> {
        self.head.iter().position(|elt| pat_ref_elt_id(elt) == id)
    }

    /// pattern.c:pat_ref_set_elt() in 2.6: the value of line `i` becomes `value`.
    fn pat_ref_set_elt(&mut self, i: usize, value: &[u8]) {
        for e in &self.exprs {
            if let Some(p) = write(e).patterns.get_mut(i) {
                p.1 = Some(value.to_vec());
            }
        }
        self.head[i].sample = Some(value.to_vec());
    }

    /// pattern.c:pat_ref_set() in 2.6: every line whose key is `key` gets `value`.
    pub fn pat_ref_set(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        let found: Vec<usize> = (0..self.head.len()).filter(|&i| self.head[i].pattern == key).collect();
        if found.is_empty() {
            return Err("entry not found".into());
        }
        for i in found {
            self.pat_ref_set_elt(i, value);
        }
        Ok(())
    }

    /// pattern.c:pat_ref_set_by_id() in 2.6: the line at address `id` gets `value`.
    pub fn pat_ref_set_by_id(&mut self, id: usize, value: &[u8]) -> Result<(), String> {
        let i = self.find_by_id(id).ok_or("key or pattern not found")?;
        self.pat_ref_set_elt(i, value);
        Ok(())
    }

    /// pattern.c:pat_ref_purge_range() in 2.6, over the current generation: removes every
    /// line (`clear map`).
    pub fn pat_ref_purge(&mut self) {
        for e in &self.exprs {
            write(e).patterns.clear();
        }
        self.entry_cnt = self.entry_cnt.saturating_sub(self.head.len() as u64);
        self.head.clear();
    }
}

/// The address of a line: its name on the CLI (`%p` of the `pat_ref_elt`).
pub fn pat_ref_elt_id(elt: &PatRefElt) -> usize {
    std::ptr::from_ref(elt) as usize
}

/// Takes an expression's lock for writing. A writer that panicked left nothing half
/// done that matching could trip on, so a poisoned lock is used as is.
fn write(e: &RwLock<PatExpr>) -> std::sync::RwLockWriteGuard<'_, PatExpr> {
    e.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes an expression's lock for reading (see `write`).
pub fn read(e: &RwLock<PatExpr>) -> std::sync::RwLockReadGuard<'_, PatExpr> {
    e.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

thread_local! {
    /// `pattern_reference`: the pattern files read while the configuration is parsed.
    /// HAProxy's is a global list; haflow may read several configurations in one process
    /// (tests, reloads), so `readcfgfile` takes the list into the `Config` it returns.
    static PATTERN_REFERENCE: RefCell<Vec<PatRef>> = const { RefCell::new(Vec::new()) };
}

/// pattern.c:pattern_finalize_config() in 2.6: the pattern files read since the last
/// call, each given its `#<id>` (in order, none being set by hand).
pub fn pattern_finalize_config() -> Vec<PatRef> {
    let mut refs = PATTERN_REFERENCE.with(|r| std::mem::take(&mut *r.borrow_mut()));
    for (id, r) in refs.iter_mut().enumerate() {
        r.unique_id = i32::try_from(id).unwrap_or(i32::MAX);
    }
    refs
}

/// pattern.c:pattern_read_from_file() in 2.6, for a map: the expression compiling
/// `filename` (key and value lines) for `method`. The file is read once, by its first
/// user; later users with the same method share its expression, others get theirs
/// compiled from the same lines. Divergence: ACLs read their `-f` files on their own, so
/// 2.6's refusal of a file used both with and without values does not arise.
pub fn pattern_read_from_file(filename: &str, method: PatMatch) -> Result<Arc<RwLock<PatExpr>>, String> {
    let (file, line) = crate::haproxy::cfgparse::cfg_position();
    let who = format!("map at file '{file}' line {line}");
    PATTERN_REFERENCE.with(|list| {
        let mut list = list.borrow_mut();
        let i = match list.iter().position(|r| r.reference == filename) {
            Some(i) => {
                list[i].display.push_str(&format!(", by {who}"));
                i
            }
            None => {
                let flags = PatRefFlags::PAT_REF_MAP | PatRefFlags::PAT_REF_SMP;
                let display = format!("pattern loaded from file '{filename}' used by {who}");
                let mut r = PatRef::pat_ref_new(filename, display, flags);
                r.pat_ref_read_from_file()?;
                list.push(r);
                list.len() - 1
            }
        };
        let r = &mut list[i];
        // pattern.c:pattern_lookup_expr(): an expression of the same method is shared.
        if let Some(e) = r.exprs.iter().find(|e| read(e).method == method) {
            return Ok(e.clone());
        }
        let mut e = PatExpr::new(method, false);
        e.add_ref(r)?;
        r.entry_cnt += r.head.len() as u64;
        let e = Arc::new(RwLock::new(e));
        r.exprs.push(e.clone());
        Ok(e)
    })
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

    /// Adds every line of a pattern file.
    pub fn add_ref(&mut self, r: &PatRef) -> Result<(), String> {
        for elt in &r.head {
            self.add(&elt.pattern, elt.sample.clone())
                .map_err(|e| format!("{e} at line {} of file '{}'", elt.line, r.reference))?;
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
    fn a_file_is_read_once_and_a_line_one_expression_refuses_is_in_none() {
        let path = std::env::temp_dir().join(format!("haflow-pattern-{}.map", std::process::id()));
        std::fs::write(&path, "1 one\n# comment\n2 two\n").unwrap();
        let path = path.to_str().unwrap().to_string();
        pattern_finalize_config();
        let s1 = pattern_read_from_file(&path, PatMatch::Str).unwrap();
        let s2 = pattern_read_from_file(&path, PatMatch::Str).unwrap();
        let i = pattern_read_from_file(&path, PatMatch::Int).unwrap();
        assert!(Arc::ptr_eq(&s1, &s2), "one method, one expression");
        let mut refs = pattern_finalize_config();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(refs.len(), 1, "one file, read once");
        let r = &mut refs[0];
        assert_eq!((r.unique_id, r.head.len(), r.exprs.len(), r.entry_cnt), (0, 2, 2, 4));
        assert_eq!(r.head[1].line, 3);
        let n = |e: &Arc<RwLock<PatExpr>>| read(e).patterns.len();
        // `x` is a string but not an integer: taken back out of the string expression.
        assert!(r.pat_ref_load(b"x", Some(b"ex")).is_err());
        assert_eq!((r.head.len(), n(&s1), n(&i), r.entry_cnt), (2, 2, 2, 4));
        r.pat_ref_load(b"3", Some(b"three")).unwrap();
        assert_eq!((r.head.len(), n(&s1), n(&i), r.entry_cnt), (3, 3, 3, 6));
        assert!(r.pat_ref_delete(b"1"));
        assert_eq!(read(&i).pattern_exec_match(&SmpData::Sint(1)), None);
        assert_eq!(read(&i).pattern_exec_match(&SmpData::Sint(3)), Some(Some(&b"three"[..])));
        assert_eq!(read(&s1).pattern_exec_match(&s("2")), Some(Some(&b"two"[..])));
        r.pat_ref_purge();
        assert_eq!((r.head.len(), n(&s1), n(&i), r.entry_cnt), (0, 0, 0, 3));
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
