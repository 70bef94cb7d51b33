//! FIX: the Financial Information eXchange protocol, as the `fix_is_valid` and
//! `fix_tag_value` converters read it.
//!
//! Reproduces `fix.c` and `include/haproxy/fix.h` of HAProxy 2.6 (FIX support came in
//! 2.4; 1.5 has none). A FIX message is a list of `tag=value` fields, each ended by the
//! byte `0x01`: `8=BeginString`, `9=BodyLength`, `35=MsgType` come first, `10=CheckSum`
//! (the sum of every byte before it, modulo 256, on three digits) comes last. Both
//! converters work on the bytes a `req.payload(0,0)` fetch gives them, and tell "not
//! enough data yet" apart from "invalid", so that `tcp-request content` rules can wait
//! for the rest of the message.

/// The byte that ends each field.
const FIX_DELIMITER: u8 = 0x01;
/// `BeginString` (8).
pub const FIX_TAG_BEGIN_STRING: u32 = 8;
/// `BodyLength` (9).
pub const FIX_TAG_BODY_LENGTH: u32 = 9;
/// `CheckSum` (10).
pub const FIX_TAG_CHECK_SUM: u32 = 10;
/// `MsgType` (35).
pub const FIX_TAG_MSG_TYPE: u32 = 35;
/// `SenderCompID` (49).
pub const FIX_TAG_SENDER_COMP_ID: u32 = 49;
/// `TargetCompID` (56).
pub const FIX_TAG_TARGET_COMP_ID: u32 = 56;
/// The shortest valid message.
const FIX_MSG_MINSIZE: usize = 26;

/// The versions HAProxy knows, with the highest tag id each defines.
const FIX_VERSIONS: &[(&[u8], u32)] = &[
    (b"FIX.4.0", 140),
    (b"FIX.4.1", 211),
    (b"FIX.4.2", 446),
    (b"FIX.4.3", 659),
    (b"FIX.4.4", 956),
    // The same string for every 5.0 release: the widest range.
    (b"FIXT.1.1", 1621),
];

/// What `fix_validate_message` found.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FixResult {
    /// `FIX_INVALID_MESSAGE`.
    FIX_INVALID_MESSAGE,
    /// `FIX_NEED_MORE_DATA`: a valid start, not the end yet.
    FIX_NEED_MORE_DATA,
    /// `FIX_VALID_MESSAGE`.
    FIX_VALID_MESSAGE,
}

/// `read_uint()`: the leading decimal digits of `s` and how many there were.
fn read_uint(s: &[u8]) -> (u32, usize) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let v = s[..n].iter().fold(0u32, |v, &c| v.wrapping_mul(10).wrapping_add(u32::from(c - b'0')));
    (v, n)
}

/// fix.c:fix_check_id() in 2.6: a tag id written in decimal, not 0, and (when the
/// message's `version` is known) defined by that version or in the user range
/// 10000-19999; 0 when not.
pub fn fix_check_id(tag: &[u8], version: Option<&[u8]>) -> u32 {
    let (id, used) = read_uint(tag);
    if used != tag.len() || id == 0 {
        return 0;
    }
    let Some(version) = version else { return id };
    if (10000..=19999).contains(&id) {
        return id;
    }
    match FIX_VERSIONS.iter().find(|(v, _)| *v == version) {
        Some(&(_, max)) if id <= max => id,
        _ => 0,
    }
}

/// fix.h:fix_version() in 2.6: the version string if HAProxy knows it.
fn fix_version(v: &[u8]) -> Option<&[u8]> {
    FIX_VERSIONS.iter().any(|(known, _)| *known == v).then_some(v)
}

/// fix.h:fix_tagid() in 2.6: a tag as a number, or one of the six names HAProxy knows
/// (case-insensitive); 0 for anything else.
pub fn fix_tagid(tag: &[u8]) -> u32 {
    let id = fix_check_id(tag, None);
    if id != 0 {
        return id;
    }
    const NAMES: &[(&[u8], u32)] = &[
        (b"MsgType", FIX_TAG_MSG_TYPE),
        (b"CheckSum", FIX_TAG_CHECK_SUM),
        (b"BodyLength", FIX_TAG_BODY_LENGTH),
        (b"TargetCompID", FIX_TAG_TARGET_COMP_ID),
        (b"BeginString", FIX_TAG_BEGIN_STRING),
        (b"SenderCompID", FIX_TAG_SENDER_COMP_ID),
    ];
    NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(tag)).map_or(0, |&(_, id)| id)
}

/// One `tag=value<delim>` field at the start of `p`: `Ok(Some((tag, value)))`,
/// `Ok(None)` when its delimiter has not arrived, `Err(())` for an empty tag or a
/// field without `=`.
#[allow(clippy::type_complexity)]
fn next_field(p: &[u8]) -> Result<Option<(&[u8], &[u8])>, ()> {
    let eq = p.iter().position(|&c| c == b'=');
    let Some(end) = p[eq.unwrap_or(p.len())..].iter().position(|&c| c == FIX_DELIMITER) else {
        return Ok(None);
    };
    let Some(eq) = eq else { return Ok(None) };
    let end = eq + end;
    if eq == 0 {
        return Err(());
    }
    Ok(Some((&p[..eq], &p[eq + 1..end])))
}

/// fix.c:fix_validate_message() in 2.6: is `msg` one whole valid FIX message? Checks
/// the order of the first three tags, each tag id against the version, the body length
/// and the checksum.
pub fn fix_validate_message(msg: &[u8]) -> FixResult {
    use FixResult::*;
    if msg.len() < FIX_MSG_MINSIZE {
        return FIX_NEED_MORE_DATA;
    }
    let mut pos = 0;
    let mut version: Option<&[u8]> = None;
    let (mut checksum, mut tagnum, mut bodylen) = (0u8, 0u32, 0usize);
    let mut body: Option<usize> = None;
    while pos < msg.len() {
        let (tag, value) = match next_field(&msg[pos..]) {
            Ok(Some(f)) => f,
            Ok(None) => return FIX_NEED_MORE_DATA,
            Err(()) => return FIX_INVALID_MESSAGE,
        };
        let tagid = fix_check_id(tag, version);
        if tagid == 0 {
            return FIX_INVALID_MESSAGE;
        }
        tagnum += 1;
        match tagnum {
            1 => {
                if tagid != FIX_TAG_BEGIN_STRING {
                    return FIX_INVALID_MESSAGE;
                }
                version = fix_version(value);
                if version.is_none() {
                    return FIX_INVALID_MESSAGE;
                }
            }
            2 => {
                let (n, used) = read_uint(value);
                if tagid != FIX_TAG_BODY_LENGTH || used != value.len() || n == 0 {
                    return FIX_INVALID_MESSAGE;
                }
                bodylen = n as usize;
                body = Some(pos + tag.len() + value.len() + 2);
            }
            3 if tagid != FIX_TAG_MSG_TYPE => return FIX_INVALID_MESSAGE,
            3 => {}
            _ if tagid == FIX_TAG_CHECK_SUM => {
                // The last field: neither in the body length nor in the checksum.
                let (sum, used) = read_uint(value);
                let ok = body.is_some_and(|b| pos - b == bodylen)
                    && value.len() == 3
                    && used == 3
                    && sum == u32::from(checksum);
                return if ok { FIX_VALID_MESSAGE } else { FIX_INVALID_MESSAGE };
            }
            _ => {}
        }
        for &c in tag.iter().chain(b"=").chain(value).chain(&[FIX_DELIMITER]) {
            checksum = checksum.wrapping_add(c);
        }
        pos += tag.len() + value.len() + 2;
    }
    // The whole buffer was fields: the checksum is still to come.
    if body.is_some() { FIX_NEED_MORE_DATA } else { FIX_INVALID_MESSAGE }
}

/// What `fix_tag_value` found.
#[derive(Debug, PartialEq, Eq)]
pub enum FixTagValue<'a> {
    /// The value of the tag.
    Found(&'a [u8]),
    /// Not in the fields seen so far, but more may come.
    NeedMore,
    /// Not in the message, or the message is invalid.
    NotFound,
}

/// fix.c:fix_tag_value() in 2.6: the value of tag `tagid` in `msg`.
pub fn fix_tag_value(msg: &[u8], tagid: u32) -> FixTagValue<'_> {
    let mut pos = 0;
    while pos < msg.len() {
        let (tag, value) = match next_field(&msg[pos..]) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(()) => return FixTagValue::NotFound,
        };
        let id = fix_check_id(tag, None);
        if id == 0 {
            return FixTagValue::NotFound;
        }
        if id == tagid {
            return FixTagValue::Found(value);
        }
        if id == FIX_TAG_CHECK_SUM {
            return FixTagValue::NotFound;
        }
        pos += tag.len() + value.len() + 2;
    }
    FixTagValue::NeedMore
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIX 4.4 logon, `|` for the delimiter, with its body length and checksum
    /// computed; `tweak` edits the body before they are.
    fn logon(tweak: impl Fn(String) -> String) -> Vec<u8> {
        let body = tweak("35=A|49=CLIENT1|56=EXECUTOR|34=1|52=20201029-13:02:44.535360|98=0|108=30|".into());
        let head = format!("8=FIX.4.4|9={}|{body}", body.len());
        let bytes: Vec<u8> = head.bytes().map(|c| if c == b'|' { FIX_DELIMITER } else { c }).collect();
        let sum = bytes.iter().fold(0u8, |a, &c| a.wrapping_add(c));
        let mut m = bytes;
        m.extend_from_slice(format!("10={sum:03}").as_bytes());
        m.push(FIX_DELIMITER);
        m
    }

    #[test]
    fn a_whole_logon_is_valid_and_its_prefixes_need_more() {
        let m = logon(|b| b);
        assert_eq!(fix_validate_message(&m), FixResult::FIX_VALID_MESSAGE);
        for cut in [0, 10, 30, m.len() - 1] {
            assert_eq!(fix_validate_message(&m[..cut]), FixResult::FIX_NEED_MORE_DATA, "{cut}");
        }
    }

    #[test]
    fn broken_messages_are_invalid() {
        let mut m = logon(|b| b);
        let n = m.len();
        m[n - 2] = if m[n - 2] == b'9' { b'0' } else { m[n - 2] + 1 };
        assert_eq!(fix_validate_message(&m), FixResult::FIX_INVALID_MESSAGE, "checksum");
        let m = logon(|b| b).iter().map(|&c| if c == b'4' { b'9' } else { c }).collect::<Vec<_>>();
        assert_eq!(fix_validate_message(&m), FixResult::FIX_INVALID_MESSAGE, "version");
        assert_eq!(
            fix_validate_message(&logon(|b| b.replace("35=A|49", "49=A|35"))),
            FixResult::FIX_INVALID_MESSAGE
        );
        assert_eq!(fix_validate_message(&logon(|b| b.replace("98=", "=98"))), FixResult::FIX_INVALID_MESSAGE);
        assert_eq!(
            fix_validate_message(&logon(|b| b.replace("108=30", "1108=30"))),
            FixResult::FIX_INVALID_MESSAGE
        );
        assert_eq!(
            fix_validate_message(b"GET / HTTP/1.1\r\nhost: example.com\r\n\r\n"),
            FixResult::FIX_NEED_MORE_DATA
        );
    }

    #[test]
    fn tag_values_by_number_or_name() {
        let m = logon(|b| b);
        assert_eq!(fix_tagid(b"SenderCompID"), 49);
        assert_eq!(fix_tagid(b"checksum"), 10);
        assert_eq!(fix_tagid(b"553"), 553);
        assert_eq!(fix_tagid(b"Nope"), 0);
        assert_eq!(fix_tag_value(&m, 49), FixTagValue::Found(&b"CLIENT1"[..]));
        assert_eq!(fix_tag_value(&m, 35), FixTagValue::Found(&b"A"[..]));
        assert_eq!(fix_tag_value(&m, 777), FixTagValue::NotFound);
        assert_eq!(fix_tag_value(&m[..20], 49), FixTagValue::NeedMore);
    }
}
