//! Names for the states and flag words that spans record as numbers.
//!
//! HAProxy 2.x ships `dev/flags/flags.c`, a tool that turns a flag word read from a core
//! dump or a trace into the names of its bits. haflow needs the same on every trace: spans
//! record `SI_ST_*` states, `BF_*` and `AN_*` words, `TASK_*` reasons and `HTTP_MSG_*`
//! states as coded numbers (`trace::fields`, cheap on the proxy thread), and the trace
//! outputs print them with these names. The trace layer knows the encoding; this module
//! gives it the names, so that `trace` never names the proxy.

use std::fmt;

use crate::haproxy::buffers::{Analysers, BufFlags};
use crate::haproxy::proto_http::MsgState;
use crate::haproxy::stream_interface::SiState;
use crate::haproxy::task::TaskState;
use crate::trace::fields::{Code, Coded, encode, set_namer};

impl Coded for SiState {
    fn coded(&self) -> u64 {
        encode(Code::SiState, *self as u32)
    }
}

impl Coded for BufFlags {
    fn coded(&self) -> u64 {
        encode(Code::BufFlags, self.bits())
    }
}

impl Coded for TaskState {
    fn coded(&self) -> u64 {
        encode(Code::TaskState, u32::from(self.bits()))
    }
}

impl Coded for Analysers {
    fn coded(&self) -> u64 {
        encode(Code::Analysers, self.bits())
    }
}

impl Coded for MsgState {
    fn coded(&self) -> u64 {
        encode(Code::MsgState, *self as u32)
    }
}

/// Writes HAProxy's name(s) for `bits` of coded type `c`.
fn name_coded(c: Code, bits: u32, out: &mut dyn fmt::Write) -> fmt::Result {
    match c {
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

/// Makes the trace outputs print coded values with HAProxy's names. `Haproxy::new` calls
/// it, before any span of that proxy records one.
pub fn register_names() {
    set_namer(name_coded);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::fields::decode;

    fn name(v: u64) -> String {
        register_names();
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
}
