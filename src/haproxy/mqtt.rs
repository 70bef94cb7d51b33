//! MQTT: the CONNECT and CONNACK packets, as the `mqtt_is_valid` and
//! `mqtt_field_value` converters read them.
//!
//! Reproduces `mqtt.c`, `include/haproxy/mqtt.h` and `mqtt-t.h` of HAProxy 2.6 (MQTT
//! support came in 2.4; 1.5 has none). A packet is a fixed header (type and flags in one
//! byte, then the remaining length as a variable-length integer), a variable header and
//! a payload. HAProxy validates MQTT 3.1, 3.1.1 and 5.0 CONNECT packets and CONNACK
//! packets in full, properties included, and tells "not enough data yet" apart from
//! "invalid", so that `tcp-request content` rules can wait for the rest of a packet.
//! Field values are returned as strings: integers in decimal.

/// `MQTT_VERSION_5_0`.
const MQTT_VERSION_5_0: u8 = 5;
/// `MQTT_CPT_CONNECT`.
pub const MQTT_CPT_CONNECT: u8 = 1;
/// `MQTT_CPT_CONNACK`.
pub const MQTT_CPT_CONNACK: u8 = 2;
/// `MQTT_CPT_ENTRIES`: packet types are 1 to 15.
const MQTT_CPT_ENTRIES: u8 = 16;

/// The packet type names (`mqtt_typeid`), from `MQTT_CPT_CONNECT` on.
const MQTT_TYPES: [&str; 15] = [
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

/// `mqtt_cpt_flags[]`: the flags each packet type must carry (PUBLISH: any).
const MQTT_CPT_FLAGS: [u8; 16] = [0, 0, 0, 0x0f, 0, 0, 0x02, 0, 0x02, 0, 0x02, 0, 0, 0, 0, 0];

/// `mqtt_fields_string[]`: the field names, indexed by `MQTT_FN_*` (properties of MQTT
/// 5.0 are named by their identifier).
const MQTT_FIELDS_STRING: [&str; FN_ENTRIES] = [
    "",
    "flags",
    "reason_code",
    "protocol_name",
    "protocol_version",
    "client_identifier",
    "will_topic",
    "will_payload",
    "username",
    "password",
    "keepalive",
    "1",
    "2",
    "3",
    "8",
    "9",
    "11",
    "17",
    "18",
    "19",
    "21",
    "22",
    "23",
    "24",
    "25",
    "26",
    "28",
    "31",
    "33",
    "34",
    "35",
    "36",
    "37",
    "38",
    "39",
    "40",
    "41",
    "42",
];

// `MQTT_FN_*`: positions in `MQTT_FIELDS_STRING`.
const FN_FLAGS: usize = 1;
const FN_REASON_CODE: usize = 2;
const FN_PROTOCOL_NAME: usize = 3;
const FN_PROTOCOL_VERSION: usize = 4;
const FN_CLIENT_IDENTIFIER: usize = 5;
const FN_WILL_TOPIC: usize = 6;
const FN_WILL_PAYLOAD: usize = 7;
const FN_USERNAME: usize = 8;
const FN_PASSWORD: usize = 9;
const FN_KEEPALIVE: usize = 10;
const FN_PAYLOAD_FORMAT_INDICATOR: usize = 11;
const FN_MESSAGE_EXPIRY_INTERVAL: usize = 12;
const FN_CONTENT_TYPE: usize = 13;
const FN_RESPONSE_TOPIC: usize = 14;
const FN_CORRELATION_DATA: usize = 15;
const FN_SUBSCRIPTION_IDENTIFIER: usize = 16;
const FN_SESSION_EXPIRY_INTERVAL: usize = 17;
const FN_ASSIGNED_CLIENT_IDENTIFIER: usize = 18;
const FN_SERVER_KEEPALIVE: usize = 19;
const FN_AUTHENTICATION_METHOD: usize = 20;
const FN_AUTHENTICATION_DATA: usize = 21;
const FN_REQUEST_PROBLEM_INFORMATION: usize = 22;
const FN_DELAY_INTERVAL: usize = 23;
const FN_REQUEST_RESPONSE_INFORMATION: usize = 24;
const FN_RESPONSE_INFORMATION: usize = 25;
const FN_SERVER_REFERENCE: usize = 26;
const FN_REASON_STRING: usize = 27;
const FN_RECEIVE_MAXIMUM: usize = 28;
const FN_TOPIC_ALIAS_MAXIMUM: usize = 29;
const FN_TOPIC_ALIAS: usize = 30;
const FN_MAXIMUM_QOS: usize = 31;
const FN_RETAIN_AVAILABLE: usize = 32;
const FN_USER_PROPERTY: usize = 33;
const FN_MAXIMUM_PACKET_SIZE: usize = 34;
const FN_WILDCARD_SUBSCRIPTION_AVAILABLE: usize = 35;
const FN_SUBSCRIPTION_IDENTIFIERS_AVAILABLE: usize = 36;
const FN_SHARED_SUBSCRIPTION_AVAILABLE: usize = 37;
/// `MQTT_FN_ENTRIES`.
const FN_ENTRIES: usize = 38;

const fn bits(fns: &[usize]) -> u64 {
    let mut b = 0u64;
    let mut i = 0;
    while i < fns.len() {
        b |= 1 << fns[i];
        i += 1;
    }
    b
}

/// `mqtt_fields_per_packet[]`: the fields each packet type has.
const MQTT_FIELDS_PER_PACKET: [u64; 16] = [
    0,
    bits(&[
        FN_PROTOCOL_NAME,
        FN_PROTOCOL_VERSION,
        FN_FLAGS,
        FN_KEEPALIVE,
        FN_SESSION_EXPIRY_INTERVAL,
        FN_RECEIVE_MAXIMUM,
        FN_MAXIMUM_PACKET_SIZE,
        FN_TOPIC_ALIAS_MAXIMUM,
        FN_REQUEST_RESPONSE_INFORMATION,
        FN_REQUEST_PROBLEM_INFORMATION,
        FN_USER_PROPERTY,
        FN_AUTHENTICATION_METHOD,
        FN_AUTHENTICATION_DATA,
        FN_CLIENT_IDENTIFIER,
        FN_DELAY_INTERVAL,
        FN_PAYLOAD_FORMAT_INDICATOR,
        FN_MESSAGE_EXPIRY_INTERVAL,
        FN_CONTENT_TYPE,
        FN_RESPONSE_TOPIC,
        FN_CORRELATION_DATA,
        FN_WILL_TOPIC,
        FN_WILL_PAYLOAD,
        FN_USERNAME,
        FN_PASSWORD,
    ]),
    bits(&[
        FN_FLAGS,
        FN_PROTOCOL_VERSION,
        FN_REASON_CODE,
        FN_SESSION_EXPIRY_INTERVAL,
        FN_RECEIVE_MAXIMUM,
        FN_MAXIMUM_QOS,
        FN_RETAIN_AVAILABLE,
        FN_MAXIMUM_PACKET_SIZE,
        FN_ASSIGNED_CLIENT_IDENTIFIER,
        FN_TOPIC_ALIAS_MAXIMUM,
        FN_REASON_STRING,
        FN_WILDCARD_SUBSCRIPTION_AVAILABLE,
        FN_SUBSCRIPTION_IDENTIFIERS_AVAILABLE,
        FN_SHARED_SUBSCRIPTION_AVAILABLE,
        FN_SERVER_KEEPALIVE,
        FN_RESPONSE_INFORMATION,
        FN_SERVER_REFERENCE,
        FN_USER_PROPERTY,
        FN_AUTHENTICATION_METHOD,
        FN_AUTHENTICATION_DATA,
    ]),
    bits(&[
        FN_PAYLOAD_FORMAT_INDICATOR,
        FN_MESSAGE_EXPIRY_INTERVAL,
        FN_CONTENT_TYPE,
        FN_RESPONSE_TOPIC,
        FN_CORRELATION_DATA,
        FN_SUBSCRIPTION_IDENTIFIER,
        FN_TOPIC_ALIAS,
        FN_USER_PROPERTY,
    ]),
    bits(&[FN_REASON_CODE, FN_REASON_STRING, FN_USER_PROPERTY]),
    bits(&[FN_REASON_CODE, FN_REASON_STRING, FN_USER_PROPERTY]),
    bits(&[FN_REASON_CODE, FN_REASON_STRING, FN_USER_PROPERTY]),
    bits(&[FN_REASON_CODE, FN_REASON_STRING, FN_USER_PROPERTY]),
    bits(&[FN_SUBSCRIPTION_IDENTIFIER, FN_USER_PROPERTY]),
    bits(&[FN_REASON_STRING, FN_USER_PROPERTY]),
    bits(&[FN_USER_PROPERTY]),
    bits(&[FN_REASON_STRING, FN_USER_PROPERTY]),
    0,
    0,
    bits(&[
        FN_REASON_CODE,
        FN_SESSION_EXPIRY_INTERVAL,
        FN_SERVER_REFERENCE,
        FN_REASON_STRING,
        FN_USER_PROPERTY,
    ]),
    bits(&[FN_AUTHENTICATION_METHOD, FN_AUTHENTICATION_DATA, FN_REASON_STRING, FN_USER_PROPERTY]),
];

/// mqtt.h:mqtt_typeid() in 2.6: a packet type by number (1-15) or name; 0 if unknown.
pub fn mqtt_typeid(s: &[u8]) -> u8 {
    let n = s
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u32, |n, &c| n.saturating_mul(10) + u32::from(c - b'0'));
    if (u32::from(MQTT_CPT_CONNECT)..u32::from(MQTT_CPT_ENTRIES)).contains(&n) {
        return n as u8;
    }
    MQTT_TYPES.iter().position(|t| t.as_bytes().eq_ignore_ascii_case(s)).map_or(0, |i| i as u8 + 1)
}

/// mqtt.h:mqtt_check_type_fieldname() in 2.6: the field id of `name` if packets of
/// `ptype` have it; 0 if not.
pub fn mqtt_check_type_fieldname(ptype: u8, name: &[u8]) -> usize {
    match MQTT_FIELDS_STRING.iter().position(|f| f.as_bytes().eq_ignore_ascii_case(name)) {
        Some(i) if MQTT_FIELDS_PER_PACKET[usize::from(ptype & 0x0f)] & (1 << i) != 0 => i,
        _ => 0,
    }
}

/// What `mqtt_validate_message` found (`MQTT_*_MESSAGE`, `MQTT_NEED_MORE_DATA`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttResult {
    /// `MQTT_INVALID_MESSAGE`.
    MQTT_INVALID_MESSAGE,
    /// `MQTT_NEED_MORE_DATA`.
    MQTT_NEED_MORE_DATA,
    /// `MQTT_VALID_MESSAGE`.
    MQTT_VALID_MESSAGE,
}
use MqttResult::*;

/// A field's value in a parsed packet.
#[derive(Clone, Copy, Debug)]
enum Val<'a> {
    /// An integer (printed in decimal).
    Uint(u32),
    /// A string or binary data (absent when empty).
    Str(&'a [u8]),
}

/// A parsed packet (`struct mqtt_pkt`): its type and the value of each field it has,
/// indexed by `MQTT_FN_*`.
struct MqttPkt<'a> {
    ptype: u8,
    fields: [Option<Val<'a>>; FN_ENTRIES],
}

/// A reader over packet bytes (the `mqtt_read_*` functions).
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (h, t) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// mqtt_read_varint(): at most 4 bytes, 7 bits each, high bit for "more".
    fn varint(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for off in 0..4 {
            let Some(b) = self.u8() else { return Some(v) };
            v += u32::from(b & 127) << (7 * off);
            if b <= 127 {
                return Some(v);
            }
        }
        None
    }
    /// mqtt_read_string(): a 2-byte length, then the bytes.
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// A property list of MQTT 5.0 (`plen` bytes): each property id must be in `allowed`
/// (with its field, its reader and its check), appear once (user properties aside), and
/// read whole. `None`: invalid; `Some(false)`: a CONNACK property HAProxy does not know
/// (it answers "need more data" there).
fn read_props<'a>(
    r: &mut Rd<'a>,
    pkt: &mut MqttPkt<'a>,
    allowed: &[(u8, usize, Kind)],
    dup_bit: &dyn Fn(usize) -> usize,
    unknown_wait: bool,
) -> Option<bool> {
    let plen = r.varint()?;
    let mut props = Rd(r.take(plen as usize)?);
    let mut seen = 0u64;
    while let Some(id) = props.u8() {
        if id == 0x26 {
            // User property: a name and a value, any number of times.
            props.string()?;
            props.string()?;
            continue;
        }
        let Some(&(_, f, kind)) = allowed.iter().find(|(p, _, _)| *p == id) else {
            return if unknown_wait { Some(false) } else { None };
        };
        let bit = 1u64 << dup_bit(f);
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        let v = match kind {
            Kind::U8Max1 => {
                let v = props.u8()?;
                if v > 1 {
                    return None;
                }
                Val::Uint(v.into())
            }
            Kind::U16 => Val::Uint(props.u16()?.into()),
            Kind::U16NonZero => match props.u16()? {
                0 => return None,
                v => Val::Uint(v.into()),
            },
            Kind::U32 => Val::Uint(props.u32()?),
            Kind::U32NonZero => match props.u32()? {
                0 => return None,
                v => Val::Uint(v),
            },
            Kind::Str => Val::Str(props.string()?),
            Kind::StrNonEmpty => match props.string()? {
                [] => return None,
                s => Val::Str(s),
            },
        };
        pkt.fields[f] = Some(v);
    }
    Some(true)
}

/// How a property is read and checked.
#[derive(Clone, Copy)]
enum Kind {
    U8Max1,
    U16,
    U16NonZero,
    U32,
    U32NonZero,
    Str,
    StrNonEmpty,
}

/// Sets integer fields a version-5 packet always has (0 when not sent).
fn default_uints(pkt: &mut MqttPkt, fns: &[usize]) {
    for &f in fns {
        pkt.fields[f] = Some(Val::Uint(0));
    }
}

/// mqtt.c:mqtt_parse_connect() in 2.6: the variable header and payload of a CONNECT
/// of `remaining` bytes at the start of `body`.
fn mqtt_parse_connect<'a>(body: &'a [u8], remaining: usize, pkt: &mut MqttPkt<'a>) -> MqttResult {
    let mut r = Rd(body);
    let Some(name) = r.string() else { return MQTT_INVALID_MESSAGE };
    if !(name.eq_ignore_ascii_case(b"MQTT") || name.eq_ignore_ascii_case(b"MQIsdp")) {
        return MQTT_INVALID_MESSAGE;
    }
    let Some(version) = r.u8().filter(|v| matches!(v, 3..=5)) else { return MQTT_INVALID_MESSAGE };
    let Some(flags) = r.u8().filter(|f| f & 0x01 == 0) else { return MQTT_INVALID_MESSAGE };
    // A will QoS without a will.
    if flags & (0x04 | 0x18 | 0x20) == 0x18 {
        return MQTT_INVALID_MESSAGE;
    }
    let Some(keepalive) = r.u16() else { return MQTT_INVALID_MESSAGE };
    pkt.fields[FN_PROTOCOL_NAME] = Some(Val::Str(name));
    pkt.fields[FN_PROTOCOL_VERSION] = Some(Val::Uint(version.into()));
    pkt.fields[FN_FLAGS] = Some(Val::Uint(flags.into()));
    pkt.fields[FN_KEEPALIVE] = Some(Val::Uint(keepalive.into()));
    let will = flags & 0x04 != 0;
    if version == MQTT_VERSION_5_0 {
        default_uints(
            pkt,
            &[
                FN_SESSION_EXPIRY_INTERVAL,
                FN_RECEIVE_MAXIMUM,
                FN_MAXIMUM_PACKET_SIZE,
                FN_TOPIC_ALIAS_MAXIMUM,
                FN_REQUEST_RESPONSE_INFORMATION,
                FN_REQUEST_PROBLEM_INFORMATION,
            ],
        );
        let allowed = [
            (0x11, FN_SESSION_EXPIRY_INTERVAL, Kind::U32),
            (0x21, FN_RECEIVE_MAXIMUM, Kind::U16NonZero),
            (0x27, FN_MAXIMUM_PACKET_SIZE, Kind::U32NonZero),
            (0x22, FN_TOPIC_ALIAS_MAXIMUM, Kind::U16),
            (0x19, FN_REQUEST_RESPONSE_INFORMATION, Kind::U8Max1),
            (0x17, FN_REQUEST_PROBLEM_INFORMATION, Kind::U8Max1),
            (0x15, FN_AUTHENTICATION_METHOD, Kind::Str),
            (0x16, FN_AUTHENTICATION_DATA, Kind::Str),
        ];
        // 2.6 marks the topic alias maximum with the topic alias bit.
        let dup = |f: usize| if f == FN_TOPIC_ALIAS_MAXIMUM { FN_TOPIC_ALIAS } else { f };
        if read_props(&mut r, pkt, &allowed, &dup, false).is_none() {
            return MQTT_INVALID_MESSAGE;
        }
    }
    let nonempty = |v: Option<Val>| matches!(v, Some(Val::Str(s)) if !s.is_empty());
    if !nonempty(pkt.fields[FN_AUTHENTICATION_METHOD]) && nonempty(pkt.fields[FN_AUTHENTICATION_DATA]) {
        return MQTT_INVALID_MESSAGE;
    }
    let Some(id) = r.string() else { return MQTT_INVALID_MESSAGE };
    pkt.fields[FN_CLIENT_IDENTIFIER] = Some(Val::Str(id));
    if version == MQTT_VERSION_5_0 && will {
        default_uints(pkt, &[FN_DELAY_INTERVAL, FN_PAYLOAD_FORMAT_INDICATOR, FN_MESSAGE_EXPIRY_INTERVAL]);
        let allowed = [
            (0x18, FN_DELAY_INTERVAL, Kind::U32),
            (0x01, FN_PAYLOAD_FORMAT_INDICATOR, Kind::U8Max1),
            (0x02, FN_MESSAGE_EXPIRY_INTERVAL, Kind::U32),
            (0x03, FN_CONTENT_TYPE, Kind::Str),
            (0x08, FN_RESPONSE_TOPIC, Kind::Str),
            (0x09, FN_CORRELATION_DATA, Kind::Str),
        ];
        if read_props(&mut r, pkt, &allowed, &|f| f, false).is_none() {
            return MQTT_INVALID_MESSAGE;
        }
    }
    let mut strings = Vec::with_capacity(4);
    if will {
        strings.extend([FN_WILL_TOPIC, FN_WILL_PAYLOAD]);
    }
    if flags & 0x80 != 0 {
        strings.push(FN_USERNAME);
    }
    if flags & 0x40 != 0 {
        strings.push(FN_PASSWORD);
    }
    for f in strings {
        let Some(s) = r.string() else { return MQTT_INVALID_MESSAGE };
        pkt.fields[f] = Some(Val::Str(s));
    }
    if body.len() - r.0.len() == remaining { MQTT_VALID_MESSAGE } else { MQTT_INVALID_MESSAGE }
}

/// mqtt.c:mqtt_parse_connack() in 2.6: a CONNACK of `remaining` bytes; two bytes make
/// an MQTT 3.1.1 one, more an MQTT 5.0 one with properties.
fn mqtt_parse_connack<'a>(body: &'a [u8], remaining: usize, pkt: &mut MqttPkt<'a>) -> MqttResult {
    if body.len() < 2 {
        return MQTT_INVALID_MESSAGE;
    }
    let version = if body.len() == 2 { 4 } else { MQTT_VERSION_5_0 };
    let mut r = Rd(body);
    let Some(flags) = r.u8().filter(|f| f & 0xfe == 0) else { return MQTT_INVALID_MESSAGE };
    let Some(reason) = r.u8() else { return MQTT_INVALID_MESSAGE };
    pkt.fields[FN_PROTOCOL_VERSION] = Some(Val::Uint(version.into()));
    pkt.fields[FN_FLAGS] = Some(Val::Uint(flags.into()));
    pkt.fields[FN_REASON_CODE] = Some(Val::Uint(reason.into()));
    if version == MQTT_VERSION_5_0 {
        default_uints(
            pkt,
            &[
                FN_SESSION_EXPIRY_INTERVAL,
                FN_RECEIVE_MAXIMUM,
                FN_MAXIMUM_QOS,
                FN_RETAIN_AVAILABLE,
                FN_MAXIMUM_PACKET_SIZE,
                FN_TOPIC_ALIAS_MAXIMUM,
                FN_WILDCARD_SUBSCRIPTION_AVAILABLE,
                FN_SUBSCRIPTION_IDENTIFIERS_AVAILABLE,
                FN_SHARED_SUBSCRIPTION_AVAILABLE,
                FN_SERVER_KEEPALIVE,
            ],
        );
        let allowed = [
            (0x11, FN_SESSION_EXPIRY_INTERVAL, Kind::U32),
            (0x21, FN_RECEIVE_MAXIMUM, Kind::U16NonZero),
            (0x24, FN_MAXIMUM_QOS, Kind::U8Max1),
            (0x25, FN_RETAIN_AVAILABLE, Kind::U8Max1),
            (0x27, FN_MAXIMUM_PACKET_SIZE, Kind::U32NonZero),
            (0x12, FN_ASSIGNED_CLIENT_IDENTIFIER, Kind::StrNonEmpty),
            (0x22, FN_TOPIC_ALIAS_MAXIMUM, Kind::U16),
            (0x1f, FN_REASON_STRING, Kind::Str),
            (0x28, FN_WILDCARD_SUBSCRIPTION_AVAILABLE, Kind::U8Max1),
            (0x29, FN_SUBSCRIPTION_IDENTIFIERS_AVAILABLE, Kind::U8Max1),
            (0x2a, FN_SHARED_SUBSCRIPTION_AVAILABLE, Kind::U8Max1),
            (0x13, FN_SERVER_KEEPALIVE, Kind::U16),
            (0x1a, FN_RESPONSE_INFORMATION, Kind::Str),
            (0x1c, FN_SERVER_REFERENCE, Kind::Str),
            (0x15, FN_AUTHENTICATION_METHOD, Kind::Str),
            (0x16, FN_AUTHENTICATION_DATA, Kind::Str),
        ];
        // 2.6 marks the subscription identifiers flag with the identifier's bit.
        let dup = |f: usize| {
            if f == FN_SUBSCRIPTION_IDENTIFIERS_AVAILABLE { FN_SUBSCRIPTION_IDENTIFIER } else { f }
        };
        match read_props(&mut r, pkt, &allowed, &dup, true) {
            None => return MQTT_INVALID_MESSAGE,
            Some(false) => return MQTT_NEED_MORE_DATA,
            Some(true) => {}
        }
    }
    if body.len() - r.0.len() == remaining { MQTT_VALID_MESSAGE } else { MQTT_INVALID_MESSAGE }
}

/// mqtt.c:mqtt_validate_message() in 2.6, with the packet it parsed.
fn mqtt_parse(msg: &[u8]) -> (MqttResult, Option<MqttPkt<'_>>) {
    if msg.len() < 2 {
        return (MQTT_NEED_MORE_DATA, None);
    }
    let (ptype, flags) = (msg[0] >> 4, msg[0] & 0x0f);
    if ptype == 0 || flags != MQTT_CPT_FLAGS[usize::from(ptype)] {
        return (MQTT_INVALID_MESSAGE, None);
    }
    let mut r = Rd(&msg[1..]);
    let Some(remaining) = r.varint() else { return (MQTT_INVALID_MESSAGE, None) };
    let remaining = remaining as usize;
    let body = r.0;
    if body.len() < remaining {
        return (MQTT_NEED_MORE_DATA, None);
    }
    let mut pkt = MqttPkt { ptype, fields: [None; FN_ENTRIES] };
    let res = match ptype {
        MQTT_CPT_CONNECT => mqtt_parse_connect(body, remaining, &mut pkt),
        MQTT_CPT_CONNACK => mqtt_parse_connack(body, remaining, &mut pkt),
        _ => MQTT_INVALID_MESSAGE,
    };
    (res, Some(pkt))
}

/// mqtt.c:mqtt_validate_message() in 2.6: is `msg` one whole valid CONNECT or CONNACK?
pub fn mqtt_validate_message(msg: &[u8]) -> MqttResult {
    mqtt_parse(msg).0
}

/// What `mqtt_field_value` found.
#[derive(Debug, PartialEq, Eq)]
pub enum MqttFieldValue {
    /// The value, as a string.
    Found(Vec<u8>),
    /// The packet is not complete yet.
    NeedMore,
    /// Not in the packet, another packet type, or an invalid packet.
    NotFound,
}

/// mqtt.c:mqtt_field_value() in 2.6: field `fieldname_id` of a packet of type `ptype`.
/// The properties of MQTT 5.0 are there only in 5.0 packets, the will's only with a
/// will; an empty string is no value.
pub fn mqtt_field_value(msg: &[u8], ptype: u8, fieldname_id: usize) -> MqttFieldValue {
    let pkt = match mqtt_parse(msg) {
        (MQTT_NEED_MORE_DATA, _) => return MqttFieldValue::NeedMore,
        (MQTT_VALID_MESSAGE, Some(p)) if p.ptype == ptype => p,
        _ => return MqttFieldValue::NotFound,
    };
    match pkt.fields.get(fieldname_id).copied().flatten() {
        Some(Val::Uint(v)) => MqttFieldValue::Found(v.to_string().into_bytes()),
        Some(Val::Str(s)) if !s.is_empty() => MqttFieldValue::Found(s.to_vec()),
        _ => MqttFieldValue::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect()
    }

    /// MQTT 3.1.1 CONNECT with a will, a user and a password (from HAProxy's test suite).
    const CONNECT_311: &str = "103a00044d51545404ee003c0008746573745f737562000977696c6c746f706963000b77696c6c7061796c6f61640004746573740006706173737764";

    #[test]
    fn a_3_1_1_connect_validates_and_gives_its_fields() {
        let m = hex(CONNECT_311);
        assert_eq!(mqtt_validate_message(&m), MQTT_VALID_MESSAGE);
        for cut in [0, 1, 10, m.len() - 1] {
            assert_eq!(mqtt_validate_message(&m[..cut]), MQTT_NEED_MORE_DATA, "{cut}");
        }
        let f = |name: &str| {
            mqtt_field_value(&m, MQTT_CPT_CONNECT, mqtt_check_type_fieldname(1, name.as_bytes()))
        };
        assert_eq!(f("protocol_name"), MqttFieldValue::Found(b"MQTT".to_vec()));
        assert_eq!(f("protocol_version"), MqttFieldValue::Found(b"4".to_vec()));
        assert_eq!(f("flags"), MqttFieldValue::Found(b"238".to_vec()));
        assert_eq!(f("client_identifier"), MqttFieldValue::Found(b"test_sub".to_vec()));
        assert_eq!(f("will_payload"), MqttFieldValue::Found(b"willpayload".to_vec()));
        assert_eq!(f("password"), MqttFieldValue::Found(b"passwd".to_vec()));
        // A 5.0 property of a 3.1.1 packet.
        assert_eq!(f("17"), MqttFieldValue::NotFound);
        assert_eq!(mqtt_field_value(&m, MQTT_CPT_CONNACK, FN_FLAGS), MqttFieldValue::NotFound);
    }

    #[test]
    fn connacks_of_both_versions() {
        assert_eq!(mqtt_validate_message(&hex("20020000")), MQTT_VALID_MESSAGE);
        // 5.0: session expiry 120, receive maximum 32767, maximum QoS 1.
        let v5 = hex("200d00000a1100000078217fff2401");
        assert_eq!(mqtt_validate_message(&v5), MQTT_VALID_MESSAGE);
        assert_eq!(
            mqtt_field_value(&v5, MQTT_CPT_CONNACK, FN_SESSION_EXPIRY_INTERVAL),
            MqttFieldValue::Found(b"120".to_vec())
        );
        assert_eq!(
            mqtt_field_value(&v5, MQTT_CPT_CONNACK, FN_RECEIVE_MAXIMUM),
            MqttFieldValue::Found(b"32767".to_vec())
        );
        assert_eq!(
            mqtt_field_value(&v5, MQTT_CPT_CONNACK, FN_RETAIN_AVAILABLE),
            MqttFieldValue::Found(b"0".to_vec())
        );
        assert_eq!(
            mqtt_field_value(&v5, MQTT_CPT_CONNACK, FN_PROTOCOL_VERSION),
            MqttFieldValue::Found(b"5".to_vec())
        );
        // Invalid: reserved flag bits, a maximum QoS of 2, a wrong length, a PUBLISH.
        assert_eq!(mqtt_validate_message(&hex("20020200")), MQTT_INVALID_MESSAGE);
        assert_eq!(mqtt_validate_message(&hex("200d00000a1100000078217fff2402")), MQTT_INVALID_MESSAGE);
        assert_eq!(
            mqtt_validate_message(&hex(&CONNECT_311.replacen("103a", "1039", 1))),
            MQTT_INVALID_MESSAGE
        );
        assert_eq!(mqtt_validate_message(&hex("3000")), MQTT_INVALID_MESSAGE);
    }

    #[test]
    fn types_and_field_names_are_checked_as_2_6_does() {
        assert_eq!(mqtt_typeid(b"connect"), 1);
        assert_eq!(mqtt_typeid(b"2"), 2);
        assert_eq!(mqtt_typeid(b"nope"), 0);
        assert_eq!(mqtt_check_type_fieldname(1, b"39"), FN_MAXIMUM_PACKET_SIZE);
        assert_eq!(mqtt_check_type_fieldname(2, b"username"), 0);
        assert_eq!(mqtt_check_type_fieldname(1, b"nope"), 0);
    }
}
