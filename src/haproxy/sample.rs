//! Samples: typed values fetched from a session (`req.hdr(host)`, `src`, `path`...) and
//! turned by converters (`lower`, `field(2,/)`, `sha2(256)`...), the common language of
//! ACLs, `set-var`, `%[...]` in log formats and most `http-request` actions.
//!
//! Reproduces `sample.c` of HAProxy 2.6 (1.5 had the same design, `pattern.c` and
//! `sample.c` with `sample_process`, fetch and converter keyword lists and the cast
//! table; 1.5.0's names are kept). An expression is written `fetch(args),conv1(args),conv2`:
//! `sample_parse_expr` finds each keyword in its list (`sample_fetch_keywords`,
//! `sample_conv_keywords`), parses its arguments with `make_arg_list` against the
//! keyword's argument mask, runs its checker, and checks that each step's output can be
//! cast to the next step's input (`sample_casts`). At run time `sample_process` calls the
//! fetch, then each converter after casting the value to the type it takes.
//!
//! A fetch reads the session through a `SmpCtx`: the process and the session (none while
//! the `global` section's `set-var` runs), which message a direction-dependent fetch
//! reads (`hdr()` reads the request in `http-request` rules and the response in
//! `http-response` ones), and the variables, which the `set-var` converter writes. A
//! fetch returns every value it finds in message order: an ACL tests each of them
//! (1.5's `SMP_F_NOT_LAST` iteration), a sample expression keeps the last one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};

use base64::Engine;

use crate::haproxy::cache::{smp_fetch_res_cache_hit, smp_fetch_res_cache_name};
use crate::haproxy::h1::{Head, StartLine};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::pattern::PatExpr;
use crate::haproxy::regex::{MyRegex, exp_replace, regex_comp, regex_exec_match2};
use crate::haproxy::server::{Server, SrvFlags};
use crate::haproxy::session::{AddrDir, Session};
use crate::haproxy::stick_table as st;
use crate::haproxy::vars::{VarName, Vars, register_name};
use crate::ids::ServerId;

/// A sample's type (`enum smp_type`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpType {
    /// Any type: what a converter that takes anything declares.
    SMP_T_ANY,
    /// A boolean.
    SMP_T_BOOL,
    /// A signed 64-bit integer.
    SMP_T_SINT,
    /// An IPv4 or IPv6 address (a converter's input only).
    SMP_T_ADDR,
    /// An IPv4 address.
    SMP_T_IPV4,
    /// An IPv6 address.
    SMP_T_IPV6,
    /// A character string.
    SMP_T_STR,
    /// A binary block.
    SMP_T_BIN,
    /// An HTTP method.
    SMP_T_METH,
}

impl fmt::Display for SmpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmpType::SMP_T_ANY => "any",
            SmpType::SMP_T_BOOL => "bool",
            SmpType::SMP_T_SINT => "sint",
            SmpType::SMP_T_ADDR => "addr",
            SmpType::SMP_T_IPV4 => "ipv4",
            SmpType::SMP_T_IPV6 => "ipv6",
            SmpType::SMP_T_STR => "str",
            SmpType::SMP_T_BIN => "bin",
            SmpType::SMP_T_METH => "meth",
        })
    }
}

/// A sample's value (`struct sample_data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmpData {
    /// `SMP_T_BOOL`.
    Bool(bool),
    /// `SMP_T_SINT`.
    Sint(i64),
    /// `SMP_T_IPV4`.
    Ipv4(Ipv4Addr),
    /// `SMP_T_IPV6`.
    Ipv6(Ipv6Addr),
    /// `SMP_T_STR`.
    Str(Vec<u8>),
    /// `SMP_T_BIN`.
    Bin(Vec<u8>),
    /// `SMP_T_METH`: the method as written.
    Meth(Vec<u8>),
}

impl SmpData {
    /// The value's type.
    pub fn smp_type(&self) -> SmpType {
        match self {
            SmpData::Bool(_) => SmpType::SMP_T_BOOL,
            SmpData::Sint(_) => SmpType::SMP_T_SINT,
            SmpData::Ipv4(_) => SmpType::SMP_T_IPV4,
            SmpData::Ipv6(_) => SmpType::SMP_T_IPV6,
            SmpData::Str(_) => SmpType::SMP_T_STR,
            SmpData::Bin(_) => SmpType::SMP_T_BIN,
            SmpData::Meth(_) => SmpType::SMP_T_METH,
        }
    }

    /// An address as a sample.
    pub fn from_ip(ip: IpAddr) -> SmpData {
        match ip {
            IpAddr::V4(a) => SmpData::Ipv4(a),
            IpAddr::V6(a) => SmpData::Ipv6(a),
        }
    }

    /// The value as a string (`sample_casts[type][SMP_T_STR]`), or `None` when it has
    /// no string form.
    pub fn into_str(self) -> Option<Vec<u8>> {
        match smp_cast(self, SmpType::SMP_T_STR)? {
            SmpData::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes of a string-like value (string, binary, method).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            SmpData::Str(s) | SmpData::Bin(s) | SmpData::Meth(s) => Some(s),
            _ => None,
        }
    }
}

/// sample.c:sample_casts[][] in 2.6: whether a value of type `from` can become `to`.
pub fn sample_casts(from: SmpType, to: SmpType) -> bool {
    use SmpType::*;
    match (from, to) {
        (_, SMP_T_ANY) | (SMP_T_ANY, _) => true,
        (SMP_T_BOOL, SMP_T_BOOL | SMP_T_SINT | SMP_T_STR | SMP_T_BIN) => true,
        (SMP_T_SINT, SMP_T_METH) | (SMP_T_SINT, SMP_T_ADDR) => to == SMP_T_ADDR,
        (SMP_T_SINT, _) => true,
        (SMP_T_IPV4, SMP_T_SINT | SMP_T_ADDR | SMP_T_IPV4 | SMP_T_IPV6 | SMP_T_STR | SMP_T_BIN) => true,
        (SMP_T_IPV6, SMP_T_ADDR | SMP_T_IPV4 | SMP_T_IPV6 | SMP_T_STR | SMP_T_BIN) => true,
        // An address fetch yields IPv4 or IPv6: what either casts to.
        (SMP_T_ADDR, _) => sample_casts(SMP_T_IPV4, to) || sample_casts(SMP_T_IPV6, to),
        (SMP_T_STR, _) => true,
        (SMP_T_BIN, SMP_T_STR | SMP_T_BIN | SMP_T_METH) => true,
        (SMP_T_METH, SMP_T_STR | SMP_T_BIN | SMP_T_METH) => true,
        _ => false,
    }
}

/// Reads an optionally signed decimal number at the start of `s`, stopping at the first
/// other character (standard.c:read_int64() in 2.6); returns it and the bytes read.
pub fn read_int64(s: &[u8]) -> (i64, usize) {
    let (neg, mut i) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut v: i64 = 0;
    while let Some(c) = s.get(i).filter(|c| c.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(i64::from(c - b'0'));
        i += 1;
    }
    (if neg { v.wrapping_neg() } else { v }, i)
}

/// Casts a value to `to` as HAProxy's cast functions do (`c_str2int`, `c_ip2str`...);
/// `None` when the cast does not exist or fails (`"abc"` to an address).
pub fn smp_cast(d: SmpData, to: SmpType) -> Option<SmpData> {
    use SmpType::*;
    if to == SMP_T_ANY || d.smp_type() == to {
        return Some(d);
    }
    Some(match (d, to) {
        (SmpData::Bool(b), SMP_T_SINT) => SmpData::Sint(i64::from(b)),
        (SmpData::Bool(b), SMP_T_STR) => SmpData::Str(if b { b"1".to_vec() } else { b"0".to_vec() }),
        (SmpData::Bool(b), SMP_T_BIN) => SmpData::Bin(vec![u8::from(b)]),
        (SmpData::Sint(i), SMP_T_BOOL) => SmpData::Bool(i != 0),
        (SmpData::Sint(i), SMP_T_STR) => SmpData::Str(i.to_string().into_bytes()),
        (SmpData::Sint(i), SMP_T_BIN) => SmpData::Bin(i.to_be_bytes().to_vec()),
        (SmpData::Sint(i), SMP_T_IPV4 | SMP_T_ADDR) => SmpData::Ipv4(Ipv4Addr::from(i as u32)),
        (SmpData::Sint(i), SMP_T_IPV6) => SmpData::Ipv6(Ipv4Addr::from(i as u32).to_ipv6_mapped()),
        (SmpData::Ipv4(a), SMP_T_SINT) => SmpData::Sint(i64::from(u32::from(a))),
        (SmpData::Ipv4(a), SMP_T_ADDR) => SmpData::Ipv4(a),
        (SmpData::Ipv4(a), SMP_T_IPV6) => SmpData::Ipv6(a.to_ipv6_mapped()),
        (SmpData::Ipv4(a), SMP_T_STR) => SmpData::Str(a.to_string().into_bytes()),
        (SmpData::Ipv4(a), SMP_T_BIN) => SmpData::Bin(a.octets().to_vec()),
        (SmpData::Ipv6(a), SMP_T_ADDR) => SmpData::Ipv6(a),
        (SmpData::Ipv6(a), SMP_T_IPV4) => SmpData::Ipv4(a.to_ipv4_mapped()?),
        (SmpData::Ipv6(a), SMP_T_STR) => SmpData::Str(a.to_string().into_bytes()),
        (SmpData::Ipv6(a), SMP_T_BIN) => SmpData::Bin(a.octets().to_vec()),
        (SmpData::Str(s), SMP_T_SINT | SMP_T_BOOL) => {
            if s.is_empty() {
                return None;
            }
            let v = read_int64(&s).0;
            if to == SMP_T_BOOL { SmpData::Bool(v != 0) } else { SmpData::Sint(v) }
        }
        (SmpData::Str(s), SMP_T_IPV4) => SmpData::Ipv4(std::str::from_utf8(&s).ok()?.parse().ok()?),
        (SmpData::Str(s), SMP_T_IPV6) => SmpData::Ipv6(std::str::from_utf8(&s).ok()?.parse().ok()?),
        (SmpData::Str(s), SMP_T_ADDR) => SmpData::from_ip(std::str::from_utf8(&s).ok()?.parse().ok()?),
        (SmpData::Str(s), SMP_T_BIN) => SmpData::Bin(s),
        (SmpData::Str(s) | SmpData::Bin(s), SMP_T_METH) => SmpData::Meth(s),
        (SmpData::Bin(s), SMP_T_STR) => {
            // c_bin2str(): a string ends at its first NUL byte.
            let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
            SmpData::Str(s[..end].to_vec())
        }
        (SmpData::Meth(s), SMP_T_STR) => SmpData::Str(s),
        (SmpData::Meth(s), SMP_T_BIN) => SmpData::Bin(s),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Arguments

/// The type of a keyword's argument (`ARGT_*`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgT {
    /// `ARGT_STR`: a string (may be empty).
    ARGT_STR,
    /// `ARGT_SINT`: an integer.
    ARGT_SINT,
    /// `ARGT_REG`: a regular expression (compiled by the keyword's checker, with its flags).
    ARGT_REG,
    /// `ARGT_MSK4`: an IPv4 mask (`255.255.0.0` or `16`).
    ARGT_MSK4,
    /// `ARGT_MSK6`: an IPv6 mask (a prefix length).
    ARGT_MSK6,
    /// `ARGT_IPV4`: an IPv4 address.
    ARGT_IPV4,
    /// `ARGT_IPV6`: an IPv6 address.
    ARGT_IPV6,
    /// `ARGT_TIME`: a time with an optional unit, in milliseconds.
    ARGT_TIME,
    /// `ARGT_VAR`: a variable name (what `vars_check_arg` makes of a string).
    ARGT_VAR,
    /// `ARGT_BE`: a backend name (kept as a string, resolved at run time).
    ARGT_BE,
    /// `ARGT_SRV`: `backend/server` or a server of the current backend.
    ARGT_SRV,
    /// `ARGT_TAB`: a stick table's name (kept as a string, checked once every section is
    /// known).
    ARGT_TAB,
}

impl fmt::Display for ArgT {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArgT::ARGT_STR => "string",
            ArgT::ARGT_SINT => "integer",
            ArgT::ARGT_REG => "regex",
            ArgT::ARGT_MSK4 => "IPv4 mask",
            ArgT::ARGT_MSK6 => "IPv6 mask",
            ArgT::ARGT_IPV4 => "IPv4 address",
            ArgT::ARGT_IPV6 => "IPv6 address",
            ArgT::ARGT_TIME => "delay",
            ArgT::ARGT_VAR => "variable",
            ArgT::ARGT_BE => "backend",
            ArgT::ARGT_SRV => "server",
            ArgT::ARGT_TAB => "table",
        })
    }
}

/// One parsed argument (`struct arg`).
#[derive(Clone, Debug)]
pub enum Arg {
    /// A string (also backend and server names).
    Str(Vec<u8>),
    /// An integer.
    Sint(i64),
    /// A compiled regular expression, with the `g` flag of `regsub`.
    Reg(MyRegex, bool),
    /// An IPv4 address or mask.
    Ipv4(Ipv4Addr),
    /// An IPv6 address or mask.
    Ipv6(Ipv6Addr),
    /// A variable.
    Var(VarName),
    /// A map file loaded by a `map*` converter, compiled for its match method.
    Map(Arc<RwLock<PatExpr>>),
    /// A binary block (a decoded key).
    Bin(Vec<u8>),
    /// An optional argument not given (`ARGT_STOP` past the last one).
    None,
}

impl Arg {
    /// The string of a `Str` argument (empty for anything else).
    pub fn str(&self) -> &[u8] {
        match self {
            Arg::Str(s) => s,
            _ => b"",
        }
    }

    /// The integer of a `Sint` argument (0 for anything else, as an unset HAProxy arg).
    pub fn sint(&self) -> i64 {
        match self {
            Arg::Sint(i) => *i,
            _ => 0,
        }
    }
}

/// What a keyword accepts (`ARGn(min, types...)`): `min` mandatory arguments among
/// `types`.
#[derive(Clone, Copy, Debug)]
pub struct ArgMask {
    /// Mandatory arguments.
    pub min: usize,
    /// Each argument's type, in order.
    pub types: &'static [ArgT],
}

const ARG0: ArgMask = ArgMask { min: 0, types: &[] };

const fn args(min: usize, types: &'static [ArgT]) -> ArgMask {
    ArgMask { min, types }
}

/// Splits one argument off `input` as 2.6's `make_arg_list` does: quotes group,
/// `\` escapes `\`, space and quotes, and `\r`, `\n`, `\t` are control characters;
/// an unquoted `,` or `)` ends it. Returns the argument and the bytes consumed.
fn next_arg(input: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let (mut sq, mut dq) = (false, false);
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        match c {
            b'"' if !sq => dq = !dq,
            b'\'' if !dq => sq = !sq,
            b'\\' if !sq && i + 1 < input.len() => {
                let n = input[i + 1];
                match n {
                    b'\\' | b' ' | b'"' | b'\'' => out.push(n),
                    b'r' => out.push(b'\r'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    _ => {
                        out.push(c);
                        i += 1;
                        continue;
                    }
                }
                i += 1;
            }
            b',' | b')' if !sq && !dq => break,
            _ => out.push(c),
        }
        i += 1;
    }
    (crate::haproxy::cfgparse::cfg_raw_bytes(&out), i)
}

/// An IPv4 mask in dotted or prefix-length form (standard.c:str2mask()).
fn str2mask(s: &str) -> Option<Ipv4Addr> {
    if let Ok(len) = s.parse::<u32>() {
        if len > 32 {
            return None;
        }
        return Some(Ipv4Addr::from(if len == 0 { 0 } else { u32::MAX << (32 - len) }));
    }
    s.parse().ok()
}

/// An IPv6 mask as a prefix length (standard.c:str2mask6()).
fn str2mask6(s: &str) -> Option<Ipv6Addr> {
    if let Ok(len) = s.parse::<u32>() {
        if len > 128 {
            return None;
        }
        return Some(Ipv6Addr::from(if len == 0 { 0 } else { u128::MAX << (128 - len) }));
    }
    s.parse().ok()
}

/// arg.c:make_arg_list() in 2.6: parses `(a,b,...)` at the start of `input` (or
/// nothing) against `mask`. Returns the arguments (padded with `Arg::None` up to the
/// mask's length) and the bytes consumed, parentheses included.
pub fn make_arg_list(input: &[u8], mask: ArgMask) -> Result<(Vec<Arg>, usize), String> {
    let nbarg = mask.types.len();
    let mut out = Vec::with_capacity(nbarg);
    let empty = input.first() != Some(&b'(');
    let mut pos = if empty { 0 } else { 1 };
    if nbarg > 0 && !(empty && mask.min == 0) {
        loop {
            let (word, used) = if empty { (Vec::new(), 0) } else { next_arg(&input[pos..]) };
            pos += used;
            let t = mask.types[out.len()];
            let text = String::from_utf8_lossy(&word).into_owned();
            let idx = out.len() + 1;
            let parse_err = || format!("failed to parse '{text}' as type '{t}' at position {idx}");
            if word.is_empty() && !matches!(t, ArgT::ARGT_STR | ArgT::ARGT_VAR) {
                if out.len() >= mask.min {
                    break;
                }
                return Err(format!("expected type '{t}' at position {idx}, but got nothing"));
            }
            let arg = match t {
                ArgT::ARGT_STR | ArgT::ARGT_BE | ArgT::ARGT_SRV | ArgT::ARGT_TAB => Arg::Str(word),
                ArgT::ARGT_VAR => {
                    if word.is_empty() {
                        Arg::None
                    } else {
                        Arg::Var(register_name(&text)?)
                    }
                }
                ArgT::ARGT_REG => Arg::Str(word),
                ArgT::ARGT_SINT => {
                    let (v, n) = read_int64(&word);
                    if n != word.len() {
                        return Err(parse_err());
                    }
                    Arg::Sint(v)
                }
                ArgT::ARGT_MSK4 => Arg::Ipv4(str2mask(&text).ok_or_else(parse_err)?),
                ArgT::ARGT_MSK6 => Arg::Ipv6(str2mask6(&text).ok_or_else(parse_err)?),
                ArgT::ARGT_IPV4 => Arg::Ipv4(text.parse().map_err(|_| parse_err())?),
                ArgT::ARGT_IPV6 => Arg::Ipv6(text.parse().map_err(|_| parse_err())?),
                ArgT::ARGT_TIME => {
                    Arg::Sint(crate::haproxy::standard::parse_time_err(&text).map_err(|_| parse_err())? as i64)
                }
            };
            out.push(arg);
            if empty || out.len() >= nbarg || pos >= input.len() || input[pos] == b')' {
                break;
            }
            pos += 1; // the comma
        }
    }
    if out.len() < mask.min {
        let t = mask.types.get(out.len()).map_or(String::new(), |t| t.to_string());
        return Err(format!("missing arguments (got {}/{}), type '{t}' expected", out.len(), mask.min));
    }
    if !empty {
        if input.get(pos) == Some(&b')') {
            pos += 1;
        } else {
            let rest = String::from_utf8_lossy(&input[pos.min(input.len())..]).into_owned();
            return Err(if rest.is_empty() {
                "expected ')'".to_string()
            } else {
                format!("expected ')' before '{rest}'")
            });
        }
    }
    while out.len() < nbarg {
        out.push(Arg::None);
    }
    Ok((out, pos))
}

// ---------------------------------------------------------------------------------------
// Context

/// Which message a direction-dependent fetch reads (`SMP_OPT_DIR_REQ`/`_RES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpDir {
    /// The request (`http-request`, `tcp-request`, ACLs of switching rules).
    Req,
    /// The response (`http-response`, `http-after-response`).
    Res,
}

/// What a sample is fetched from (`smp->px`, `smp->sess`, `smp->strm`, `smp->opt`).
pub struct SmpCtx<'a> {
    /// The process and the session; `None` while the `global` section is parsed.
    pub strm: Option<(&'a Haproxy, &'a Session)>,
    /// The message direction-dependent fetches read.
    pub dir: SmpDir,
    /// The variables.
    pub vars: Vars<'a>,
    /// `SMP_OPT_FINAL`: the data will not change any more (a complete HTTP head, or a
    /// `tcp-request content` pass whose `inspect-delay` is over), so a fetch that lacks
    /// data fails instead of asking to wait.
    pub opt_final: bool,
    /// `SMP_F_MAY_CHANGE` of the last sample processed: it was missing data or read a
    /// buffer that may still grow, so a later pass may find another value. Fetches set
    /// it through a shared reference, converters may clear it.
    pub may_change: std::cell::Cell<bool>,
}

impl<'a> SmpCtx<'a> {
    /// A context over `strm` (none: the `global` section) for rules of direction `dir`,
    /// on final data.
    pub fn new(strm: Option<(&'a Haproxy, &'a Session)>, dir: SmpDir, vars: Vars<'a>) -> SmpCtx<'a> {
        SmpCtx { strm, dir, vars, opt_final: true, may_change: std::cell::Cell::new(false) }
    }

    fn sess(&self) -> Option<&'a Session> {
        self.strm.map(|(_, s)| s)
    }

    fn req_head(&self) -> Option<&'a Head> {
        self.sess()?.txn.req.head.as_ref()
    }

    fn res_head(&self) -> Option<&'a Head> {
        self.sess()?.txn.rsp.head.as_ref()
    }

    fn dir_head(&self, dir: Option<SmpDir>) -> Option<&'a Head> {
        match dir.unwrap_or(self.dir) {
            SmpDir::Req => self.req_head(),
            SmpDir::Res => self.res_head(),
        }
    }

    /// The request target, as it is now (rules may have changed it).
    fn uri(&self) -> Option<&'a [u8]> {
        match &self.req_head()?.start {
            StartLine::Request { uri, .. } => Some(uri.as_bytes()),
            StartLine::Response { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fetches

/// A fetch function: appends every value found to `out`, in message order.
pub type FetchFn = fn(&[Arg], &SmpCtx, &mut Vec<SmpData>);

/// A converter: changes the value in place; false when the sample must be dropped.
pub type ConvFn = fn(&[Arg], &mut SmpData, &mut SmpCtx) -> bool;

/// A keyword's argument checker (`val_args`): may rewrite the arguments.
pub type ArgCheck = fn(&mut [Arg]) -> Result<(), String>;

/// A sample fetch keyword (`struct sample_fetch`).
pub struct SampleFetchKw {
    /// The keyword.
    pub kw: &'static str,
    /// The function.
    pub process: FetchFn,
    /// Its arguments.
    pub arg_mask: ArgMask,
    /// Their checker.
    pub val_args: Option<ArgCheck>,
    /// The type of what it returns.
    pub out_type: SmpType,
    /// Which message it reads when it depends on the rule's direction (`None`: either
    /// the one named by the keyword, or none).
    pub dir_dependent: bool,
}

/// A converter keyword (`struct sample_conv`).
pub struct SampleConvKw {
    /// The keyword.
    pub kw: &'static str,
    /// The function.
    pub process: ConvFn,
    /// Its arguments.
    pub arg_mask: ArgMask,
    /// Their checker.
    pub val_args: Option<ArgCheck>,
    /// The type it takes.
    pub in_type: SmpType,
    /// The type it returns.
    pub out_type: SmpType,
}

fn push_str(out: &mut Vec<SmpData>, v: &[u8]) {
    out.push(SmpData::Str(v.to_vec()));
}

/// Splits a header value at commas (outside double quotes) and trims each part, as
/// HAProxy's `http_find_header()` does for `hdr()`.
pub fn split_values(v: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, &c) in v.iter().enumerate() {
        match c {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(v[start..i].trim_ascii());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(v[start..].trim_ascii());
    parts
}

/// The values of header `name` of `head` (all of them, or the one at `occ`: from the
/// start when positive, from the end when negative), comma-split unless `full`. Each
/// value comes without its leading and trailing spaces and tabs, as 2.6's
/// `http_find_header()` returns it (a `set-header` value ending in a space reads back
/// without it).
fn header_values<'h>(head: &'h Head, name: &[u8], occ: i64, full: bool) -> Vec<&'h [u8]> {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let mut vals: Vec<&[u8]> = Vec::new();
    for (n, v) in &head.headers {
        if name.is_empty() || *n == name {
            if full { vals.push(v.trim_ascii()) } else { vals.extend(split_values(v)) }
        }
    }
    match occ {
        0 => vals,
        o if o > 0 => vals.get(o as usize - 1).map(|v| vec![*v]).unwrap_or_default(),
        o => {
            let back = o.unsigned_abs() as usize;
            if back <= vals.len() { vec![vals[vals.len() - back]] } else { Vec::new() }
        }
    }
}

fn fetch_hdr_in(dir: Option<SmpDir>, full: bool) -> impl Fn(&[Arg], &SmpCtx, &mut Vec<SmpData>) {
    move |a, c, out| {
        if let Some(h) = c.dir_head(dir) {
            for v in header_values(h, a[0].str(), a[1].sint(), full) {
                push_str(out, v);
            }
        }
    }
}

macro_rules! hdr_fetch {
    ($name:ident, $dir:expr, $full:expr) => {
        fn $name(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
            fetch_hdr_in($dir, $full)(a, c, out)
        }
    };
}
hdr_fetch!(smp_fetch_hdr, None, false);
hdr_fetch!(smp_fetch_req_hdr, Some(SmpDir::Req), false);
hdr_fetch!(smp_fetch_res_hdr, Some(SmpDir::Res), false);
hdr_fetch!(smp_fetch_fhdr, None, true);
hdr_fetch!(smp_fetch_req_fhdr, Some(SmpDir::Req), true);
hdr_fetch!(smp_fetch_res_fhdr, Some(SmpDir::Res), true);

fn hdr_cnt(dir: Option<SmpDir>, full: bool, a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(h) = c.dir_head(dir) {
        out.push(SmpData::Sint(header_values(h, a[0].str(), 0, full).len() as i64));
    }
}

macro_rules! cnt_fetch {
    ($name:ident, $dir:expr, $full:expr) => {
        fn $name(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
            hdr_cnt($dir, $full, a, c, out)
        }
    };
}
cnt_fetch!(smp_fetch_hdr_cnt, None, false);
cnt_fetch!(smp_fetch_req_hdr_cnt, Some(SmpDir::Req), false);
cnt_fetch!(smp_fetch_res_hdr_cnt, Some(SmpDir::Res), false);
cnt_fetch!(smp_fetch_fhdr_cnt, None, true);
cnt_fetch!(smp_fetch_req_fhdr_cnt, Some(SmpDir::Req), true);
cnt_fetch!(smp_fetch_res_fhdr_cnt, Some(SmpDir::Res), true);

/// `hdr_ip(name[,occ])`: the header's values that are addresses.
fn smp_fetch_hdr_ip(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let mut vals = Vec::new();
    smp_fetch_hdr(a, c, &mut vals);
    out.extend(vals.into_iter().filter_map(|v| smp_cast(v, SmpType::SMP_T_ADDR)));
}

/// `req.hdr_names([delim])`: the request's header names, joined.
fn smp_fetch_hdr_names(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(h) = c.req_head() {
        let delim: &[u8] = if matches!(a[0], Arg::None) { b"," } else { a[0].str() };
        out.push(SmpData::Str(h.headers.iter().map(|(n, _)| n.as_bytes()).collect::<Vec<_>>().join(delim)));
    }
}

/// `req.hdrs`: the whole request head's header block, as forwarded.
fn smp_fetch_hdrs(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(h) = c.req_head() {
        let mut v = Vec::new();
        for (n, val) in &h.headers {
            v.extend_from_slice(n.as_bytes());
            v.extend_from_slice(b": ");
            v.extend_from_slice(val);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"\r\n");
        out.push(SmpData::Str(v));
    }
}

/// The path part of a request target: from the first `/` after any scheme and
/// authority, to the `?` (excluded when `with_query` is false).
pub fn uri_path(uri: &[u8], with_query: bool) -> &[u8] {
    let u = if uri.first() == Some(&b'/') || uri == b"*" {
        uri
    } else {
        match uri.windows(3).position(|w| w == b"://") {
            Some(i) => {
                let rest = &uri[i + 3..];
                rest.iter().position(|&c| c == b'/').map_or(&rest[rest.len()..], |p| &rest[p..])
            }
            None => uri,
        }
    };
    if with_query { u } else { u.iter().position(|&c| c == b'?').map_or(u, |q| &u[..q]) }
}

fn smp_fetch_path(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    match c.uri() {
        Some(u) => push_str(out, uri_path(u, false)),
        None => {
            // Once the head has left, the path kept for the transaction's rules.
            if let Some(s) = c.sess().filter(|s| s.txn.req_line.is_some()) {
                push_str(out, &s.txn.path)
            }
        }
    }
}

fn smp_fetch_pathq(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(u) = c.uri() {
        push_str(out, uri_path(u, true));
    }
}

fn smp_fetch_url(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(u) = c.uri() {
        push_str(out, u);
    }
}

fn smp_fetch_query(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(u) = c.uri()
        && let Some(q) = u.iter().position(|&c| c == b'?')
    {
        push_str(out, &u[q + 1..]);
    }
}

/// `base`: the `Host` header followed by the path.
fn smp_fetch_base(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let (Some(h), Some(u)) = (c.req_head(), c.uri()) {
        let mut v = h.value("host").unwrap_or_default().to_vec();
        v.extend_from_slice(uri_path(u, false));
        out.push(SmpData::Str(v));
    }
}

/// The host part of an absolute request target, and its port.
fn uri_authority(u: &[u8]) -> Option<&[u8]> {
    let i = u.windows(3).position(|w| w == b"://")?;
    let rest = &u[i + 3..];
    Some(&rest[..rest.iter().position(|&c| c == b'/').unwrap_or(rest.len())])
}

fn smp_fetch_url_ip(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(a) = c.uri().and_then(uri_authority) {
        let host = a.split(|&c| c == b':').next().unwrap_or(a);
        if let Some(ip) = std::str::from_utf8(host).ok().and_then(|h| h.parse::<Ipv4Addr>().ok()) {
            out.push(SmpData::Ipv4(ip));
        }
    }
}

fn smp_fetch_url_port(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(a) = c.uri().and_then(uri_authority) {
        let port = a.iter().position(|&c| c == b':').map_or(80, |p| read_int64(&a[p + 1..]).0);
        out.push(SmpData::Sint(port));
    }
}

/// `url_param(name[,delim])`: the value of the first query parameter `name` (of the
/// first parameter when `name` is empty).
fn smp_fetch_url_param(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Some(u) = c.uri() else { return };
    let Some(q) = u.iter().position(|&c| c == b'?') else { return };
    let delim = a[1].str().first().copied().unwrap_or(b'&');
    let name = a[0].str();
    for p in u[q + 1..].split(|&c| c == delim || (delim == b'&' && c == b';')) {
        let (n, v) = match p.iter().position(|&c| c == b'=') {
            Some(e) => (&p[..e], &p[e + 1..]),
            None => (p, &p[p.len()..]),
        };
        if name.is_empty() || n == name {
            push_str(out, v);
            return;
        }
    }
}

fn smp_fetch_meth(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(StartLine::Request { method, .. }) = c.req_head().map(|h| &h.start) {
        out.push(SmpData::Meth(method.as_bytes().to_vec()));
    } else if let Some(line) = c.sess().and_then(|s| s.txn.req_line.as_deref()) {
        out.push(SmpData::Meth(line.split(' ').next().unwrap_or_default().as_bytes().to_vec()));
    }
}

/// `req.ver`: `1.0` or `1.1`.
fn smp_fetch_rqver(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(StartLine::Request { version, .. }) = c.req_head().map(|h| &h.start) {
        push_str(out, version.strip_prefix("HTTP/").unwrap_or(version).as_bytes());
    }
}

/// `req.proto_http`: the request was parsed as HTTP (the predefined `HTTP` ACL).
/// On a TCP stream, the buffer's bytes are parsed as 1.5's `smp_prefetch_http()` does:
/// an incomplete head may still become one.
fn smp_fetch_proto_http(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if c.req_head().is_some() {
        out.push(SmpData::Bool(true));
        return;
    }
    let Some((b, data)) = l6_input(c, SmpDir::Req) else {
        out.push(SmpData::Bool(false));
        return;
    };
    match crate::haproxy::h1::head_len(data) {
        // The HTTP/2 preface is HTTP too: 2.6 then refuses it once the stream is HTTP/1.
        Some(hl) => out.push(SmpData::Bool(
            crate::haproxy::h1::parse_request(&data[..hl], 101)
                .map_or_else(|e| e.reason == "HTTP/2 preface", |_| true),
        )),
        None if may_grow(b) => c.may_change.set(true),
        None => out.push(SmpData::Bool(false)),
    }
}

/// http_htx.c:smp_fetch_is_htx() in 2.6 (`internal.strm.is_htx`): the stream is HTTP.
fn smp_fetch_is_htx(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        out.push(SmpData::Bool(s.is_htx(w)));
    }
}

/// http_fetch.c:smp_fetch_http_first_req() in 2.6: the request is the first one of its
/// client connection (`!(txn->flags & TX_NOT_FIRST)`).
fn smp_fetch_http_first_req(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(s) = c.sess().filter(|s| s.txn.req.head.is_some()) {
        out.push(SmpData::Bool(!s.txn.not_first));
    }
}

/// `res.ver`.
fn smp_fetch_stver(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(StartLine::Response { version, .. }) = c.res_head().map(|h| &h.start) {
        push_str(out, version.strip_prefix("HTTP/").unwrap_or(version).as_bytes());
    }
}

fn smp_fetch_stcode(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let st = match c.res_head().map(|h| &h.start) {
        Some(StartLine::Response { status, .. }) => Some(*status),
        _ => c.sess().and_then(|s| s.txn.status),
    };
    if let Some(st) = st {
        out.push(SmpData::Sint(i64::from(st)));
    }
}

fn smp_fetch_reason(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(StartLine::Response { reason, .. }) = c.res_head().map(|h| &h.start) {
        push_str(out, reason.as_bytes());
    }
}

/// The body bytes of the request already in the buffer, up to its announced length.
/// The body of the request (`dir` Req) or response as far as it is in the buffer,
/// de-chunked, while its head is still there to be analysed (2.6's `req.body` and
/// `res.body` read the HTX data blocks). Nothing once the head left.
fn msg_body<'a>(c: &SmpCtx<'a>, dir: SmpDir) -> Option<std::borrow::Cow<'a, [u8]>> {
    let s = c.sess()?;
    c.dir_head(Some(dir))?;
    let (buf, msg) = match dir {
        SmpDir::Req => (&s.req, &s.txn.req),
        SmpDir::Res => (&s.rep, &s.txn.rsp),
    };
    let body = buf.input().get(msg.head_len..)?;
    Some(match msg.framing {
        Some(crate::haproxy::h1::Framing::Length(n)) => body[..body.len().min(n as usize)].into(),
        Some(crate::haproxy::h1::Framing::None) | None => body[..0].into(),
        Some(crate::haproxy::h1::Framing::Chunked) => {
            crate::haproxy::h1::chunked_data(body).0.concat().into()
        }
        Some(crate::haproxy::h1::Framing::UntilClose) => body.into(),
    })
}

fn smp_fetch_body(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(b) = msg_body(c, SmpDir::Req) {
        out.push(SmpData::Bin(b.into_owned()));
    }
}

fn smp_fetch_body_len(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(b) = msg_body(c, SmpDir::Req) {
        out.push(SmpData::Sint(b.len() as i64));
    }
}

/// `res.body` (2.6): the response body in the buffer, de-chunked.
fn smp_fetch_res_body(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(b) = msg_body(c, SmpDir::Res) {
        out.push(SmpData::Bin(b.into_owned()));
    }
}

/// `res.body_len` (2.6): how many response body bytes are in the buffer.
fn smp_fetch_res_body_len(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(b) = msg_body(c, SmpDir::Res) {
        out.push(SmpData::Sint(b.len() as i64));
    }
}

fn smp_fetch_body_size(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(s) = c.sess() {
        match s.txn.req.framing {
            Some(crate::haproxy::h1::Framing::Length(n)) => out.push(SmpData::Sint(n as i64)),
            Some(crate::haproxy::h1::Framing::None) => out.push(SmpData::Sint(0)),
            _ => {}
        }
    }
}

/// The input bytes of the buffer of direction `dir` (`ci_head`/`ci_data`), for the
/// layer-6 fetches; none for an HTTP stream, as 2.6's HTX buffers are "meaningless"
/// to them.
fn l6_input<'a>(c: &SmpCtx<'a>, dir: SmpDir) -> Option<(&'a crate::haproxy::buffers::Buffer, &'a [u8])> {
    let (w, s) = c.strm?;
    if s.is_htx(w) {
        return None;
    }
    let b = if dir == SmpDir::Res { &s.rep } else { &s.req };
    Some((b, b.input()))
}

/// `channel_may_recv() && !channel_input_closed()`: more data may still come.
fn may_grow(b: &crate::haproxy::buffers::Buffer) -> bool {
    use crate::haproxy::buffers::BufFlags;
    !b.flags.intersects(BufFlags::BF_SHUTR | BufFlags::BF_FULL | BufFlags::BF_READ_ERROR)
}

/// payload.c:smp_fetch_len() in 2.6 (`req.len`, `res.len`): the bytes waiting in the
/// buffer; it may change.
fn smp_fetch_len(dir: SmpDir, c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(s) = c.sess() {
        let b = if dir == SmpDir::Res { &s.rep } else { &s.req };
        out.push(SmpData::Sint(b.i() as i64));
        c.may_change.set(true);
    }
}

fn smp_fetch_req_len(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    smp_fetch_len(SmpDir::Req, c, out);
}

fn smp_fetch_res_len(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    smp_fetch_len(SmpDir::Res, c, out);
}

/// payload.c:smp_fetch_payload() in 2.6: `len` bytes at `offset` of the buffer (all
/// that is there from `offset` when `len` is 0, which may still grow). Too few bytes
/// yet: no sample, but it may change.
fn smp_fetch_payload(dir: SmpDir, a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let (off, len) = (a[0].sint().max(0) as usize, a[1].sint().max(0) as usize);
    let Some((b, data)) = l6_input(c, dir) else { return };
    if len > b.size || off.saturating_add(len) > b.size {
        return; // will never match
    }
    if off + len > data.len() {
        c.may_change.set(true);
        return;
    }
    let end = if len == 0 { data.len() } else { off + len };
    out.push(SmpData::Bin(data[off..end].to_vec()));
    if len == 0 && may_grow(b) {
        c.may_change.set(true);
    }
}

/// payload.c:smp_fetch_payload_lv() in 2.6: a block whose big-endian length is
/// `len_size` bytes at `len_offset`; the block follows the length, or starts at the
/// third argument (absolute, or relative when it was written with a sign).
fn smp_fetch_payload_lv(dir: SmpDir, a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let (len_off, len_size) = (a[0].sint().max(0) as usize, a[1].sint().max(0) as usize);
    let Some((b, data)) = l6_input(c, dir) else { return };
    if len_off + len_size > data.len() {
        c.may_change.set(true);
        return;
    }
    let buf_size = data[len_off..len_off + len_size]
        .iter()
        .fold(0usize, |n, &x| n.saturating_mul(256).saturating_add(x.into()));
    let mut buf_off = len_off + len_size;
    if let Arg::Sint(o) = a[2] {
        if o & 1 == 1 {
            buf_off = (buf_off as i64 + (o >> 1)).max(0) as usize;
        } else {
            buf_off = (o >> 1).max(0) as usize;
        }
    }
    if buf_size == 0 || buf_size > b.size || buf_off + buf_size > b.size {
        return; // will never match
    }
    if buf_off + buf_size > data.len() {
        c.may_change.set(true);
        return;
    }
    out.push(SmpData::Bin(data[buf_off..buf_off + buf_size].to_vec()));
}

macro_rules! payload_fetches {
    ($($name:ident => $f:ident, $dir:expr;)*) => {$(
        fn $name(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
            $f($dir.unwrap_or(c.dir), a, c, out)
        }
    )*};
}
payload_fetches! {
    smp_fetch_req_payload => smp_fetch_payload, Some(SmpDir::Req);
    smp_fetch_res_payload => smp_fetch_payload, Some(SmpDir::Res);
    smp_fetch_dir_payload => smp_fetch_payload, None;
    smp_fetch_req_payload_lv => smp_fetch_payload_lv, Some(SmpDir::Req);
    smp_fetch_res_payload_lv => smp_fetch_payload_lv, Some(SmpDir::Res);
    smp_fetch_dir_payload_lv => smp_fetch_payload_lv, None;
    smp_fetch_req_ssl_hello_type => smp_fetch_ssl_hello_type, Some(SmpDir::Req);
    smp_fetch_res_ssl_hello_type => smp_fetch_ssl_hello_type, Some(SmpDir::Res);
}

/// payload.c:val_payload_lv() in 2.6: a positive offset, a non-zero length, and an
/// optional third offset, relative when signed (kept as `offset * 2 + 1`).
fn val_payload_lv(a: &mut [Arg]) -> Result<(), String> {
    if a[0].sint() < 0 {
        return Err("payload offset1 must be positive".into());
    }
    if a[1].sint() == 0 {
        return Err("payload length must be > 0".into());
    }
    if let Arg::Str(s) = &a[2]
        && !s.is_empty()
    {
        let relative = matches!(s[0], b'+' | b'-');
        let (i, used) = read_int64(s);
        if used != s.len() {
            return Err("payload offset2 is not a number".into());
        }
        if a[0].sint() + a[1].sint() + i < 0 {
            return Err("payload offset2 too negative".into());
        }
        a[2] = Arg::Sint(if relative { (i << 1) + 1 } else { i << 1 });
    }
    Ok(())
}

/// payload.c:smp_fetch_ssl_hello_type() in 2.6: the handshake type of an SSLv3/TLS
/// record at the start of the buffer (1: client hello, 2: server hello), once the
/// whole handshake message is there.
fn smp_fetch_ssl_hello_type(dir: SmpDir, _: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Some((_, d)) = l6_input(c, dir) else { return };
    let Some(&first) = d.first() else {
        c.may_change.set(true);
        return;
    };
    if !((0x14..=0x17).contains(&first) || first == 0xff) {
        return;
    }
    if d.len() < 9 {
        c.may_change.set(true);
        return;
    }
    let version = (usize::from(d[1]) << 16) + usize::from(d[2]);
    let rec_len = (usize::from(d[3]) << 8) + usize::from(d[4]);
    if version < 0x0003_0000 || rec_len < 4 {
        return;
    }
    let hs_len = (usize::from(d[6]) << 16) + (usize::from(d[7]) << 8) + usize::from(d[8]);
    if d.len() < 9 + hs_len {
        c.may_change.set(true);
        return;
    }
    out.push(SmpData::Sint(i64::from(d[5])));
}

/// payload.c:smp_fetch_wait_end() in 2.6: true only on the last pass of the rules
/// (`SMP_OPT_FINAL`); before, "may change", which makes content rules wait for the
/// end of the `inspect-delay`.
fn smp_fetch_wait_end(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if c.opt_final {
        out.push(SmpData::Bool(true));
    } else {
        c.may_change.set(true);
    }
}

/// stream.c:smp_fetch_uniqueid() in 2.6 (`unique-id`): the transaction's unique id.
fn smp_fetch_uniqueid(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(id) = c.sess().and_then(|s| s.unique_id.as_deref()) {
        push_str(out, id);
    }
}

/// stream.c:smp_fetch_last_rule_file() in 2.6: the file of the rule that ended the
/// last rule list with a final action.
fn smp_fetch_last_rule_file(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(r) = c.sess().and_then(|s| s.last_rule.as_ref()) {
        push_str(out, r.file.as_bytes());
    }
}

/// stream.c:smp_fetch_last_rule_line() in 2.6: its line.
fn smp_fetch_last_rule_line(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(r) = c.sess().and_then(|s| s.last_rule.as_ref()) {
        out.push(SmpData::Sint(r.line as i64));
    }
}

fn smp_fetch_src(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(a) = c.sess().and_then(|s| s.cli_addr) {
        out.push(SmpData::from_ip(a.ip()));
    }
}

fn smp_fetch_sport(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(a) = c.sess().and_then(|s| s.cli_addr) {
        out.push(SmpData::Sint(i64::from(a.port())));
    }
}

/// The address the client connected to: the PROXY header's, else the socket's.
fn frontend_addr(c: &SmpCtx) -> Option<std::net::SocketAddr> {
    let (w, s) = c.strm?;
    s.frt_addr.or_else(|| s.si[0].fd.and_then(|fd| w.fdtab.local_addr(fd)))
}

fn smp_fetch_dst(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(a) = frontend_addr(c) {
        out.push(SmpData::from_ip(a.ip()));
    }
}

fn smp_fetch_dport(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(a) = frontend_addr(c) {
        out.push(SmpData::Sint(i64::from(a.port())));
    }
}

/// The connection-level address (2.6's `conn->src`/`conn->dst`): the socket's, as
/// `tcp-request connection set-src/set-dst` left it, whatever the PROXY header and
/// later rules said.
fn conn_addr(c: &SmpCtx, dir: AddrDir) -> Option<std::net::SocketAddr> {
    let (w, s) = c.strm?;
    let a = s.addr_levels().conn[dir as usize];
    match dir {
        AddrDir::Src => a,
        AddrDir::Dst => a.or_else(|| s.si[0].fd.and_then(|fd| w.fdtab.local_addr(fd))),
    }
}

/// tcp_sample.c:smp_fetch_src() in 2.6, as `fc_src`.
fn smp_fetch_fc_src(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    out.extend(conn_addr(c, AddrDir::Src).map(|a| SmpData::from_ip(a.ip())));
}

/// tcp_sample.c:smp_fetch_sport() in 2.6, as `fc_src_port`.
fn smp_fetch_fc_sport(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    out.extend(conn_addr(c, AddrDir::Src).map(|a| SmpData::Sint(i64::from(a.port()))));
}

/// tcp_sample.c:smp_fetch_dst() in 2.6, as `fc_dst`.
fn smp_fetch_fc_dst(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    out.extend(conn_addr(c, AddrDir::Dst).map(|a| SmpData::from_ip(a.ip())));
}

/// tcp_sample.c:smp_fetch_dport() in 2.6, as `fc_dst_port`.
fn smp_fetch_fc_dport(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    out.extend(conn_addr(c, AddrDir::Dst).map(|a| SmpData::Sint(i64::from(a.port()))));
}

/// `fc_http_major`: 1 (haflow speaks HTTP/1 only).
fn smp_fetch_fc_http_major(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if c.sess().is_some() {
        out.push(SmpData::Sint(1));
    }
}

/// `fc_rcvd_proxy`: the connection began with a PROXY protocol header.
fn smp_fetch_fc_rcvd_proxy(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(s) = c.sess() {
        out.push(SmpData::Bool(s.flags.contains(crate::haproxy::session::SessFlags::SN_RCVD_PROXY)));
    }
}

/// connection.c:smp_fetch_fc_pp_authority() in 2.6: the authority TLV of the client
/// connection's PROXY v2 header.
fn smp_fetch_fc_pp_authority(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(v) = c.sess().and_then(|s| s.pp_tlvs.as_ref()).and_then(|t| t.authority.as_deref()) {
        push_str(out, v);
    }
}

/// connection.c:smp_fetch_fc_pp_unique_id() in 2.6: the unique-id TLV of the client
/// connection's PROXY v2 header.
fn smp_fetch_fc_pp_unique_id(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(v) = c.sess().and_then(|s| s.pp_tlvs.as_ref()).and_then(|t| t.unique_id.as_deref()) {
        push_str(out, v);
    }
}

fn smp_fetch_so_name(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm
        && let Some(name) = &w.listeners[s.listener.idx()].name
    {
        push_str(out, name.as_bytes());
    }
}

fn smp_fetch_so_id(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        out.push(SmpData::Sint(i64::from(w.listeners[s.listener.idx()].luid)));
    }
}

fn smp_fetch_fe_name(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        push_str(out, w.proxies[s.fe.idx()].name.as_bytes());
    }
}

fn smp_fetch_fe_id(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        out.push(SmpData::Sint(i64::from(w.proxies[s.fe.idx()].uuid)));
    }
}

fn smp_fetch_be_name(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        push_str(out, w.proxies[s.be.idx()].name.as_bytes());
    }
}

fn smp_fetch_be_id(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        out.push(SmpData::Sint(i64::from(w.proxies[s.be.idx()].uuid)));
    }
}

fn smp_fetch_srv_name(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm
        && let Some(srv) = s.srv
    {
        push_str(out, w.server(srv).name.as_bytes());
    }
}

fn smp_fetch_srv_id(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm
        && let Some(srv) = s.srv
    {
        out.push(SmpData::Sint(i64::from(w.server(srv).puid)));
    }
}

/// A timeout as a sample (`None`: unset, no sample).
fn push_tmo(out: &mut Vec<SmpData>, t: Option<u64>) {
    if let Some(t) = t {
        out.push(SmpData::Sint(t as i64));
    }
}

fn smp_fetch_be_server_timeout(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        push_tmo(out, w.proxies[s.be.idx()].timeout.server);
    }
}

/// `cur_server_timeout`: the server timeout of this session (after `set-timeout`).
fn smp_fetch_cur_server_timeout(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        push_tmo(out, s.timeout_server.or(w.proxies[s.be.idx()].timeout.server));
    }
}

fn smp_fetch_be_tunnel_timeout(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        push_tmo(out, w.proxies[s.be.idx()].timeout.tunnel);
    }
}

fn smp_fetch_cur_tunnel_timeout(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        push_tmo(out, s.timeout_tunnel.or(w.proxies[s.be.idx()].timeout.tunnel));
    }
}

fn smp_fetch_fe_client_timeout(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm {
        push_tmo(out, w.proxies[s.fe.idx()].timeout.client);
    }
}

/// `nbsrv([backend])`: usable servers of a backend (the current one by default).
fn smp_fetch_nbsrv(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Some((w, s)) = c.strm else { return };
    let px = match &a[0] {
        Arg::Str(n) => w.proxies.iter().find(|p| p.name.as_bytes() == n.as_slice() && p.is_backend()),
        _ => Some(&w.proxies[s.be.idx()]),
    };
    if let Some(p) = px {
        let n = if p.srv_act() > 0 { p.srv_act() } else { p.srv_bck() };
        out.push(SmpData::Sint(n as i64));
    }
}

/// The server an `ARGT_SRV` argument names: `backend/server`, or a server of the
/// session's backend (the configuration checked both exist; `del server` cannot remove it).
fn srv_arg<'a>(a: &[Arg], c: &SmpCtx<'a>) -> Option<(&'a Haproxy, &'a Server, ServerId)> {
    let (w, s) = c.strm?;
    let Arg::Str(n) = a.first()? else { return None };
    let n = std::str::from_utf8(n).ok()?;
    let p = match n.rsplit_once('/') {
        Some((be, _)) => w.proxies.iter().find(|p| p.name == be && p.is_backend())?,
        None => &w.proxies[s.be.idx()],
    };
    let name = n.rsplit_once('/').map_or(n, |(_, sv)| sv);
    let i = p.find_server(name)?;
    Some((w, &p.servers[i], ServerId { px: p.id, idx: i as u32 }))
}

/// backend.c:smp_fetch_srv_conn() in 1.5.0: `srv_conn([backend/]server)`, the
/// connections open to the server now.
fn smp_fetch_srv_conn(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((_, sv, _)) = srv_arg(a, c) {
        out.push(SmpData::Sint(i64::from(sv.cur_sess)));
    }
}

/// backend.c:smp_fetch_srv_is_up() in 1.5.0: `srv_is_up([backend/]server)`, true when
/// the server is neither in maintenance nor down by its checks (or those it tracks).
fn smp_fetch_srv_is_up(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((_, sv, _)) = srv_arg(a, c) {
        let up = sv.flags.contains(SrvFlags::SRV_RUNNING) && !sv.flags.contains(SrvFlags::SRV_MAINTAIN);
        out.push(SmpData::Bool(up));
    }
}

/// backend.c:smp_fetch_srv_queue() in 2.6: `srv_queue([backend/]server)`, the sessions
/// waiting for a slot on the server.
fn smp_fetch_srv_queue(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((_, sv, _)) = srv_arg(a, c) {
        out.push(SmpData::Sint(sv.pendconns.len() as i64));
    }
}

/// backend.c:smp_fetch_srv_sess_rate() in 1.5.0: `srv_sess_rate([backend/]server)`,
/// sessions per second sent to the server over the last second.
fn smp_fetch_srv_sess_rate(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, sv, sid)) = srv_arg(a, c) {
        let r = w.cli.stats.srv_sess_rate(sid, sv.counters.cum_sess, w.clock.now_ms.0);
        out.push(SmpData::Sint(r as i64));
    }
}

/// The cookies of the `Cookie` (request) or `Set-Cookie` (response) headers: name and
/// value pairs in order.
fn cookies(head: &Head, res: bool) -> Vec<(&[u8], &[u8])> {
    let mut v = Vec::new();
    for val in head.values(if res { "set-cookie" } else { "cookie" }) {
        let parts: Vec<&[u8]> = if res {
            val.split(|&c| c == b';').take(1).collect()
        } else {
            val.split(|&c| c == b';').collect()
        };
        for p in parts {
            let p = p.trim_ascii();
            if p.is_empty() {
                continue;
            }
            match p.iter().position(|&c| c == b'=') {
                Some(e) => v.push((p[..e].trim_ascii(), p[e + 1..].trim_ascii())),
                None => v.push((p, &p[p.len()..])),
            }
        }
    }
    v
}

fn cook_head<'a>(dir: Option<SmpDir>, c: &SmpCtx<'a>) -> Option<(&'a Head, bool)> {
    let d = dir.unwrap_or(c.dir);
    Some((c.dir_head(Some(d))?, d == SmpDir::Res))
}

/// `cook(name)` and friends: every value of cookie `name` (the first cookie's when
/// `name` is empty).
fn cook_values(dir: Option<SmpDir>, a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Some((h, res)) = cook_head(dir, c) else { return };
    let name = a[0].str();
    let all = cookies(h, res);
    if name.is_empty() {
        if let Some((_, v)) = all.first() {
            push_str(out, v);
        }
        return;
    }
    for (n, v) in all {
        if n == name {
            push_str(out, v);
        }
    }
}

macro_rules! cook_fetch {
    ($name:ident, $dir:expr) => {
        fn $name(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
            cook_values($dir, a, c, out)
        }
    };
}
cook_fetch!(smp_fetch_cookie, None);
cook_fetch!(smp_fetch_req_cookie, Some(SmpDir::Req));
cook_fetch!(smp_fetch_res_cookie, Some(SmpDir::Res));

fn cook_cnt(dir: Option<SmpDir>, a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Some((h, res)) = cook_head(dir, c) else { return };
    let name = a[0].str();
    let n = cookies(h, res).iter().filter(|(n, _)| name.is_empty() || *n == name).count();
    out.push(SmpData::Sint(n as i64));
}

fn smp_fetch_cookie_cnt(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    cook_cnt(None, a, c, out)
}

fn smp_fetch_req_cookie_cnt(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    cook_cnt(Some(SmpDir::Req), a, c, out)
}

fn smp_fetch_res_cookie_cnt(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    cook_cnt(Some(SmpDir::Res), a, c, out)
}

fn cook_val(dir: Option<SmpDir>, a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let mut v = Vec::new();
    cook_values(dir, a, c, &mut v);
    out.extend(v.into_iter().filter_map(|d| smp_cast(d, SmpType::SMP_T_SINT)));
}

fn smp_fetch_cookie_val(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    cook_val(None, a, c, out)
}

fn smp_fetch_req_cookie_val(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    cook_val(Some(SmpDir::Req), a, c, out)
}

fn smp_fetch_res_cookie_val(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    cook_val(Some(SmpDir::Res), a, c, out)
}

/// `capture.req.hdr(N)` / `capture.res.hdr(N)`: what `capture ... header` kept.
fn capture_hdr(res: bool, a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Some(s) = c.sess() else { return };
    let caps = if res { &s.txn.rsp_cap } else { &s.txn.req_cap };
    if let Some(Some(v)) = usize::try_from(a[0].sint()).ok().and_then(|i| caps.get(i)) {
        push_str(out, v);
    }
}

fn smp_fetch_capture_req_hdr(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    capture_hdr(false, a, c, out)
}

fn smp_fetch_capture_res_hdr(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    capture_hdr(true, a, c, out)
}

fn smp_fetch_capture_req_method(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(line) = c.sess().and_then(|s| s.txn.req_line.as_deref()) {
        push_str(out, line.split(' ').next().unwrap_or_default().as_bytes());
    }
}

fn smp_fetch_capture_req_uri(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(line) = c.sess().and_then(|s| s.txn.req_line.as_deref()) {
        push_str(out, line.split(' ').nth(1).unwrap_or_default().as_bytes());
    }
}

/// `var(name[,default])`.
fn smp_fetch_var(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Arg::Var(v) = &a[0] else { return };
    match c.vars.vars_get_by_desc(v) {
        Some(d) => out.push(d.clone()),
        None => {
            if let Arg::Str(d) = &a[1] {
                push_str(out, d)
            }
        }
    }
}

fn smp_fetch_const_str(a: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    push_str(out, a[0].str());
}

fn smp_fetch_const_int(a: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Sint(a[0].sint()));
}

fn smp_fetch_const_bool(a: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Bool(a[0].sint() != 0));
}

fn smp_fetch_const_bin(a: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Bin(a[0].str().to_vec()));
}

fn smp_fetch_const_ipv4(a: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Arg::Ipv4(ip) = a[0] {
        out.push(SmpData::Ipv4(ip));
    }
}

fn smp_fetch_const_ipv6(a: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Arg::Ipv6(ip) = a[0] {
        out.push(SmpData::Ipv6(ip));
    }
}

fn smp_fetch_const_meth(a: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Meth(a[0].str().to_vec()));
}

fn smp_fetch_true(_: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Bool(true));
}

fn smp_fetch_false(_: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Bool(false));
}

fn smp_fetch_env(a: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Ok(v) = std::env::var(String::from_utf8_lossy(a[0].str()).as_ref()) {
        push_str(out, v.as_bytes());
    }
}

fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}

/// `date([offset])`: seconds since the epoch.
fn smp_fetch_date(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let now = match c.strm {
        Some((w, _)) => w.clock.date.duration_since(std::time::UNIX_EPOCH).unwrap_or_default(),
        None => unix_now(),
    };
    out.push(SmpData::Sint(now.as_secs() as i64 + a[0].sint()));
}

fn smp_fetch_pid(_: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Sint(i64::from(std::process::id())));
}

fn smp_fetch_one(_: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Sint(1));
}

fn smp_fetch_zero(_: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Sint(0));
}

fn smp_fetch_stopping(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    out.push(SmpData::Bool(c.strm.is_some_and(|(w, _)| w.stopping)));
}

fn smp_fetch_hostname(_: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    push_str(out, h.trim().as_bytes());
}

/// A process-wide xorshift generator for `rand()` and `uuid()` (HAProxy uses its
/// statistical PRNG: not for secrets).
fn next_random() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = unix_now().as_nanos() as u64 ^ (u64::from(std::process::id()) << 32) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

/// `rand([range])`.
fn smp_fetch_rand(a: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    let r = next_random() as u32;
    let v = match a[0] {
        Arg::Sint(range) if range > 0 => (u64::from(r) * range as u64) >> 32,
        _ => u64::from(r),
    };
    out.push(SmpData::Sint(v as i64));
}

/// `uuid([4])`: a random (version 4) UUID.
fn smp_fetch_uuid(_: &[Arg], _: &SmpCtx, out: &mut Vec<SmpData>) {
    let (a, b) = (next_random(), next_random());
    let s = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    );
    push_str(out, s.as_bytes());
}

fn check_const_bool(a: &mut [Arg]) -> Result<(), String> {
    let v = match a[0].str() {
        b"true" | b"1" => 1,
        b"false" | b"0" => 0,
        other => {
            return Err(format!(
                "Expects 'true', 'false', '0' or '1' as argument, got '{}'",
                String::from_utf8_lossy(other)
            ));
        }
    };
    a[0] = Arg::Sint(v);
    Ok(())
}

fn check_const_bin(a: &mut [Arg]) -> Result<(), String> {
    let s = a[0].str();
    let bin = parse_hex(s).ok_or_else(|| format!("invalid hex string '{}'", String::from_utf8_lossy(s)))?;
    a[0] = Arg::Str(bin);
    Ok(())
}

/// Argument checker of the `srv_*([backend/]server)` fetches: the name is kept and
/// checked once every section is known (`check_config_validity`, as 2.6's
/// `smp_resolve_args`), which also marks the server as one `del server` cannot remove.
fn check_srv_arg(a: &mut [Arg]) -> Result<(), String> {
    if let Some(Arg::Str(n)) = a.first() {
        SRV_REFS.with(|r| r.borrow_mut().push(String::from_utf8_lossy(n).into_owned()));
    }
    Ok(())
}

thread_local! {
    /// Servers named by sample arguments on the configuration line being parsed.
    static SRV_REFS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The `[backend/]server` names sample arguments referred to since the last call.
pub fn take_srv_refs() -> Vec<String> {
    SRV_REFS.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

/// Decodes an even-length hexadecimal string.
fn parse_hex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2).map(|p| Some((hex_digit(p[0])? << 4) | hex_digit(p[1])?)).collect()
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn check_uuid(a: &mut [Arg]) -> Result<(), String> {
    match a[0] {
        Arg::None | Arg::Sint(4) => Ok(()),
        _ => Err("Unsupported UUID version".into()),
    }
}

use ArgT::*;

macro_rules! fetch {
    ($kw:expr, $f:expr, $mask:expr, $chk:expr, $out:ident) => {
        SampleFetchKw {
            kw: $kw,
            process: $f,
            arg_mask: $mask,
            val_args: $chk,
            out_type: SmpType::$out,
            dir_dependent: false,
        }
    };
    ($kw:expr, $f:expr, $mask:expr, $chk:expr, $out:ident, dir) => {
        SampleFetchKw {
            kw: $kw,
            process: $f,
            arg_mask: $mask,
            val_args: $chk,
            out_type: SmpType::$out,
            dir_dependent: true,
        }
    };
}

const HDR_ARGS: ArgMask = args(0, &[ARGT_STR, ARGT_SINT]);
/// `sc_*(<ctr>[,<table>])`.
const SC_ARGS: ArgMask = args(1, &[ARGT_SINT, ARGT_TAB]);
/// `scN_*([<table>])`, `src_*([<table>])`.
const TAB_ARG: ArgMask = args(0, &[ARGT_TAB]);
/// `[backend/]server`, required.
const SRV_ARG: ArgMask = args(1, &[ARGT_SRV]);
/// `table_*(<table>)`.
const TAB_CONV: ArgMask = args(1, &[ARGT_TAB]);
const NAME_ARG: ArgMask = args(0, &[ARGT_STR]);
const PAYLOAD_LV: ArgMask = args(2, &[ARGT_SINT, ARGT_SINT, ARGT_STR]);

/// sample.c's `sample_fetch_keywords` in 2.6 (with the HTTP, connection and proxy fetches
/// of http_fetch.c, connection.c and backend.c that haflow implements).
pub static SAMPLE_FETCH_KEYWORDS: &[SampleFetchKw] = &[
    fetch!("always_false", smp_fetch_false, ARG0, None, SMP_T_BOOL),
    fetch!("always_true", smp_fetch_true, ARG0, None, SMP_T_BOOL),
    fetch!("env", smp_fetch_env, args(1, &[ARGT_STR]), None, SMP_T_STR),
    fetch!("date", smp_fetch_date, args(0, &[ARGT_SINT]), None, SMP_T_SINT),
    fetch!("hostname", smp_fetch_hostname, ARG0, None, SMP_T_STR),
    fetch!("nbproc", smp_fetch_one, ARG0, None, SMP_T_SINT),
    fetch!("nbthread", smp_fetch_one, ARG0, None, SMP_T_SINT),
    fetch!("proc", smp_fetch_one, ARG0, None, SMP_T_SINT),
    fetch!("thread", smp_fetch_zero, ARG0, None, SMP_T_SINT),
    fetch!("pid", smp_fetch_pid, ARG0, None, SMP_T_SINT),
    fetch!("rand", smp_fetch_rand, args(0, &[ARGT_SINT]), None, SMP_T_SINT),
    fetch!("stopping", smp_fetch_stopping, ARG0, None, SMP_T_BOOL),
    fetch!("uuid", smp_fetch_uuid, args(0, &[ARGT_SINT]), Some(check_uuid), SMP_T_STR),
    fetch!("str", smp_fetch_const_str, args(1, &[ARGT_STR]), None, SMP_T_STR),
    fetch!("bool", smp_fetch_const_bool, args(1, &[ARGT_STR]), Some(check_const_bool), SMP_T_BOOL),
    fetch!("int", smp_fetch_const_int, args(1, &[ARGT_SINT]), None, SMP_T_SINT),
    fetch!("ipv4", smp_fetch_const_ipv4, args(1, &[ARGT_IPV4]), None, SMP_T_IPV4),
    fetch!("ipv6", smp_fetch_const_ipv6, args(1, &[ARGT_IPV6]), None, SMP_T_IPV6),
    fetch!("bin", smp_fetch_const_bin, args(1, &[ARGT_STR]), Some(check_const_bin), SMP_T_BIN),
    fetch!("meth", smp_fetch_const_meth, args(1, &[ARGT_STR]), None, SMP_T_METH),
    fetch!("var", smp_fetch_var, args(1, &[ARGT_VAR, ARGT_STR]), None, SMP_T_ANY),
    // Connection and proxy (connection.c, backend.c, frontend.c, listener.c).
    fetch!("src", smp_fetch_src, ARG0, None, SMP_T_ADDR),
    fetch!("src_port", smp_fetch_sport, ARG0, None, SMP_T_SINT),
    fetch!("dst", smp_fetch_dst, ARG0, None, SMP_T_ADDR),
    fetch!("dst_port", smp_fetch_dport, ARG0, None, SMP_T_SINT),
    fetch!("fc_src", smp_fetch_fc_src, ARG0, None, SMP_T_ADDR),
    fetch!("fc_src_port", smp_fetch_fc_sport, ARG0, None, SMP_T_SINT),
    fetch!("fc_dst", smp_fetch_fc_dst, ARG0, None, SMP_T_ADDR),
    fetch!("fc_dst_port", smp_fetch_fc_dport, ARG0, None, SMP_T_SINT),
    fetch!("fc_http_major", smp_fetch_fc_http_major, ARG0, None, SMP_T_SINT),
    fetch!("fc_rcvd_proxy", smp_fetch_fc_rcvd_proxy, ARG0, None, SMP_T_BOOL),
    fetch!("fc_pp_authority", smp_fetch_fc_pp_authority, ARG0, None, SMP_T_STR),
    fetch!("so_name", smp_fetch_so_name, ARG0, None, SMP_T_STR),
    fetch!("so_id", smp_fetch_so_id, ARG0, None, SMP_T_SINT),
    fetch!("fe_name", smp_fetch_fe_name, ARG0, None, SMP_T_STR),
    fetch!("fe_id", smp_fetch_fe_id, ARG0, None, SMP_T_SINT),
    fetch!("be_name", smp_fetch_be_name, ARG0, None, SMP_T_STR),
    fetch!("be_id", smp_fetch_be_id, ARG0, None, SMP_T_SINT),
    fetch!("srv_name", smp_fetch_srv_name, ARG0, None, SMP_T_STR),
    fetch!("srv_id", smp_fetch_srv_id, ARG0, None, SMP_T_SINT),
    fetch!("nbsrv", smp_fetch_nbsrv, args(0, &[ARGT_BE]), None, SMP_T_SINT),
    fetch!("srv_conn", smp_fetch_srv_conn, SRV_ARG, Some(check_srv_arg), SMP_T_SINT),
    fetch!("srv_is_up", smp_fetch_srv_is_up, SRV_ARG, Some(check_srv_arg), SMP_T_BOOL),
    fetch!("srv_queue", smp_fetch_srv_queue, SRV_ARG, Some(check_srv_arg), SMP_T_SINT),
    fetch!("srv_sess_rate", smp_fetch_srv_sess_rate, SRV_ARG, Some(check_srv_arg), SMP_T_SINT),
    fetch!("be_server_timeout", smp_fetch_be_server_timeout, ARG0, None, SMP_T_SINT),
    fetch!("cur_server_timeout", smp_fetch_cur_server_timeout, ARG0, None, SMP_T_SINT),
    fetch!("be_tunnel_timeout", smp_fetch_be_tunnel_timeout, ARG0, None, SMP_T_SINT),
    fetch!("cur_tunnel_timeout", smp_fetch_cur_tunnel_timeout, ARG0, None, SMP_T_SINT),
    fetch!("fe_client_timeout", smp_fetch_fe_client_timeout, ARG0, None, SMP_T_SINT),
    fetch!("req.len", smp_fetch_req_len, ARG0, None, SMP_T_SINT),
    fetch!("req_len", smp_fetch_req_len, ARG0, None, SMP_T_SINT),
    fetch!("res.len", smp_fetch_res_len, ARG0, None, SMP_T_SINT),
    // Layer 6 (payload.c).
    fetch!("payload", smp_fetch_dir_payload, args(2, &[ARGT_SINT, ARGT_SINT]), None, SMP_T_BIN, dir),
    fetch!("req.payload", smp_fetch_req_payload, args(2, &[ARGT_SINT, ARGT_SINT]), None, SMP_T_BIN),
    fetch!("res.payload", smp_fetch_res_payload, args(2, &[ARGT_SINT, ARGT_SINT]), None, SMP_T_BIN),
    fetch!("payload_lv", smp_fetch_dir_payload_lv, PAYLOAD_LV, Some(val_payload_lv), SMP_T_BIN, dir),
    fetch!("req.payload_lv", smp_fetch_req_payload_lv, PAYLOAD_LV, Some(val_payload_lv), SMP_T_BIN),
    fetch!("res.payload_lv", smp_fetch_res_payload_lv, PAYLOAD_LV, Some(val_payload_lv), SMP_T_BIN),
    fetch!("req.ssl_hello_type", smp_fetch_req_ssl_hello_type, ARG0, None, SMP_T_SINT),
    fetch!("req_ssl_hello_type", smp_fetch_req_ssl_hello_type, ARG0, None, SMP_T_SINT),
    fetch!("res.ssl_hello_type", smp_fetch_res_ssl_hello_type, ARG0, None, SMP_T_SINT),
    fetch!("rep_ssl_hello_type", smp_fetch_res_ssl_hello_type, ARG0, None, SMP_T_SINT),
    fetch!("wait_end", smp_fetch_wait_end, ARG0, None, SMP_T_BOOL),
    fetch!("last_rule_file", smp_fetch_last_rule_file, ARG0, None, SMP_T_STR),
    fetch!("unique-id", smp_fetch_uniqueid, ARG0, None, SMP_T_STR),
    fetch!("fc_pp_unique_id", smp_fetch_fc_pp_unique_id, ARG0, None, SMP_T_STR),
    fetch!("last_rule_line", smp_fetch_last_rule_line, ARG0, None, SMP_T_SINT),
    // HTTP (http_fetch.c).
    fetch!("hdr", smp_fetch_hdr, HDR_ARGS, None, SMP_T_STR, dir),
    fetch!("req.hdr", smp_fetch_req_hdr, HDR_ARGS, None, SMP_T_STR),
    fetch!("res.hdr", smp_fetch_res_hdr, HDR_ARGS, None, SMP_T_STR),
    fetch!("shdr", smp_fetch_res_hdr, HDR_ARGS, None, SMP_T_STR),
    fetch!("fhdr", smp_fetch_fhdr, HDR_ARGS, None, SMP_T_STR, dir),
    fetch!("req.fhdr", smp_fetch_req_fhdr, HDR_ARGS, None, SMP_T_STR),
    fetch!("res.fhdr", smp_fetch_res_fhdr, HDR_ARGS, None, SMP_T_STR),
    fetch!("hdr_cnt", smp_fetch_hdr_cnt, NAME_ARG, None, SMP_T_SINT, dir),
    fetch!("req.hdr_cnt", smp_fetch_req_hdr_cnt, NAME_ARG, None, SMP_T_SINT),
    fetch!("res.hdr_cnt", smp_fetch_res_hdr_cnt, NAME_ARG, None, SMP_T_SINT),
    fetch!("shdr_cnt", smp_fetch_res_hdr_cnt, NAME_ARG, None, SMP_T_SINT),
    fetch!("fhdr_cnt", smp_fetch_fhdr_cnt, NAME_ARG, None, SMP_T_SINT, dir),
    fetch!("req.fhdr_cnt", smp_fetch_req_fhdr_cnt, NAME_ARG, None, SMP_T_SINT),
    fetch!("res.fhdr_cnt", smp_fetch_res_fhdr_cnt, NAME_ARG, None, SMP_T_SINT),
    fetch!("hdr_ip", smp_fetch_hdr_ip, HDR_ARGS, None, SMP_T_ADDR, dir),
    fetch!("req.hdr_ip", smp_fetch_hdr_ip, HDR_ARGS, None, SMP_T_ADDR),
    fetch!("req.hdr_names", smp_fetch_hdr_names, NAME_ARG, None, SMP_T_STR),
    fetch!("req.hdrs", smp_fetch_hdrs, ARG0, None, SMP_T_STR),
    fetch!("path", smp_fetch_path, ARG0, None, SMP_T_STR),
    fetch!("pathq", smp_fetch_pathq, ARG0, None, SMP_T_STR),
    fetch!("url", smp_fetch_url, ARG0, None, SMP_T_STR),
    fetch!("req.uri", smp_fetch_url, ARG0, None, SMP_T_STR),
    fetch!("query", smp_fetch_query, ARG0, None, SMP_T_STR),
    fetch!("base", smp_fetch_base, ARG0, None, SMP_T_STR),
    fetch!("url_ip", smp_fetch_url_ip, ARG0, None, SMP_T_IPV4),
    fetch!("url_port", smp_fetch_url_port, ARG0, None, SMP_T_SINT),
    fetch!("url_param", smp_fetch_url_param, args(0, &[ARGT_STR, ARGT_STR]), None, SMP_T_STR),
    fetch!("urlp", smp_fetch_url_param, args(0, &[ARGT_STR, ARGT_STR]), None, SMP_T_STR),
    fetch!("method", smp_fetch_meth, ARG0, None, SMP_T_METH),
    fetch!("req.proto_http", smp_fetch_proto_http, ARG0, None, SMP_T_BOOL),
    fetch!("internal.strm.is_htx", smp_fetch_is_htx, ARG0, None, SMP_T_BOOL),
    fetch!("http_first_req", smp_fetch_http_first_req, ARG0, None, SMP_T_BOOL),
    fetch!("req.ver", smp_fetch_rqver, ARG0, None, SMP_T_STR),
    fetch!("req_ver", smp_fetch_rqver, ARG0, None, SMP_T_STR),
    fetch!("res.ver", smp_fetch_stver, ARG0, None, SMP_T_STR),
    fetch!("resp_ver", smp_fetch_stver, ARG0, None, SMP_T_STR),
    fetch!("status", smp_fetch_stcode, ARG0, None, SMP_T_SINT),
    fetch!("txn.status", smp_fetch_stcode, ARG0, None, SMP_T_SINT),
    fetch!("res.status", smp_fetch_stcode, ARG0, None, SMP_T_SINT),
    fetch!("reason", smp_fetch_reason, ARG0, None, SMP_T_STR),
    fetch!("req.body", smp_fetch_body, ARG0, None, SMP_T_BIN),
    fetch!("req.body_len", smp_fetch_body_len, ARG0, None, SMP_T_SINT),
    fetch!("req.body_size", smp_fetch_body_size, ARG0, None, SMP_T_SINT),
    fetch!("res.body", smp_fetch_res_body, ARG0, None, SMP_T_BIN),
    fetch!("res.body_len", smp_fetch_res_body_len, ARG0, None, SMP_T_SINT),
    fetch!("cook", smp_fetch_cookie, NAME_ARG, None, SMP_T_STR, dir),
    fetch!("req.cook", smp_fetch_req_cookie, NAME_ARG, None, SMP_T_STR),
    fetch!("res.cook", smp_fetch_res_cookie, NAME_ARG, None, SMP_T_STR),
    fetch!("scook", smp_fetch_res_cookie, NAME_ARG, None, SMP_T_STR),
    fetch!("cook_cnt", smp_fetch_cookie_cnt, NAME_ARG, None, SMP_T_SINT, dir),
    fetch!("req.cook_cnt", smp_fetch_req_cookie_cnt, NAME_ARG, None, SMP_T_SINT),
    fetch!("res.cook_cnt", smp_fetch_res_cookie_cnt, NAME_ARG, None, SMP_T_SINT),
    fetch!("scook_cnt", smp_fetch_res_cookie_cnt, NAME_ARG, None, SMP_T_SINT),
    fetch!("cook_val", smp_fetch_cookie_val, NAME_ARG, None, SMP_T_SINT, dir),
    fetch!("req.cook_val", smp_fetch_req_cookie_val, NAME_ARG, None, SMP_T_SINT),
    fetch!("res.cook_val", smp_fetch_res_cookie_val, NAME_ARG, None, SMP_T_SINT),
    fetch!("scook_val", smp_fetch_res_cookie_val, NAME_ARG, None, SMP_T_SINT),
    fetch!("capture.req.hdr", smp_fetch_capture_req_hdr, args(1, &[ARGT_SINT]), None, SMP_T_STR),
    fetch!("capture.res.hdr", smp_fetch_capture_res_hdr, args(1, &[ARGT_SINT]), None, SMP_T_STR),
    fetch!("capture.req.method", smp_fetch_capture_req_method, ARG0, None, SMP_T_STR),
    fetch!("capture.req.uri", smp_fetch_capture_req_uri, ARG0, None, SMP_T_STR),
    // The cache (cache.c).
    fetch!("res.cache_hit", smp_fetch_res_cache_hit, ARG0, None, SMP_T_BOOL),
    fetch!("res.cache_name", smp_fetch_res_cache_name, ARG0, None, SMP_T_STR),
    // Stick tables (stick_table.c in 2.6, session.c in 1.5).
    fetch!("sc_get_gpt0", st::sc_get_gpt0, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_get_gpt0", st::sc0_get_gpt0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_get_gpt0", st::sc1_get_gpt0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_get_gpt0", st::sc2_get_gpt0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_get_gpt0", st::src_get_gpt0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_get_gpc0", st::sc_get_gpc0, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_get_gpc0", st::sc0_get_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_get_gpc0", st::sc1_get_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_get_gpc0", st::sc2_get_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_get_gpc0", st::src_get_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_gpc0_rate", st::sc_gpc0_rate, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_gpc0_rate", st::sc0_gpc0_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_gpc0_rate", st::sc1_gpc0_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_gpc0_rate", st::sc2_gpc0_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_gpc0_rate", st::src_gpc0_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_get_gpc1", st::sc_get_gpc1, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_get_gpc1", st::sc0_get_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_get_gpc1", st::sc1_get_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_get_gpc1", st::sc2_get_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_get_gpc1", st::src_get_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_gpc1_rate", st::sc_gpc1_rate, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_gpc1_rate", st::sc0_gpc1_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_gpc1_rate", st::sc1_gpc1_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_gpc1_rate", st::sc2_gpc1_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_gpc1_rate", st::src_gpc1_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_inc_gpc0", st::sc_inc_gpc0, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_inc_gpc0", st::sc0_inc_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_inc_gpc0", st::sc1_inc_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_inc_gpc0", st::sc2_inc_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_inc_gpc0", st::src_inc_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_inc_gpc1", st::sc_inc_gpc1, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_inc_gpc1", st::sc0_inc_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_inc_gpc1", st::sc1_inc_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_inc_gpc1", st::sc2_inc_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_inc_gpc1", st::src_inc_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_clr_gpc0", st::sc_clr_gpc0, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_clr_gpc0", st::sc0_clr_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_clr_gpc0", st::sc1_clr_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_clr_gpc0", st::sc2_clr_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_clr_gpc0", st::src_clr_gpc0, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_clr_gpc1", st::sc_clr_gpc1, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_clr_gpc1", st::sc0_clr_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_clr_gpc1", st::sc1_clr_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_clr_gpc1", st::sc2_clr_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_clr_gpc1", st::src_clr_gpc1, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_conn_cnt", st::sc_conn_cnt, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_conn_cnt", st::sc0_conn_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_conn_cnt", st::sc1_conn_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_conn_cnt", st::sc2_conn_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_conn_cnt", st::src_conn_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_conn_cur", st::sc_conn_cur, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_conn_cur", st::sc0_conn_cur, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_conn_cur", st::sc1_conn_cur, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_conn_cur", st::sc2_conn_cur, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_conn_cur", st::src_conn_cur, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_conn_rate", st::sc_conn_rate, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_conn_rate", st::sc0_conn_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_conn_rate", st::sc1_conn_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_conn_rate", st::sc2_conn_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_conn_rate", st::src_conn_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_sess_cnt", st::sc_sess_cnt, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_sess_cnt", st::sc0_sess_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_sess_cnt", st::sc1_sess_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_sess_cnt", st::sc2_sess_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_sess_cnt", st::src_sess_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_sess_rate", st::sc_sess_rate, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_sess_rate", st::sc0_sess_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_sess_rate", st::sc1_sess_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_sess_rate", st::sc2_sess_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_sess_rate", st::src_sess_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_http_req_cnt", st::sc_http_req_cnt, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_http_req_cnt", st::sc0_http_req_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_http_req_cnt", st::sc1_http_req_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_http_req_cnt", st::sc2_http_req_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_http_req_cnt", st::src_http_req_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_http_req_rate", st::sc_http_req_rate, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_http_req_rate", st::sc0_http_req_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_http_req_rate", st::sc1_http_req_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_http_req_rate", st::sc2_http_req_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_http_req_rate", st::src_http_req_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_http_err_cnt", st::sc_http_err_cnt, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_http_err_cnt", st::sc0_http_err_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_http_err_cnt", st::sc1_http_err_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_http_err_cnt", st::sc2_http_err_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_http_err_cnt", st::src_http_err_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_http_err_rate", st::sc_http_err_rate, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_http_err_rate", st::sc0_http_err_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_http_err_rate", st::sc1_http_err_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_http_err_rate", st::sc2_http_err_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_http_err_rate", st::src_http_err_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_http_fail_cnt", st::sc_http_fail_cnt, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_http_fail_cnt", st::sc0_http_fail_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_http_fail_cnt", st::sc1_http_fail_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_http_fail_cnt", st::sc2_http_fail_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_http_fail_cnt", st::src_http_fail_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_http_fail_rate", st::sc_http_fail_rate, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_http_fail_rate", st::sc0_http_fail_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_http_fail_rate", st::sc1_http_fail_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_http_fail_rate", st::sc2_http_fail_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_http_fail_rate", st::src_http_fail_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_bytes_in_rate", st::sc_bytes_in_rate, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_bytes_in_rate", st::sc0_bytes_in_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_bytes_in_rate", st::sc1_bytes_in_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_bytes_in_rate", st::sc2_bytes_in_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_bytes_in_rate", st::src_bytes_in_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_bytes_out_rate", st::sc_bytes_out_rate, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_bytes_out_rate", st::sc0_bytes_out_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_bytes_out_rate", st::sc1_bytes_out_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_bytes_out_rate", st::sc2_bytes_out_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_bytes_out_rate", st::src_bytes_out_rate, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_kbytes_in", st::sc_kbytes_in, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_kbytes_in", st::sc0_kbytes_in, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_kbytes_in", st::sc1_kbytes_in, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_kbytes_in", st::sc2_kbytes_in, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_kbytes_in", st::src_kbytes_in, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_kbytes_out", st::sc_kbytes_out, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_kbytes_out", st::sc0_kbytes_out, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_kbytes_out", st::sc1_kbytes_out, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_kbytes_out", st::sc2_kbytes_out, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_kbytes_out", st::src_kbytes_out, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_trackers", st::sc_trackers, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_SINT),
    fetch!("sc0_trackers", st::sc0_trackers, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc1_trackers", st::sc1_trackers, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc2_trackers", st::sc2_trackers, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("src_trackers", st::src_trackers, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("sc_tracked", st::sc_tracked, SC_ARGS, Some(st::check_sc_num_arg), SMP_T_BOOL),
    fetch!("sc0_tracked", st::sc0_tracked, TAB_ARG, Some(st::check_table_arg), SMP_T_BOOL),
    fetch!("sc1_tracked", st::sc1_tracked, TAB_ARG, Some(st::check_table_arg), SMP_T_BOOL),
    fetch!("sc2_tracked", st::sc2_tracked, TAB_ARG, Some(st::check_table_arg), SMP_T_BOOL),
    fetch!("table_cnt", st::table_cnt, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
    fetch!("table_avl", st::table_avl, TAB_ARG, Some(st::check_table_arg), SMP_T_SINT),
];

/// sample.c:find_sample_fetch() in 2.6.
pub fn find_sample_fetch(kw: &str) -> Option<&'static SampleFetchKw> {
    SAMPLE_FETCH_KEYWORDS.iter().find(|f| f.kw == kw)
}

// ---------------------------------------------------------------------------------------
// Converters

fn str_mut(d: &mut SmpData) -> &mut Vec<u8> {
    match d {
        SmpData::Str(s) | SmpData::Bin(s) | SmpData::Meth(s) => s,
        other => {
            *other = SmpData::Str(Vec::new());
            match other {
                SmpData::Str(s) => s,
                _ => unreachable!("just set"),
            }
        }
    }
}

fn sint(d: &SmpData) -> i64 {
    match d {
        SmpData::Sint(i) => *i,
        SmpData::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

fn bytes_of(d: &SmpData) -> &[u8] {
    d.bytes().unwrap_or_default()
}

fn sample_conv_str2lower(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    str_mut(d).make_ascii_lowercase();
    true
}

fn sample_conv_str2upper(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    str_mut(d).make_ascii_uppercase();
    true
}

fn sample_conv_length(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Sint(bytes_of(d).len() as i64);
    true
}

fn sample_conv_bytes(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let v = str_mut(d);
    let off = a[0].sint().max(0) as usize;
    if v.len() <= off {
        v.clear();
        return true;
    }
    v.drain(..off);
    if let Arg::Sint(len) = a[1]
        && (len.max(0) as usize) < v.len()
    {
        v.truncate(len.max(0) as usize);
    }
    true
}

fn is_sep(c: u8, seps: &[u8]) -> bool {
    seps.contains(&c)
}

/// `field(index,separators[,count])`: fields are what lies between single separators
/// (empty fields count); a negative index counts from the end.
fn sample_conv_field(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let (idx, seps) = (a[0].sint(), a[1].str());
    let count = if let Arg::Sint(c) = a[2] { c } else { 1 };
    let v = str_mut(d);
    // Field boundaries: the positions of separators, with the ends.
    let mut bounds = vec![0usize];
    for (i, &c) in v.iter().enumerate() {
        if is_sep(c, seps) {
            bounds.push(i + 1);
        }
    }
    let nfields = bounds.len() as i64;
    let ends: Vec<usize> = bounds.iter().skip(1).map(|b| b - 1).chain([v.len()]).collect();
    let first = if idx > 0 { idx - 1 } else { nfields + idx };
    if first < 0 || first >= nfields {
        v.clear();
        return false;
    }
    // `count` fields from the index, towards the end (or the start, when negative).
    let (lo, hi) = if count <= 0 {
        if idx > 0 { (first, nfields - 1) } else { (0, first) }
    } else if idx > 0 {
        (first, (first + count - 1).min(nfields - 1))
    } else {
        ((first - count + 1).max(0), first)
    };
    let (start, end) = (bounds[lo as usize], ends[hi as usize]);
    *v = v[start..end].to_vec();
    true
}

/// `word(index,separators[,count])`: words are runs of non-separators (empty ones do not
/// count); a negative index counts from the end.
fn sample_conv_word(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let (idx, seps) = (a[0].sint(), a[1].str());
    let count = if let Arg::Sint(c) = a[2] { c } else { 1 };
    let v = str_mut(d);
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, &c) in v.iter().enumerate() {
        match (is_sep(c, seps), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, v.len()));
    }
    let n = words.len() as i64;
    let first = if idx > 0 { idx - 1 } else { n + idx };
    if first < 0 || first >= n {
        v.clear();
        return true;
    }
    let (lo, hi) = if count <= 0 {
        if idx > 0 { (first, n - 1) } else { (0, first) }
    } else if idx > 0 {
        (first, (first + count - 1).min(n - 1))
    } else {
        ((first - count + 1).max(0), first)
    };
    let (s, e) = (words[lo as usize].0, words[hi as usize].1);
    *v = v[s..e].to_vec();
    true
}

fn check_field(a: &mut [Arg]) -> Result<(), String> {
    if a[0].sint() == 0 {
        return Err("Unexpected value 0 for index".into());
    }
    if a[1].str().is_empty() {
        return Err("Empty separators list".into());
    }
    Ok(())
}

/// sample.c:sample_conv_regsub_check() in 2.6, with the compiling HAProxy does when it
/// resolves the argument (`regex_comp()` with groups, case-insensitive for `i`).
fn check_regsub(a: &mut [Arg]) -> Result<(), String> {
    let (mut icase, mut glob) = (false, false);
    for &c in a[2].str() {
        match c {
            b'i' => icase = true,
            b'g' => glob = true,
            _ => return Err(format!("invalid regex flag '{}', only 'i' and 'g' are supported", c as char)),
        }
    }
    let re = regex_comp(&String::from_utf8_lossy(a[0].str()), !icase, true)?;
    a[0] = Arg::Reg(re, glob);
    Ok(())
}

/// sample.c:sample_conv_regsub() in 2.6: each round copies the bytes before the match
/// and the replacement; an empty match at the start of the rest also copies one byte, so
/// the next round moves on. Without `g`, one round.
fn sample_conv_regsub(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let Arg::Reg(re, glob) = &a[0] else { return false };
    let subst = a[1].str();
    let v = str_mut(d);
    let end = v.len();
    let mut out = Vec::with_capacity(end);
    let mut start = 0;
    loop {
        let found = if *glob || start == 0 { regex_exec_match2(re, v, start) } else { None };
        let Some(pmatch) = found else {
            out.extend_from_slice(&v[start..]);
            break;
        };
        let Some((so, mut eo)) = pmatch[0] else { break };
        out.extend_from_slice(&v[start..so]);
        // A replacement exp_replace rejects adds nothing (HAProxy's -1 length).
        out.extend(exp_replace(v, subst, &pmatch).unwrap_or_default());
        if start >= end {
            break;
        }
        if eo == start {
            out.push(v[eo]);
            eo += 1;
        }
        start = eo;
    }
    *v = out;
    true
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex_encode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() * 2);
    for &c in b {
        out.push(HEX[usize::from(c >> 4)]);
        out.push(HEX[usize::from(c & 15)]);
    }
    out
}

fn sample_conv_bin2hex(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Str(hex_encode(bytes_of(d)));
    true
}

fn sample_conv_hex2int(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let mut n: i64 = 0;
    for &c in bytes_of(d) {
        let Some(h) = hex_digit(c) else { return false };
        n = (n << 4) + i64::from(h);
    }
    *d = SmpData::Sint(n);
    true
}

/// `be2dec(separator,chunk_size[,truncate])`.
fn sample_conv_be2dec(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let (sep, chunk, trunc) = (a[0].str(), a[1].sint().max(1) as usize, a[2].sint() != 0);
    let input = bytes_of(d);
    let mut out = Vec::new();
    for (i, c) in input.chunks(chunk).enumerate() {
        if trunc && c.len() < chunk {
            break;
        }
        if i > 0 {
            out.extend_from_slice(sep);
        }
        let n = c.iter().fold(0u64, |n, &b| (n << 8) + u64::from(b));
        out.extend_from_slice(n.to_string().as_bytes());
    }
    *d = SmpData::Str(out);
    true
}

fn check_be2dec(a: &mut [Arg]) -> Result<(), String> {
    let c = a[1].sint();
    if c <= 0 || c > 8 {
        return Err(format!("chunk_size out of [1..8] range ({c})"));
    }
    if !matches!(a[2].sint(), 0 | 1) {
        return Err(format!("Unsupported truncate value ({})", a[2].sint()));
    }
    Ok(())
}

/// `be2hex([separator[,chunk_size[,truncate]]])`.
fn sample_conv_be2hex(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let (sep, trunc) = (a[0].str(), a[2].sint() != 0);
    let input = bytes_of(d);
    let chunk = if sep.is_empty() && !trunc { input.len().max(1) } else { a[1].sint().max(1) as usize };
    let mut out = Vec::new();
    for (i, c) in input.chunks(chunk).enumerate() {
        if trunc && c.len() < chunk {
            break;
        }
        if i > 0 {
            out.extend_from_slice(sep);
        }
        out.extend_from_slice(&hex_encode(c));
    }
    *d = SmpData::Str(out);
    true
}

fn check_be2hex(a: &mut [Arg]) -> Result<(), String> {
    if a[1].sint() <= 0 && (!a[0].str().is_empty() || a[2].sint() != 0) {
        return Err(format!("chunk_size needs to be positive ({})", a[1].sint()));
    }
    if !matches!(a[2].sint(), 0 | 1) {
        return Err(format!("Unsupported truncate value ({})", a[2].sint()));
    }
    Ok(())
}

fn sample_conv_bin2base64(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Str(base64::engine::general_purpose::STANDARD.encode(bytes_of(d)).into_bytes());
    true
}

fn sample_conv_base642bin(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    match base64::engine::general_purpose::STANDARD.decode(bytes_of(d)) {
        Ok(b) => {
            *d = SmpData::Bin(b);
            true
        }
        Err(_) => false,
    }
}

fn sample_conv_bin2base64url(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Str(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes_of(d)).into_bytes());
    true
}

fn sample_conv_base64url2bin(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    match engine.decode(bytes_of(d)) {
        Ok(b) => {
            *d = SmpData::Bin(b);
            true
        }
        Err(_) => false,
    }
}

/// sample.c:smp_check_date_unit() in 2.6: the unit argument (`s`, `ms`, `us`) becomes
/// its `TIME_UNIT_*` number (0, 1, 2).
fn smp_check_date_unit(a: &mut [Arg]) -> Result<(), String> {
    let unit = match &a[1] {
        Arg::None => return Ok(()),
        Arg::Str(u) => match u.as_slice() {
            b"s" => 0,
            b"ms" => 1,
            b"us" => 2,
            other => {
                return Err(format!("expects 's', 'ms' or 'us', got '{}'", String::from_utf8_lossy(other)));
            }
        },
        _ => return Err("Unexpected arg type".into()),
    };
    a[1] = Arg::Sint(unit);
    Ok(())
}

/// The civil date (year, month 1-12, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, usize, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as usize, d)
}

/// http_conv.c:sample_conv_http_date() in 2.6 (`http_date([offset[,unit]])`): a date in
/// seconds (or `ms`/`us`, whose fraction is printed) as an IMF-fixdate in GMT.
fn sample_conv_http_date(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let SmpData::Sint(mut v) = *d else { return false };
    if let Arg::Sint(off) = a[0] {
        v = v.wrapping_add(off);
    }
    let unit = if let Arg::Sint(u) = a[1] { u } else { 0 };
    let (mut frac, div) = (0, [1, 1000, 1_000_000][unit.clamp(0, 2) as usize]);
    if div > 1 {
        frac = v % div;
        v /= div;
    }
    // As 2.6, the 55 bits mask keeps very large dates positive.
    let secs = v & 0x007f_ffff_ffff_ffff;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, mday) = civil_from_days(days);
    let (h, mi, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    let wday = DAYS[(days % 7) as usize];
    let mon = crate::haproxy::log::MONTHS[m - 1];
    let frac = if div > 1 { format!(".{frac}") } else { String::new() };
    *d = SmpData::Str(format!("{wday}, {mday:02} {mon} {y:04} {h:02}:{mi:02}:{s:02}{frac} GMT").into_bytes());
    true
}

/// `url_dec([in_form])`: `%XX` decoded; `+` becomes a space in the query part (or
/// everywhere when `in_form` is set). A bad escape drops the sample.
fn sample_conv_url_dec(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let v = bytes_of(d);
    let mut in_form = a[0].sint() != 0;
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'?' => {
                in_form = true;
                out.push(b'?');
            }
            b'+' if in_form => out.push(b' '),
            b'%' => {
                let (Some(h), Some(l)) =
                    (v.get(i + 1).copied().and_then(hex_digit), v.get(i + 2).copied().and_then(hex_digit))
                else {
                    return false;
                };
                out.push((h << 4) | l);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    *d = SmpData::Str(out);
    true
}

/// `url_enc([type])`: percent-encodes what is not allowed in a query (`query`, the only
/// type of 2.6).
fn sample_conv_url_enc(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let mut out = Vec::new();
    for &c in bytes_of(d) {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
        }
    }
    *d = SmpData::Str(out);
    true
}

fn check_url_enc(a: &mut [Arg]) -> Result<(), String> {
    match a[0].str() {
        b"" | b"query" => Ok(()),
        other => Err(format!(
            "Unexpected encode type '{}'. Allowed value is 'query'",
            String::from_utf8_lossy(other)
        )),
    }
}

/// `json([input-code])`'s modes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonInput {
    Ascii,
    Utf8,
    Utf8s,
    Utf8p,
    Utf8ps,
}

fn check_json(a: &mut [Arg]) -> Result<(), String> {
    let t = match a[0].str() {
        b"" | b"ascii" => JsonInput::Ascii,
        b"utf8" => JsonInput::Utf8,
        b"utf8s" => JsonInput::Utf8s,
        b"utf8p" => JsonInput::Utf8p,
        b"utf8ps" => JsonInput::Utf8ps,
        _ => {
            return Err(
                "Unexpected input code type. Allowed value are 'ascii', 'utf8', 'utf8s', 'utf8p' and 'utf8ps'"
                    .into(),
            );
        }
    };
    a[0] = Arg::Sint(t as i64);
    Ok(())
}

/// Decodes one UTF-8 character: its value and length, or `None` (with the bytes to
/// skip) for an invalid sequence.
fn utf8_next(b: &[u8]) -> (Option<u32>, usize) {
    let c0 = b[0];
    let (len, init) = match c0 {
        0x00..=0x7f => return (Some(u32::from(c0)), 1),
        0xc2..=0xdf => (2, u32::from(c0 & 0x1f)),
        0xe0..=0xef => (3, u32::from(c0 & 0x0f)),
        0xf0..=0xf4 => (4, u32::from(c0 & 0x07)),
        _ => return (None, 1),
    };
    let mut v = init;
    for i in 1..len {
        match b.get(i) {
            Some(&c) if c & 0xc0 == 0x80 => v = (v << 6) | u32::from(c & 0x3f),
            _ => return (None, i),
        }
    }
    (Some(v), len)
}

fn sample_conv_json(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let mode = match a[0].sint() {
        1 => JsonInput::Utf8,
        2 => JsonInput::Utf8s,
        3 => JsonInput::Utf8p,
        4 => JsonInput::Utf8ps,
        _ => JsonInput::Ascii,
    };
    let v = bytes_of(d);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let c = if mode == JsonInput::Ascii {
            i += 1;
            u32::from(v[i - 1])
        } else {
            let (c, n) = utf8_next(&v[i..]);
            i += n;
            match c {
                Some(c) if c <= 0xffff => c,
                _ if matches!(mode, JsonInput::Utf8 | JsonInput::Utf8p) => return false,
                _ => continue,
            }
        };
        match c {
            0x22 => out.extend_from_slice(b"\\\""),
            0x5c => out.extend_from_slice(b"\\\\"),
            0x2f => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0d => out.extend_from_slice(b"\\r"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x20..=0x7e => out.push(c as u8),
            _ => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
        }
    }
    *d = SmpData::Str(out);
    true
}

fn check_json_query(a: &mut [Arg]) -> Result<(), String> {
    if a[0].str().is_empty() {
        return Err("json_path must not be empty".into());
    }
    match a[1].str() {
        b"" => {}
        b"int" => a[1] = Arg::Sint(0),
        _ => return Err("output_type only supports \"int\" as argument".into()),
    }
    Ok(())
}

/// Follows a JSON path (`$.a.b[2]`, `$['key']`) in a parsed document.
fn json_path<'v>(root: &'v serde_json::Value, path: &[u8]) -> Option<&'v serde_json::Value> {
    let p = std::str::from_utf8(path).ok()?.strip_prefix('$')?;
    let mut cur = root;
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                // A key runs to the next unescaped `.` or `[`; `\.` is a dot in it.
                let mut key = Vec::new();
                let mut j = i + 1;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        j += 1;
                    }
                    key.push(b[j]);
                    j += 1;
                }
                cur = cur.get(std::str::from_utf8(&key).ok()?)?;
                i = j;
            }
            b'[' => {
                let end = b[i..].iter().position(|&c| c == b']')? + i;
                let inner = &p[i + 1..end];
                cur = match inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    Some(key) => cur.get(key)?,
                    None => cur.get(inner.parse::<usize>().ok()?)?,
                };
                i = end + 1;
            }
            _ => return None,
        }
    }
    Some(cur)
}

/// Formats a float as C's `%g` (six significant digits, exponent past 1e6 or under 1e-4).
fn format_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        let s = format!("{:.5e}", v);
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') { mant.trim_end_matches('0').trim_end_matches('.') } else { mant };
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    let s = format!("{:.*}", decimals, v);
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// `json_query(path[,int])`: the value at `path` of a JSON document.
fn sample_conv_json_query(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    const JSON_INT_MAX: i64 = (1 << 53) - 1;
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes_of(d)) else { return false };
    let Some(v) = json_path(&doc, a[0].str()) else { return false };
    *d = match v {
        serde_json::Value::Number(n) => {
            if matches!(a[1], Arg::Sint(_)) {
                let i = match n.as_i64() {
                    Some(i) => i,
                    None => n.as_f64().map_or(0, |f| f as i64),
                };
                if !(-JSON_INT_MAX..=JSON_INT_MAX).contains(&i) {
                    return false;
                }
                SmpData::Sint(i)
            } else {
                SmpData::Str(format_g(n.as_f64().unwrap_or(0.0)).into_bytes())
            }
        }
        serde_json::Value::Bool(b) => SmpData::Bool(*b),
        serde_json::Value::String(s) => SmpData::Str(s.as_bytes().to_vec()),
        _ => return false,
    };
    true
}

fn sample_conv_sha1(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    use sha1::Digest;
    *d = SmpData::Bin(sha1::Sha1::digest(bytes_of(d)).to_vec());
    true
}

fn check_sha2(a: &mut [Arg]) -> Result<(), String> {
    match a[0] {
        Arg::None => a[0] = Arg::Sint(256),
        Arg::Sint(224 | 256 | 384 | 512) => {}
        Arg::Sint(n) => return Err(format!("Unsupported number of bits: '{n}'.")),
        _ => {}
    }
    Ok(())
}

fn sample_conv_sha2(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    use sha2::Digest;
    let b = bytes_of(d);
    let out = match a[0].sint() {
        224 => sha2::Sha224::digest(b).to_vec(),
        384 => sha2::Sha384::digest(b).to_vec(),
        512 => sha2::Sha512::digest(b).to_vec(),
        _ => sha2::Sha256::digest(b).to_vec(),
    };
    *d = SmpData::Bin(out);
    true
}

/// The digests `digest()` and `hmac()` know (OpenSSL's names).
fn digest_of(alg: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    Some(match alg.to_ascii_lowercase().as_slice() {
        b"md5" => md5::Md5::digest(data).to_vec(),
        b"sha1" => sha1::Sha1::digest(data).to_vec(),
        b"sha224" => sha2::Sha224::digest(data).to_vec(),
        b"sha256" => sha2::Sha256::digest(data).to_vec(),
        b"sha384" => sha2::Sha384::digest(data).to_vec(),
        b"sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

fn check_digest(a: &mut [Arg]) -> Result<(), String> {
    match digest_of(a[0].str(), b"") {
        Some(_) => Ok(()),
        None => Err(format!("couldn't get the digest '{}'", String::from_utf8_lossy(a[0].str()))),
    }
}

fn sample_conv_crypto_digest(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    match digest_of(a[0].str(), bytes_of(d)) {
        Some(v) => {
            *d = SmpData::Bin(v);
            true
        }
        None => false,
    }
}

fn hmac_of(alg: &[u8], key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    use hmac::{Hmac, Mac};
    macro_rules! mac {
        ($h:ty) => {{
            let mut m = Hmac::<$h>::new_from_slice(key).ok()?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }};
    }
    Some(match alg.to_ascii_lowercase().as_slice() {
        b"md5" => mac!(md5::Md5),
        b"sha1" => mac!(sha1::Sha1),
        b"sha224" => mac!(sha2::Sha224),
        b"sha256" => mac!(sha2::Sha256),
        b"sha384" => mac!(sha2::Sha384),
        b"sha512" => mac!(sha2::Sha512),
        _ => return None,
    })
}

/// `hmac(alg,key)`: the key is a variable or a base64 string (decoded here, once).
fn check_hmac(a: &mut [Arg]) -> Result<(), String> {
    check_digest(a)?;
    let key = String::from_utf8_lossy(a[1].str()).into_owned();
    if let Ok(v) = register_name(&key) {
        a[1] = Arg::Var(v);
        return Ok(());
    }
    let k = base64::engine::general_purpose::STANDARD
        .decode(key.as_bytes())
        .map_err(|_| "failed to parse key : bad base64 encoding".to_string())?;
    a[1] = Arg::Bin(k);
    Ok(())
}

fn sample_conv_crypto_hmac(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    let key = match &a[1] {
        Arg::Var(v) => {
            let Some(k) = c.vars.vars_get_by_desc(v).cloned().and_then(SmpData::into_str) else {
                return false;
            };
            match base64::engine::general_purpose::STANDARD.decode(&k) {
                Ok(k) => k,
                Err(_) => return false,
            }
        }
        Arg::Bin(k) => k.clone(),
        _ => return false,
    };
    match hmac_of(a[0].str(), &key, bytes_of(d)) {
        Some(v) => {
            *d = SmpData::Bin(v);
            true
        }
        None => false,
    }
}

/// Bob Jenkins' full avalanche on 32 bits, times a prime (intops.h:full_hash() in 2.6).
pub fn full_hash(mut a: u32) -> u32 {
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    // Spread over the tree: a large prime close to 3/4 of it.
    a.wrapping_mul(3_221_225_473)
}

/// hash.c:hash_djb2() in 2.6.
pub fn hash_djb2(b: &[u8]) -> u32 {
    b.iter().fold(5381u32, |h, &c| (h << 5).wrapping_add(h).wrapping_add(u32::from(c)))
}

/// hash.c:hash_sdbm() in 2.6.
pub fn hash_sdbm(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |h, &c| u32::from(c).wrapping_add(h << 6).wrapping_add(h << 16).wrapping_sub(h))
}

/// hash.c:hash_wt6() in 2.6.
pub fn hash_wt6(b: &[u8]) -> u32 {
    let (mut h0, mut h1): (u32, u32) = (0xa53c_965a, 0x5ca6_953a);
    let (mut s0, mut s1): (u32, u32) = (6, 18);
    for &c in b {
        let t = u32::from(c);
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        let t = h1.rotate_left(s0);
        h1 = h0.rotate_left(s1);
        h0 = t;
        let t = ((h0 >> 16) ^ h1) & 0xffff;
        s0 = t & 0x1f;
        s1 = t >> 11;
    }
    h0 ^ h1
}

/// hash.c:hash_crc32c() in 2.6 (Castagnoli).
pub fn hash_crc32c(b: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &c in b {
        crc ^= u32::from(c);
        for _ in 0..8 {
            crc = (crc >> 1) ^ if crc & 1 != 0 { 0x82f6_3b78 } else { 0 };
        }
    }
    !crc
}

macro_rules! hash_conv {
    ($name:ident, $h:expr) => {
        fn $name(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
            let h: u32 = $h(bytes_of(d));
            *d = SmpData::Sint(i64::from(if a[0].sint() != 0 { full_hash(h) } else { h }));
            true
        }
    };
}
hash_conv!(sample_conv_crc32, crc32fast::hash);
hash_conv!(sample_conv_crc32c, hash_crc32c);
hash_conv!(sample_conv_djb2, hash_djb2);
hash_conv!(sample_conv_sdbm, hash_sdbm);
hash_conv!(sample_conv_wt6, hash_wt6);

fn sample_conv_xxh3(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Sint(xxhash_rust::xxh3::xxh3_64_with_seed(bytes_of(d), a[0].sint() as u64) as i64);
    true
}

fn sample_conv_xxh32(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Sint(i64::from(xxhash_rust::xxh32::xxh32(bytes_of(d), a[0].sint() as u32)));
    true
}

fn sample_conv_xxh64(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Sint(xxhash_rust::xxh64::xxh64(bytes_of(d), a[0].sint() as u64) as i64);
    true
}

/// The string value of a variable argument, if it is set and has one.
fn var_str(a: &Arg, c: &SmpCtx) -> Option<Vec<u8>> {
    match a {
        Arg::Var(v) => c.vars.vars_get_by_desc(v).cloned().and_then(SmpData::into_str),
        _ => None,
    }
}

fn sample_conv_concat(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    let var = var_str(&a[1], c);
    let v = str_mut(d);
    v.extend_from_slice(a[0].str());
    if let Some(x) = var {
        v.extend_from_slice(&x);
    }
    v.extend_from_slice(a[2].str());
    true
}

fn sample_conv_add_item(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    let var = var_str(&a[1], c);
    let v = str_mut(d);
    if !v.is_empty() && (var.as_ref().is_some_and(|x| !x.is_empty()) || !a[2].str().is_empty()) {
        v.extend_from_slice(a[0].str());
    }
    if let Some(x) = var {
        v.extend_from_slice(&x);
    }
    v.extend_from_slice(a[2].str());
    true
}

fn check_add_item(a: &mut [Arg]) -> Result<(), String> {
    if matches!(a[1], Arg::None) && a[2].str().is_empty() {
        return Err("one of the optional arguments has to be nonempty".into());
    }
    Ok(())
}

fn sample_conv_strcmp(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    let Some(other) = var_str(&a[0], c) else { return false };
    *d = SmpData::Sint(match bytes_of(d).cmp(other.as_slice()) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    });
    true
}

/// `secure_memcmp(var)`: equality in constant time (for the compared length).
fn sample_conv_secure_memcmp(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    let other = match &a[0] {
        Arg::Var(v) => match c.vars.vars_get_by_desc(v) {
            Some(x) => x.bytes().map(<[u8]>::to_vec),
            None => return false,
        },
        _ => None,
    };
    let Some(other) = other else { return false };
    let mine = bytes_of(d);
    let eq = mine.len() == other.len() && mine.iter().zip(&other).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    *d = SmpData::Bool(eq);
    true
}

fn check_var_arg(a: &mut [Arg]) -> Result<(), String> {
    if matches!(a[0], Arg::Var(_)) { Ok(()) } else { Err("missing variable name".into()) }
}

fn sample_conv_ipmask(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    // c_ipv62ip(): an IPv4-mapped address is masked as IPv4.
    if let SmpData::Ipv6(ip) = d
        && let Some(v4) = ip.to_ipv4_mapped()
    {
        *d = SmpData::Ipv4(v4);
    }
    match d {
        SmpData::Ipv4(ip) => {
            let Arg::Ipv4(m) = a[0] else { return false };
            *ip = Ipv4Addr::from(u32::from(*ip) & u32::from(m));
            true
        }
        SmpData::Ipv6(ip) => {
            let Arg::Ipv6(m) = a[1] else { return false };
            *ip = Ipv6Addr::from(u128::from(*ip) & u128::from(m));
            true
        }
        _ => false,
    }
}

fn sample_conv_iif(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let t = sint(d) != 0;
    *d = SmpData::Str(if t { a[0].str().to_vec() } else { a[1].str().to_vec() });
    true
}

/// `add(value)` and friends: the value is an integer or a variable.
fn check_operator(a: &mut [Arg]) -> Result<(), String> {
    let s = a[0].str().to_vec();
    if let Ok(v) = register_name(&String::from_utf8_lossy(&s)) {
        a[0] = Arg::Var(v);
        return Ok(());
    }
    let (v, n) = read_int64(&s);
    if n != s.len() || s.is_empty() {
        return Err("expects an integer or a variable name".into());
    }
    a[0] = Arg::Sint(v);
    Ok(())
}

/// The operand of an arithmetic converter: its integer, or its variable cast to one.
fn operand(a: &Arg, c: &SmpCtx) -> Option<i64> {
    match a {
        Arg::Sint(i) => Some(*i),
        Arg::Var(v) => match smp_cast(c.vars.vars_get_by_desc(v)?.clone(), SmpType::SMP_T_SINT)? {
            SmpData::Sint(i) => Some(i),
            _ => None,
        },
        _ => None,
    }
}

macro_rules! arith {
    ($name:ident, |$x:ident, $y:ident| $e:expr) => {
        fn $name(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
            let Some($y) = operand(&a[0], c) else { return false };
            let $x = sint(d);
            *d = SmpData::Sint($e);
            true
        }
    };
}
arith!(sample_conv_arith_add, |x, y| x.saturating_add(y));
arith!(sample_conv_arith_sub, |x, y| x.saturating_sub(y));
arith!(sample_conv_arith_mul, |x, y| x.saturating_mul(y));
arith!(sample_conv_arith_div, |x, y| if y == 0 { i64::MAX } else { x.wrapping_div(y) });
arith!(sample_conv_arith_mod, |x, y| if y == 0 { 0 } else { x.wrapping_rem(y) });
arith!(sample_conv_binary_and, |x, y| x & y);
arith!(sample_conv_binary_or, |x, y| x | y);
arith!(sample_conv_binary_xor, |x, y| x ^ y);

fn sample_conv_arith_neg(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let x = sint(d);
    *d = SmpData::Sint(if x == i64::MIN { i64::MAX } else { -x });
    true
}

fn sample_conv_binary_cpl(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Sint(!sint(d));
    true
}

fn sample_conv_arith_bool(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Bool(sint(d) != 0);
    true
}

fn sample_conv_arith_not(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Bool(sint(d) == 0);
    true
}

fn sample_conv_arith_odd(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Bool(sint(d) & 1 == 1);
    true
}

fn sample_conv_arith_even(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Bool(sint(d) & 1 == 0);
    true
}

fn sample_conv_htonl(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    *d = SmpData::Bin((sint(d) as u32).to_be_bytes().to_vec());
    true
}

fn sample_conv_cut_crlf(_: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let v = str_mut(d);
    if let Some(p) = v.iter().position(|&c| c == b'\r' || c == b'\n') {
        v.truncate(p);
    }
    true
}

fn sample_conv_ltrim(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let v = str_mut(d);
    let n = v.iter().take_while(|c| a[0].str().contains(c)).count();
    v.drain(..n);
    true
}

fn sample_conv_rtrim(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    let v = str_mut(d);
    let n = v.iter().rev().take_while(|c| a[0].str().contains(c)).count();
    v.truncate(v.len() - n);
    true
}

/// sample.c:sample_conv_fix_is_valid() in 2.6: is the block a whole valid FIX message?
/// Not yet known (a valid start): no sample, "may change".
fn sample_conv_fix_is_valid(_: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    use crate::haproxy::fix::{FixResult, fix_validate_message};
    c.may_change.set(false);
    match fix_validate_message(bytes_of(d)) {
        FixResult::FIX_VALID_MESSAGE => *d = SmpData::Bool(true),
        FixResult::FIX_INVALID_MESSAGE => *d = SmpData::Bool(false),
        FixResult::FIX_NEED_MORE_DATA => {
            c.may_change.set(true);
            return false;
        }
    }
    true
}

/// sample.c:sample_conv_fix_tag_value() in 2.6: the value of a tag of a FIX message.
fn sample_conv_fix_tag_value(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    use crate::haproxy::fix::{FixTagValue, fix_tag_value};
    c.may_change.set(false);
    let v = match fix_tag_value(bytes_of(d), a[0].sint() as u32) {
        FixTagValue::Found(v) if !v.is_empty() => v.to_vec(),
        FixTagValue::NeedMore => {
            c.may_change.set(true);
            return false;
        }
        _ => return false,
    };
    *d = SmpData::Bin(v);
    true
}

/// sample.c:sample_conv_fix_value_check() in 2.6: a tag HAProxy knows, by number or
/// name, kept as its number (what goes on the wire).
fn sample_conv_fix_value_check(a: &mut [Arg]) -> Result<(), String> {
    let tag = crate::haproxy::fix::fix_tagid(a[0].str());
    if tag == 0 {
        return Err(format!("Unknown FIX tag name '{}'", String::from_utf8_lossy(a[0].str())));
    }
    a[0] = Arg::Sint(i64::from(tag));
    Ok(())
}

/// sample.c:sample_conv_mqtt_is_valid() in 2.6: is the block a whole valid MQTT
/// CONNECT or CONNACK? Not yet known: no sample, "may change".
fn sample_conv_mqtt_is_valid(_: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    use crate::haproxy::mqtt::{MqttResult, mqtt_validate_message};
    c.may_change.set(false);
    match mqtt_validate_message(bytes_of(d)) {
        MqttResult::MQTT_VALID_MESSAGE => *d = SmpData::Bool(true),
        MqttResult::MQTT_INVALID_MESSAGE => *d = SmpData::Bool(false),
        MqttResult::MQTT_NEED_MORE_DATA => {
            c.may_change.set(true);
            return false;
        }
    }
    true
}

/// sample.c:sample_conv_mqtt_field_value() in 2.6: a field of an MQTT packet.
fn sample_conv_mqtt_field_value(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    use crate::haproxy::mqtt::{MqttFieldValue, mqtt_field_value};
    c.may_change.set(false);
    match mqtt_field_value(bytes_of(d), a[0].sint() as u8, a[1].sint() as usize) {
        MqttFieldValue::Found(v) => {
            *d = SmpData::Str(v);
            true
        }
        MqttFieldValue::NeedMore => {
            c.may_change.set(true);
            false
        }
        MqttFieldValue::NotFound => false,
    }
}

/// sample.c:sample_conv_mqtt_field_value_check() in 2.6: a packet type HAProxy knows
/// (by name or number) and a field packets of that type have, kept as numbers.
fn sample_conv_mqtt_field_value_check(a: &mut [Arg]) -> Result<(), String> {
    use crate::haproxy::mqtt::{mqtt_check_type_fieldname, mqtt_typeid};
    let (t, f) =
        (String::from_utf8_lossy(a[0].str()).into_owned(), String::from_utf8_lossy(a[1].str()).into_owned());
    let ptype = mqtt_typeid(t.as_bytes());
    if ptype == 0 {
        return Err(format!("Unknown MQTT type '{t}'"));
    }
    let field = mqtt_check_type_fieldname(ptype, f.as_bytes());
    if field == 0 {
        return Err(format!("Unknown MQTT field name '{f}' for packet type '{t}'"));
    }
    a[0] = Arg::Sint(i64::from(ptype));
    a[1] = Arg::Sint(field as i64);
    Ok(())
}

/// The `set-var(name)` converter: stores the sample and passes it on.
fn smp_conv_store(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    if let Arg::Var(v) = &a[0] {
        c.vars.var_set(v, d.clone());
    }
    true
}

/// The `unset-var(name)` converter.
fn smp_conv_clear(a: &[Arg], _: &mut SmpData, c: &mut SmpCtx) -> bool {
    if let Arg::Var(v) = &a[0] {
        c.vars.var_unset(v);
    }
    true
}

/// The `map` converters: the match method is the keyword's suffix (`map_beg`...), the
/// output type its end (`_int`, `_ip`); the file is loaded once, by the checker.
macro_rules! map_conv {
    ($name:ident, $check:ident, $m:expr, $out:expr) => {
        fn $name(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
            crate::haproxy::map::sample_conv_map(a, d, $out)
        }
        fn $check(a: &mut [Arg]) -> Result<(), String> {
            crate::haproxy::map::sample_load_map(a, $m)
        }
    };
}
use crate::haproxy::pattern::PatMatch as M;
map_conv!(conv_map_str, chk_map_str, M::Str, SmpType::SMP_T_STR);
map_conv!(conv_map_beg, chk_map_beg, M::Beg, SmpType::SMP_T_STR);
map_conv!(conv_map_end, chk_map_end, M::End, SmpType::SMP_T_STR);
map_conv!(conv_map_sub, chk_map_sub, M::Sub, SmpType::SMP_T_STR);
map_conv!(conv_map_dir, chk_map_dir, M::Dir, SmpType::SMP_T_STR);
map_conv!(conv_map_dom, chk_map_dom, M::Dom, SmpType::SMP_T_STR);
map_conv!(conv_map_reg, chk_map_reg, M::Reg, SmpType::SMP_T_STR);

/// `map_regm(file[,default])`: `map_reg` whose value may use the match's `\N` groups.
fn conv_map_regm(a: &[Arg], d: &mut SmpData, _: &mut SmpCtx) -> bool {
    crate::haproxy::map::sample_conv_map_regm(a, d)
}
fn chk_map_regm(a: &mut [Arg]) -> Result<(), String> {
    crate::haproxy::map::sample_load_map(a, M::Regm)
}
map_conv!(conv_map_int, chk_map_int, M::Int, SmpType::SMP_T_STR);
map_conv!(conv_map_ip, chk_map_ip, M::Ip, SmpType::SMP_T_STR);
map_conv!(conv_map_str_int, chk_map_str_int, M::Str, SmpType::SMP_T_SINT);
map_conv!(conv_map_beg_int, chk_map_beg_int, M::Beg, SmpType::SMP_T_SINT);
map_conv!(conv_map_reg_int, chk_map_reg_int, M::Reg, SmpType::SMP_T_SINT);
map_conv!(conv_map_int_int, chk_map_int_int, M::Int, SmpType::SMP_T_SINT);
map_conv!(conv_map_ip_int, chk_map_ip_int, M::Ip, SmpType::SMP_T_SINT);
map_conv!(conv_map_str_ip, chk_map_str_ip, M::Str, SmpType::SMP_T_ADDR);
map_conv!(conv_map_ip_ip, chk_map_ip_ip, M::Ip, SmpType::SMP_T_ADDR);

macro_rules! conv {
    ($kw:expr, $f:expr, $mask:expr, $chk:expr, $in:ident, $out:ident) => {
        SampleConvKw {
            kw: $kw,
            process: $f,
            arg_mask: $mask,
            val_args: $chk,
            in_type: SmpType::$in,
            out_type: SmpType::$out,
        }
    };
}

const SINT0: ArgMask = args(0, &[ARGT_SINT]);
const MAP_ARGS: ArgMask = args(1, &[ARGT_STR, ARGT_STR]);

/// sample.c's `sample_conv_kws` in 2.6 (with map.c's and vars.c's converters).
pub static SAMPLE_CONV_KEYWORDS: &[SampleConvKw] = &[
    conv!(
        "add_item",
        sample_conv_add_item,
        args(2, &[ARGT_STR, ARGT_VAR, ARGT_STR]),
        Some(check_add_item),
        SMP_T_STR,
        SMP_T_STR
    ),
    conv!("b64dec", sample_conv_base642bin, ARG0, None, SMP_T_STR, SMP_T_BIN),
    conv!("base64", sample_conv_bin2base64, ARG0, None, SMP_T_BIN, SMP_T_STR),
    conv!("concat", sample_conv_concat, args(1, &[ARGT_STR, ARGT_VAR, ARGT_STR]), None, SMP_T_STR, SMP_T_STR),
    conv!("ub64enc", sample_conv_bin2base64url, ARG0, None, SMP_T_BIN, SMP_T_STR),
    conv!("ub64dec", sample_conv_base64url2bin, ARG0, None, SMP_T_STR, SMP_T_BIN),
    conv!("upper", sample_conv_str2upper, ARG0, None, SMP_T_STR, SMP_T_STR),
    conv!("lower", sample_conv_str2lower, ARG0, None, SMP_T_STR, SMP_T_STR),
    conv!("length", sample_conv_length, ARG0, None, SMP_T_STR, SMP_T_SINT),
    conv!(
        "be2dec",
        sample_conv_be2dec,
        args(1, &[ARGT_STR, ARGT_SINT, ARGT_SINT]),
        Some(check_be2dec),
        SMP_T_BIN,
        SMP_T_STR
    ),
    conv!(
        "be2hex",
        sample_conv_be2hex,
        args(1, &[ARGT_STR, ARGT_SINT, ARGT_SINT]),
        Some(check_be2hex),
        SMP_T_BIN,
        SMP_T_STR
    ),
    conv!("hex", sample_conv_bin2hex, ARG0, None, SMP_T_BIN, SMP_T_STR),
    conv!("hex2i", sample_conv_hex2int, ARG0, None, SMP_T_STR, SMP_T_SINT),
    conv!("ipmask", sample_conv_ipmask, args(1, &[ARGT_MSK4, ARGT_MSK6]), None, SMP_T_ADDR, SMP_T_IPV4),
    conv!("crc32", sample_conv_crc32, SINT0, None, SMP_T_BIN, SMP_T_SINT),
    conv!("crc32c", sample_conv_crc32c, SINT0, None, SMP_T_BIN, SMP_T_SINT),
    conv!("djb2", sample_conv_djb2, SINT0, None, SMP_T_BIN, SMP_T_SINT),
    conv!("sdbm", sample_conv_sdbm, SINT0, None, SMP_T_BIN, SMP_T_SINT),
    conv!("wt6", sample_conv_wt6, SINT0, None, SMP_T_BIN, SMP_T_SINT),
    conv!("xxh3", sample_conv_xxh3, SINT0, None, SMP_T_BIN, SMP_T_SINT),
    conv!("xxh32", sample_conv_xxh32, SINT0, None, SMP_T_BIN, SMP_T_SINT),
    conv!("xxh64", sample_conv_xxh64, SINT0, None, SMP_T_BIN, SMP_T_SINT),
    conv!("json", sample_conv_json, args(1, &[ARGT_STR]), Some(check_json), SMP_T_STR, SMP_T_STR),
    conv!("bytes", sample_conv_bytes, args(1, &[ARGT_SINT, ARGT_SINT]), None, SMP_T_BIN, SMP_T_BIN),
    conv!(
        "field",
        sample_conv_field,
        args(2, &[ARGT_SINT, ARGT_STR, ARGT_SINT]),
        Some(check_field),
        SMP_T_STR,
        SMP_T_STR
    ),
    conv!(
        "word",
        sample_conv_word,
        args(2, &[ARGT_SINT, ARGT_STR, ARGT_SINT]),
        Some(check_field),
        SMP_T_STR,
        SMP_T_STR
    ),
    conv!(
        "regsub",
        sample_conv_regsub,
        args(2, &[ARGT_REG, ARGT_STR, ARGT_STR]),
        Some(check_regsub),
        SMP_T_STR,
        SMP_T_STR
    ),
    conv!("fix_is_valid", sample_conv_fix_is_valid, ARG0, None, SMP_T_BIN, SMP_T_BOOL),
    conv!(
        "fix_tag_value",
        sample_conv_fix_tag_value,
        args(1, &[ARGT_STR]),
        Some(sample_conv_fix_value_check),
        SMP_T_BIN,
        SMP_T_BIN
    ),
    conv!("mqtt_is_valid", sample_conv_mqtt_is_valid, ARG0, None, SMP_T_BIN, SMP_T_BOOL),
    conv!(
        "mqtt_field_value",
        sample_conv_mqtt_field_value,
        args(2, &[ARGT_STR, ARGT_STR]),
        Some(sample_conv_mqtt_field_value_check),
        SMP_T_BIN,
        SMP_T_STR
    ),
    conv!("sha1", sample_conv_sha1, ARG0, None, SMP_T_BIN, SMP_T_BIN),
    conv!("sha2", sample_conv_sha2, SINT0, Some(check_sha2), SMP_T_BIN, SMP_T_BIN),
    conv!(
        "digest",
        sample_conv_crypto_digest,
        args(1, &[ARGT_STR]),
        Some(check_digest),
        SMP_T_BIN,
        SMP_T_BIN
    ),
    conv!(
        "hmac",
        sample_conv_crypto_hmac,
        args(2, &[ARGT_STR, ARGT_STR]),
        Some(check_hmac),
        SMP_T_BIN,
        SMP_T_BIN
    ),
    conv!("strcmp", sample_conv_strcmp, args(1, &[ARGT_VAR]), Some(check_var_arg), SMP_T_STR, SMP_T_SINT),
    conv!(
        "secure_memcmp",
        sample_conv_secure_memcmp,
        args(1, &[ARGT_VAR]),
        Some(check_var_arg),
        SMP_T_BIN,
        SMP_T_BOOL
    ),
    conv!("url_dec", sample_conv_url_dec, SINT0, None, SMP_T_STR, SMP_T_STR),
    conv!(
        "http_date",
        sample_conv_http_date,
        args(0, &[ARGT_SINT, ARGT_STR]),
        Some(smp_check_date_unit),
        SMP_T_SINT,
        SMP_T_STR
    ),
    conv!("url_enc", sample_conv_url_enc, args(0, &[ARGT_STR]), Some(check_url_enc), SMP_T_STR, SMP_T_STR),
    conv!("iif", sample_conv_iif, args(2, &[ARGT_STR, ARGT_STR]), None, SMP_T_BOOL, SMP_T_STR),
    conv!("and", sample_conv_binary_and, args(1, &[ARGT_STR]), Some(check_operator), SMP_T_SINT, SMP_T_SINT),
    conv!("or", sample_conv_binary_or, args(1, &[ARGT_STR]), Some(check_operator), SMP_T_SINT, SMP_T_SINT),
    conv!("xor", sample_conv_binary_xor, args(1, &[ARGT_STR]), Some(check_operator), SMP_T_SINT, SMP_T_SINT),
    conv!("cpl", sample_conv_binary_cpl, ARG0, None, SMP_T_SINT, SMP_T_SINT),
    conv!("bool", sample_conv_arith_bool, ARG0, None, SMP_T_SINT, SMP_T_BOOL),
    conv!("not", sample_conv_arith_not, ARG0, None, SMP_T_SINT, SMP_T_BOOL),
    conv!("odd", sample_conv_arith_odd, ARG0, None, SMP_T_SINT, SMP_T_BOOL),
    conv!("even", sample_conv_arith_even, ARG0, None, SMP_T_SINT, SMP_T_BOOL),
    conv!("add", sample_conv_arith_add, args(1, &[ARGT_STR]), Some(check_operator), SMP_T_SINT, SMP_T_SINT),
    conv!("sub", sample_conv_arith_sub, args(1, &[ARGT_STR]), Some(check_operator), SMP_T_SINT, SMP_T_SINT),
    conv!("mul", sample_conv_arith_mul, args(1, &[ARGT_STR]), Some(check_operator), SMP_T_SINT, SMP_T_SINT),
    conv!("div", sample_conv_arith_div, args(1, &[ARGT_STR]), Some(check_operator), SMP_T_SINT, SMP_T_SINT),
    conv!("mod", sample_conv_arith_mod, args(1, &[ARGT_STR]), Some(check_operator), SMP_T_SINT, SMP_T_SINT),
    conv!("neg", sample_conv_arith_neg, ARG0, None, SMP_T_SINT, SMP_T_SINT),
    conv!("htonl", sample_conv_htonl, ARG0, None, SMP_T_SINT, SMP_T_BIN),
    conv!("cut_crlf", sample_conv_cut_crlf, ARG0, None, SMP_T_STR, SMP_T_STR),
    conv!("ltrim", sample_conv_ltrim, args(1, &[ARGT_STR]), None, SMP_T_STR, SMP_T_STR),
    conv!("rtrim", sample_conv_rtrim, args(1, &[ARGT_STR]), None, SMP_T_STR, SMP_T_STR),
    conv!(
        "json_query",
        sample_conv_json_query,
        args(1, &[ARGT_STR, ARGT_STR]),
        Some(check_json_query),
        SMP_T_STR,
        SMP_T_ANY
    ),
    conv!("set-var", smp_conv_store, args(1, &[ARGT_VAR]), Some(check_var_arg), SMP_T_ANY, SMP_T_ANY),
    conv!("unset-var", smp_conv_clear, args(1, &[ARGT_VAR]), Some(check_var_arg), SMP_T_ANY, SMP_T_ANY),
    conv!("map", conv_map_str, MAP_ARGS, Some(chk_map_str), SMP_T_STR, SMP_T_STR),
    conv!("map_str", conv_map_str, MAP_ARGS, Some(chk_map_str), SMP_T_STR, SMP_T_STR),
    conv!("map_beg", conv_map_beg, MAP_ARGS, Some(chk_map_beg), SMP_T_STR, SMP_T_STR),
    conv!("map_end", conv_map_end, MAP_ARGS, Some(chk_map_end), SMP_T_STR, SMP_T_STR),
    conv!("map_sub", conv_map_sub, MAP_ARGS, Some(chk_map_sub), SMP_T_STR, SMP_T_STR),
    conv!("map_dir", conv_map_dir, MAP_ARGS, Some(chk_map_dir), SMP_T_STR, SMP_T_STR),
    conv!("map_dom", conv_map_dom, MAP_ARGS, Some(chk_map_dom), SMP_T_STR, SMP_T_STR),
    conv!("map_reg", conv_map_reg, MAP_ARGS, Some(chk_map_reg), SMP_T_STR, SMP_T_STR),
    conv!("map_regm", conv_map_regm, MAP_ARGS, Some(chk_map_regm), SMP_T_STR, SMP_T_STR),
    conv!("map_int", conv_map_int, MAP_ARGS, Some(chk_map_int), SMP_T_SINT, SMP_T_STR),
    conv!("map_ip", conv_map_ip, MAP_ARGS, Some(chk_map_ip), SMP_T_ADDR, SMP_T_STR),
    conv!("map_str_int", conv_map_str_int, MAP_ARGS, Some(chk_map_str_int), SMP_T_STR, SMP_T_SINT),
    conv!("map_beg_int", conv_map_beg_int, MAP_ARGS, Some(chk_map_beg_int), SMP_T_STR, SMP_T_SINT),
    conv!("map_reg_int", conv_map_reg_int, MAP_ARGS, Some(chk_map_reg_int), SMP_T_STR, SMP_T_SINT),
    conv!("map_int_int", conv_map_int_int, MAP_ARGS, Some(chk_map_int_int), SMP_T_SINT, SMP_T_SINT),
    conv!("map_ip_int", conv_map_ip_int, MAP_ARGS, Some(chk_map_ip_int), SMP_T_ADDR, SMP_T_SINT),
    conv!("map_str_ip", conv_map_str_ip, MAP_ARGS, Some(chk_map_str_ip), SMP_T_STR, SMP_T_ADDR),
    conv!("map_ip_ip", conv_map_ip_ip, MAP_ARGS, Some(chk_map_ip_ip), SMP_T_ADDR, SMP_T_ADDR),
    conv!("in_table", st::sample_conv_in_table, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_BOOL),
    conv!(
        "table_bytes_in_rate",
        st::table_bytes_in_rate,
        TAB_CONV,
        Some(st::check_table_arg),
        SMP_T_ANY,
        SMP_T_SINT
    ),
    conv!(
        "table_bytes_out_rate",
        st::table_bytes_out_rate,
        TAB_CONV,
        Some(st::check_table_arg),
        SMP_T_ANY,
        SMP_T_SINT
    ),
    conv!("table_conn_cnt", st::table_conn_cnt, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_conn_cur", st::table_conn_cur, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_conn_rate", st::table_conn_rate, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_gpt0", st::table_gpt0, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_gpc0", st::table_gpc0, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_gpc0_rate", st::table_gpc0_rate, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_gpc1", st::table_gpc1, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_gpc1_rate", st::table_gpc1_rate, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!(
        "table_http_err_cnt",
        st::table_http_err_cnt,
        TAB_CONV,
        Some(st::check_table_arg),
        SMP_T_ANY,
        SMP_T_SINT
    ),
    conv!(
        "table_http_err_rate",
        st::table_http_err_rate,
        TAB_CONV,
        Some(st::check_table_arg),
        SMP_T_ANY,
        SMP_T_SINT
    ),
    conv!(
        "table_http_fail_cnt",
        st::table_http_fail_cnt,
        TAB_CONV,
        Some(st::check_table_arg),
        SMP_T_ANY,
        SMP_T_SINT
    ),
    conv!(
        "table_http_fail_rate",
        st::table_http_fail_rate,
        TAB_CONV,
        Some(st::check_table_arg),
        SMP_T_ANY,
        SMP_T_SINT
    ),
    conv!(
        "table_http_req_cnt",
        st::table_http_req_cnt,
        TAB_CONV,
        Some(st::check_table_arg),
        SMP_T_ANY,
        SMP_T_SINT
    ),
    conv!(
        "table_http_req_rate",
        st::table_http_req_rate,
        TAB_CONV,
        Some(st::check_table_arg),
        SMP_T_ANY,
        SMP_T_SINT
    ),
    conv!("table_kbytes_in", st::table_kbytes_in, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!(
        "table_kbytes_out",
        st::table_kbytes_out,
        TAB_CONV,
        Some(st::check_table_arg),
        SMP_T_ANY,
        SMP_T_SINT
    ),
    conv!("table_server_id", st::table_server_id, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_sess_cnt", st::table_sess_cnt, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_sess_rate", st::table_sess_rate, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
    conv!("table_trackers", st::table_trackers, TAB_CONV, Some(st::check_table_arg), SMP_T_ANY, SMP_T_SINT),
];

/// sample.c:find_sample_conv() in 2.6.
pub fn find_sample_conv(kw: &str) -> Option<&'static SampleConvKw> {
    SAMPLE_CONV_KEYWORDS.iter().find(|c| c.kw == kw)
}

// ---------------------------------------------------------------------------------------
// Expressions

/// One converter of an expression, with its arguments.
#[derive(Clone)]
pub struct SampleConvExpr {
    /// The keyword.
    pub conv: &'static SampleConvKw,
    /// Its arguments.
    pub args: Vec<Arg>,
}

/// A sample expression (`struct sample_expr`): a fetch and its converters.
#[derive(Clone)]
pub struct SampleExpr {
    /// The fetch.
    pub fetch: &'static SampleFetchKw,
    /// Its arguments.
    pub arg_p: Vec<Arg>,
    /// The converters, applied in order.
    pub conv_exprs: Vec<SampleConvExpr>,
    /// The expression as written (for messages and `show` commands).
    pub text: String,
}

impl fmt::Debug for SampleExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SampleExpr({})", self.text)
    }
}

/// The type an expression produces.
impl SampleExpr {
    /// The output type of the last step.
    pub fn out_type(&self) -> SmpType {
        self.conv_exprs.last().map_or(self.fetch.out_type, |c| c.conv.out_type)
    }
}

fn kw_len(b: &[u8]) -> usize {
    b.iter().position(|&c| c == b'(' || c == b',' || c == b' ' || c == b']' || c == b'}').unwrap_or(b.len())
}

/// sample.c:sample_parse_expr() in 2.6: parses `fetch[(args)][,conv[(args)]]...` at the
/// start of `text`. Returns the expression and the bytes it took (the caller checks
/// what follows: the end of the word, or `]` in a log format).
pub fn sample_parse_expr(text: &str) -> Result<(SampleExpr, usize), String> {
    let b = text.as_bytes();
    let n = kw_len(b);
    let kw = &text[..n];
    if kw.is_empty() {
        return Err("missing fetch method".into());
    }
    let fetch = find_sample_fetch(kw).ok_or_else(|| format!("unknown fetch method '{kw}'"))?;
    let (mut arg_p, used) =
        make_arg_list(&b[n..], fetch.arg_mask).map_err(|e| format!("fetch method '{kw}' : {e}"))?;
    if let Some(chk) = fetch.val_args {
        chk(&mut arg_p).map_err(|e| format!("invalid args in fetch method '{kw}' : {e}"))?;
    }
    let mut pos = n + used;
    let mut prev = fetch.out_type;
    let mut conv_exprs = Vec::new();
    while b.get(pos) == Some(&b',') {
        pos += 1;
        let n = kw_len(&b[pos..]);
        let ckw = &text[pos..pos + n];
        if ckw.is_empty() {
            return Err(format!("missing converter name after ',' in '{text}'"));
        }
        let conv = find_sample_conv(ckw).ok_or_else(|| format!("unknown converter '{ckw}'"))?;
        if !sample_casts(prev, conv.in_type) {
            return Err(format!("converter '{ckw}' cannot be applied"));
        }
        let (mut args, used) = make_arg_list(&b[pos + n..], conv.arg_mask)
            .map_err(|e| format!("invalid arg {} in converter '{ckw}' : {e}", 1))?;
        if let Some(chk) = conv.val_args {
            chk(&mut args).map_err(|e| format!("invalid args in converter '{ckw}' : {e}"))?;
        }
        pos += n + used;
        prev = conv.out_type;
        conv_exprs.push(SampleConvExpr { conv, args });
    }
    Ok((SampleExpr { fetch, arg_p, conv_exprs, text: text[..pos].to_string() }, pos))
}

/// Parses a whole word as an expression: anything left after it is an error.
pub fn sample_parse_word(text: &str) -> Result<SampleExpr, String> {
    let (e, used) = sample_parse_expr(text)?;
    if used != text.len() {
        return Err(format!(
            "unexpected character '{}' after sample expression '{}'",
            &text[used..used + 1],
            e.text
        ));
    }
    Ok(e)
}

/// Applies the converters of `expr` to `d`, casting before each.
fn apply_convs(expr: &SampleExpr, mut d: SmpData, ctx: &mut SmpCtx) -> Option<SmpData> {
    for c in &expr.conv_exprs {
        d = smp_cast(d, c.conv.in_type)?;
        if c.conv.in_type == SmpType::SMP_T_ADDR && !matches!(d, SmpData::Ipv4(_) | SmpData::Ipv6(_)) {
            return None;
        }
        if !(c.conv.process)(&c.args, &mut d, ctx) {
            return None;
        }
    }
    Some(d)
}

/// sample.c:sample_process() in 2.6: fetch, then convert; the last value found.
pub fn sample_process(expr: &SampleExpr, ctx: &mut SmpCtx) -> Option<SmpData> {
    ctx.may_change.set(false);
    let mut vals = Vec::new();
    (expr.fetch.process)(&expr.arg_p, ctx, &mut vals);
    let d = vals.pop()?;
    apply_convs(expr, d, ctx)
}

/// Every value of the expression, each converted (for ACLs, which test each one);
/// values a converter drops are left out.
pub fn sample_process_all(expr: &SampleExpr, ctx: &mut SmpCtx) -> Vec<SmpData> {
    ctx.may_change.set(false);
    let mut vals = Vec::new();
    (expr.fetch.process)(&expr.arg_p, ctx, &mut vals);
    vals.into_iter().filter_map(|d| apply_convs(expr, d, ctx)).collect()
}

/// sample.c:sample_fetch_as_type() in 2.6: the value cast to `to`.
pub fn sample_fetch_as_type(expr: &SampleExpr, ctx: &mut SmpCtx, to: SmpType) -> Option<SmpData> {
    smp_cast(sample_process(expr, ctx)?, to)
}

/// Runs `f` with a sample context over session `s` (its variables and the process's
/// lent for the call).
pub fn with_smp_ctx<R>(w: &mut Haproxy, s: &mut Session, dir: SmpDir, f: impl FnOnce(&mut SmpCtx) -> R) -> R {
    let mut proc = std::mem::take(&mut w.global.vars_proc);
    let mut sv = std::mem::take(&mut s.vars);
    let r = {
        let mut ctx = SmpCtx::new(Some((&*w, &*s)), dir, Vars { proc: &mut proc, sess: Some(&mut sv) });
        f(&mut ctx)
    };
    w.global.vars_proc = proc;
    s.vars = sv;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::vars::VarMap;

    fn eval(text: &str) -> Option<SmpData> {
        let mut proc = VarMap::default();
        let mut ctx = SmpCtx::new(None, SmpDir::Req, Vars { proc: &mut proc, sess: None });
        sample_process(&sample_parse_word(text).unwrap(), &mut ctx)
    }

    fn s(text: &str) -> String {
        match eval(text) {
            Some(d) => String::from_utf8(d.into_str().unwrap()).unwrap(),
            None => "<none>".into(),
        }
    }

    #[test]
    fn http_date_prints_an_imf_fixdate_in_gmt() {
        assert_eq!(s("int(784111777),http_date"), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(s("int(784111777),http_date(3)"), "Sun, 06 Nov 1994 08:49:40 GMT");
        assert_eq!(s("int(784111777123),http_date(0,ms)"), "Sun, 06 Nov 1994 08:49:37.123 GMT");
        assert_eq!(s("int(0),http_date"), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(s("int(951782400),http_date"), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert!(
            sample_parse_word("int(1),http_date(0,h)")
                .unwrap_err()
                .contains("expects 's', 'ms' or 'us', got 'h'")
        );
    }

    #[test]
    fn args_quotes_and_errors() {
        let (a, n) =
            make_arg_list(b"(a\\ b,'c,d',\"e)\")x", args(0, &[ARGT_STR, ARGT_STR, ARGT_STR])).unwrap();
        assert_eq!(n, 17);
        assert_eq!((a[0].str(), a[1].str(), a[2].str()), (&b"a b"[..], &b"c,d"[..], &b"e)"[..]));
        let e = make_arg_list(b"(1,2)", args(1, &[ARGT_SINT])).unwrap_err();
        assert_eq!(e, "expected ')' before ',2)'");
        let e = make_arg_list(b"(x)", args(1, &[ARGT_SINT])).unwrap_err();
        assert_eq!(e, "failed to parse 'x' as type 'integer' at position 1");
        let e = make_arg_list(b"", args(1, &[ARGT_SINT])).unwrap_err();
        assert_eq!(e, "expected type 'integer' at position 1, but got nothing");
        assert!(sample_parse_word("nosuch").unwrap_err().contains("unknown fetch method 'nosuch'"));
        assert!(sample_parse_word("str(a),nosuch").unwrap_err().contains("unknown converter 'nosuch'"));
        assert!(sample_parse_word("str(a),field(0,/)").unwrap_err().contains("Unexpected value 0 for index"));
        assert!(sample_parse_word("int(1),ipmask(24),lower").is_ok());
    }

    #[test]
    fn string_converters() {
        assert_eq!(s("str(Hello),lower"), "hello");
        assert_eq!(s("str(Hello),upper"), "HELLO");
        assert_eq!(s("str(/foo/bar/baz),field(3,/)"), "bar");
        assert_eq!(s("str(/foo),field(3,/)"), "<none>");
        assert_eq!(s("str(a.b.c.d),field(-2,.)"), "c");
        assert_eq!(s("str(a.b.c.d),field(2,.,2)"), "b.c");
        assert_eq!(s("str(a.b.c.d),field(2,.,0)"), "b.c.d");
        assert_eq!(s("str(a.b.c.d),field(-2,.,2)"), "b.c");
        assert_eq!(s("str(//a//b/c),word(2,/)"), "b");
        assert_eq!(s("str(//a//b/c),word(-1,/)"), "c");
        assert_eq!(s("str(//a//b/c),word(1,/,2)"), "a//b");
        assert_eq!(s("str(aXbXc),regsub(X,-)"), "a-bXc");
        assert_eq!(s("str(aXbxc),regsub(x,-,gi)"), "a-b-c");
        assert_eq!(s("str(foo=bar),regsub(\"(.*)=(.*)\",\"\\2:\\1\")"), "bar:foo");
        assert_eq!(s("str(abc),hex"), "616263");
        assert_eq!(s("str(ff),hex2i"), "255");
        assert_eq!(s("str(abc),base64"), "YWJj");
        assert_eq!(s("str(YWJj),b64dec"), "abc");
        assert_eq!(s("bin(14fb9c03d97f12d97e),ub64enc"), "FPucA9l_Etl-");
        assert_eq!(s("str(FPucA9l_Etl-),ub64dec,hex,lower"), "14fb9c03d97f12d97e");
        assert_eq!(s("str(a%20b+c),url_dec"), "a b+c");
        assert_eq!(s("str(x?a%20b+c),url_dec"), "x?a b c");
        assert_eq!(s("str(a b&c),url_enc"), "a%20b%26c");
        assert_eq!(s("str(foo 1/2),json"), "foo 1\\/2");
        assert_eq!(s("str(abc),length"), "3");
        assert_eq!(s("str(abcdef),bytes(2,3)"), "cde");
        assert_eq!(s("str(  x  ),ltrim(' ')"), "x  ");
        assert_eq!(s("str(  x  ),rtrim(' ')"), "  x");
        assert_eq!(s("str(a\r\nb),cut_crlf"), "a");
        assert_eq!(s("str(0123456789),be2dec(-,3)"), "3158322-3355701-3553080-57");
        assert_eq!(s("str(0123456789),be2dec(::,3,1)"), "3158322::3355701::3553080");
        assert_eq!(s("str(0123456789),be2hex(:,4,1)"), "30313233:34353637");
        assert_eq!(s("str(abc),be2hex"), "616263");
    }

    #[test]
    fn ints_bools_and_addresses() {
        assert_eq!(s("int(7),add(3),mul(2),sub(1),div(3),mod(4)"), "2");
        assert_eq!(s("int(5),neg"), "-5");
        assert_eq!(s("int(5),odd"), "1");
        assert_eq!(s("int(0),iif(yes,no)"), "no");
        assert_eq!(s("bool(true),iif(yes,no)"), "yes");
        assert_eq!(s("ipv4(192.168.1.77),ipmask(24)"), "192.168.1.0");
        assert_eq!(s("str(10.1.2.3),ipmask(255.255.0.0)"), "10.1.0.0");
        assert_eq!(s("ipv6(2001:db8::1),ipmask(24,32)"), "2001:db8::");
        assert_eq!(s("str(abc),add(1)"), "1");
        assert_eq!(s("str(),add(1)"), "<none>");
    }

    #[test]
    fn hashes_match_haproxy() {
        assert_eq!(s("str(abc),crc32"), "891568578");
        assert_eq!(s("str(123456789),crc32c"), "3808858755");
        assert_eq!(s("str(abc),djb2"), "193485963");
        assert_eq!(s("str(abc),crc32(1)"), (full_hash(891568578) as i64).to_string());
        assert_eq!(s("str(abc),sha1,hex,lower"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            s("str(abc),sha2,hex,lower"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(s("str(abc),digest(md5),hex,lower"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            s("str(abc),hmac(sha256,a2V5),hex,lower"),
            "9c196e32dc0175f86f4b1cb89289d6619de6bee699e4c378e68309ed97a1a6ab"
        );
        assert!(sample_parse_word("str(a),sha2(100)").is_err());
        assert!(sample_parse_word("str(a),digest(nope)").is_err());
    }

    #[test]
    fn json_query_types() {
        let doc = r#"str('{"a":{"b":[1,2.5,"x"]},"t":true,"big":12345678}')"#;
        assert_eq!(s(&format!("{doc},json_query('$.a.b[1]')")), "2.5");
        assert_eq!(s(&format!("{doc},json_query('$.a.b[2]')")), "x");
        assert_eq!(s(&format!("{doc},json_query('$.t')")), "1");
        assert_eq!(s(&format!("{doc},json_query('$.big')")), "1.23457e+07");
        assert_eq!(s(&format!("{doc},json_query('$.big',int)")), "12345678");
        assert_eq!(s(&format!("{doc},json_query('$.nope')")), "<none>");
        // Single quotes keep the backslash for json_query, which reads `\.` as a dot in a key.
        assert_eq!(s(r#"str('{"my.key":"v"}'),json_query('$.my\.key')"#), "v");
    }

    #[test]
    fn vars_in_converters() {
        let mut proc = VarMap::default();
        let mut ctx = SmpCtx::new(None, SmpDir::Req, Vars { proc: &mut proc, sess: None });
        let e = |t: &str, c: &mut SmpCtx| {
            sample_process(&sample_parse_word(t).unwrap(), c).and_then(SmpData::into_str)
        };
        assert_eq!(e("str(v),set-var(proc.x)", &mut ctx), Some(b"v".to_vec()));
        assert_eq!(e("str(a),concat(<,proc.x,>)", &mut ctx), Some(b"a<v>".to_vec()));
        assert_eq!(e("str(a),add_item(',',proc.x,s)", &mut ctx), Some(b"a,vs".to_vec()));
        assert_eq!(e("str(),add_item(',',proc.x)", &mut ctx), Some(b"v".to_vec()));
        assert_eq!(e("str(v),strcmp(proc.x)", &mut ctx), Some(b"0".to_vec()));
        assert_eq!(e("str(v),secure_memcmp(proc.x)", &mut ctx), Some(b"1".to_vec()));
        assert_eq!(e("var(proc.nope,dflt)", &mut ctx), Some(b"dflt".to_vec()));
        assert_eq!(e("int(3),set-var(proc.n),add(proc.n)", &mut ctx), Some(b"6".to_vec()));
    }
}
