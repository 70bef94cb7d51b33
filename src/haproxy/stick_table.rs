//! Stick tables: per-key counters and server affinity kept in memory, with expiry.
//!
//! Reproduces `stick_table.c` of HAProxy 1.5.0 (the table, its entries `stksess`, the
//! `stktable_*` functions and the expiry task `process_table_expire`), with the data types,
//! the `show table` layout and the `table_*` converters of HAProxy 2.6. A proxy with a
//! `stick-table` line owns one table (`px->table`), named after the proxy. An entry is
//! found by its key (an address, an integer, a string or a binary block, made from a sample
//! by `smp_to_stkey`) and holds the data types the `store` option listed: counters
//! (`conn_cnt`, `gpc0`...), rates over a period (`conn_rate(10s)`, read with
//! `read_freq_ctr_period`) and, for `stick on|match|store` rules, the server it sticks to.
//!
//! An entry lives while something refers to it (`ref_cnt`: the sessions tracking it with
//! `track-sc*`, a `stick store` waiting for its response) and, once nothing does, until
//! its `expire` date. The table's expiry task (`exp_task`, `process_table_expire`) wakes
//! at the first date of the `exps` tree and gives expired entries back to the table's pool
//! (`sticktables` in `show pools`), so an idle proxy ends with no entry in use. A full
//! table first drops its oldest unreferenced entries (`stktable_trash_oldest`), unless
//! `nopurge` is set, in which case new keys are not stored.
//!
//! Entries are kept in a tree ordered by key, as HAProxy's ebtree keeps them, so
//! `show table` lists them in the same order. The table sits in a `RefCell` because sample
//! fetches such as `sc_inc_gpc0` change counters while the session is lent read-only; the
//! proxy thread is the only one to touch it, and no borrow outlives one function.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::haproxy::acl::{AclList, Condition, acl_match_cond, parse_acl_cond};
use crate::haproxy::buffers::Analysers;
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::memory::{Pool, PoolStats};
use crate::haproxy::sample::{Arg, SmpCtx, SmpData};
use crate::haproxy::sample::{SampleExpr, SmpDir, sample_parse_word, sample_process, with_smp_ctx};
use crate::haproxy::session::AnalyserResult;
use crate::haproxy::session::{SessFlags, Session};
use crate::haproxy::task::{TaskContext, TaskRun};
use crate::haproxy::time::{Expire, Tick, tick_add, tick_is_expired};
use crate::ids::{ProxyId, ServerId, TaskId};
use crate::trace::names;

/// `MAX_SESS_STKCTR`: the tracking slots of a session (`track-sc0` to `track-sc2`).
pub const MAX_SESS_STKCTR: usize = 3;

/// `STKCTR_TRACK_BACKEND`: tracked by a rule of the backend (the tracking ends when a
/// keep-alive request goes elsewhere).
pub const STKCTR_TRACK_BACKEND: u8 = 1;
/// `STKCTR_TRACK_CONTENT`: tracked by a content rule (`http-request`): the tracking ends
/// with the transaction.
pub const STKCTR_TRACK_CONTENT: u8 = 2;

/// A table's key type (`stktable_types[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StkKeyType {
    /// `ip`: IPv4 addresses (4 bytes).
    Ip,
    /// `ipv6`: IPv6 addresses (16 bytes).
    Ipv6,
    /// `integer`: 32-bit unsigned integers.
    Integer,
    /// `string [len N]`: strings of up to N bytes (32 by default).
    String,
    /// `binary [len N]`: blocks of exactly N bytes (32 by default), zero-padded.
    Binary,
}

impl StkKeyType {
    /// The keyword, as `show table` prints it.
    pub fn kw(self) -> &'static str {
        match self {
            StkKeyType::Ip => "ip",
            StkKeyType::Ipv6 => "ipv6",
            StkKeyType::Integer => "integer",
            StkKeyType::String => "string",
            StkKeyType::Binary => "binary",
        }
    }
}

/// How a data type is stored (`STD_T_*`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdType {
    /// `STD_T_SINT`: a signed int (`server_id`).
    STD_T_SINT,
    /// `STD_T_UINT`: an unsigned 32-bit counter.
    STD_T_UINT,
    /// `STD_T_ULL`: an unsigned 64-bit counter (bytes).
    STD_T_ULL,
    /// `STD_T_FRQP`: a frequency counter over a period (`freq_ctr_period`).
    STD_T_FRQP,
    /// `STD_T_DICT`: a string from the dictionary (`server_key`).
    STD_T_DICT,
}

/// The data types an entry can store (`STKTABLE_DT_*`), in HAProxy 2.6's order, which is
/// the order `show table` prints them in.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StkDataType {
    /// `server_id`: the server a `stick` rule stored.
    STKTABLE_DT_SERVER_ID,
    /// `gpt0`: general purpose tag 0.
    STKTABLE_DT_GPT0,
    /// `gpc0`: general purpose counter 0.
    STKTABLE_DT_GPC0,
    /// `gpc0_rate(P)`: its increments over the period.
    STKTABLE_DT_GPC0_RATE,
    /// `conn_cnt`: connections (trackings) counted.
    STKTABLE_DT_CONN_CNT,
    /// `conn_rate(P)`.
    STKTABLE_DT_CONN_RATE,
    /// `conn_cur`: sessions tracking the entry now.
    STKTABLE_DT_CONN_CUR,
    /// `sess_cnt`.
    STKTABLE_DT_SESS_CNT,
    /// `sess_rate(P)`.
    STKTABLE_DT_SESS_RATE,
    /// `http_req_cnt`.
    STKTABLE_DT_HTTP_REQ_CNT,
    /// `http_req_rate(P)`.
    STKTABLE_DT_HTTP_REQ_RATE,
    /// `http_err_cnt`: 4xx responses.
    STKTABLE_DT_HTTP_ERR_CNT,
    /// `http_err_rate(P)`.
    STKTABLE_DT_HTTP_ERR_RATE,
    /// `bytes_in_cnt`: bytes from the client.
    STKTABLE_DT_BYTES_IN_CNT,
    /// `bytes_in_rate(P)`.
    STKTABLE_DT_BYTES_IN_RATE,
    /// `bytes_out_cnt`: bytes to the client.
    STKTABLE_DT_BYTES_OUT_CNT,
    /// `bytes_out_rate(P)`.
    STKTABLE_DT_BYTES_OUT_RATE,
    /// `gpc1`.
    STKTABLE_DT_GPC1,
    /// `gpc1_rate(P)`.
    STKTABLE_DT_GPC1_RATE,
    /// `server_key`: the stored server's name (2.0+; `stick` rules store it in 2.6).
    STKTABLE_DT_SERVER_KEY,
    /// `http_fail_cnt`: 5xx responses other than 501 and 505.
    STKTABLE_DT_HTTP_FAIL_CNT,
    /// `http_fail_rate(P)`.
    STKTABLE_DT_HTTP_FAIL_RATE,
}

use StkDataType::*;

/// The number of data types.
pub const STKTABLE_DATA_TYPES: usize = 22;

/// `stktable_data_types[]`: each type's name and storage.
const DATA_TYPES: [(StkDataType, &str, StdType); STKTABLE_DATA_TYPES] = [
    (STKTABLE_DT_SERVER_ID, "server_id", StdType::STD_T_SINT),
    (STKTABLE_DT_GPT0, "gpt0", StdType::STD_T_UINT),
    (STKTABLE_DT_GPC0, "gpc0", StdType::STD_T_UINT),
    (STKTABLE_DT_GPC0_RATE, "gpc0_rate", StdType::STD_T_FRQP),
    (STKTABLE_DT_CONN_CNT, "conn_cnt", StdType::STD_T_UINT),
    (STKTABLE_DT_CONN_RATE, "conn_rate", StdType::STD_T_FRQP),
    (STKTABLE_DT_CONN_CUR, "conn_cur", StdType::STD_T_UINT),
    (STKTABLE_DT_SESS_CNT, "sess_cnt", StdType::STD_T_UINT),
    (STKTABLE_DT_SESS_RATE, "sess_rate", StdType::STD_T_FRQP),
    (STKTABLE_DT_HTTP_REQ_CNT, "http_req_cnt", StdType::STD_T_UINT),
    (STKTABLE_DT_HTTP_REQ_RATE, "http_req_rate", StdType::STD_T_FRQP),
    (STKTABLE_DT_HTTP_ERR_CNT, "http_err_cnt", StdType::STD_T_UINT),
    (STKTABLE_DT_HTTP_ERR_RATE, "http_err_rate", StdType::STD_T_FRQP),
    (STKTABLE_DT_BYTES_IN_CNT, "bytes_in_cnt", StdType::STD_T_ULL),
    (STKTABLE_DT_BYTES_IN_RATE, "bytes_in_rate", StdType::STD_T_FRQP),
    (STKTABLE_DT_BYTES_OUT_CNT, "bytes_out_cnt", StdType::STD_T_ULL),
    (STKTABLE_DT_BYTES_OUT_RATE, "bytes_out_rate", StdType::STD_T_FRQP),
    (STKTABLE_DT_GPC1, "gpc1", StdType::STD_T_UINT),
    (STKTABLE_DT_GPC1_RATE, "gpc1_rate", StdType::STD_T_FRQP),
    (STKTABLE_DT_SERVER_KEY, "server_key", StdType::STD_T_DICT),
    (STKTABLE_DT_HTTP_FAIL_CNT, "http_fail_cnt", StdType::STD_T_UINT),
    (STKTABLE_DT_HTTP_FAIL_RATE, "http_fail_rate", StdType::STD_T_FRQP),
];

impl StkDataType {
    /// Its index in an entry's data.
    pub fn idx(self) -> usize {
        self as usize
    }

    /// Its name (`stktable_data_types[dt].name`).
    pub fn name(self) -> &'static str {
        DATA_TYPES[self.idx()].1
    }

    /// How it is stored.
    pub fn std_type(self) -> StdType {
        DATA_TYPES[self.idx()].2
    }

    /// stick_table.c:stktable_get_data_type() in 1.5.0: the type named `name`
    /// (`http_req_cnt`...); 1.5's aliases `bytes_in`/`bytes_out` are 2.6's names too.
    pub fn stktable_get_data_type(name: &str) -> Option<StkDataType> {
        DATA_TYPES.iter().find(|d| d.1 == name).map(|d| d.0)
    }
}

// ---------------------------------------------------------------------------------------
// Frequency counters (freq_ctr.c)

/// `struct freq_ctr_period`: events in the current period and the previous one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreqCtr {
    /// Start of the current period.
    pub curr_tick: u64,
    /// Events in the current period.
    pub curr_ctr: u64,
    /// Events in the previous period.
    pub prev_ctr: u64,
}

impl FreqCtr {
    /// freq_ctr.h:update_freq_ctr_period() in 2.6 (1.5's rotates the same way): count `inc`
    /// events at `now`, rotating the periods when the current one is over.
    pub fn update_freq_ctr_period(&mut self, now: Tick, period: u64, inc: u64) {
        let period = period.max(1);
        if now.0.wrapping_sub(self.curr_tick) < period {
            self.curr_ctr += inc;
            return;
        }
        self.prev_ctr = self.curr_ctr;
        self.curr_ctr = inc;
        self.curr_tick += period;
        if now.0.wrapping_sub(self.curr_tick) >= period {
            // Two periods or more went by.
            self.prev_ctr = 0;
            self.curr_tick = now.0;
        }
    }

    /// freq_ctr.c:read_freq_ctr_period() in 2.6: the events over the last `period` at
    /// `now`: the current period's plus the share of the previous one still inside the
    /// window (with 2.6's correction for rates at or below one event a period).
    pub fn read_freq_ctr_period(&self, now: Tick, period: u64) -> u64 {
        let period = period.max(1) as i64;
        let (mut curr, mut past) = (self.curr_ctr as i64, self.prev_ctr as i64);
        let mut remain = self.curr_tick as i64 + period - now.0 as i64;
        if remain < 0 {
            remain += period;
            past = if remain >= 0 { curr } else { 0 };
            curr = 0;
        }
        if curr == 0 && past <= 1 {
            return past.max(0) as u64;
        }
        ((past * remain.max(0) + curr * period) / period).max(0) as u64
    }
}

// ---------------------------------------------------------------------------------------
// Keys and entries

/// A key (`struct stktable_key`, stored as `stksess->key`): the bytes HAProxy compares,
/// IPv4 and integers in network order so that the tree orders them as HAProxy's does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StkKey(pub Box<[u8]>);

/// One stored value: a counter, or a frequency counter for `STD_T_FRQP` types.
#[derive(Clone, Copy, Debug, Default)]
pub struct StkData {
    /// The counter (`server_id`, `gpt0`, `*_cnt`, `conn_cur`).
    pub n: u64,
    /// The rate (`*_rate`).
    pub frq: FreqCtr,
}

/// An entry (`struct stksess`).
#[derive(Debug)]
pub struct StkSess {
    /// Its key.
    pub key: StkKey,
    /// Sessions and rules holding it (`ref_cnt`): an entry held is never purged.
    pub ref_cnt: u32,
    /// When it expires once nothing holds it (`TICK_ETERNITY` without `expire`).
    pub expire: Expire,
    /// Its data, by `StkDataType` (only the stored ones mean anything).
    pub data: [StkData; STKTABLE_DATA_TYPES],
    /// `server_key`: the name of the server a `stick` rule stored.
    pub server_key: Option<Box<str>>,
}

/// The entries of a table and their pool: the part that changes at run time.
#[derive(Debug)]
pub struct StkStore {
    /// Entries by key (HAProxy's `keys` ebtree).
    pub keys: BTreeMap<StkKey, Box<StkSess>>,
    /// Entries by expiry date (the `exps` tree).
    exps: BTreeSet<(Tick, StkKey)>,
    /// Where entries come from (`t->pool`, `sticktables`).
    pool: Pool<StkSess>,
}

/// A `stick-table` (`struct stktable`).
#[derive(Debug)]
pub struct StkTable {
    /// The table's name: its proxy's.
    pub id: String,
    /// The key type.
    pub ktype: StkKeyType,
    /// Bytes of a key (`len` of string and binary keys).
    pub key_size: usize,
    /// Most entries kept (`size`).
    pub size: u32,
    /// `expire`, in ms (`None`: entries never expire).
    pub expire: Option<u64>,
    /// `nopurge`: a full table refuses new keys instead of dropping old ones.
    pub nopurge: bool,
    /// Which data types are stored (`data_ofs[dt] != 0`).
    pub stored: [bool; STKTABLE_DATA_TYPES],
    /// Each rate's period in ms (`data_arg[dt].u`).
    pub data_arg: [u64; STKTABLE_DATA_TYPES],
    /// The expiry task (`exp_task`), created by `stktable_init`.
    pub exp_task: Option<TaskId>,
    /// The entries.
    pub store: RefCell<StkStore>,
}

impl Clone for StkTable {
    /// The same table, empty (a configuration copy; entries are never shared).
    fn clone(&self) -> Self {
        StkTable {
            id: self.id.clone(),
            ktype: self.ktype,
            key_size: self.key_size,
            size: self.size,
            expire: self.expire,
            nopurge: self.nopurge,
            stored: self.stored,
            data_arg: self.data_arg,
            exp_task: None,
            store: RefCell::new(StkStore::new(self.key_size)),
        }
    }
}

impl StkStore {
    fn new(key_size: usize) -> StkStore {
        StkStore {
            keys: BTreeMap::new(),
            exps: BTreeSet::new(),
            pool: Pool::create_pool("sticktables", std::mem::size_of::<StkSess>() + key_size),
        }
    }

    /// stick_table.c:stksess_free() in 1.5.0 (with `__stksess_kill`'s unlinking): the
    /// entry leaves both trees and goes back to the pool.
    fn stksess_free(&mut self, key: &StkKey) {
        if let Some(ts) = self.keys.remove(key) {
            if let Some(exp) = ts.expire {
                self.exps.remove(&(exp, ts.key.clone()));
            }
            self.pool.pool_free2(ts);
        }
    }

    /// Re-files entry `key` under its new expiry date.
    fn requeue(&mut self, key: &StkKey, old: Expire, new: Expire) {
        if old == new {
            return;
        }
        if let Some(o) = old {
            self.exps.remove(&(o, key.clone()));
        }
        if let Some(n) = new {
            self.exps.insert((n, key.clone()));
        }
    }
}

impl StkTable {
    /// A table named `id` with HAProxy's defaults (set by `parse_stick_table`).
    pub fn new(id: &str) -> StkTable {
        StkTable {
            id: id.to_string(),
            ktype: StkKeyType::Ip,
            key_size: 4,
            size: 0,
            expire: None,
            nopurge: false,
            stored: [false; STKTABLE_DATA_TYPES],
            data_arg: [0; STKTABLE_DATA_TYPES],
            exp_task: None,
            store: RefCell::new(StkStore::new(4)),
        }
    }

    /// Entries in use (`t->current`).
    pub fn current(&self) -> usize {
        self.store.borrow().keys.len()
    }

    /// The table's pool counters (`sticktables` in `show pools`).
    pub fn pool_stats(&self) -> PoolStats {
        self.store.borrow().pool.stats()
    }

    /// The stored value of `dt` in `ts`, as fetches return it: the counter, or the rate
    /// over the type's period at `now`; `None` when the table does not store `dt`.
    pub fn read_data(&self, ts: &StkSess, dt: StkDataType, now: Tick) -> Option<i64> {
        if !self.stored[dt.idx()] {
            return None;
        }
        let d = &ts.data[dt.idx()];
        Some(match dt.std_type() {
            StdType::STD_T_FRQP => d.frq.read_freq_ctr_period(now, self.data_arg[dt.idx()]) as i64,
            StdType::STD_T_SINT => d.n as u32 as i32 as i64,
            _ => d.n as i64,
        })
    }

    /// Adds `inc` to counter `dt` of `ts` (a rate counts `inc` events), if stored.
    pub fn inc_data(&self, ts: &mut StkSess, dt: StkDataType, now: Tick, inc: u64) {
        if !self.stored[dt.idx()] {
            return;
        }
        let period = self.data_arg[dt.idx()];
        let d = &mut ts.data[dt.idx()];
        match dt.std_type() {
            StdType::STD_T_FRQP => d.frq.update_freq_ctr_period(now, period, inc),
            StdType::STD_T_UINT => d.n = u64::from((d.n as u32).wrapping_add(inc as u32)),
            _ => d.n = d.n.wrapping_add(inc),
        }
    }

    /// stick_table.c:stktable_lookup_key() in 1.5.0: runs `f` on the entry of `key`, if
    /// any (without taking a reference: the caller does not keep it).
    pub fn stktable_lookup_key<R>(&self, key: &StkKey, f: impl FnOnce(&mut StkSess) -> R) -> Option<R> {
        let mut st = self.store.borrow_mut();
        st.keys.get_mut(key).map(|ts| f(ts))
    }

    /// stick_table.c:stktable_trash_oldest() in 1.5.0: frees up to `to_batch` entries,
    /// oldest expiry first, that nothing holds. Returns how many went.
    fn stktable_trash_oldest(&self, st: &mut StkStore, to_batch: usize) -> usize {
        let victims: Vec<StkKey> = st
            .exps
            .iter()
            .filter(|(_, k)| st.keys.get(k).is_some_and(|ts| ts.ref_cnt == 0))
            .take(to_batch)
            .map(|(_, k)| k.clone())
            .collect();
        for k in &victims {
            st.stksess_free(k);
        }
        victims.len()
    }

    /// stick_table.c:stktable_get_entry() in 1.5.0 (with `stksess_new` and
    /// `stktable_store`): the entry of `key`, created when missing (after trashing the
    /// oldest ones when the table is full), with one more reference taken when `hold`.
    /// `None`: the table is full and `nopurge`, or the pool is exhausted.
    pub fn stktable_get_entry(&self, key: &StkKey, now: Tick, hold: bool) -> Option<()> {
        let mut st = self.store.borrow_mut();
        if !st.keys.contains_key(key) {
            if st.keys.len() >= self.size as usize {
                if self.nopurge {
                    return None;
                }
                self.stktable_trash_oldest(&mut st, (self.size as usize >> 8) + 1);
                if st.keys.len() >= self.size as usize {
                    return None;
                }
            }
            let expire = self.expire.map(|ms| tick_add(now, ms));
            let ts = st.pool.pool_alloc2(|| StkSess {
                key: key.clone(),
                ref_cnt: 0,
                expire,
                data: [StkData::default(); STKTABLE_DATA_TYPES],
                server_key: None,
            })?;
            if let Some(e) = expire {
                st.exps.insert((e, key.clone()));
            }
            st.keys.insert(key.clone(), ts);
        }
        if hold && let Some(ts) = st.keys.get_mut(key) {
            ts.ref_cnt += 1;
        }
        Some(())
    }

    /// stick_table.c:stktable_touch() in 1.5.0: pushes the entry's expiry to `now +
    /// expire` and, with `decrefcnt`, drops one reference. Returns the new date, for the
    /// caller to schedule the expiry task.
    pub fn stktable_touch(&self, key: &StkKey, now: Tick, decrefcnt: bool) -> Expire {
        let mut st = self.store.borrow_mut();
        let ts = st.keys.get_mut(key)?;
        if decrefcnt {
            ts.ref_cnt = ts.ref_cnt.saturating_sub(1);
        }
        let old = ts.expire;
        let new = self.expire.map(|ms| tick_add(now, ms));
        ts.expire = new;
        st.requeue(key, old, new);
        new
    }

    /// stick_table.c:stksess_kill() in 2.6: frees the entry unless something holds it.
    pub fn stksess_kill(&self, key: &StkKey) -> bool {
        let mut st = self.store.borrow_mut();
        if st.keys.get(key).is_some_and(|ts| ts.ref_cnt == 0) {
            st.stksess_free(key);
            return true;
        }
        false
    }

    /// The entries' keys, in tree order (for the CLI, which may free some).
    pub fn keys(&self) -> Vec<StkKey> {
        self.store.borrow().keys.keys().cloned().collect()
    }

    /// The first expiry date of the table (`t->exp_next`).
    pub fn exp_next(&self) -> Expire {
        self.store.borrow().exps.first().map(|(t, _)| *t)
    }

    /// stick_table.c:stktable_expire() in 1.5.0: frees the entries whose date passed and
    /// that nothing holds; a held entry leaves the expiry tree until it is touched again
    /// on release. Returns how many entries went.
    pub fn stktable_expire(&self, now: Tick) -> usize {
        let mut st = self.store.borrow_mut();
        let due: Vec<(Tick, StkKey)> = st.exps.iter().take_while(|(t, _)| *t <= now).cloned().collect();
        let mut freed = 0;
        for (t, k) in due {
            if st.keys.get(&k).is_some_and(|ts| ts.ref_cnt > 0) {
                st.exps.remove(&(t, k));
                continue;
            }
            st.stksess_free(&k);
            freed += 1;
        }
        freed
    }

    /// Frees every entry (at exit), so the pool counts none in use.
    pub fn stktable_clear(&self) {
        let mut st = self.store.borrow_mut();
        for k in st.keys.keys().cloned().collect::<Vec<_>>() {
            st.stksess_free(&k);
        }
    }

    /// stick_table.c:smp_to_stkey() in 2.6 (1.5's `stktable_fetch_key` casts): the key a
    /// sample gives in this table, `None` when it cannot be converted.
    pub fn smp_to_stkey(&self, d: SmpData) -> Option<StkKey> {
        use crate::haproxy::sample::{SmpType, smp_cast};
        let bytes: Vec<u8> = match self.ktype {
            StkKeyType::Ip => match smp_cast(d, SmpType::SMP_T_IPV4)? {
                SmpData::Ipv4(a) => a.octets().to_vec(),
                _ => return None,
            },
            StkKeyType::Ipv6 => match smp_cast(d, SmpType::SMP_T_IPV6)? {
                SmpData::Ipv6(a) => a.octets().to_vec(),
                _ => return None,
            },
            StkKeyType::Integer => match smp_cast(d, SmpType::SMP_T_SINT)? {
                SmpData::Sint(i) => (i as u32).to_be_bytes().to_vec(),
                _ => return None,
            },
            StkKeyType::String => {
                let mut s = smp_cast(d, SmpType::SMP_T_STR)?.into_str()?;
                s.truncate(self.key_size);
                s
            }
            StkKeyType::Binary => {
                let mut b = match smp_cast(d, SmpType::SMP_T_BIN)? {
                    SmpData::Bin(b) => b,
                    _ => return None,
                };
                b.resize(self.key_size, 0);
                b
            }
        };
        Some(StkKey(bytes.into_boxed_slice()))
    }

    /// A key typed on the CLI (`show table ... key K`), as `table_process_entry_per_key`
    /// reads it.
    pub fn cli_key(&self, text: &str) -> Option<StkKey> {
        let d = match self.ktype {
            StkKeyType::Ip => SmpData::Ipv4(text.parse().ok()?),
            StkKeyType::Ipv6 => SmpData::Ipv6(text.parse().ok()?),
            StkKeyType::Integer => SmpData::Sint(text.parse::<u32>().ok()?.into()),
            StkKeyType::String | StkKeyType::Binary => SmpData::Str(text.as_bytes().to_vec()),
        };
        self.smp_to_stkey(d)
    }

    /// The key as `show table` prints it.
    pub fn key_text(&self, k: &StkKey) -> String {
        let b = &k.0;
        match self.ktype {
            StkKeyType::Ip => {
                <[u8; 4]>::try_from(&b[..]).map(|a| Ipv4Addr::from(a).to_string()).unwrap_or_default()
            }
            StkKeyType::Ipv6 => {
                <[u8; 16]>::try_from(&b[..]).map(|a| Ipv6Addr::from(a).to_string()).unwrap_or_default()
            }
            StkKeyType::Integer => {
                <[u8; 4]>::try_from(&b[..]).map(|a| u32::from_be_bytes(a).to_string()).unwrap_or_default()
            }
            // dump_text(): up to the first NUL, non-printable bytes escaped.
            StkKeyType::String => {
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                let mut o = String::new();
                for &c in &b[..end] {
                    match c {
                        b' ' => o.push_str("\\ "),
                        b'\t' => o.push_str("\\t"),
                        b'\n' => o.push_str("\\n"),
                        b'\r' => o.push_str("\\r"),
                        b'\\' => o.push_str("\\\\"),
                        0x21..=0x7e => o.push(c as char),
                        _ => {
                            let _ = write!(o, "\\x{c:02x}");
                        }
                    }
                }
                o
            }
            StkKeyType::Binary => b.iter().fold(String::new(), |mut o, c| {
                let _ = write!(o, "{c:02x}");
                o
            }),
        }
    }

    /// stick_table.c:table_dump_entry_to_buffer() in 2.6: one `show table` line.
    pub fn table_dump_entry_to_buffer(&self, ts: &StkSess, now: Tick) -> String {
        let exp = ts.expire.map_or(0, |e| e.0.saturating_sub(now.0));
        let mut o = format!("{:p}: key={} use={} exp={}", ts, self.key_text(&ts.key), ts.ref_cnt, exp);
        for (dt, name, _) in DATA_TYPES.iter().filter(|d| self.stored[d.0.idx()]) {
            if dt.std_type() == StdType::STD_T_DICT {
                let _ = write!(o, " {name}={}", ts.server_key.as_deref().unwrap_or("-"));
                continue;
            }
            let v = self.read_data(ts, *dt, now).unwrap_or(0);
            if dt.std_type() == StdType::STD_T_FRQP {
                let _ = write!(o, " {name}({})={v}", self.data_arg[dt.idx()]);
            } else {
                let _ = write!(o, " {name}={v}");
            }
        }
        o.push('\n');
        o
    }
}

// ---------------------------------------------------------------------------------------
// Configuration

/// stick_table.c:parse_stick_table() in 2.6 (1.5's parsing in cfgparse.c, same options):
/// the words after `stick-table`, for the table named `id`.
pub fn parse_stick_table(args: &[String], id: &str) -> Result<StkTable, String> {
    let mut t = StkTable::new(id);
    let mut typed = false;
    let mut i = 0;
    let missing = |kw: &str| format!("stick-table: missing argument after '{kw}'.");
    while let Some(kw) = args.get(i) {
        match kw.as_str() {
            "size" => {
                let v = args.get(i + 1).ok_or_else(|| missing(kw))?;
                t.size = crate::haproxy::standard::parse_size_err(v)
                    .map_err(|c| format!("stick-table: unexpected character '{c}' in argument of 'size'."))?
                    as u32;
                i += 2;
            }
            "expire" => {
                let v = args.get(i + 1).ok_or_else(|| missing(kw))?;
                let ms = crate::haproxy::standard::parse_time_err(v).map_err(|_| {
                    format!("stick-table: unexpected character in argument <{v}> of 'expire'.")
                })?;
                if ms > i32::MAX as u64 {
                    return Err(format!(
                        "stick-table: timer overflow in argument <{v}> to <expire>, maximum value is 2147483647 ms (~24.8 days)."
                    ));
                }
                t.expire = Some(ms);
                i += 2;
            }
            "nopurge" => {
                t.nopurge = true;
                i += 1;
            }
            "peers" => {
                return Err(
                    "stick-table: 'peers' (table synchronisation) is not implemented by haflow.".into()
                );
            }
            "type" => {
                let ty = args.get(i + 1).map(String::as_str).unwrap_or("");
                let (ktype, size) = match ty {
                    "ip" | "ipv4" => (StkKeyType::Ip, 4),
                    "ipv6" => (StkKeyType::Ipv6, 16),
                    "integer" => (StkKeyType::Integer, 4),
                    "string" => (StkKeyType::String, 32),
                    "binary" => (StkKeyType::Binary, 32),
                    _ => return Err(format!("stick-table: unknown type '{ty}'.")),
                };
                i += 2;
                t.ktype = ktype;
                t.key_size = size;
                if matches!(ktype, StkKeyType::String | StkKeyType::Binary)
                    && args.get(i).map(String::as_str) == Some("len")
                {
                    let n = args.get(i + 1).and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0);
                    t.key_size = n.ok_or_else(|| format!("stick-table: unknown type '{ty}'."))?;
                    i += 2;
                }
                typed = true;
            }
            "store" => {
                let list = args.get(i + 1).ok_or_else(|| missing(kw))?;
                for item in split_store_list(list)? {
                    stktable_alloc_data_type(&mut t, &item)?;
                }
                i += 2;
            }
            "write-to" | "srvkey" | "recv-only" => {
                return Err(format!("stick-table: '{kw}' is not implemented by haflow."));
            }
            other => {
                return Err(format!(
                    "stick-table: unknown argument '{other}', expects 'type', 'size', 'expire', 'nopurge' or 'store'."
                ));
            }
        }
    }
    if !typed {
        return Err("stick-table: missing type.".into());
    }
    if t.size == 0 {
        return Err("stick-table: missing size.".into());
    }
    *t.store.get_mut() = StkStore::new(t.key_size);
    Ok(t)
}

/// Splits `conn_rate(10s),gpc0` at the commas outside parentheses.
fn split_store_list(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let (mut cur, mut depth) = (String::new(), 0);
    for c in list.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if depth != 0 {
        return Err(format!("stick-table: missing closing parenthesis after store option '{cur}'."));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// stick_table.c:stktable_alloc_data_type() in 2.6: stores one more data type (`name` or
/// `name(period)`).
fn stktable_alloc_data_type(t: &mut StkTable, item: &str) -> Result<(), String> {
    let (name, arg) = match item.split_once('(') {
        Some((n, a)) => (n, Some(a.trim_end_matches(')'))),
        None => (item, None),
    };
    let Some(dt) = StkDataType::stktable_get_data_type(name) else {
        return Err(match name {
            "gpt" | "gpc" | "gpc_rate" | "server_name" => {
                format!("stick-table: store option '{name}' is not implemented by haflow.")
            }
            _ => format!("stick-table: unknown store option '{name}'."),
        });
    };
    match (dt.std_type(), arg) {
        (StdType::STD_T_FRQP, None) => {
            return Err(format!("stick-table: missing argument to store option '{name}'."));
        }
        (StdType::STD_T_FRQP, Some(a)) => {
            let ms = crate::haproxy::standard::parse_time_err(a)
                .map_err(|_| format!("stick-table: error when processing store option '{name}'."))?;
            t.data_arg[dt.idx()] = ms;
        }
        (_, Some(_)) => return Err(format!("stick-table: unexpected argument to store option '{name}'.")),
        (_, None) => {}
    }
    t.stored[dt.idx()] = true;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Sticking rules (session.c in 1.5.0)

/// `STK_IS_MATCH`: the rule looks the key up (`stick match`, `stick on`).
pub const STK_IS_MATCH: u8 = 0x01;
/// `STK_IS_STORE`: the rule stores the key with the server (`stick store-*`, `stick on`).
pub const STK_IS_STORE: u8 = 0x02;
/// `STK_ON_RSP`: the rule runs on the response (`stick store-response`).
pub const STK_ON_RSP: u8 = 0x04;

/// A `stick` rule (`struct sticking_rule`).
#[derive(Clone, Debug)]
pub struct StickingRule {
    /// `STK_*`.
    pub flags: u8,
    /// The key's expression.
    pub expr: SampleExpr,
    /// When (none: always).
    pub cond: Option<Condition>,
    /// `table NAME` as written (`None`: the proxy's own table).
    pub table_name: Option<String>,
    /// The proxy whose table the rule uses, resolved by `check_config_validity`.
    pub table: Option<ProxyId>,
}

/// cfgparse.c's `stick` parsing in 1.5.0: `stick match|on|store-request|store-response
/// <pattern> [table <name>] [{if|unless} <cond>]`.
pub fn parse_sticking_rule(args: &[String], acls: &AclList) -> Result<StickingRule, String> {
    let flags = match args.first().map(String::as_str) {
        Some("match") => STK_IS_MATCH,
        Some("on") => STK_IS_MATCH | STK_IS_STORE,
        Some("store-request") => STK_IS_STORE,
        Some("store-response") => STK_IS_STORE | STK_ON_RSP,
        _ => return Err("'stick' expects 'match', 'on', 'store-request' or 'store-response'.".into()),
    };
    let text = args.get(1).ok_or_else(|| format!("'stick {}' expects a pattern.", args[0]))?;
    let expr = sample_parse_word(text).map_err(|e| format!("'stick {}': {e}", args[0]))?;
    let mut i = 2;
    let mut table_name = None;
    if args.get(i).map(String::as_str) == Some("table") {
        table_name = Some(args.get(i + 1).ok_or("'stick': missing table name after 'table'.")?.clone());
        i += 2;
    }
    let cond = match args.get(i).map(String::as_str) {
        None => None,
        Some("if" | "unless") => Some(parse_acl_cond(&args[i..], acls)?),
        Some(x) => return Err(format!("'stick {}': unexpected argument '{x}'.", args[0])),
    };
    Ok(StickingRule { flags, expr, cond, table_name, table: None })
}

/// Evaluates a sticking rule's condition and key in direction `dir`
/// (`stktable_fetch_key` after `acl_exec_cond`): the table and the key, if it applies.
fn sticking_rule_key(
    w: &mut Haproxy,
    s: &mut Session,
    rule: &StickingRule,
    dir: SmpDir,
) -> Option<(ProxyId, StkKey)> {
    let px = rule.table?;
    let be = s.be;
    with_smp_ctx(w, s, dir, |ctx| {
        let (w, _) = ctx.strm?;
        if let Some(c) = &rule.cond
            && !acl_match_cond(c, &w.proxies[be.idx()].acls, ctx)
        {
            return None;
        }
        let t = table_of(w, px)?;
        let d = sample_process(&rule.expr, ctx)?;
        Some((px, t.smp_to_stkey(d)?))
    })
}

/// session.c:process_sticking_rules() in 1.5.0 (`AN_REQ_STICKING_RULES`): the first
/// `stick match|on` rule whose key is in its table sends the request to the server the
/// entry names (when usable); `stick on|store-request` rules note the key to store once
/// the server is known, one per table.
pub fn process_sticking_rules(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let be = s.be;
    let span = tracing::debug_span!(
        names::PROCESS_STICKING_RULES,
        sess = s.uniq_id,
        backend = w.proxies[be.idx()].name.as_str(),
        server = tracing::field::Empty
    );
    let _g = span.enter();
    let rules = w.proxies[be.idx()].sticking_rules.clone();
    let now = w.clock.now_ms;
    for rule in &rules {
        if s.stick_store().iter().any(|(t, _)| Some(*t) == rule.table) {
            continue;
        }
        let Some((px, key)) = sticking_rule_key(w, s, rule, SmpDir::Req) else { continue };
        if rule.flags & STK_IS_MATCH != 0 {
            let Some(t) = table_of(w, px) else { continue };
            let sid = t.stktable_lookup_key(&key, |ts| ts.data[STKTABLE_DT_SERVER_ID.idx()].n as u32);
            if let Some(sid) = sid {
                if !s.flags.contains(SessFlags::SN_ASSIGNED) {
                    // Divergence: `option persist` and `force-persist` are not implemented,
                    // so only a usable server is taken.
                    let p = &w.proxies[be.idx()];
                    if let Some(i) = p.servers.iter().position(|sv| sv.puid == sid && sv.is_usable()) {
                        s.srv = Some(ServerId { px: be, idx: i as u32 });
                        s.flags.insert(SessFlags::SN_DIRECT | SessFlags::SN_ASSIGNED);
                        span.record("server", p.servers[i].name.as_str());
                    }
                }
                let exp = t.stktable_touch(&key, now, false);
                stktable_schedule(w, px, exp);
            }
        }
        if rule.flags & STK_IS_STORE != 0 && s.stick_store().len() < 8 {
            let Some(t) = table_of(w, px) else { continue };
            if t.stktable_get_entry(&key, now, true).is_some() {
                s.stick_mut().store.push((px, key));
            }
        }
    }
    s.req.analysers.remove(an_bit);
    AnalyserResult::Continue
}

/// session.c:process_store_rules() in 1.5.0 (`AN_RES_STORE_RULES`): notes the keys of
/// `stick store-response` rules (one per table, besides the request's), then stores each
/// noted key with the server that served the request.
pub fn process_store_rules(w: &mut Haproxy, s: &mut Session, an_bit: Analysers) -> AnalyserResult {
    let be = s.be;
    let span = tracing::debug_span!(
        names::PROCESS_STORE_RULES,
        sess = s.uniq_id,
        backend = w.proxies[be.idx()].name.as_str(),
        stored = tracing::field::Empty
    );
    let _g = span.enter();
    let rules = w.proxies[be.idx()].storersp_rules.clone();
    let now = w.clock.now_ms;
    let nbreq = s.stick_store().len();
    for rule in &rules {
        if s.stick_store()[nbreq..].iter().any(|(t, _)| Some(*t) == rule.table) {
            continue;
        }
        let Some((px, key)) = sticking_rule_key(w, s, rule, SmpDir::Res) else { continue };
        if s.stick_store().len() < 8
            && let Some(t) = table_of(w, px)
            && t.stktable_get_entry(&key, now, true).is_some()
        {
            s.stick_mut().store.push((px, key));
        }
    }
    let srv = s
        .srv
        .and_then(|id| w.proxies[id.px.idx()].servers.get(id.idx as usize))
        .filter(|sv| !sv.non_stick)
        .map(|sv| (sv.puid, sv.name.clone()));
    let stores = s.take_stick_store();
    span.record("stored", stores.len());
    for (px, key) in stores {
        let Some(t) = table_of(w, px) else { continue };
        match srv {
            Some((puid, ref name)) => {
                t.stktable_lookup_key(&key, |ts| {
                    ts.data[STKTABLE_DT_SERVER_ID.idx()].n = u64::from(puid);
                    if t.stored[STKTABLE_DT_SERVER_KEY.idx()] {
                        ts.server_key = Some(name.as_str().into());
                    }
                });
                let exp = t.stktable_touch(&key, now, true);
                stktable_schedule(w, px, exp);
            }
            None => {
                t.stktable_touch(&key, now, true);
                t.stksess_kill(&key);
            }
        }
    }
    s.rep.analysers.remove(an_bit);
    AnalyserResult::Continue
}

/// Gives back the entries a session noted for storing and never stored (it ended before
/// the response).
pub fn session_release_stores(w: &mut Haproxy, s: &mut Session) {
    let now = w.clock.now_ms;
    for (px, key) in s.take_stick_store() {
        if let Some(t) = table_of(w, px) {
            let exp = t.stktable_touch(&key, now, true);
            if !t.stksess_kill(&key) {
                stktable_schedule(w, px, exp);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Expiry

/// stick_table.c:stktable_init() in 1.5.0: gives each table its expiry task (tables
/// whose entries never expire need none).
pub fn stktable_init(w: &mut Haproxy) {
    for i in 0..w.proxies.len() {
        let px = w.proxies[i].id;
        let Some(t) = w.proxies[i].table.as_mut() else { continue };
        if t.expire.is_none() || t.exp_task.is_some() {
            continue;
        }
        t.exp_task = w.sched.task_new(process_table_expire, TaskContext::StkTable(px));
    }
}

/// What `deinit()` does to tables at exit: every entry goes back to its pool and the
/// expiry tasks are freed.
pub fn stktable_deinit(w: &mut Haproxy) {
    for i in 0..w.proxies.len() {
        let Some(t) = w.proxies[i].table.as_mut() else { continue };
        t.stktable_clear();
        if let Some(task) = t.exp_task.take() {
            w.sched.task_free(task);
        }
    }
}

/// stick_table.c:process_table_expire() in 1.5.0: the expiry task of a table frees the
/// expired entries and sleeps until the next date.
pub fn process_table_expire(w: &mut Haproxy, tid: TaskId) -> TaskRun {
    let Some(TaskContext::StkTable(px)) = w.sched.get(tid).map(|t| t.context) else { return TaskRun::Alive };
    let now = w.clock.now_ms;
    let Some(t) = w.proxies.get(px.idx()).and_then(|p| p.table.as_ref()) else { return TaskRun::Alive };
    let span = tracing::debug_span!(
        names::PROCESS_TABLE_EXPIRE,
        table = t.id.as_str(),
        freed = tracing::field::Empty
    );
    let _g = span.enter();
    let freed = t.stktable_expire(now);
    span.record("freed", freed);
    let next = t.exp_next();
    if let Some(task) = w.sched.get_mut(tid) {
        task.expire = next;
    }
    TaskRun::Alive
}

/// Makes table `px`'s expiry task wake no later than `exp` (`task_queue(t->exp_task)`
/// after `t->exp_next` moved).
pub fn stktable_schedule(w: &mut Haproxy, px: ProxyId, exp: Expire) {
    let Some(task) = w.proxies.get(px.idx()).and_then(|p| p.table.as_ref()).and_then(|t| t.exp_task) else {
        return;
    };
    if let Some(e) = exp {
        w.sched.task_schedule(task, e);
    }
}

// ---------------------------------------------------------------------------------------
// The stats socket: `show table`, `clear table`, `set table`

/// Which table command (`STK_CLI_ACT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StkCliAct {
    /// `show table`.
    Show,
    /// `clear table`.
    Clear,
    /// `set table`.
    Set,
}

/// One `data.<type> <op> <value>` filter.
type DataFilter = (StkDataType, fn(&i64, &i64) -> bool, i64);

/// stick_table.c:table_prepare_data_request() in 2.6: up to 4 data filters.
fn table_prepare_data_request(t: &StkTable, args: &[&str]) -> Result<Vec<DataFilter>, String> {
    let mut out = Vec::new();
    for (i, f) in args.chunks(3).enumerate() {
        let n = i + 1;
        if i >= 4 {
            return Err(format!(
                "Detected extra data in filter, {}th word of input, after '{}'\n",
                3 + 3 * i + 1,
                args[3 * i - 1]
            ));
        }
        let dt = f[0]
            .strip_prefix("data.")
            .and_then(StkDataType::stktable_get_data_type)
            .ok_or_else(|| format!("Filter entry #{n}: Unknown data type\n"))?;
        if !t.stored[dt.idx()] {
            return Err(format!("Filter entry #{n}: Data type not stored in this table\n"));
        }
        let op: fn(&i64, &i64) -> bool = match f.get(1).copied() {
            Some("eq") => i64::eq,
            Some("ne") => i64::ne,
            Some("le") => i64::le,
            Some("ge") => i64::ge,
            Some("lt") => i64::lt,
            Some("gt") => i64::gt,
            _ => {
                return Err(format!(
                    "Filter entry #{n}: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n"
                ));
            }
        };
        let v = f.get(2).and_then(|v| v.parse::<i64>().ok()).ok_or_else(|| {
            format!("Filter entry #{n}: Require a valid integer value to compare against\n")
        })?;
        out.push((dt, op, v));
    }
    Ok(out)
}

/// stick_table.c:table_dump_head_to_buffer() in 2.6.
fn table_dump_head_to_buffer(t: &StkTable) -> String {
    format!("# table: {}, type: {}, size:{}, used:{}\n", t.id, t.ktype.kw(), t.size, t.current())
}

/// stick_table.c:cli_parse_table_req() and cli_io_handler_table() in 2.6: `show table
/// [NAME [data.TYPE OP VALUE]*|[key KEY]]`, `clear table NAME [filters|key KEY]`, `set
/// table NAME key KEY [data.TYPE VALUE]*`. `dump_ok`: the client may see entries.
pub fn cli_parse_table_req(w: &mut Haproxy, act: StkCliAct, args: &[&str], dump_ok: bool) -> String {
    let now = w.clock.now_ms;
    let Some(name) = args.first() else {
        if act != StkCliAct::Show {
            return table_args_error(act);
        }
        let mut o = String::new();
        for t in w.proxies.iter().filter_map(|p| p.table.as_deref()) {
            o.push_str(&table_dump_head_to_buffer(t));
        }
        return o;
    };
    let Some(px) = stktable_find_by_name(w, name.as_bytes()) else { return "No such table\n".into() };
    let Some(t) = table_of(w, px) else { return "No such table\n".into() };
    match args.get(1).copied() {
        Some("key") => return table_process_entry_per_key(w, px, act, &args[2..], dump_ok),
        Some(d) if d.starts_with("data.") && act != StkCliAct::Set => {}
        None if act != StkCliAct::Set => {}
        _ => return table_args_error(act),
    }
    let filters = match table_prepare_data_request(t, &args[1..]) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let matches =
        |ts: &StkSess| filters.iter().all(|(dt, op, v)| t.read_data(ts, *dt, now).is_some_and(|d| op(&d, v)));
    match act {
        StkCliAct::Show => {
            let mut o = table_dump_head_to_buffer(t);
            if !dump_ok {
                o.push_str("# contents not dumped due to insufficient privileges\n");
                return o;
            }
            for ts in t.store.borrow().keys.values().filter(|ts| matches(ts)) {
                o.push_str(&t.table_dump_entry_to_buffer(ts, now));
            }
            o
        }
        _ => {
            let victims: Vec<StkKey> = t
                .store
                .borrow()
                .keys
                .values()
                .filter(|ts| ts.ref_cnt == 0 && matches(ts))
                .map(|ts| ts.key.clone())
                .collect();
            for k in &victims {
                t.stksess_kill(k);
            }
            String::new()
        }
    }
}

fn table_args_error(act: StkCliAct) -> String {
    match act {
        StkCliAct::Show => {
            "Optional argument only supports \"data.<store_data_type>\" <operator> <value> and key <key>\n"
        }
        StkCliAct::Clear => {
            "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>\n"
        }
        StkCliAct::Set => "Required arguments: <table> key <key> [data.<store_data_type> <value>]*\n",
    }
    .into()
}

/// stick_table.c:table_process_entry_per_key() in 2.6: one entry by its key.
fn table_process_entry_per_key(
    w: &mut Haproxy,
    px: ProxyId,
    act: StkCliAct,
    args: &[&str],
    dump_ok: bool,
) -> String {
    let now = w.clock.now_ms;
    let Some(t) = table_of(w, px) else { return "No such table\n".into() };
    let Some(text) = args.first() else { return "Key value expected\n".into() };
    let Some(key) = t.cli_key(text) else {
        return match t.ktype {
            StkKeyType::Ip => "Invalid IPv4 address\n",
            StkKeyType::Ipv6 => "Invalid IPv6 address\n",
            StkKeyType::Integer => "Invalid key\n",
            _ => "Unknown table type\n",
        }
        .into();
    };
    match act {
        StkCliAct::Show => {
            let mut o = table_dump_head_to_buffer(t);
            if dump_ok
                && let Some(line) = t.stktable_lookup_key(&key, |ts| t.table_dump_entry_to_buffer(ts, now))
            {
                o.push_str(&line);
            }
            o
        }
        StkCliAct::Clear => {
            if t.stktable_lookup_key(&key, |ts| ts.ref_cnt).is_some_and(|r| r > 0) {
                return "Entry currently in use, cannot remove\n".into();
            }
            t.stksess_kill(&key);
            String::new()
        }
        StkCliAct::Set => {
            let mut sets = Vec::new();
            for pair in args[1..].chunks(2) {
                let Some(dt) = pair[0].strip_prefix("data.").and_then(StkDataType::stktable_get_data_type)
                else {
                    return format!("Unknown data type '{}'\n", pair[0]);
                };
                if !t.stored[dt.idx()] {
                    return "Data type not stored in this table\n".into();
                }
                let Some(v) = pair.get(1).and_then(|v| v.parse::<i64>().ok()) else {
                    return "Require a valid integer value to store\n".into();
                };
                sets.push((dt, v));
            }
            if t.stktable_get_entry(&key, now, false).is_none() {
                return "Unable to allocate a new entry\n".into();
            }
            t.stktable_lookup_key(&key, |ts| {
                for (dt, v) in sets {
                    let d = &mut ts.data[dt.idx()];
                    if dt.std_type() == StdType::STD_T_FRQP {
                        d.frq = FreqCtr { curr_tick: now.0, curr_ctr: v as u64, prev_ctr: 0 };
                    } else {
                        d.n = v as u64;
                    }
                }
            });
            let exp = t.stktable_touch(&key, now, false);
            stktable_schedule(w, px, exp);
            String::new()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tracking (session.c's stkctr functions in 1.5.0, stream.h's in 2.6)

/// A tracked counter (`struct stkctr`): the table and the key of the entry a session
/// tracks in one of its `sc0`..`sc2` slots (it holds a reference to the entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StkCtr {
    /// The proxy whose table holds the entry.
    pub table: ProxyId,
    /// The entry's key.
    pub key: StkKey,
    /// `STKCTR_TRACK_*`.
    pub flags: u8,
}

/// The table of proxy `px`.
pub fn table_of(w: &Haproxy, px: ProxyId) -> Option<&StkTable> {
    w.proxies.get(px.idx())?.table.as_deref()
}

/// The proxy whose table is named `name` (`stktable_find_by_name`).
pub fn stktable_find_by_name(w: &Haproxy, name: &[u8]) -> Option<ProxyId> {
    w.proxies.iter().find(|p| p.table.is_some() && p.name.as_bytes() == name).map(|p| p.id)
}

/// session.h:session_track_stkctr() in 1.5.0 with stream_start_counters() of 2.6: slot
/// `slot` of `s` starts tracking `key` in the table of `px` (nothing when the slot is
/// taken); the entry counts one more connection. Returns false when the entry could not
/// be made (full table).
pub fn session_track_stkctr(
    w: &mut Haproxy,
    s: &mut Session,
    slot: usize,
    px: ProxyId,
    key: StkKey,
    flags: u8,
) -> bool {
    if s.stkctr().get(slot).is_none_or(|c| c.is_some()) {
        return false;
    }
    let now = w.clock.now_ms;
    let Some(t) = table_of(w, px) else { return false };
    let _sp = tracing::debug_span!(
        names::SESSION_TRACK_STKCTR,
        sess = s.uniq_id,
        sc = slot,
        table = t.id.as_str(),
        key = t.key_text(&key).as_str(),
        new = !t.store.borrow().keys.contains_key(&key)
    )
    .entered();
    if t.stktable_get_entry(&key, now, true).is_none() {
        return false;
    }
    t.stktable_lookup_key(&key, |ts| {
        t.inc_data(ts, STKTABLE_DT_CONN_CUR, now, 1);
        t.inc_data(ts, STKTABLE_DT_CONN_CNT, now, 1);
        t.inc_data(ts, STKTABLE_DT_CONN_RATE, now, 1);
    });
    let exp = t.stktable_touch(&key, now, false);
    s.stick_mut().stkctr[slot] = Some(StkCtr { table: px, key, flags });
    stktable_schedule(w, px, exp);
    true
}

/// A session's stick-table state, boxed in `Session::stick` when first needed.
#[derive(Debug, Default)]
pub struct SessStick {
    /// `s->stkctr[]`: the stick-table entries `track-sc0..2` made this session track.
    pub stkctr: [Option<StkCtr>; MAX_SESS_STKCTR],
    /// `s->store[]`: entries `stick store-*` rules will store once the server is known
    /// (the rule's proxy, the key).
    pub store: Vec<(ProxyId, StkKey)>,
}

/// What `Session::stkctr` reads for a session that never tracked anything.
static NO_STKCTR: [Option<StkCtr>; MAX_SESS_STKCTR] = [const { None }; MAX_SESS_STKCTR];

impl Session {
    /// `s->stkctr[]`: the entries this session tracks, slot by slot.
    pub fn stkctr(&self) -> &[Option<StkCtr>; MAX_SESS_STKCTR] {
        self.stick.as_ref().map_or(&NO_STKCTR, |k| &k.stkctr)
    }

    /// `s->store[]`: the keys noted for storing.
    fn stick_store(&self) -> &[(ProxyId, StkKey)] {
        self.stick.as_ref().map_or(&[], |k| &k.store)
    }

    /// The stick-table state, allocated on first use.
    fn stick_mut(&mut self) -> &mut SessStick {
        self.stick.get_or_insert_default()
    }

    /// Takes the noted keys out (nothing to allocate when there are none).
    fn take_stick_store(&mut self) -> Vec<(ProxyId, StkKey)> {
        self.stick.as_mut().map(|k| std::mem::take(&mut k.store)).unwrap_or_default()
    }
}

/// Runs `f` on the entries `s` tracks (`stkctr_entry` of each slot).
pub fn for_each_tracked(w: &Haproxy, s: &Session, mut f: impl FnMut(&StkTable, &mut StkSess)) {
    for c in s.stkctr().iter().flatten() {
        if let Some(t) = table_of(w, c.table) {
            t.stktable_lookup_key(&c.key, |ts| f(t, ts));
        }
    }
}

/// session.h:session_store_counters() in 1.5.0 (and `session_stop_content_counters` with
/// `only_content`): the session stops tracking; each entry counts one connection less,
/// is touched (its expiry restarts) and released.
pub fn session_store_counters(w: &mut Haproxy, s: &mut Session, only_content: bool) {
    if s.stkctr().iter().all(Option::is_none) {
        return;
    }
    let _sp = tracing::debug_span!(names::SESSION_STORE_COUNTERS, sess = s.uniq_id, content = only_content)
        .entered();
    let now = w.clock.now_ms;
    for slot in 0..MAX_SESS_STKCTR {
        let Some(c) =
            s.stick_mut().stkctr[slot].take_if(|c| !only_content || c.flags & STKCTR_TRACK_CONTENT != 0)
        else {
            continue;
        };
        let Some(t) = table_of(w, c.table) else { continue };
        t.stktable_lookup_key(&c.key, |ts| {
            let cur = &mut ts.data[STKTABLE_DT_CONN_CUR.idx()].n;
            *cur = cur.saturating_sub(1);
        });
        let exp = t.stktable_touch(&c.key, now, true);
        if tick_is_expired(exp, now) {
            t.stksess_kill(&c.key);
        }
        stktable_schedule(w, c.table, exp);
    }
}

/// Adds the bytes a session moved since the last call to its tracked entries
/// (`bytes_in_*`, `bytes_out_*`), as 1.5.0's `session_process_counters` does.
pub fn stkctr_count_bytes(w: &Haproxy, s: &Session, bytes_in: u64, bytes_out: u64) {
    let now = w.clock.now_ms;
    for_each_tracked(w, s, |t, ts| {
        t.inc_data(ts, STKTABLE_DT_BYTES_IN_CNT, now, bytes_in);
        t.inc_data(ts, STKTABLE_DT_BYTES_IN_RATE, now, bytes_in);
        t.inc_data(ts, STKTABLE_DT_BYTES_OUT_CNT, now, bytes_out);
        t.inc_data(ts, STKTABLE_DT_BYTES_OUT_RATE, now, bytes_out);
    });
}

/// Counts one event of `cnt` and its rate `rate` on every entry `s` tracks.
fn stream_inc_ctr(w: &Haproxy, s: &Session, cnt: StkDataType, rate: StkDataType) {
    if s.stkctr().iter().all(Option::is_none) {
        return;
    }
    let now = w.clock.now_ms;
    for_each_tracked(w, s, |t, ts| {
        t.inc_data(ts, cnt, now, 1);
        t.inc_data(ts, rate, now, 1);
    });
}

/// session.h:session_inc_http_req_ctr() in 1.5.0, from http_wait_for_request(): a new
/// request counts on the entries the session already tracks (those a connection-level
/// rule tracks; `http-request track-sc*` counts its own request when it tracks).
pub fn stream_inc_http_req_ctr(w: &Haproxy, s: &Session) {
    stream_inc_ctr(w, s, STKTABLE_DT_HTTP_REQ_CNT, STKTABLE_DT_HTTP_REQ_RATE);
}

/// session.h:session_inc_http_err_ctr() in 1.5.0: a 4xx response, or a denied request.
pub fn stream_inc_http_err_ctr(w: &Haproxy, s: &Session) {
    stream_inc_ctr(w, s, STKTABLE_DT_HTTP_ERR_CNT, STKTABLE_DT_HTTP_ERR_RATE);
}

/// stream.h:stream_inc_http_fail_ctr() in 2.6: a server failure (a 5xx other than 501
/// and 505, or a 502/504 made by the proxy).
pub fn stream_inc_http_fail_ctr(w: &Haproxy, s: &Session) {
    stream_inc_ctr(w, s, STKTABLE_DT_HTTP_FAIL_CNT, STKTABLE_DT_HTTP_FAIL_RATE);
}

/// What http_wait_for_response() counts for a server's status in 2.6: 4xx errors and
/// 5xx failures other than 501 and 505.
pub fn stream_inc_http_status_ctr(w: &Haproxy, s: &Session, status: u16) {
    match status {
        400..=499 => stream_inc_http_err_ctr(w, s),
        500..=599 if status != 501 && status != 505 => stream_inc_http_fail_ctr(w, s),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Sample fetches and converters (stick_table.c in 2.6, session.c in 1.5)

/// What a fetch reads of an entry.
#[derive(Clone, Copy)]
enum Read {
    /// A data type's value.
    Data(StkDataType),
    /// A byte counter in KiB (`kbytes_in`).
    Kbytes(StkDataType),
    /// The references (`trackers`).
    Trackers,
}

fn read_entry(t: &StkTable, ts: &StkSess, what: Read, now: Tick) -> Option<i64> {
    match what {
        Read::Data(dt) => t.read_data(ts, dt, now),
        Read::Kbytes(dt) => t.read_data(ts, dt, now).map(|v| v >> 10),
        Read::Trackers => Some(i64::from(ts.ref_cnt)),
    }
}

/// The table an argument names (or `px`'s own when none is given).
fn arg_table<'a>(w: &'a Haproxy, a: Option<&Arg>, px: ProxyId) -> Option<(ProxyId, &'a StkTable)> {
    let id = match a {
        Some(Arg::Str(n)) if !n.is_empty() => stktable_find_by_name(w, n)?,
        _ => px,
    };
    Some((id, table_of(w, id)?))
}

/// stick_table.c:smp_fetch_sc_stkctr() in 2.6: the entry a fetch reads: the one tracked
/// in slot `num` (looked up again in the table `args` names, if it names one), or for
/// `src_*` the client address's entry. `Some(None)`: a known table without that entry.
fn smp_fetch_sc_stkctr(
    num: Option<usize>,
    a: &[Arg],
    c: &SmpCtx,
    f: &mut dyn FnMut(&StkTable, &mut StkSess),
) -> bool {
    let Some((w, s)) = c.strm else { return false };
    match num {
        Some(n) => {
            let Some(Some(ctr)) = s.stkctr().get(n) else { return false };
            let (_, t) = match a.first() {
                Some(Arg::Str(n)) if !n.is_empty() => match arg_table(w, a.first(), s.be) {
                    Some(x) => x,
                    None => return false,
                },
                _ => match table_of(w, ctr.table) {
                    Some(t) => (ctr.table, t),
                    None => return false,
                },
            };
            t.stktable_lookup_key(&ctr.key, |ts| f(t, ts));
            true
        }
        None => {
            let Some((_, t)) = arg_table(w, a.first(), s.be) else { return false };
            let Some(addr) = s.cli_addr else { return false };
            let Some(key) = t.smp_to_stkey(SmpData::from_ip(addr.ip())) else { return false };
            t.stktable_lookup_key(&key, |ts| f(t, ts));
            true
        }
    }
}

/// The read-only `sc*_`/`src_*` fetches: 0 when the entry does not exist, nothing when
/// the counter is not tracked or the table does not store the type.
fn fetch_read(num: Option<usize>, what: Read, a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Some((w, _)) = c.strm else { return };
    let now = w.clock.now_ms;
    let mut v = Some(0);
    let mut stored = true;
    if !smp_fetch_sc_stkctr(num, a, c, &mut |t, ts| v = read_entry(t, ts, what, now)) {
        return;
    }
    if let Read::Data(dt) | Read::Kbytes(dt) = what
        && let Some((w, s)) = c.strm
    {
        let px = num.and_then(|n| s.stkctr().get(n).cloned().flatten()).map_or(s.be, |ctr| ctr.table);
        stored = arg_table(w, a.first(), px).is_some_and(|(_, t)| t.stored[dt.idx()]);
    }
    if let (Some(v), true) = (v, stored) {
        out.push(SmpData::Sint(v));
    }
}

/// What a changing fetch does to the entry.
#[derive(Clone, Copy)]
enum Change {
    /// `inc_gpc0`/`inc_gpc1`: one more, and one more event in its rate.
    Inc(StkDataType, StkDataType),
    /// `clr_gpc0`/`clr_gpc1`: back to 0; returns the former value.
    Clr(StkDataType),
}

/// smp_fetch_sc_inc_gpc0(), smp_fetch_sc_clr_gpc0() and their gpc1 twins in 2.6: change
/// a counter of the tracked entry and return its new (inc) or former (clr) value.
fn fetch_change(num: Option<usize>, ch: Change, a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Some((w, _)) = c.strm else { return };
    let now = w.clock.now_ms;
    let mut v = None;
    if !smp_fetch_sc_stkctr(num, a, c, &mut |t, ts| {
        v = Some(match ch {
            Change::Inc(dt, rate) => {
                t.inc_data(ts, rate, now, 1);
                t.inc_data(ts, dt, now, 1);
                t.read_data(ts, dt, now).unwrap_or(0)
            }
            Change::Clr(dt) => {
                let old = t.read_data(ts, dt, now).unwrap_or(0);
                ts.data[dt.idx()].n = 0;
                old
            }
        });
    }) {
        return;
    }
    out.push(SmpData::Sint(v.unwrap_or(0)));
}

/// `sc_tracked(N)`/`scN_tracked`: whether the slot tracks an entry.
fn fetch_tracked(num: usize, c: &SmpCtx, out: &mut Vec<SmpData>) {
    let Some((_, s)) = c.strm else { return };
    out.push(SmpData::Bool(s.stkctr().get(num).is_some_and(Option::is_some)));
}

/// The slot of `sc_*(N, ...)` fetches (its first argument).
fn sc_num(a: &[Arg]) -> Option<usize> {
    usize::try_from(a.first()?.sint()).ok().filter(|n| *n < MAX_SESS_STKCTR)
}

/// stick_table.c:smp_fetch_table_cnt() / smp_fetch_table_avl() in 2.6.
pub fn smp_fetch_table_cnt(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>, avl: bool) {
    let Some((w, s)) = c.strm else { return };
    let Some((_, t)) = arg_table(w, a.first(), s.be) else { return };
    let cur = t.current() as i64;
    out.push(SmpData::Sint(if avl { i64::from(t.size) - cur } else { cur }));
}

/// The `table_*` converters (stick_table.c:sample_conv_table_*() in 2.6): look the sample
/// up as a key of the table named by the first argument and return what `what` reads; a
/// missing entry gives 0, a type the table does not store drops the sample.
fn conv_table(what: Read, a: &[Arg], d: &mut SmpData, c: &SmpCtx) -> bool {
    let Some((w, _)) = c.strm else { return false };
    let Some(name) = a.first() else { return false };
    let Some(px) = stktable_find_by_name(w, name.str()) else { return false };
    let Some(t) = table_of(w, px) else { return false };
    if let Read::Data(dt) | Read::Kbytes(dt) = what
        && !t.stored[dt.idx()]
    {
        return false;
    }
    let Some(key) = t.smp_to_stkey(d.clone()) else { return false };
    let now = w.clock.now_ms;
    let v = t.stktable_lookup_key(&key, |ts| read_entry(t, ts, what, now)).flatten();
    *d = SmpData::Sint(v.unwrap_or(0));
    true
}

/// stick_table.c:sample_conv_in_table() in 2.6: whether the key is in the table.
pub fn sample_conv_in_table(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    let Some((w, _)) = c.strm else { return false };
    let Some(t) = a.first().and_then(|n| stktable_find_by_name(w, n.str())).and_then(|px| table_of(w, px))
    else {
        return false;
    };
    let Some(key) = t.smp_to_stkey(d.clone()) else { return false };
    *d = SmpData::Bool(t.stktable_lookup_key(&key, |_| ()).is_some());
    true
}

/// Argument checker of fetches and converters that name a table (`ARGT_TAB`): the name
/// is kept and checked once every section is known (`check_config_validity`).
pub fn check_table_arg(a: &mut [Arg]) -> Result<(), String> {
    for arg in a.iter() {
        if let Arg::Str(n) = arg
            && !n.is_empty()
        {
            TABLE_REFS.with(|r| r.borrow_mut().push(String::from_utf8_lossy(n).into_owned()));
        }
    }
    Ok(())
}

/// Argument checker of `sc_*(N[,table])` fetches: the counter number is 0 to 2.
pub fn check_sc_num_arg(a: &mut [Arg]) -> Result<(), String> {
    if sc_num(a).is_none() {
        return Err(format!("invalid stick counter number, must be between 0 and {}", MAX_SESS_STKCTR - 1));
    }
    check_table_arg(&mut a[1..])
}

thread_local! {
    /// Tables named by sample arguments while the configuration is parsed (HAProxy keeps
    /// them in `px->conf.args` and resolves them in `check_config_validity`).
    static TABLE_REFS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The table names sample arguments referred to since the last call.
pub fn take_table_refs() -> Vec<String> {
    TABLE_REFS.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

macro_rules! stk_fetches {
    ($($sc:ident, $sc0:ident, $sc1:ident, $sc2:ident, $src:ident, $conv:ident => $what:expr;)*) => {$(
        /// `sc_*(N[,table])`.
        pub fn $sc(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
            if let Some(n) = sc_num(a) { fetch_read(Some(n), $what, &a[1..], c, out) }
        }
        /// `sc0_*([table])`.
        pub fn $sc0(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) { fetch_read(Some(0), $what, a, c, out) }
        /// `sc1_*([table])`.
        pub fn $sc1(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) { fetch_read(Some(1), $what, a, c, out) }
        /// `sc2_*([table])`.
        pub fn $sc2(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) { fetch_read(Some(2), $what, a, c, out) }
        /// `src_*([table])`.
        pub fn $src(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) { fetch_read(None, $what, a, c, out) }
        /// `table_*(table)`.
        pub fn $conv(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool { conv_table($what, a, d, c) }
    )*};
}

stk_fetches! {
    sc_get_gpt0, sc0_get_gpt0, sc1_get_gpt0, sc2_get_gpt0, src_get_gpt0, table_gpt0 => Read::Data(STKTABLE_DT_GPT0);
    sc_get_gpc0, sc0_get_gpc0, sc1_get_gpc0, sc2_get_gpc0, src_get_gpc0, table_gpc0 => Read::Data(STKTABLE_DT_GPC0);
    sc_gpc0_rate, sc0_gpc0_rate, sc1_gpc0_rate, sc2_gpc0_rate, src_gpc0_rate, table_gpc0_rate => Read::Data(STKTABLE_DT_GPC0_RATE);
    sc_get_gpc1, sc0_get_gpc1, sc1_get_gpc1, sc2_get_gpc1, src_get_gpc1, table_gpc1 => Read::Data(STKTABLE_DT_GPC1);
    sc_gpc1_rate, sc0_gpc1_rate, sc1_gpc1_rate, sc2_gpc1_rate, src_gpc1_rate, table_gpc1_rate => Read::Data(STKTABLE_DT_GPC1_RATE);
    sc_conn_cnt, sc0_conn_cnt, sc1_conn_cnt, sc2_conn_cnt, src_conn_cnt, table_conn_cnt => Read::Data(STKTABLE_DT_CONN_CNT);
    sc_conn_cur, sc0_conn_cur, sc1_conn_cur, sc2_conn_cur, src_conn_cur, table_conn_cur => Read::Data(STKTABLE_DT_CONN_CUR);
    sc_conn_rate, sc0_conn_rate, sc1_conn_rate, sc2_conn_rate, src_conn_rate, table_conn_rate => Read::Data(STKTABLE_DT_CONN_RATE);
    sc_sess_cnt, sc0_sess_cnt, sc1_sess_cnt, sc2_sess_cnt, src_sess_cnt, table_sess_cnt => Read::Data(STKTABLE_DT_SESS_CNT);
    sc_sess_rate, sc0_sess_rate, sc1_sess_rate, sc2_sess_rate, src_sess_rate, table_sess_rate => Read::Data(STKTABLE_DT_SESS_RATE);
    sc_http_req_cnt, sc0_http_req_cnt, sc1_http_req_cnt, sc2_http_req_cnt, src_http_req_cnt, table_http_req_cnt => Read::Data(STKTABLE_DT_HTTP_REQ_CNT);
    sc_http_req_rate, sc0_http_req_rate, sc1_http_req_rate, sc2_http_req_rate, src_http_req_rate, table_http_req_rate => Read::Data(STKTABLE_DT_HTTP_REQ_RATE);
    sc_http_err_cnt, sc0_http_err_cnt, sc1_http_err_cnt, sc2_http_err_cnt, src_http_err_cnt, table_http_err_cnt => Read::Data(STKTABLE_DT_HTTP_ERR_CNT);
    sc_http_err_rate, sc0_http_err_rate, sc1_http_err_rate, sc2_http_err_rate, src_http_err_rate, table_http_err_rate => Read::Data(STKTABLE_DT_HTTP_ERR_RATE);
    sc_http_fail_cnt, sc0_http_fail_cnt, sc1_http_fail_cnt, sc2_http_fail_cnt, src_http_fail_cnt, table_http_fail_cnt => Read::Data(STKTABLE_DT_HTTP_FAIL_CNT);
    sc_http_fail_rate, sc0_http_fail_rate, sc1_http_fail_rate, sc2_http_fail_rate, src_http_fail_rate, table_http_fail_rate => Read::Data(STKTABLE_DT_HTTP_FAIL_RATE);
    sc_bytes_in_rate, sc0_bytes_in_rate, sc1_bytes_in_rate, sc2_bytes_in_rate, src_bytes_in_rate, table_bytes_in_rate => Read::Data(STKTABLE_DT_BYTES_IN_RATE);
    sc_bytes_out_rate, sc0_bytes_out_rate, sc1_bytes_out_rate, sc2_bytes_out_rate, src_bytes_out_rate, table_bytes_out_rate => Read::Data(STKTABLE_DT_BYTES_OUT_RATE);
    sc_kbytes_in, sc0_kbytes_in, sc1_kbytes_in, sc2_kbytes_in, src_kbytes_in, table_kbytes_in => Read::Kbytes(STKTABLE_DT_BYTES_IN_CNT);
    sc_kbytes_out, sc0_kbytes_out, sc1_kbytes_out, sc2_kbytes_out, src_kbytes_out, table_kbytes_out => Read::Kbytes(STKTABLE_DT_BYTES_OUT_CNT);
    sc_trackers, sc0_trackers, sc1_trackers, sc2_trackers, src_trackers, table_trackers => Read::Trackers;
}

/// `table_server_id(table)`: the server id an entry sticks to.
pub fn table_server_id(a: &[Arg], d: &mut SmpData, c: &mut SmpCtx) -> bool {
    conv_table(Read::Data(STKTABLE_DT_SERVER_ID), a, d, c)
}

macro_rules! stk_changes {
    ($($sc:ident, $sc0:ident, $sc1:ident, $sc2:ident, $src:ident => $ch:expr;)*) => {$(
        /// `sc_*(N[,table])`.
        pub fn $sc(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
            if let Some(n) = sc_num(a) { fetch_change(Some(n), $ch, &a[1..], c, out) }
        }
        /// `sc0_*([table])`.
        pub fn $sc0(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) { fetch_change(Some(0), $ch, a, c, out) }
        /// `sc1_*([table])`.
        pub fn $sc1(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) { fetch_change(Some(1), $ch, a, c, out) }
        /// `sc2_*([table])`.
        pub fn $sc2(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) { fetch_change(Some(2), $ch, a, c, out) }
        /// `src_*([table])`.
        pub fn $src(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) { fetch_change(None, $ch, a, c, out) }
    )*};
}

stk_changes! {
    sc_inc_gpc0, sc0_inc_gpc0, sc1_inc_gpc0, sc2_inc_gpc0, src_inc_gpc0 => Change::Inc(STKTABLE_DT_GPC0, STKTABLE_DT_GPC0_RATE);
    sc_inc_gpc1, sc0_inc_gpc1, sc1_inc_gpc1, sc2_inc_gpc1, src_inc_gpc1 => Change::Inc(STKTABLE_DT_GPC1, STKTABLE_DT_GPC1_RATE);
    sc_clr_gpc0, sc0_clr_gpc0, sc1_clr_gpc0, sc2_clr_gpc0, src_clr_gpc0 => Change::Clr(STKTABLE_DT_GPC0);
    sc_clr_gpc1, sc0_clr_gpc1, sc1_clr_gpc1, sc2_clr_gpc1, src_clr_gpc1 => Change::Clr(STKTABLE_DT_GPC1);
}

/// `sc_tracked(N)`.
pub fn sc_tracked(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some(n) = sc_num(a) {
        fetch_tracked(n, c, out)
    }
}
/// `sc0_tracked`.
pub fn sc0_tracked(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    fetch_tracked(0, c, out)
}
/// `sc1_tracked`.
pub fn sc1_tracked(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    fetch_tracked(1, c, out)
}
/// `sc2_tracked`.
pub fn sc2_tracked(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    fetch_tracked(2, c, out)
}
/// `table_cnt([table])`.
pub fn table_cnt(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    smp_fetch_table_cnt(a, c, out, false)
}
/// `table_avl([table])`.
pub fn table_avl(a: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    smp_fetch_table_cnt(a, c, out, true)
}

/// Sets a data type of the entry slot `num` tracks (`sc-set-gpt0`), or adds one to a
/// counter (`sc-inc-gpc0`): stick_table.c:action_set_gpt0() / action_inc_gpc0() in 2.6.
pub fn stkctr_apply(w: &Haproxy, s: &Session, num: usize, act: StkCtrAct) {
    let Some(Some(ctr)) = s.stkctr().get(num) else { return };
    let Some(t) = table_of(w, ctr.table) else { return };
    let now = w.clock.now_ms;
    t.stktable_lookup_key(&ctr.key, |ts| match act {
        StkCtrAct::IncGpc(dt, rate) => {
            t.inc_data(ts, rate, now, 1);
            t.inc_data(ts, dt, now, 1);
        }
        StkCtrAct::SetGpt0(v) => {
            if t.stored[STKTABLE_DT_GPT0.idx()] {
                ts.data[STKTABLE_DT_GPT0.idx()].n = u64::from(v as u32);
            }
        }
    });
}

/// What an `sc-*` action does to a tracked entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StkCtrAct {
    /// `sc-inc-gpc0(N)` / `sc-inc-gpc1(N)`: a counter and its rate.
    IncGpc(StkDataType, StkDataType),
    /// `sc-set-gpt0(N) VALUE`.
    SetGpt0(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parse_reads_type_size_expire_and_store_list() {
        let t = parse_stick_table(
            &words("type ip size 1k expire 1ms store conn_rate(10s),gpc0,http_req_cnt"),
            "t",
        )
        .expect("valid");
        assert_eq!((t.ktype, t.size, t.expire), (StkKeyType::Ip, 1024, Some(1)));
        assert!(t.stored[STKTABLE_DT_GPC0.idx()] && t.stored[STKTABLE_DT_HTTP_REQ_CNT.idx()]);
        assert_eq!(t.data_arg[STKTABLE_DT_CONN_RATE.idx()], 10_000);
        let s = parse_stick_table(&words("type string len 8 size 10"), "s").expect("valid");
        assert_eq!(s.key_size, 8);
        for bad in
            ["type ip size 10 store conn_rate", "type foo size 1", "size 10", "type ip size 1 store gpc0(3)"]
        {
            assert!(parse_stick_table(&words(bad), "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_slide_over_their_period() {
        let mut f = FreqCtr::default();
        f.update_freq_ctr_period(Tick(0), 1000, 1);
        f.update_freq_ctr_period(Tick(10), 1000, 1);
        assert_eq!(f.read_freq_ctr_period(Tick(20), 1000), 2);
        // Half of the previous period still counts half way through the next one.
        f.update_freq_ctr_period(Tick(1000), 1000, 4);
        assert_eq!(f.read_freq_ctr_period(Tick(1500), 1000), 5);
        assert_eq!(f.read_freq_ctr_period(Tick(5000), 1000), 0);
    }

    #[test]
    fn entries_expire_once_released_and_go_back_to_the_pool() {
        let t =
            parse_stick_table(&words("type integer size 2 expire 10 store conn_cnt"), "t").expect("valid");
        let k = |i: u32| StkKey(i.to_be_bytes().to_vec().into_boxed_slice());
        t.stktable_get_entry(&k(1), Tick(0), true).expect("room");
        t.stktable_get_entry(&k(2), Tick(0), false).expect("room");
        // Full: the unreferenced oldest entry makes room.
        t.stktable_get_entry(&k(3), Tick(1), false).expect("room after trash");
        assert_eq!(t.keys(), vec![k(1), k(3)]);
        assert_eq!(t.stktable_expire(Tick(100)), 1, "the held entry stays");
        t.stktable_touch(&k(1), Tick(100), true);
        assert_eq!(t.stktable_expire(Tick(110)), 1);
        assert_eq!(t.current(), 0);
        assert_eq!(t.pool_stats().used, 0);
    }
}
