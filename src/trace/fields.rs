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
//! At a span site: `si0 = s.si[0].state.coded()`.

use std::fmt;

use crate::haproxy::buffers::{Analysers, BufFlags};
use crate::haproxy::proto_http::MsgState;
use crate::haproxy::stream_interface::SiState;
use crate::haproxy::task::TaskState;

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

    /// Writes HAProxy's name(s) for `bits` of this type.
    pub fn write(self, bits: u32, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Code::SiState => match SiState::ALL.get(bits as usize) {
                Some(s) => write!(out, "{s}"),
                None => write!(out, "{bits}"),
            },
            Code::BufFlags => write!(out, "{}", BufFlags::from_bits_retain(bits)),
            Code::TaskState => write!(out, "{}", TaskState::from_bits_retain(bits as u16)),
            Code::Analysers => write!(out, "{}", Analysers::from_bits_retain(bits)),
            Code::MsgState => match MsgState::ALL.get(bits as usize) {
                Some(s) => write!(out, "{s}"),
                None => write!(out, "{bits}"),
            },
        }
    }
}

/// The type and bits of a coded value; `None` for an ordinary number.
pub fn decode(v: u64) -> Option<(Code, u32)> {
    Code::of(v >> SHIFT).map(|c| (c, v as u32))
}

fn code(c: Code, bits: u32) -> u64 {
    (c as u64) << SHIFT | u64::from(bits)
}

/// A value recorded as a number and printed with HAProxy's names.
pub trait Coded {
    /// The value to give a span field.
    fn coded(&self) -> u64;
}

impl Coded for SiState {
    fn coded(&self) -> u64 {
        code(Code::SiState, *self as u32)
    }
}

impl Coded for BufFlags {
    fn coded(&self) -> u64 {
        code(Code::BufFlags, self.bits())
    }
}

impl Coded for TaskState {
    fn coded(&self) -> u64 {
        code(Code::TaskState, u32::from(self.bits()))
    }
}

impl Coded for Analysers {
    fn coded(&self) -> u64 {
        code(Code::Analysers, self.bits())
    }
}

impl Coded for MsgState {
    fn coded(&self) -> u64 {
        code(Code::MsgState, *self as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(v: u64) -> String {
        let (c, bits) = decode(v).expect("a coded value");
        let mut s = String::new();
        c.write(bits, &mut s).unwrap();
        s
    }

    #[test]
    fn every_state_round_trips_to_its_haproxy_name() {
        for s in SiState::ALL {
            assert_eq!(name(s.coded()), s.to_string());
        }
        for m in MsgState::ALL {
            assert_eq!(name(m.coded()), m.to_string());
        }
    }

    #[test]
    fn flag_sets_print_as_haproxy_prints_them() {
        let f = BufFlags::BF_READ_PARTIAL | BufFlags::BF_WRITE_PARTIAL;
        assert_eq!(name(f.coded()), f.to_string());
        assert_eq!(name(BufFlags::empty().coded()), "0");
        assert_eq!(name(TaskState::TASK_WOKEN_IO.coded()), "TASK_WOKEN_IO");
        assert_eq!(name(Analysers::AN_REQ_WAIT_HTTP.coded()), "AN_REQ_WAIT_HTTP");
    }

    #[test]
    fn ordinary_numbers_are_not_coded() {
        for v in [0, 1, 65_536, u64::from(u32::MAX), 1 << 55] {
            assert_eq!(decode(v), None);
        }
    }
}
