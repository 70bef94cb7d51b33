//! Time as HAProxy sees it: `now_ms` ticks for timers and the wall-clock `date` for logs.
//!
//! Reproduces `time.c` and `include/common/ticks.h` (1.5-dev8). HAProxy keeps timers in
//! milliseconds ("ticks") and updates its notion of time once per loop turn, right after
//! the poller returns (`tv_update_date`), so every function in one turn sees the same
//! `now_ms`. HAProxy encodes "never" as the tick value 0 (`TICK_ETERNITY`); haflow says
//! the same thing with `Option<Tick>` (`Expire`), which the type checker cannot confuse
//! with a real date.

use std::time::{Duration, Instant, SystemTime};

/// A point in time, in milliseconds since the process started (HAProxy's `now_ms`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tick(pub u64);

/// A timer: `None` is HAProxy's `TICK_ETERNITY` (the timer is not set).
pub type Expire = Option<Tick>;

/// `TICK_ETERNITY`: a timer that never fires.
pub const TICK_ETERNITY: Expire = None;

/// The process clock, updated once per loop turn.
#[derive(Debug)]
pub struct Clock {
    start: Instant,
    /// Milliseconds since start, as of the last `tv_update_date`.
    pub now_ms: Tick,
    /// Wall-clock date of the last update, for log lines.
    pub date: SystemTime,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        Clock { start: Instant::now(), now_ms: Tick(0), date: SystemTime::now() }
    }

    /// time.c:tv_update_date() in 1.5-dev8: refresh `now_ms` and `date` after a poll.
    pub fn tv_update_date(&mut self) {
        self.now_ms = Tick(self.start.elapsed().as_millis() as u64);
        self.date = SystemTime::now();
    }

    /// Precise elapsed time since start, for span-free measurements (log timers).
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// ticks.h:tick_add() in 1.5-dev8: `now + timeout`.
pub fn tick_add(now: Tick, ms: u64) -> Tick {
    Tick(now.0.saturating_add(ms))
}

/// ticks.h:tick_add_ifset() in 1.5-dev8: `now + timeout` when the timeout is configured,
/// else eternity.
pub fn tick_add_ifset(now: Tick, timeout: Option<u64>) -> Expire {
    timeout.map(|ms| tick_add(now, ms))
}

/// ticks.h:tick_is_expired() in 1.5-dev8: true when the timer is set and not in the future.
pub fn tick_is_expired(exp: Expire, now: Tick) -> bool {
    matches!(exp, Some(t) if t <= now)
}

/// ticks.h:tick_first() in 1.5-dev8: the earlier of two timers, ignoring unset ones.
pub fn tick_first(a: Expire, b: Expire) -> Expire {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Milliseconds from `now` until `exp` (0 when expired), for the poller's timeout.
pub fn ms_until(exp: Expire, now: Tick) -> Option<u64> {
    exp.map(|t| t.0.saturating_sub(now.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_first_ignores_eternity() {
        assert_eq!(tick_first(None, Some(Tick(5))), Some(Tick(5)));
        assert_eq!(tick_first(Some(Tick(7)), Some(Tick(5))), Some(Tick(5)));
        assert_eq!(tick_first(None, None), None);
    }

    #[test]
    fn expiry_is_inclusive_and_eternity_never_expires() {
        assert!(tick_is_expired(Some(Tick(10)), Tick(10)));
        assert!(!tick_is_expired(Some(Tick(11)), Tick(10)));
        assert!(!tick_is_expired(None, Tick(u64::MAX)));
    }
}
