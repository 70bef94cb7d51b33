//! Small parsers HAProxy keeps in `standard.c`: times, sizes and addresses.
//!
//! Reproduces `parse_time_err()`, `parse_size_err()` and `str2sa_range()` as HAProxy 2.6
//! has them (moved to `tools.c` there), since the configuration parser quotes their errors
//! in its ALERTs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

/// The longest time HAProxy accepts: its timers are signed 32-bit milliseconds (~24.8 days).
pub const TIME_MAX_MS: u64 = i32::MAX as u64;

/// Why `parse_time_err` refused a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeErr {
    /// The first character that is neither a digit nor a unit.
    Char(char),
    /// Longer than `TIME_MAX_MS` (`PARSE_TIME_OVER`).
    Overflow,
}

impl TimeErr {
    /// HAProxy 2.6's ALERT text for `arg` given to `kw`; `char_msg` words the bad-character case.
    pub fn alert(self, arg: &str, kw: &str, char_msg: impl FnOnce(char) -> String) -> String {
        match self {
            TimeErr::Char(c) => char_msg(c),
            TimeErr::Overflow => format!(
                "timer overflow in argument '{arg}' to '{kw}' (maximum value is {TIME_MAX_MS} ms or ~24.8 days)"
            ),
        }
    }
}

/// tools.c:parse_time_err() in 2.6: `"10s"` -> 10000 milliseconds.
/// Units: `us`, `ms` (default), `s`, `m`, `h`, `d`.
/// Divergence: a character after the unit is an error; 2.6 only warns ("will be reported
/// as an error in next versions") and keeps the value.
pub fn parse_time_err(text: &str) -> Result<u64, TimeErr> {
    let first = || TimeErr::Char(text.chars().next().unwrap_or('\0'));
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(first());
    }
    // Too many digits for a u64 is an overflow as well.
    let value: u64 = text[..digits].parse().map_err(|_| TimeErr::Overflow)?;
    let ms = match &text[digits..] {
        "" | "ms" => Some(value),
        "us" => Some(value.div_ceil(1000)),
        "s" => value.checked_mul(1000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        "d" => value.checked_mul(86_400_000),
        rest => return Err(TimeErr::Char(rest.chars().next().unwrap_or('\0'))),
    };
    ms.filter(|&ms| ms <= TIME_MAX_MS).ok_or(TimeErr::Overflow)
}

/// tools.c:parse_size_err() in 2.6: `"16k"` -> 16384. Units `k`, `m`, `g`.
/// Divergence: 64-bit and saturating where 2.6 refuses what overflows 32 bits (callers
/// bound the value); after the unit, the unit itself is reported as the bad character.
pub fn parse_size_err(text: &str) -> Result<u64, char> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(text.chars().next().unwrap_or('\0'));
    }
    let value: u64 = text[..digits].parse().map_err(|_| text.chars().next().unwrap_or('\0'))?;
    let mult = match text[digits..].to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1024,
        "m" => 1024 * 1024,
        "g" => 1024 * 1024 * 1024,
        rest => return Err(rest.chars().next().unwrap_or('\0')),
    };
    Ok(value.saturating_mul(mult))
}

/// A parsed address (`struct sockaddr_storage` plus HAProxy's prefixes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParsedAddr {
    /// An IP address with a port range (`first..=last`; both equal for one port).
    Inet(IpAddr, u16, u16),
    /// `fd@N`: an inherited socket.
    Fd(i32),
    /// A UNIX socket path.
    Unix(PathBuf),
}

/// tools.c:str2sa_range() in 2.6: parse `[ipv4@|ipv6@]ADDR:PORT[-END]`, `:PORT`, `*:PORT`,
/// `[::1]:PORT`, `:::PORT`, `fd@N`, `unix@PATH` or `/PATH`. `need_port` says whether a
/// missing port is an error (listeners) or means "same as the client's" (servers: 0).
/// Errors use HAProxy's wording, ready to follow `'bind' : `. As in HAProxy 2.6, the
/// environment variables left in `text` (outside double quotes) are expanded first, and
/// the messages quote `text` as written.
/// Divergence: no name resolution: a host name other than `localhost` is refused, where
/// 2.6 resolves it at start-up; no `abns@`, `sockpair@` or `udp@` addresses.
pub fn str2sa_range(
    text: &str,
    need_port: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ParsedAddr, String> {
    let expanded = env_expand(text, env);
    if expanded.is_empty() {
        return Err(format!("'{text}' resolves to an empty address (environment variable missing?)"));
    }
    str2sa_parse(text, &expanded, need_port)
}

/// The parsing part of `str2sa_range`: `str2` is `text` once expanded.
fn str2sa_parse(text: &str, str2: &str, need_port: bool) -> Result<ParsedAddr, String> {
    if let Some(n) = str2.strip_prefix("fd@") {
        return n
            .parse::<i32>()
            .map(ParsedAddr::Fd)
            .map_err(|_| format!("invalid file descriptor '{n}' in '{text}'"));
    }
    if let Some(p) = str2.strip_prefix("unix@") {
        return Ok(ParsedAddr::Unix(PathBuf::from(p)));
    }
    if str2.starts_with('/') {
        return Ok(ParsedAddr::Unix(PathBuf::from(str2)));
    }
    let (family, rest) = if let Some(r) = str2.strip_prefix("ipv4@") {
        (Some(4), r)
    } else if let Some(r) = str2.strip_prefix("ipv6@") {
        (Some(6), r)
    } else {
        (None, str2)
    };
    // Split host and port on the last ':' (IPv6 may be bracketed or bare).
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']').ok_or_else(|| format!("invalid address: '{text}'"))?;
        let after = &r[end + 1..];
        (&r[..end], after.strip_prefix(':'))
    } else {
        match rest.rfind(':') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        }
    };
    let ip: IpAddr = match host {
        "" | "*" => {
            if family == Some(6) || host.is_empty() && rest.starts_with("::") {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }
        }
        "::" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        h => match h.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) if h == "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Err(_) => return Err(format!("unable to resolve address '{h}' in '{text}'")),
        },
    };
    let Some(port) = port.filter(|p| !p.is_empty()) else {
        if need_port {
            return Err(format!("missing port specification in '{text}'"));
        }
        return Ok(ParsedAddr::Inet(ip, 0, 0));
    };
    let (a, b) = match port.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (port, None),
    };
    let parse_port = |p: &str| -> Result<u16, String> {
        if let Some(c) = p.chars().find(|c| !c.is_ascii_digit()) {
            return Err(format!("invalid character '{c}' in port number '{p}' in '{text}'"));
        }
        match p.parse::<u32>() {
            Ok(n) if n <= 65535 => Ok(n as u16),
            _ => Err(format!("invalid port '{p}'")),
        }
    };
    let first = parse_port(a)?;
    let last = match b {
        Some(b) => parse_port(b)?,
        None => first,
    };
    if last < first {
        return Err(format!("invalid port range '{port}'"));
    }
    Ok(ParsedAddr::Inet(ip, first, last))
}

/// tools.c:env_expand() (HAProxy 2.6): each `$NAME` or `${NAME}` (letters, digits, `_`)
/// replaced by the variable's value, or by nothing when it is not set. Unlike in double
/// quotes, `${NAME-default}` has no default here: `-default}` stays as text.
pub fn env_expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let braced = after.starts_with('{');
        let var = if braced { &after[1..] } else { after };
        let len = var.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        if len > 0 {
            out.push_str(&env(&var[..len]).unwrap_or_default());
        }
        let closed = braced && var[len..].starts_with('}');
        rest = &var[len + usize::from(closed)..];
    }
    out.push_str(rest);
    out
}

/// The socket addresses of an `Inet` range, in order.
pub fn expand_range(ip: IpAddr, first: u16, last: u16) -> Vec<SocketAddr> {
    (first..=last).map(|p| SocketAddr::new(ip, p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_units_and_errors_name_the_character() {
        assert_eq!(parse_time_err("10s"), Ok(10_000));
        assert_eq!(parse_time_err("250"), Ok(250));
        assert_eq!(parse_time_err("1m"), Ok(60_000));
        assert_eq!(parse_time_err("10x"), Err(TimeErr::Char('x')));
        assert_eq!(parse_time_err("abc"), Err(TimeErr::Char('a')));
        assert_eq!(parse_time_err("2147483647"), Ok(2_147_483_647));
        assert_eq!(parse_time_err("2147483648"), Err(TimeErr::Overflow), "beyond HAProxy's 32-bit timers");
        assert_eq!(parse_time_err("999999999999999999d"), Err(TimeErr::Overflow), "no wrap-around");
        assert_eq!(parse_time_err("99999999999999999999999"), Err(TimeErr::Overflow));
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn addresses_parse_like_haproxy() {
        assert_eq!(
            str2sa_range("127.0.0.1:80", true, &no_env),
            Ok(ParsedAddr::Inet("127.0.0.1".parse().unwrap(), 80, 80))
        );
        assert_eq!(
            str2sa_range(":8080", true, &no_env),
            Ok(ParsedAddr::Inet("0.0.0.0".parse().unwrap(), 8080, 8080))
        );
        assert_eq!(
            str2sa_range(":::8080", true, &no_env),
            Ok(ParsedAddr::Inet("::".parse().unwrap(), 8080, 8080))
        );
        assert_eq!(
            str2sa_range("*:8080", true, &no_env),
            Ok(ParsedAddr::Inet("0.0.0.0".parse().unwrap(), 8080, 8080))
        );
        assert_eq!(
            str2sa_range("[::1]:81-82", true, &no_env),
            Ok(ParsedAddr::Inet("::1".parse().unwrap(), 81, 82))
        );
        assert_eq!(str2sa_range("fd@3", true, &no_env), Ok(ParsedAddr::Fd(3)));
        assert_eq!(
            str2sa_range("127.0.0.1", true, &no_env).unwrap_err(),
            "missing port specification in '127.0.0.1'"
        );
        assert_eq!(str2sa_range("127.0.0.1:99999", true, &no_env).unwrap_err(), "invalid port '99999'");
        assert_eq!(
            str2sa_range("127.0.0.1:abc", true, &no_env).unwrap_err(),
            "invalid character 'a' in port number 'abc' in '127.0.0.1:abc'"
        );
        assert_eq!(
            str2sa_range("10.0.0.1", false, &no_env),
            Ok(ParsedAddr::Inet("10.0.0.1".parse().unwrap(), 0, 0))
        );
    }

    #[test]
    fn addresses_expand_environment_variables_like_haproxy_26() {
        let env = |k: &str| (k == "IP").then(|| "127.0.0.2".to_string());
        assert_eq!(env_expand("${IP}:80", &env), "127.0.0.2:80");
        assert_eq!(env_expand("$IP:80", &env), "127.0.0.2:80");
        assert_eq!(env_expand("${NOPE}:80", &env), ":80");
        assert_eq!(env_expand("1:${NOPE-80}", &env), "1:-80}", "no default outside double quotes");
        assert_eq!(env_expand("a$", &env), "a");
        assert_eq!(
            str2sa_range("${IP}:80", true, &env),
            Ok(ParsedAddr::Inet("127.0.0.2".parse().unwrap(), 80, 80))
        );
        assert_eq!(
            str2sa_range("${NOPE}:80", true, &env),
            Ok(ParsedAddr::Inet("0.0.0.0".parse().unwrap(), 80, 80)),
            "an empty host: every address, as HAProxy binds it"
        );
        assert_eq!(
            str2sa_range("${NOPE}", true, &env).unwrap_err(),
            "'${NOPE}' resolves to an empty address (environment variable missing?)"
        );
        assert_eq!(
            str2sa_range("127.0.0.1:${NOPE}", true, &env).unwrap_err(),
            "missing port specification in '127.0.0.1:${NOPE}'"
        );
    }
}
