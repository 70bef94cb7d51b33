//! Regular expressions: HAProxy's `struct my_regex`, compiled and run by PCRE2 with its JIT,
//! and the `\N` substitution every rewriting keyword shares.
//!
//! Reproduces `regex.c` of HAProxy 2.6 as Debian builds it (`USE_PCRE2=1 USE_PCRE2_JIT=1`,
//! so `-vv` says `+PCRE2 +PCRE2_JIT`). Every regex of a configuration goes through
//! `regex_comp`: ACL and map `-m reg` keys (`pattern.rs`), `regsub` and `map_regm`
//! (`sample.rs`, `map.rs`), `replace-header`/`-value`/`-uri`/`-path` (`http_act.rs`) and
//! the health checks' `rstring`/`rstatus`/header regexes (`tcpcheck.rs`). PCRE2 is used
//! without its UTF flag, as HAProxy does: a pattern and a subject are bytes, `.` matches any
//! byte, and a non-UTF-8 header value matches like any other. Matching goes through the
//! `pcre2` crate (its `pcre2-sys` links the system's libpcre2-8, the library HAProxy links,
//! or builds the PCRE2 source it bundles when there is none), so this file holds no FFI.

use std::sync::Arc;

use pcre2::bytes::{Regex, RegexBuilder};

/// `MAX_MATCH`: the number of groups a match reports (`\0` to `\9`).
pub const MAX_MATCH: usize = 10;

/// `regmatch_t pmatch[MAX_MATCH]`: where each group matched, as byte offsets in the subject
/// (`None`: the group did not take part, HAProxy's `rm_so == -1`).
pub type Pmatch = [Option<(usize, usize)>; MAX_MATCH];

/// A compiled regex (`struct my_regex`).
#[derive(Clone, Debug)]
pub struct MyRegex {
    /// The compiled pattern (`reg`), JIT-compiled when PCRE2 has a JIT (`mfn` is then
    /// `pcre2_jit_match`; the crate picks the matcher the same way). Shared: a rule's
    /// step holds a clone for each request, and cloning the crate's `Regex` allocates.
    reg: Arc<Regex>,
}

/// regex.c:regex_comp() in 2.6: compiles `str`, case-sensitive when `cs`, with capturing
/// groups when `cap` (without, `(...)` only groups: PCRE2's `NO_AUTO_CAPTURE`, which ACL
/// and `map_reg` keys use because they never read a group). Errors are HAProxy's text.
pub fn regex_comp(str: &str, cs: bool, cap: bool) -> Result<MyRegex, String> {
    let jit = pcre2::is_jit_available();
    let pattern = if cap { str.to_string() } else { no_auto_capture(str) };
    let added = pattern.len() - str.len();
    let reg = RegexBuilder::new().caseless(!cs).jit(jit).build(&pattern).map_err(|e| match e.kind() {
        pcre2::ErrorKind::JIT => format!("regex '{str}' jit compilation failed"),
        _ => format!(
            "regex '{str}' is invalid (error={}, erroffset={})",
            pcre2_message(&e),
            e.offset().unwrap_or(0).saturating_sub(added)
        ),
    })?;
    Ok(MyRegex { reg: Arc::new(reg) })
}

/// The crate has no compile flag for `PCRE2_NO_AUTO_CAPTURE`, so the pattern gets PCRE2's
/// inline equivalent `(?n)`, after any leading `(*VERB)`s, which must open the pattern.
fn no_auto_capture(str: &str) -> String {
    let mut at = 0;
    while str[at..].starts_with("(*") {
        match str[at..].find(')') {
            Some(end) => at += end + 1,
            None => break,
        }
    }
    format!("{}(?n){}", &str[..at], &str[at..])
}

/// PCRE2's own message for a compile error (`pcre2_get_error_message()`): the crate only
/// gives it inside its `Display` text, after "PCRE2: error compiling pattern at offset N: ".
fn pcre2_message(e: &pcre2::Error) -> String {
    let text = e.to_string();
    match text.split_once(": ").and_then(|(_, rest)| rest.split_once(": ")) {
        Some((_, msg)) => msg.to_string(),
        None => text,
    }
}

/// regex.h:regex_exec2() in 2.6: true when `re` matches somewhere in `subject`. A match
/// error (PCRE2's match or JIT stack limit) is no match, as in HAProxy.
pub fn regex_exec2(re: &MyRegex, subject: &[u8]) -> bool {
    re.reg.is_match(subject).unwrap_or(false)
}

/// regex.c:regex_exec_match2() in 2.6: the first match of `re` in `subject` at or after
/// `start`, with where each group matched, or `None`.
/// Divergence: for the next round of a global `regsub`, HAProxy passes the rest of the
/// subject with `REG_NOTBOL`; the crate has no match options, so the search starts at
/// `start` in the whole subject. `^` behaves the same (it cannot match there); `\b`,
/// `\A` and lookbehinds see the bytes before `start` where HAProxy's do not.
pub fn regex_exec_match2(re: &MyRegex, subject: &[u8], start: usize) -> Option<Pmatch> {
    // A fresh match block per call, like 2.6's pcre2_match_data_create_from_pattern().
    let mut locs = re.reg.capture_locations();
    re.reg.captures_read_at(&mut locs, subject, start).ok()??;
    let mut pmatch: Pmatch = [None; MAX_MATCH];
    for (i, m) in pmatch.iter_mut().enumerate() {
        *m = locs.get(i);
    }
    Some(pmatch)
}

/// regex.c:exp_replace() in 2.6: `str` with `\N` replaced by group N of `pmatch` in
/// `src` (nothing for a group that did not match), `\xHH` by that byte, and a backslash
/// before any other byte dropped. `None` where HAProxy returns -1: a trailing `\`, or a
/// `\x` cut short.
/// Divergence: the output is not bounded by the trash buffer's size; callers check what
/// fits where they write it.
pub fn exp_replace(src: &[u8], str: &[u8], pmatch: &Pmatch) -> Option<Vec<u8>> {
    let mut dst = Vec::with_capacity(str.len());
    let mut i = 0;
    while i < str.len() {
        if str[i] != b'\\' {
            dst.push(str[i]);
            i += 1;
            continue;
        }
        let c = *str.get(i + 1)?;
        i += 2;
        if c.is_ascii_digit() {
            if let Some((so, eo)) = pmatch[usize::from(c - b'0')] {
                dst.extend_from_slice(&src[so..eo]);
            }
        } else if c == b'x' {
            let (h1, h2) = (*str.get(i)?, *str.get(i + 1)?);
            i += 2;
            // HAProxy's arithmetic, which also gives a (meaningless) byte for non-hex digits.
            let nibble = |h: u8| {
                let v = h.to_ascii_uppercase().wrapping_sub(b'0');
                if v > 9 { v.wrapping_sub(b'A' - b'9' - 1) } else { v }
            };
            dst.push((nibble(h1) << 4).wrapping_add(nibble(h2)));
        } else {
            dst.push(c);
        }
    }
    Some(dst)
}

/// The PCRE2 version and JIT lines of `haproxy -vv`.
pub fn pcre2_build_info() -> String {
    let (major, minor) = pcre2::version();
    let jit = if pcre2::is_jit_available() { "yes" } else { "no" };
    format!("Built with PCRE2 version : {major}.{minor}\nPCRE2 library supports JIT : {jit}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(re: &str, subject: &[u8], with: &[u8]) -> Option<Vec<u8>> {
        let re = regex_comp(re, true, true).unwrap();
        let m = regex_exec_match2(&re, subject, 0)?;
        exp_replace(subject, with, &m)
    }

    #[test]
    fn case_insensitive_only_when_not_cs() {
        let ci = regex_comp("^/Admin", false, false).unwrap();
        let cs = regex_comp("^/Admin", true, false).unwrap();
        assert!(regex_exec2(&ci, b"/ADMIN/x"));
        assert!(!regex_exec2(&cs, b"/ADMIN/x"));
        assert!(regex_exec2(&cs, b"/Admin/x"));
    }

    #[test]
    fn exp_replace_uses_groups_hex_and_escapes() {
        assert_eq!(replace("(.*)=(.*)", b"foo=bar", b"\\2:\\1").unwrap(), b"bar:foo");
        assert_eq!(replace("^(a)(b)?", b"ac", b"<\\1\\2\\9>").unwrap(), b"<a>");
        assert_eq!(replace("x", b"x", b"\\x41\\\\\\n").unwrap(), b"A\\n");
        assert_eq!(replace("x", b"x", b"end\\"), None);
        assert_eq!(replace("x", b"x", b"\\x4"), None);
    }

    #[test]
    fn backreference_inside_the_pattern() {
        let re = regex_comp("^(ab)\\1$", true, true).unwrap();
        assert!(regex_exec2(&re, b"abab"));
        assert!(!regex_exec2(&re, b"abba"));
    }

    #[test]
    fn groups_do_not_capture_without_cap() {
        // NO_AUTO_CAPTURE: `(a)` is a plain group, so `\1` names nothing.
        assert!(regex_comp("(a)\\1", true, false).unwrap_err().contains("non-existent subpattern"));
        let re = regex_comp("(*CR)^(a|b)+$", true, false).unwrap();
        assert!(regex_exec2(&re, b"abba"));
    }

    #[test]
    fn subject_is_bytes_not_utf8() {
        let re = regex_comp("^a.b$", true, true).unwrap();
        assert!(regex_exec2(&re, b"a\xffb"));
        // Without UTF, é is two bytes, so one `.` does not match it.
        assert!(!regex_exec2(&re, "aéb".as_bytes()));
        let hi = regex_comp("\\xff+", true, true).unwrap();
        assert_eq!(regex_exec_match2(&hi, b"x\xff\xffy", 0).unwrap()[0], Some((1, 3)));
    }

    #[test]
    fn bad_pattern_gives_haproxys_message() {
        assert_eq!(
            regex_comp("/(abc", true, false).unwrap_err(),
            "regex '/(abc' is invalid (error=missing closing parenthesis, erroffset=5)"
        );
        assert_eq!(
            regex_comp("/(abc", true, true).unwrap_err(),
            "regex '/(abc' is invalid (error=missing closing parenthesis, erroffset=5)"
        );
    }

    #[test]
    fn match_starts_at_the_given_offset() {
        let re = regex_comp("^a", true, true).unwrap();
        assert!(regex_exec_match2(&re, b"aa", 1).is_none());
        let re = regex_comp("a", true, true).unwrap();
        assert_eq!(regex_exec_match2(&re, b"aa", 1).unwrap()[0], Some((1, 2)));
    }
}
