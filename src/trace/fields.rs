//! Coded field values: HAProxy's states and flag sets recorded as numbers on the proxy
//! thread and named only where someone reads them.
//!
//! `process_session` alone records six of them each time it runs (the wake-up reason, both
//! stream interfaces' states, both buffers' flags); formatting `BF_READ_PARTIAL|BF_...`
//! through `core::fmt` on the proxy thread cost more than the rest of the span. A coded
//! value is a `u64` whose top byte says which type it is (no real count, size or id
//! reaches 2^56), so it travels through `tracing` as a plain number and the subscriber
//! stores it as `Val::Coded`; consumers (the listing, the trace file, the TUI, runtime
//! traces) print the HAProxy names.
//!
//! This module knows the encoding, not the types: the proxy implements `Coded` for its
//! states and flag sets and registers the function that names them (`set_namer`, called
//! by `haproxy::flags`), so that the trace layer stays below the proxy it traces.
//!
//! At a span site: `si0 = s.si[0].state.coded()`.

use std::fmt;
use std::sync::OnceLock;

/// Which type a coded value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// `enum si_state`.
    SiState = 1,
    /// A buffer's `BF_*` flags.
    BufFlags = 2,
    /// A task's `TASK_*` state (the wake-up reasons).
    TaskState = 3,
    /// A buffer's `AN_*` analyser bits.
    Analysers = 4,
    /// An HTTP message's `HTTP_MSG_*` state.
    MsgState = 5,
}

const SHIFT: u32 = 56;

impl Code {
    fn of(tag: u64) -> Option<Code> {
        Some(match tag {
            1 => Code::SiState,
            2 => Code::BufFlags,
            3 => Code::TaskState,
            4 => Code::Analysers,
            5 => Code::MsgState,
            _ => return None,
        })
    }

    /// Writes HAProxy's name(s) for `bits` of this type (the bits in hex while no namer
    /// is registered).
    pub fn write(self, bits: u32, out: &mut impl fmt::Write) -> fmt::Result {
        match NAMER.get() {
            Some(name) => name(self, bits, out),
            None => write!(out, "{bits:#x}"),
        }
    }
}

/// Writes the names of `bits` of a coded type.
pub type Namer = fn(Code, u32, &mut dyn fmt::Write) -> fmt::Result;

static NAMER: OnceLock<Namer> = OnceLock::new();

/// Sets the function that names coded values (the first call wins: there is one proxy
/// implementation per process).
pub fn set_namer(name: Namer) {
    let _ = NAMER.set(name);
}

/// The type and bits of a coded value; `None` for an ordinary number.
pub fn decode(v: u64) -> Option<(Code, u32)> {
    Code::of(v >> SHIFT).map(|c| (c, v as u32))
}

/// The coded value of `bits` of type `c`.
pub fn encode(c: Code, bits: u32) -> u64 {
    (c as u64) << SHIFT | u64::from(bits)
}

/// A value recorded as a number and printed with HAProxy's names.
pub trait Coded {
    /// The value to give a span field.
    fn coded(&self) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_numbers_are_not_coded() {
        for v in [0, 1, 65_536, u64::from(u32::MAX), 1 << 55] {
            assert_eq!(decode(v), None);
        }
    }

    #[test]
    fn a_coded_value_keeps_its_type_and_bits() {
        assert_eq!(decode(encode(Code::BufFlags, 0x8001)), Some((Code::BufFlags, 0x8001)));
        assert_eq!(decode(encode(Code::MsgState, 0)), Some((Code::MsgState, 0)));
    }
}
