//! Statistics: `show info` and `show stat`, and the rates and averages they report.
//!
//! In 1.5-dev8 this was part of `dumpstats.c` (`stats_dump_info_to_buffer`,
//! `stats_dump_proxy_to_buffer`); HAProxy 1.7 moved it to `stats.c`, whose 2.6 output
//! haflow reproduces: `show stat` is a CSV with HAProxy 2.6's header and column order, one
//! row per FRONTEND, server and BACKEND of each proxy in configuration order, each field
//! filled when haflow has it and left empty where HAProxy leaves it empty for that row
//! type. Counters come from the proxies and servers; what HAProxy measures with its
//! `freq_ctr` (rates over the last second) and `swrate` (averages of the last sessions'
//! queue, connect, response and total times) is kept here, sampled once per second from
//! the counters and fed by each session's end (`stream_update_time_stats`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::proxy::{Proxy, ProxyMode, ProxyState};
use crate::haproxy::server::{Server, SrvFlags};
use crate::haproxy::session::{SessFlags, Session};
use crate::ids::ServerId;
use crate::trace::names;

/// The first line of `show stat`, as HAProxy 2.6 prints it.
pub const STAT_HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,";

/// `TIME_STATS_SAMPLES`: the averages cover about the last 512 sessions.
const TIME_STATS_SAMPLES: u64 = 512;

/// A rate over the last second (freq_ctr.h), sampled from a cumulated counter.
#[derive(Clone, Debug, Default)]
pub struct Rate {
    /// The counter's value at the start of the current second.
    base: u64,
    /// Events of the previous second.
    prev: u64,
    /// Highest rate seen.
    max: u64,
}

impl Rate {
    /// A second ended `gap` seconds after the previous sample; the counter is now `cum`.
    fn roll(&mut self, cum: u64, gap: u64) {
        self.prev = if gap == 1 { cum.saturating_sub(self.base) } else { 0 };
        self.max = self.max.max(self.prev);
        self.base = cum;
    }

    /// freq_ctr.c:read_freq_ctr() in 1.5-dev8: this second's events plus the share of the
    /// previous second's that is still within the last 1000 ms.
    /// Divergence: no low-rate rule. With nothing yet this second and at most one event in
    /// the previous one, dev8 (and 2.6) return that count; this returns its fading share,
    /// 0 for most of the second.
    fn read(&self, cum: u64, ms_in_sec: u64) -> u64 {
        cum.saturating_sub(self.base) + self.prev * (1000 - ms_in_sec.min(1000)) / 1000
    }

    fn read_max(&self, cum: u64, ms_in_sec: u64) -> u64 {
        self.max.max(self.read(cum, ms_in_sec))
    }
}

/// A sliding average over the last `TIME_STATS_SAMPLES` values (freq_ctr.h's `swrate`).
#[derive(Clone, Debug, Default)]
struct Swrate {
    sum: u64,
    n: u64,
    max: u64,
}

impl Swrate {
    /// Exact sum over the first samples, then each new one replaces an average one.
    fn add(&mut self, v: u64) {
        self.n += 1;
        if self.n > TIME_STATS_SAMPLES {
            self.sum -= self.sum / TIME_STATS_SAMPLES;
        }
        self.sum += v;
        self.max = self.max.max(v);
    }

    fn avg(&self) -> u64 {
        let w = self.n.min(TIME_STATS_SAMPLES);
        self.sum.checked_div(w).unwrap_or(0)
    }
}

/// Queue, connect, response and total times (`q_time`, `c_time`, `d_time`, `t_time`).
#[derive(Clone, Debug, Default)]
struct TimeStats {
    q: Swrate,
    c: Swrate,
    d: Swrate,
    t: Swrate,
}

/// Statistics of one proxy.
#[derive(Clone, Debug, Default)]
struct PxStats {
    sess: Rate,
    conn: Rate,
    req: Rate,
    /// Last time (s since start) a session arrived, with the counter seen then.
    last_sess: Option<u64>,
    seen_sess: u64,
    times: TimeStats,
}

/// Statistics of one server.
#[derive(Clone, Debug, Default)]
struct SrvStats {
    sess: Rate,
    last_sess: Option<u64>,
    seen_sess: u64,
    times: TimeStats,
}

/// What `show stat` and `show info` need beyond the counters.
#[derive(Debug)]
pub struct StatsState {
    start_date: SystemTime,
    last_sec: u64,
    px: Vec<PxStats>,
    srv: Vec<Vec<SrvStats>>,
    conn: Rate,
    bytes_out: Rate,
}

impl StatsState {
    /// Empty statistics, starting now.
    pub fn new() -> StatsState {
        StatsState {
            start_date: SystemTime::now(),
            last_sec: 0,
            px: Vec::new(),
            srv: Vec::new(),
            conn: Rate::default(),
            bytes_out: Rate::default(),
        }
    }

    /// A server was attached at runtime (`add server`): its rates and averages start
    /// empty in its slot.
    pub fn srv_attach(&mut self, sid: ServerId) {
        let Some(v) = self.srv.get_mut(sid.px.idx()) else { return };
        let i = sid.idx as usize;
        if v.len() <= i {
            v.resize_with(i + 1, SrvStats::default);
        }
        v[i] = SrvStats::default();
    }

    /// The server's sessions per second over the last second (`srv->sess_per_sec`), its
    /// cumulated counter being `cum` at `now_ms`.
    pub fn srv_sess_rate(&self, sid: ServerId, cum: u64, now_ms: u64) -> u64 {
        self.srv
            .get(sid.px.idx())
            .and_then(|v| v.get(sid.idx as usize))
            .map_or(0, |ss| ss.sess.read(cum, now_ms % 1000))
    }

    /// A server was deleted (`del server`): its statistics go with it (`slots` is what
    /// its backend's list keeps now).
    pub fn srv_detach(&mut self, sid: ServerId, slots: usize) {
        let Some(v) = self.srv.get_mut(sid.px.idx()) else { return };
        if let Some(s) = v.get_mut(sid.idx as usize) {
            *s = SrvStats::default();
        }
        v.truncate(slots);
        v.shrink_to_fit();
    }
}

impl Default for StatsState {
    fn default() -> Self {
        Self::new()
    }
}

/// Sizes the statistics to the configuration and remembers the initial weights.
pub fn stats_init(w: &mut Haproxy) {
    let st = &mut w.cli.stats;
    st.start_date = w.clock.date.checked_sub(w.clock.elapsed()).unwrap_or(w.clock.date);
    st.px = vec![PxStats::default(); w.proxies.len()];
    st.srv =
        w.proxies.iter().map(|p| (0..p.servers.slots()).map(|_| SrvStats::default()).collect()).collect();
}

/// Bytes spliced into connections, both sides (2.6's `global.spliced_out_bytes`).
fn spliced_bytes_out(w: &Haproxy) -> u64 {
    w.proxies.iter().map(|p| p.counters.h1_fe.spliced_bytes_out + p.counters.h1_be.spliced_bytes_out).sum()
}

fn total_bytes_out(w: &Haproxy) -> u64 {
    w.proxies.iter().filter(|p| p.is_frontend()).map(|p| p.counters.bytes_out).sum()
}

/// Once per second (called every loop turn, returns at once otherwise): rolls the rates
/// and notes when proxies and servers last received a session.
pub fn stats_tick(w: &mut Haproxy) {
    let sec = w.clock.now_ms.0 / 1000;
    if sec == w.cli.stats.last_sec {
        return;
    }
    let gap = sec - w.cli.stats.last_sec;
    w.cli.stats.last_sec = sec;
    let bytes = total_bytes_out(w);
    let st = &mut w.cli.stats;
    st.conn.roll(w.totalconn, gap);
    st.bytes_out.roll(bytes, gap);
    for (i, p) in w.proxies.iter().enumerate() {
        let Some(ps) = st.px.get_mut(i) else { continue };
        ps.sess.roll(p.counters.cum_sess, gap);
        ps.conn.roll(p.counters.cum_conn, gap);
        ps.req.roll(p.counters.cum_req, gap);
        if p.counters.cum_sess != ps.seen_sess {
            ps.seen_sess = p.counters.cum_sess;
            ps.last_sess = Some(sec);
        }
        for (j, s) in p.servers.enumerate() {
            let Some(ss) = st.srv.get_mut(i).and_then(|v| v.get_mut(j)) else { continue };
            ss.sess.roll(s.counters.cum_sess, gap);
            if s.counters.cum_sess != ss.seen_sess {
                ss.seen_sess = s.counters.cum_sess;
                ss.last_sess = Some(sec);
            }
        }
    }
}

/// stream.c:stream_update_time_stats() (HAProxy 2.6): a session ended; its queue, connect, response and
/// total times enter its server's and backend's averages.
pub fn stream_update_time_stats(w: &mut Haproxy, s: &Session) {
    if !s.flags.contains(SessFlags::SN_BE_ASSIGNED) && s.srv.is_none() {
        return;
    }
    let l = &s.logs;
    let Some(mut t_connect) = l.t_connect else { return };
    let mut t_data =
        if w.proxies[s.be.idx()].mode == ProxyMode::PR_MODE_HTTP { l.t_data } else { Some(t_connect) };
    let Some(td) = t_data.as_mut() else { return };
    let t_request = l.t_request.unwrap_or(0);
    let mut t_queue = l.t_queue.unwrap_or(t_request);
    *td = td.saturating_sub(t_connect);
    t_connect = t_connect.saturating_sub(t_queue);
    t_queue = t_queue.saturating_sub(t_request);
    let t_close = l.t_close.unwrap_or(0);
    let add = |t: &mut TimeStats| {
        t.q.add(t_queue);
        t.c.add(t_connect);
        t.d.add(t_data.unwrap_or(0));
        t.t.add(t_close);
    };
    let st = &mut w.cli.stats;
    if let Some(srv) = s.srv.or(s.srv_conn)
        && let Some(ss) = st.srv.get_mut(srv.px.idx()).and_then(|v| v.get_mut(srv.idx as usize))
    {
        add(&mut ss.times);
    }
    if let Some(ps) = st.px.get_mut(s.be.idx()) {
        add(&mut ps.times);
    }
}

/// `clear counters [all]`: the maxima (and with `all`, every counter) start again.
pub fn clear_counters(w: &mut Haproxy, all: bool) {
    for p in &mut w.proxies {
        p.counters.conn_max = u64::from(p.feconn.max(p.beconn));
        p.nbpend_max = p.pendconns.len() as u32;
        if all {
            p.counters =
                crate::haproxy::proxy::ProxyCounters { conn_max: p.counters.conn_max, ..Default::default() };
        }
        for s in &mut p.servers {
            s.cur_sess_max = s.cur_sess;
            s.nbpend_max = s.pendconns.len() as u32;
            if all {
                s.counters = Default::default();
                if let Some(c) = s.check.as_mut() {
                    c.failed = 0;
                }
            }
        }
    }
    let st = &mut w.cli.stats;
    st.conn.max = 0;
    st.bytes_out.max = 0;
    for ps in &mut st.px {
        ps.sess.max = 0;
        ps.conn.max = 0;
        ps.req.max = 0;
        for t in [&mut ps.times.q, &mut ps.times.c, &mut ps.times.d, &mut ps.times.t] {
            t.max = 0;
            if all {
                *t = Swrate::default();
            }
        }
    }
    for ss in st.srv.iter_mut().flatten() {
        ss.sess.max = 0;
        for t in [&mut ss.times.q, &mut ss.times.c, &mut ss.times.d, &mut ss.times.t] {
            t.max = 0;
            if all {
                *t = Swrate::default();
            }
        }
    }
    if all {
        for ps in &mut st.px {
            ps.sess = Rate::default();
            ps.conn = Rate::default();
            ps.req = Rate::default();
        }
        for ss in st.srv.iter_mut().flatten() {
            ss.sess = Rate::default();
        }
        // Rates restart from the counters' new (zero) values.
        st.last_sec = 0;
    }
}

fn field_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let body = &STAT_HEADER[2..STAT_HEADER.len() - 1];
        body.split(',').collect()
    })
}

/// The column of each field name: `show stat` over thousands of servers fills every row by
/// name, so the lookup must not be a scan of the 128 names.
fn field_index(name: &str) -> Option<usize> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    INDEX.get_or_init(|| field_names().iter().enumerate().map(|(i, n)| (*n, i)).collect()).get(name).copied()
}

/// One CSV row being filled (`struct field` array of stats.c).
struct Row(Vec<String>);

impl Row {
    fn new() -> Row {
        let mut fields = Vec::with_capacity(field_names().len());
        fields.resize_with(field_names().len(), String::new);
        Row(fields)
    }

    fn set(&mut self, name: &str, v: impl ToString) {
        match field_index(name) {
            Some(i) => self.0[i] = v.to_string(),
            None => debug_assert!(false, "unknown stat field {name}"),
        }
    }

    /// The value of field `name` (empty when unset).
    fn get(&self, name: &str) -> &str {
        field_index(name).and_then(|i| self.0.get(i)).map_or("", String::as_str)
    }

    fn set_all(&mut self, names: &[&str], v: impl ToString + Copy) {
        for n in names {
            self.set(n, v);
        }
    }

    /// stats.c:stats_dump_fields_typed() in 2.6: one line a field that has a value,
    /// `F.<iid>.<sid>.<field>.<name>.<pid>:<tags>:<type>:<value>` (`B` for a backend, `S`
    /// for a server); fields after the `-` of the CSV are numbered on from the last
    /// standard one, as the modules' fields follow `ST_F_TOTAL_FIELDS`.
    fn typed(&self, out: &mut String) {
        let (kind, letter) = match self.get("type") {
            "0" => (0, 'F'),
            "1" => (1, 'B'),
            _ => (2, 'S'),
        };
        let (iid, sid, pid) = (self.get("iid"), self.get("sid"), self.get("pid"));
        let names = field_names();
        let fields = names.iter().zip(&self.0).filter(|(n, _)| **n != "-");
        for (idx, ((name, v), (_, tags))) in fields.zip(FIELD_TAGS.iter()).enumerate() {
            if v.is_empty() {
                continue;
            }
            // A field haflow fills where 2.6 has none for this row type takes another's tags.
            let tag = [tags[kind], tags[0], tags[1], tags[2]]
                .into_iter()
                .find(|t| !t.is_empty())
                .unwrap_or("MGP:u64");
            let _ = writeln!(out, "{letter}.{iid}.{sid}.{idx}.{name}.{pid}:{tag}:{v}");
        }
    }

    /// stats.c:stats_dump_fields_csv() in 2.6: values joined by `,`, a `,` ends the line;
    /// values with a comma or quote are quoted.
    /// Divergence: 2.6's `csv_enc_append()` also quotes values holding CR or LF.
    fn csv(&self, out: &mut String) {
        for v in &self.0 {
            if v.contains([',', '"']) {
                let _ = write!(out, "\"{}\",", v.replace('"', "\"\""));
            } else {
                out.push_str(v);
                out.push(',');
            }
        }
        out.push('\n');
    }
}

/// The tags and type `show stat typed` gives each field (stats.c's `mkf_*()` calls in
/// `stats_fill_fe_stats`, `stats_fill_be_stats` and `stats_fill_sv_stats` of 2.6, and the
/// statistics modules' for the fields after `-`), for a frontend, backend and server row:
/// origin (Metric, Status, Key, Config), nature (Gauge, Limit, Max, Rate, Counter,
/// Duration, Age, Name, Output, avg) and scope (Process, Service), then the type. Empty
/// where that row type has no such field.
const FIELD_TAGS: [(&str, [&str; 3]); 127] = [
    ("pxname", ["KNS:str", "KNS:str", "KNS:str"]),
    ("svname", ["KNS:str", "KNS:str", "KNS:str"]),
    ("qcur", ["", "MGP:u32", "MGP:u32"]),
    ("qmax", ["", "MMP:u32", "MMP:u32"]),
    ("scur", ["MGP:u32", "MGP:u32", "MGP:u32"]),
    ("smax", ["MMP:u32", "MMP:u32", "MMP:u32"]),
    ("slim", ["CLP:u32", "CLP:u32", "CLP:u32"]),
    ("stot", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("bin", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("bout", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("dreq", ["MCP:u64", "MCP:u64", ""]),
    ("dresp", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("ereq", ["MCP:u64", "", ""]),
    ("econ", ["", "MCP:u64", "MCP:u64"]),
    ("eresp", ["", "MCP:u64", "MCP:u64"]),
    ("wretr", ["", "MCP:u64", "MCP:u64"]),
    ("wredis", ["", "MCP:u64", "MCP:u64"]),
    ("status", ["SGP:str", "SGP:str", "SGP:str"]),
    ("weight", ["", "MaP:u32", "MaP:u32"]),
    ("act", ["", "MGP:u32", "SGP:u32"]),
    ("bck", ["", "MGP:u32", "SGP:u32"]),
    ("chkfail", ["", "", "MCP:u64"]),
    ("chkdown", ["", "MCP:u64", "MCP:u64"]),
    ("lastchg", ["", "MAP:u32", "MAP:u32"]),
    ("downtime", ["", "MCP:u32", "MCP:u32"]),
    ("qlimit", ["", "", "CGS:u32"]),
    ("pid", ["KGP:u32", "KGP:u32", "KGP:u32"]),
    ("iid", ["KGS:u32", "KGS:u32", "KGS:u32"]),
    ("sid", ["KGS:u32", "KGS:u32", "KGS:u32"]),
    ("throttle", ["", "", "MaP:u32"]),
    ("lbtot", ["", "MCP:u64", "MCP:u64"]),
    ("tracked", ["", "", "CNS:str"]),
    ("type", ["CGS:u32", "CGS:u32", "CGS:u32"]),
    ("rate", ["MRP:u32", "MGP:u32", "MRP:u32"]),
    ("rate_lim", ["CLP:u32", "", ""]),
    ("rate_max", ["MMP:u32", "MGP:u32", "MMP:u32"]),
    ("check_status", ["", "", "MOP:str"]),
    ("check_code", ["", "", "MOP:u32"]),
    ("check_duration", ["", "", "MDP:u64"]),
    ("hrsp_1xx", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("hrsp_2xx", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("hrsp_3xx", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("hrsp_4xx", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("hrsp_5xx", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("hrsp_other", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("hanafail", ["", "", "MCP:u64"]),
    ("req_rate", ["MRP:u32", "", ""]),
    ("req_rate_max", ["MMP:u32", "", ""]),
    ("req_tot", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("cli_abrt", ["", "MCP:u64", "MCP:u64"]),
    ("srv_abrt", ["", "MCP:u64", "MCP:u64"]),
    ("comp_in", ["MCP:u64", "MCP:u64", ""]),
    ("comp_out", ["MCP:u64", "MCP:u64", ""]),
    ("comp_byp", ["MCP:u64", "MCP:u64", ""]),
    ("comp_rsp", ["MCP:u64", "MCP:u64", ""]),
    ("lastsess", ["", "MAP:s32", "MAP:s32"]),
    ("last_chk", ["", "", "MOP:str"]),
    ("last_agt", ["", "", "MOP:str"]),
    ("qtime", ["", "MaP:u32", "MaP:u32"]),
    ("ctime", ["", "MaP:u32", "MaP:u32"]),
    ("rtime", ["", "MaP:u32", "MaP:u32"]),
    ("ttime", ["", "MaP:u32", "MaP:u32"]),
    ("agent_status", ["", "", "MOP:str"]),
    ("agent_code", ["", "", "MOP:u32"]),
    ("agent_duration", ["", "", "MDP:u64"]),
    ("check_desc", ["", "", "MOP:str"]),
    ("agent_desc", ["", "", "MOP:str"]),
    ("check_rise", ["", "", "CGS:u32"]),
    ("check_fall", ["", "", "CGS:u32"]),
    ("check_health", ["", "", "CGS:u32"]),
    ("agent_rise", ["", "", "CGS:u32"]),
    ("agent_fall", ["", "", "CGS:u32"]),
    ("agent_health", ["", "", "CGS:u32"]),
    ("addr", ["", "", "CGS:str"]),
    ("cookie", ["", "CNS:str", "CNS:str"]),
    ("mode", ["CGS:str", "CGS:str", "CGS:str"]),
    ("algo", ["", "CGS:str", ""]),
    ("conn_rate", ["MRP:u32", "", ""]),
    ("conn_rate_max", ["MMP:u32", "", ""]),
    ("conn_tot", ["MCP:u64", "", ""]),
    ("intercepted", ["MCP:u64", "", ""]),
    ("dcon", ["MCP:u64", "", ""]),
    ("dses", ["MCP:u64", "", ""]),
    ("wrew", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("connect", ["", "MCP:u64", "MCP:u64"]),
    ("reuse", ["", "MCP:u64", "MCP:u64"]),
    ("cache_lookups", ["MCP:u64", "MCP:u64", ""]),
    ("cache_hits", ["MCP:u64", "MCP:u64", ""]),
    ("srv_icur", ["", "", "MGP:u32"]),
    ("src_ilim", ["", "", "CLP:u32"]),
    ("qtime_max", ["", "MMP:u32", "MMP:u32"]),
    ("ctime_max", ["", "MMP:u32", "MMP:u32"]),
    ("rtime_max", ["", "MMP:u32", "MMP:u32"]),
    ("ttime_max", ["", "MMP:u32", "MMP:u32"]),
    ("eint", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("idle_conn_cur", ["", "", "MGP:u32"]),
    ("safe_conn_cur", ["", "", "MGP:u32"]),
    ("used_conn_cur", ["", "", "MGP:u32"]),
    ("need_conn_est", ["", "", "MGP:u32"]),
    ("uweight", ["", "MaP:u32", "MaP:u32"]),
    ("agg_server_status", ["", "MGP:u32", ""]),
    ("agg_server_check_status", ["", "MGP:u32", ""]),
    ("agg_check_status", ["", "MGP:u32", ""]),
    ("ssl_sess", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("ssl_reused_sess", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("ssl_failed_handshake", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_headers_rcvd", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_data_rcvd", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_settings_rcvd", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_rst_stream_rcvd", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_goaway_rcvd", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_detected_conn_protocol_errors", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_detected_strm_protocol_errors", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_rst_stream_resp", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_goaway_resp", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_open_connections", ["MGP:u64", "MGP:u64", "MGP:u64"]),
    ("h2_backend_open_streams", ["MGP:u64", "MGP:u64", "MGP:u64"]),
    ("h2_total_connections", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h2_backend_total_streams", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h1_open_connections", ["MGP:u64", "MGP:u64", "MGP:u64"]),
    ("h1_open_streams", ["MGP:u64", "MGP:u64", "MGP:u64"]),
    ("h1_total_connections", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h1_total_streams", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h1_bytes_in", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h1_bytes_out", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h1_spliced_bytes_in", ["MCP:u64", "MCP:u64", "MCP:u64"]),
    ("h1_spliced_bytes_out", ["MCP:u64", "MCP:u64", "MCP:u64"]),
];

const SSL_H2: [&str; 3] = ["ssl_sess", "ssl_reused_sess", "ssl_failed_handshake"];
const H2: [&str; 13] = [
    "h2_headers_rcvd",
    "h2_data_rcvd",
    "h2_settings_rcvd",
    "h2_rst_stream_rcvd",
    "h2_goaway_rcvd",
    "h2_detected_conn_protocol_errors",
    "h2_detected_strm_protocol_errors",
    "h2_rst_stream_resp",
    "h2_goaway_resp",
    "h2_open_connections",
    "h2_backend_open_streams",
    "h2_total_connections",
    "h2_backend_total_streams",
];

/// The compression counters of a frontend or backend row.
fn comp_counters(r: &mut Row, c: &crate::haproxy::proxy::ProxyCounters) {
    r.set("comp_in", c.comp_in);
    r.set("comp_out", c.comp_out);
    r.set("comp_byp", c.comp_byp);
    r.set("comp_rsp", c.comp_rsp);
}

fn hrsp(row: &mut Row, rsp: &[u64; 6]) {
    for (i, n) in
        ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].iter().enumerate()
    {
        row.set(n, rsp[i]);
    }
}

fn times(row: &mut Row, t: &TimeStats, http: bool) {
    row.set("qtime", t.q.avg());
    row.set("ctime", t.c.avg());
    row.set("rtime", if http { t.d.avg() } else { 0 });
    row.set("ttime", t.t.avg());
    row.set("qtime_max", t.q.max);
    row.set("ctime_max", t.c.max);
    row.set("rtime_max", if http { t.d.max } else { 0 });
    row.set("ttime_max", t.t.max);
}

/// The frontend's `maxconn` (HAProxy gives a frontend the process `maxconn` by default).
fn fe_maxconn(w: &Haproxy, p: &Proxy) -> u32 {
    if p.maxconn > 0 { p.maxconn } else { w.global.maxconn }
}

/// stats.c:stats_fill_fe_stats() (HAProxy 2.6).
fn stats_fill_fe_stats(w: &Haproxy, p: &Proxy, now_ms: u64) -> Row {
    let ms = now_ms % 1000;
    let ps = w.cli.stats.px.get(p.id.idx()).cloned().unwrap_or_default();
    let c = &p.counters;
    let http = p.mode == ProxyMode::PR_MODE_HTTP;
    let mut r = Row::new();
    r.set("pxname", &p.name);
    r.set("svname", "FRONTEND");
    r.set("scur", p.feconn);
    r.set("smax", c.conn_max);
    r.set("slim", fe_maxconn(w, p));
    r.set("stot", c.cum_sess);
    r.set("bin", c.bytes_in);
    r.set("bout", c.bytes_out);
    r.set("dreq", c.denied_req);
    r.set("dresp", c.denied_resp);
    r.set("ereq", c.failed_req);
    let status = if p.state == ProxyState::PR_STSTOPPED {
        "STOP"
    } else if p.maxconn > 0 && p.feconn >= p.maxconn {
        "FULL"
    } else {
        "OPEN"
    };
    r.set("status", status);
    r.set("pid", 1);
    r.set("iid", p.uuid);
    r.set("sid", 0);
    r.set("type", 0);
    r.set("rate", ps.sess.read(c.cum_sess, ms));
    r.set("rate_lim", 0);
    r.set("rate_max", ps.sess.read_max(c.cum_sess, ms));
    if http {
        hrsp(&mut r, &c.rsp);
        r.set("intercepted", c.intercepted);
        r.set("cache_lookups", c.cache_lookups);
        r.set("cache_hits", c.cache_hits);
    }
    r.set("req_rate", if http { ps.req.read(c.cum_req, ms) } else { 0 });
    r.set("req_rate_max", if http { ps.req.read_max(c.cum_req, ms) } else { 0 });
    r.set("req_tot", if http { c.cum_req } else { 0 });
    comp_counters(&mut r, c);
    r.set("mode", p.mode);
    r.set("conn_rate", ps.conn.read(c.cum_conn, ms));
    r.set("conn_rate_max", ps.conn.read_max(c.cum_conn, ms));
    r.set("conn_tot", c.cum_conn);
    r.set("dcon", c.denied_conn);
    r.set("dses", c.denied_sess);
    r.set("eint", 0);
    r.set("wrew", c.failed_rewrites);
    r.set("-", "-");
    r.set_all(&SSL_H2, 0);
    r.set_all(&H2, 0);
    r.set("h1_open_connections", if http { p.feconn } else { 0 });
    r.set("h1_open_streams", 0);
    r.set("h1_total_connections", if http { c.cum_conn } else { 0 });
    r.set("h1_total_streams", if http { c.cum_req } else { 0 });
    r.set("h1_bytes_in", if http { c.bytes_in } else { 0 });
    r.set("h1_bytes_out", if http { c.bytes_out } else { 0 });
    r.set("h1_spliced_bytes_in", if http { c.h1_fe.spliced_bytes_in } else { 0 });
    r.set("h1_spliced_bytes_out", if http { c.h1_fe.spliced_bytes_out } else { 0 });
    r
}

/// The `status` column of a server (stats.c's `srv_hlt_st[]` states).
pub fn server_status(sv: &Server) -> String {
    if sv.flags.contains(SrvFlags::SRV_MAINTAIN) {
        return "MAINT".into();
    }
    let drain = sv.flags.contains(SrvFlags::SRV_DRAIN);
    match &sv.check {
        None if drain => "DRAIN".into(),
        None if sv.flags.contains(SrvFlags::SRV_RUNNING) => "no check".into(),
        None => "DOWN".into(),
        Some(c) if sv.flags.contains(SrvFlags::SRV_RUNNING) => {
            let going_down = c.health < c.rise + c.fall - 1;
            let base = if drain { "DRAIN" } else { "UP" };
            if going_down {
                format!("{base} {}/{}", c.health + 1 - c.rise.min(c.health + 1), c.fall)
            } else {
                base.into()
            }
        }
        Some(c) if c.health == 0 => "DOWN".into(),
        Some(c) => format!("DOWN {}/{}", c.health, c.rise),
    }
}

/// stats.c:stats_fill_sv_stats() (HAProxy 2.6).
fn stats_fill_sv_stats(w: &Haproxy, p: &Proxy, i: usize, sv: &Server, now_ms: u64) -> Row {
    let ms = now_ms % 1000;
    let now = now_ms / 1000;
    let ss = w.cli.stats.srv.get(p.id.idx()).and_then(|v| v.get(i)).cloned().unwrap_or_default();
    let c = &sv.counters;
    let http = p.mode == ProxyMode::PR_MODE_HTTP;
    let sid = ServerId { px: p.id, idx: i as u32 };
    // Idle connections: those in the server's lists, and those sessions keep for themselves.
    let private = w.sessions.iter().filter(|(_, s)| s.idle_conn.is_some_and(|k| k.srv == Some(sid))).count();
    let idle = sv.curr_idle_conns() + private;
    let mut r = Row::new();
    r.set("pxname", &p.name);
    r.set("svname", &sv.name);
    r.set("qcur", sv.pendconns.len());
    r.set("qmax", sv.nbpend_max);
    r.set("scur", sv.cur_sess);
    r.set("smax", sv.cur_sess_max);
    if sv.maxconn > 0 {
        r.set("slim", sv.maxconn);
    }
    r.set("stot", c.cum_sess);
    r.set("bin", c.bytes_in);
    r.set("bout", c.bytes_out);
    r.set("dresp", 0);
    r.set("econ", c.failed_conns);
    r.set("eresp", c.failed_resp);
    r.set("wretr", c.retries);
    r.set("wredis", c.redispatches);
    // A tracking server shows the state of the end of its chain (2.6's `ref`).
    let mut track = sv.track;
    let mut refsv = sv;
    while let Some(t) = track {
        refsv = w.server(t);
        track = refsv.track;
    }
    r.set("status", server_status(if sv.flags.contains(SrvFlags::SRV_MAINTAIN) { sv } else { refsv }));
    if let Some(t) = sv.track {
        r.set("tracked", format!("{}/{}", w.proxies[t.px.idx()].name, w.server(t).name));
    }
    r.set("weight", sv.uweight);
    r.set("act", u8::from(!sv.is_backup()));
    r.set("bck", u8::from(sv.is_backup()));
    if let Some(chk) = &sv.check {
        r.set("chkfail", chk.failed);
        r.set("chkdown", c.down_trans);
        r.set("downtime", 0);
        if !sv.flags.contains(SrvFlags::SRV_MAINTAIN) {
            r.set("check_status", chk.status.info());
            if let Some(code) = chk.code {
                r.set("check_code", code);
            }
            r.set("check_duration", chk.duration);
            r.set("check_desc", chk.status.desc());
            r.set("check_rise", chk.rise);
            r.set("check_fall", chk.fall);
            r.set("check_health", chk.health);
        }
    }
    r.set("lastchg", now.saturating_sub(sv.last_change));
    if sv.maxqueue > 0 {
        r.set("qlimit", sv.maxqueue);
    }
    r.set("pid", 1);
    r.set("iid", p.uuid);
    r.set("sid", sv.puid);
    r.set("lbtot", c.lbconn);
    r.set("type", 2);
    r.set("rate", ss.sess.read(c.cum_sess, ms));
    r.set("rate_max", ss.sess.read_max(c.cum_sess, ms));
    if http {
        hrsp(&mut r, &c.rsp);
        r.set("req_tot", c.rsp.iter().sum::<u64>());
    }
    r.set("cli_abrt", c.cli_aborts);
    r.set("srv_abrt", c.srv_aborts);
    r.set("lastsess", last_sess(ss.last_sess, ss.seen_sess, c.cum_sess, now));
    times(&mut r, &ss.times, http);
    r.set("addr", sv.addr);
    r.set("mode", p.mode);
    r.set("wrew", c.failed_rewrites);
    r.set("connect", c.connect);
    r.set("reuse", c.reuse);
    r.set("srv_icur", idle);
    if sv.max_idle_conns >= 0 {
        r.set("src_ilim", sv.max_idle_conns);
    }
    r.set("eint", 0);
    r.set("idle_conn_cur", sv.idle_conns.len() + private);
    r.set("safe_conn_cur", sv.safe_conns.len());
    r.set("used_conn_cur", sv.cur_sess);
    r.set("need_conn_est", sv.est_need_conns);
    r.set("uweight", sv.uweight);
    r.set("-", "-");
    r.set_all(&SSL_H2, 0);
    r
}

fn last_sess(at: Option<u64>, seen: u64, cum: u64, now: u64) -> i64 {
    if cum != seen && cum > 0 {
        return 0;
    }
    at.map_or(-1, |t| now.saturating_sub(t) as i64)
}

/// `fullconn` as HAProxy computes it when not set: a tenth of the `maxconn` of the
/// frontends that may use the backend.
fn be_fullconn(w: &Haproxy, be: &Proxy) -> u64 {
    let total: u64 = w
        .proxies
        .iter()
        .filter(|f| f.is_frontend())
        .filter(|f| {
            f.id == be.id || f.defbe == Some(be.id) || f.switching_rules.iter().any(|r| r.be == Some(be.id))
        })
        .map(|f| u64::from(fe_maxconn(w, f)))
        .sum();
    total.div_ceil(10)
}

/// stats.c:stats_fill_be_stats() (HAProxy 2.6).
fn stats_fill_be_stats(w: &Haproxy, p: &Proxy, now_ms: u64) -> Row {
    let ms = now_ms % 1000;
    let now = now_ms / 1000;
    let ps = w.cli.stats.px.get(p.id.idx()).cloned().unwrap_or_default();
    let c = &p.counters;
    let http = p.mode == ProxyMode::PR_MODE_HTTP;
    let sum = |f: fn(&Server) -> u64| p.servers.iter().map(f).sum::<u64>();
    let act_w: u64 =
        p.servers.iter().filter(|s| s.is_usable() && !s.is_backup()).map(|s| u64::from(s.uweight)).sum();
    let bck_w: u64 =
        p.servers.iter().filter(|s| s.is_usable() && s.is_backup()).map(|s| u64::from(s.uweight)).sum();
    let tot_w = if act_w > 0 { act_w } else { bck_w };
    let mut r = Row::new();
    r.set("pxname", &p.name);
    r.set("svname", "BACKEND");
    r.set("qcur", p.pendconns.len());
    r.set("qmax", p.nbpend_max);
    r.set("scur", p.beconn);
    r.set("smax", c.conn_max);
    r.set("slim", be_fullconn(w, p));
    r.set("stot", c.cum_sess);
    r.set("bin", c.bytes_in);
    r.set("bout", c.bytes_out);
    r.set("dreq", c.denied_req);
    r.set("dresp", c.denied_resp);
    r.set("econ", c.failed_conns);
    r.set("eresp", c.failed_resp);
    r.set("wretr", c.retries);
    r.set("wredis", c.redispatches);
    r.set("status", if tot_w > 0 || p.servers.is_empty() { "UP" } else { "DOWN" });
    r.set("weight", tot_w);
    r.set("act", p.srv_act());
    r.set("bck", p.srv_bck());
    r.set("chkdown", c.down_trans);
    r.set("lastchg", now.saturating_sub(p.last_change));
    r.set("downtime", 0);
    r.set("pid", 1);
    r.set("iid", p.uuid);
    r.set("sid", 0);
    r.set("lbtot", sum(|s| s.counters.lbconn));
    r.set("type", 1);
    r.set("rate", ps.sess.read(c.cum_sess, ms));
    r.set("rate_max", ps.sess.read_max(c.cum_sess, ms));
    if http {
        hrsp(&mut r, &c.rsp);
        r.set("req_tot", c.rsp.iter().sum::<u64>());
        r.set("cache_lookups", c.cache_lookups);
        r.set("cache_hits", c.cache_hits);
    }
    r.set("cli_abrt", c.cli_aborts);
    r.set("srv_abrt", c.srv_aborts);
    comp_counters(&mut r, c);
    r.set("lastsess", last_sess(ps.last_sess, ps.seen_sess, c.cum_sess, now));
    times(&mut r, &ps.times, http);
    r.set("mode", p.mode);
    r.set("algo", p.lbprm.algo);
    r.set("wrew", c.failed_rewrites);
    r.set("connect", sum(|s| s.counters.cum_sess));
    r.set("reuse", 0);
    r.set("eint", 0);
    r.set("uweight", p.servers.iter().filter(|s| !s.is_backup()).map(|s| u64::from(s.uweight)).sum::<u64>());
    r.set_all(&["agg_server_status", "agg_server_check_status", "agg_check_status"], 0);
    r.set("-", "-");
    r.set_all(&SSL_H2, 0);
    r.set_all(&H2, 0);
    r.set(
        "h1_open_connections",
        if http { p.servers.iter().map(|s| u64::from(s.cur_sess)).sum() } else { 0 },
    );
    r.set("h1_open_streams", 0);
    r.set("h1_total_connections", if http { sum(|s| s.counters.cum_sess) } else { 0 });
    r.set("h1_total_streams", if http { sum(|s| s.counters.cum_sess) } else { 0 });
    r.set("h1_bytes_in", if http { c.bytes_in } else { 0 });
    r.set("h1_bytes_out", if http { c.bytes_out } else { 0 });
    r.set("h1_spliced_bytes_in", if http { c.h1_be.spliced_bytes_in } else { 0 });
    r.set("h1_spliced_bytes_out", if http { c.h1_be.spliced_bytes_out } else { 0 });
    r
}

/// `appctx->ctx.stats.st`: where a `show stat` dump stands (1.5-dev8's `STAT_ST_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum StatSt {
    /// The CSV header is due.
    STAT_ST_HEAD,
    /// Listing the proxies (`ctx.px`, `ctx.px_st`).
    STAT_ST_LIST,
    /// Complete.
    STAT_ST_FIN,
}

/// `appctx->ctx.stats.px_st`: where the dump of one proxy stands (1.5-dev8's
/// `STAT_PX_ST_*`; haflow has no listener rows, so no `STAT_PX_ST_LI`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum PxSt {
    /// The FRONTEND row is due.
    STAT_PX_ST_FE,
    /// The row of the server at this index is due (`ctx.stats.sv`).
    STAT_PX_ST_SV(usize),
    /// The BACKEND row is due.
    STAT_PX_ST_BE,
    /// The proxy is done; the next one follows.
    STAT_PX_ST_END,
}

/// `appctx->ctx.stats` of `show stat`: the filter from the command line and where the
/// dump stands, so that it resumes there once the client's output buffer has room.
#[derive(Clone, Debug)]
pub struct StatCtx {
    /// Only this proxy (`iid`), if given.
    iid: Option<u32>,
    /// Row types: a mask of 1 (frontends), 2 (backends), 4 (servers); -1 for all.
    types: i64,
    /// Only this server id (0: the proxy's own rows), if given.
    sid: Option<u32>,
    /// `up`: only running servers.
    up_only: bool,
    /// `no-maint`: no server in maintenance.
    no_maint: bool,
    /// `typed`: one line a field (`STAT_FMT_TYPED`) instead of CSV.
    typed: bool,
    /// Dump state.
    st: StatSt,
    /// Index of the proxy being dumped.
    px: usize,
    /// Where that proxy's dump stands.
    px_st: PxSt,
    /// `scope=` of the page's URL: only proxies whose name holds it (any case).
    url_scope: Option<String>,
    /// `stats scope` of the page's proxy (`.` already replaced by its name): only these.
    cfg_scope: Vec<String>,
    /// The page is HTML (`STAT_FMT_HTML`): its settings; `None` for CSV.
    html: Option<Box<HtmlOpts>>,
}

/// What the HTML page shows beyond the rows (`uri_auth` flags and the request's).
#[derive(Clone, Debug)]
pub struct HtmlOpts {
    /// `stats uri`, for the links and the form.
    pub uri_prefix: String,
    /// `STAT_ADMIN`: the request may change servers: rows get a checkbox and the table a form.
    pub admin: bool,
    /// `stats hide-version`.
    pub hide_version: bool,
    /// `stats refresh` seconds, unless `;norefresh`.
    pub refresh: u64,
    /// `;st=XXXX`: the outcome of the last POST, shown at the top.
    pub st_code: Option<String>,
    /// The URL's scope, kept in the links.
    pub scope: Option<String>,
}

/// stats.c:cli_parse_show_stat() (HAProxy 2.6): `show stat [{<iid>|<proxy>} <type> <sid>]
/// [up|no-maint]`. `type` is a mask: 1 frontends, 2 backends, 4 servers. Errors are the
/// complete answer.
pub fn cli_parse_show_stat(w: &Haproxy, args: &[&str]) -> Result<StatCtx, String> {
    let mut iid: Option<u32> = None;
    let (mut types, mut sid): (i64, Option<u32>) = (-1, None);
    let mut rest = args;
    if args.len() >= 3 && !matches!(args[0], "typed" | "json" | "desc" | "up" | "no-maint") {
        match args[0].parse::<i64>() {
            // Out of range: a proxy id that matches nothing.
            Ok(n) if n >= 0 => iid = Some(u32::try_from(n).unwrap_or(u32::MAX)),
            Ok(_) => {}
            Err(_) => match w.proxies.iter().find(|p| p.name == args[0]) {
                Some(p) => iid = Some(p.uuid),
                None => return Err("No such proxy.\n".into()),
            },
        }
        types = args[1].parse().unwrap_or(-1);
        sid = args[2].parse::<i64>().ok().filter(|n| *n >= 0).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        rest = &args[3..];
    }
    if rest.iter().any(|a| matches!(*a, "json" | "desc")) {
        return Err(
            "haflow prints 'show stat' as CSV or typed only ('json' and 'desc' are not implemented).\n"
                .into(),
        );
    }
    Ok(StatCtx {
        iid,
        types,
        sid,
        up_only: rest.contains(&"up"),
        no_maint: rest.contains(&"no-maint"),
        typed: rest.contains(&"typed"),
        st: StatSt::STAT_ST_HEAD,
        px: 0,
        px_st: PxSt::STAT_PX_ST_FE,
        url_scope: None,
        cfg_scope: Vec::new(),
        html: None,
    })
}

/// The dump of the statistics page for one request: CSV (`;csv`) or HTML, with the URL's
/// `;up`, `;no-maint` and `scope=` filters and the proxy's `stats scope`.
pub fn http_stat_ctx(
    up_only: bool,
    no_maint: bool,
    url_scope: Option<String>,
    cfg_scope: Vec<String>,
    html: Option<HtmlOpts>,
) -> StatCtx {
    StatCtx {
        iid: None,
        types: -1,
        sid: None,
        up_only,
        no_maint,
        typed: false,
        st: StatSt::STAT_ST_HEAD,
        px: 0,
        px_st: PxSt::STAT_PX_ST_FE,
        url_scope,
        cfg_scope,
        html: html.map(Box::new),
    }
}

/// stats.c:stats_dump_proxy_to_buffer()'s `STAT_PX_ST_INIT` in 2.6: whether the page's
/// scopes let proxy `p` be shown (the exact names of `stats scope`, then a
/// case-insensitive substring of the URL's `scope=`).
fn stats_scope_allows(ctx: &StatCtx, p: &Proxy) -> bool {
    (ctx.cfg_scope.is_empty() || ctx.cfg_scope.contains(&p.name))
        && ctx
            .url_scope
            .as_deref()
            .is_none_or(|sc| p.name.to_ascii_lowercase().contains(&sc.to_ascii_lowercase()))
}

/// stats.c:stats_dump_stat_to_buffer() (1.5-dev8: dumpstats.c:stats_dump_raw_to_buffer()):
/// the header, then each proxy's rows, appended to `out` while it holds less than `room`
/// bytes. Returns true once the dump is complete; otherwise `ctx` says where to resume.
pub fn stats_dump_stat_to_buffer(w: &Haproxy, ctx: &mut StatCtx, out: &mut String, room: usize) -> bool {
    if ctx.st == StatSt::STAT_ST_HEAD {
        match &ctx.html {
            Some(h) => stats_dump_html_head(w, h, out),
            // The typed format has no header.
            None if ctx.typed => {}
            None => {
                out.push_str(STAT_HEADER);
                out.push('\n');
            }
        }
        ctx.st = StatSt::STAT_ST_LIST;
    }
    while ctx.st == StatSt::STAT_ST_LIST {
        let Some(p) = w.proxies.get(ctx.px) else {
            ctx.st = StatSt::STAT_ST_FIN;
            if ctx.html.is_some() {
                out.push_str("</body></html>\n");
            }
            break;
        };
        let shown = ctx.iid.is_none_or(|i| i == p.uuid) && stats_scope_allows(ctx, p);
        if shown && !stats_dump_proxy_to_buffer(w, ctx, p, out, room) {
            return false;
        }
        ctx.px += 1;
        ctx.px_st = PxSt::STAT_PX_ST_FE;
    }
    true
}

/// stats.c:stats_dump_html_head() and stats_dump_html_info() in 2.6: the page's head and
/// the process information above the tables (a compact page: no style sheet, no legend).
fn stats_dump_html_head(w: &Haproxy, h: &HtmlOpts, out: &mut String) {
    let version =
        if h.hide_version { String::new() } else { format!(" version {}", env!("CARGO_PKG_VERSION")) };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><title>Statistics Report for haflow on {host}</title>\n\
         <meta http-equiv=\"content-type\" content=\"text/html; charset=iso-8859-1\">\n</head>\n\
         <body><h1>haflow{version}</h1>\n<h2>Statistics Report for pid {pid}</h2>\n\
         <p>uptime = {up}s; current conns = {conns}; {refresh}\
         <a href=\"{uri};csv{scope}\">CSV export</a></p>\n",
        host = html_escape(&hostname()),
        pid = std::process::id(),
        up = w.clock.now_ms.0 / 1000,
        conns = w.actconn,
        refresh = if h.refresh > 0 { format!("refresh every {}s; ", h.refresh) } else { String::new() },
        uri = html_escape(&h.uri_prefix),
        scope = h.scope.as_deref().map_or(String::new(), |s| format!("?scope={}", html_escape(s))),
    );
    if let Some(st) = &h.st_code {
        let _ = writeln!(out, "<p class=\"status\">{}</p>", stat_status_text(st));
    }
}

/// stats.c's `stat_status_codes[]` and the messages stats_dump_html_info() shows for them.
fn stat_status_text(code: &str) -> &'static str {
    match code {
        "DONE" => "Action processed successfully.",
        "NONE" => "Nothing has changed.",
        "PART" => "Action not processed for some servers.",
        "ERRP" => "Action not processed because of invalid parameters.",
        "EXCD" => "Action not processed : the buffer couldn't store all the data.",
        "DENY" => "Action denied.",
        "IVAL" => "Invalid requests (unsupported method or chunked encoded request).",
        "AUTH" => "Action not allowed in the current authentication level.",
        _ => "Unexpected result.",
    }
}

/// `<` `>` `&` `"` escaped for HTML text and attributes.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The columns of the HTML tables (a subset of the CSV fields, with their titles).
const HTML_COLS: &[(&str, &str)] = &[
    ("qcur", "Queue Cur"),
    ("qmax", "Queue Max"),
    ("scur", "Sessions Cur"),
    ("smax", "Sessions Max"),
    ("slim", "Sessions Limit"),
    ("stot", "Sessions Total"),
    ("lbtot", "LbTot"),
    ("bin", "Bytes In"),
    ("bout", "Bytes Out"),
    ("dreq", "Denied Req"),
    ("dresp", "Denied Resp"),
    ("ereq", "Errors Req"),
    ("econ", "Errors Conn"),
    ("eresp", "Errors Resp"),
    ("wretr", "Warnings Retr"),
    ("wredis", "Warnings Redis"),
    ("status", "Status"),
    ("check_status", "LastChk"),
    ("weight", "Wght"),
    ("act", "Act"),
    ("bck", "Bck"),
    ("chkfail", "Chk"),
    ("chkdown", "Dwn"),
];

/// stats.c:stats_dump_html_px_hdr() in 2.6: a proxy's table and its column titles; with
/// admin rights over a backend, the table sits in the form that changes its servers.
fn stats_dump_html_px_hdr(p: &Proxy, h: &HtmlOpts, out: &mut String) {
    let name = html_escape(&p.name);
    if h.admin && p.is_backend() {
        let _ = writeln!(
            out,
            "<form method=\"post\" action=\"{}{}\">",
            html_escape(&h.uri_prefix),
            h.scope.as_deref().map_or(String::new(), |s| format!("?scope={}", html_escape(s)))
        );
    }
    let _ = write!(
        out,
        "<table border=1 id=\"{name}\"><tr><th colspan={}>{name}</th></tr>\n<tr>",
        HTML_COLS.len() + 2
    );
    if h.admin && p.is_backend() {
        out.push_str("<th></th>");
    }
    out.push_str("<th></th>");
    for (_, title) in HTML_COLS {
        let _ = write!(out, "<th>{title}</th>");
    }
    out.push_str("</tr>\n");
}

/// stats.c:stats_dump_fields_html() in 2.6: one row; a server's has a checkbox named `s`
/// when the page may change it.
fn stats_dump_fields_html(row: &Row, h: &HtmlOpts, is_backend: bool, out: &mut String) {
    out.push_str("<tr>");
    let sv = row.get("svname");
    if h.admin && is_backend {
        if row.get("type") == "2" {
            let _ =
                write!(out, "<td><input type=\"checkbox\" name=\"s\" value=\"{}\"></td>", html_escape(sv));
        } else {
            out.push_str("<td></td>");
        }
    }
    let _ = write!(out, "<td>{}</td>", html_escape(sv));
    for (f, _) in HTML_COLS {
        let _ = write!(out, "<td>{}</td>", html_escape(row.get(f)));
    }
    out.push_str("</tr>\n");
}

/// stats.c:stats_dump_html_px_end() in 2.6: the table's end; the admin form's action
/// list and the backend's id (`b=#<uuid>`).
fn stats_dump_html_px_end(p: &Proxy, h: &HtmlOpts, out: &mut String) {
    out.push_str("</table>\n");
    if h.admin && p.is_backend() {
        let _ = writeln!(
            out,
            "Choose the action to perform on the checked servers : <select name=action>\
             <option value=\"\"></option><option value=\"ready\">Set state to READY</option>\
             <option value=\"drain\">Set state to DRAIN</option><option value=\"maint\">Set state to MAINT</option>\
             <option value=\"dhlth\">Health: disable checks</option><option value=\"ehlth\">Health: enable checks</option>\
             <option value=\"dagent\">Agent: disable checks</option><option value=\"eagent\">Agent: enable checks</option>\
             <option value=\"shutdown\">Kill Sessions</option></select>\
             <input type=\"hidden\" name=\"b\" value=\"#{}\"><input type=\"submit\" value=\"Apply\"></form>",
            p.uuid
        );
    }
    out.push_str("<p>\n");
}

/// stats.c:stats_dump_proxy_to_buffer() (1.5-dev8: dumpstats.c:stats_dump_proxy()): the
/// FRONTEND row, the servers' rows, the BACKEND row of one proxy, each one only while `out`
/// holds less than `room` bytes. Returns true once the proxy is done.
fn stats_dump_proxy_to_buffer(
    w: &Haproxy,
    ctx: &mut StatCtx,
    p: &Proxy,
    out: &mut String,
    room: usize,
) -> bool {
    let now_ms = w.clock.now_ms.0;
    // stats.c:stats_dump_one_line() in 2.6: a row in the page's format.
    fn emit(ctx: &StatCtx, p: &Proxy, row: Row, out: &mut String) {
        match &ctx.html {
            Some(h) => stats_dump_fields_html(&row, h, p.is_backend(), out),
            None if ctx.typed => row.typed(out),
            None => row.csv(out),
        }
    }
    let want = |bit: i64| ctx.types < 0 || ctx.types & bit != 0;
    let own_rows = ctx.sid.is_none_or(|s| s == 0);
    loop {
        if ctx.px_st == PxSt::STAT_PX_ST_END {
            return true;
        }
        if out.len() >= room {
            return false;
        }
        match ctx.px_st {
            PxSt::STAT_PX_ST_FE => {
                if let Some(h) = &ctx.html {
                    stats_dump_html_px_hdr(p, h, out);
                }
                if p.is_frontend() && want(1) && own_rows {
                    emit(ctx, p, stats_fill_fe_stats(w, p, now_ms), out);
                }
                ctx.px_st = PxSt::STAT_PX_ST_SV(0);
            }
            PxSt::STAT_PX_ST_SV(i) => {
                if i < p.servers.slots() && p.servers.get(i).is_none() {
                    // A deleted server's empty slot.
                    ctx.px_st = PxSt::STAT_PX_ST_SV(i + 1);
                    continue;
                }
                let Some(sv) = p.servers.get(i).filter(|_| p.is_backend() && want(4)) else {
                    ctx.px_st = PxSt::STAT_PX_ST_BE;
                    continue;
                };
                let shown = ctx.sid.is_none_or(|s| s == sv.puid)
                    && (!ctx.no_maint || !sv.flags.contains(SrvFlags::SRV_MAINTAIN))
                    && (!ctx.up_only || sv.flags.contains(SrvFlags::SRV_RUNNING));
                if shown {
                    emit(ctx, p, stats_fill_sv_stats(w, p, i, sv, now_ms), out);
                }
                ctx.px_st = PxSt::STAT_PX_ST_SV(i + 1);
            }
            PxSt::STAT_PX_ST_BE => {
                if p.is_backend() && want(2) && own_rows {
                    emit(ctx, p, stats_fill_be_stats(w, p, now_ms), out);
                }
                if let Some(h) = &ctx.html {
                    stats_dump_html_px_end(p, h, out);
                }
                ctx.px_st = PxSt::STAT_PX_ST_END;
            }
            PxSt::STAT_PX_ST_END => {}
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    // Tools such as hatop expect a word here.
    if name.is_empty() { "localhost".into() } else { name }
}

/// stats.c:stats_dump_info_to_buffer() (1.5-dev8: dumpstats.c): `show info`, with HAProxy
/// 2.6's keys in HAProxy 2.6's order.
pub fn stats_dump_info_to_buffer(w: &Haproxy) -> String {
    let up = w.clock.now_ms.0 / 1000;
    let ms = w.clock.now_ms.0 % 1000;
    let pools = w.pool_stats();
    let alloc: u64 = pools.iter().map(|p| p.allocated * p.size as u64).sum();
    let used: u64 = pools.iter().map(|p| p.used * p.size as u64).sum();
    let failed: u64 = pools.iter().map(|p| p.failed).sum();
    let st = &w.cli.stats;
    let conn_rate = st.conn.read(w.totalconn, ms);
    let conn_max = st.conn.read_max(w.totalconn, ms);
    let bytes = total_bytes_out(w);
    let cum_req: u64 = w.proxies.iter().filter(|p| p.is_frontend()).map(|p| p.counters.cum_req).sum();
    let start = st.start_date.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let listeners = w.listeners.iter().filter(|l| l.fd.is_some()).count()
        + w.cli.listeners.iter().filter(|l| l.fd.is_some()).count();
    let ulimit = crate::haproxy::haproxy::fd_limits().map_or(0, |(cur, _)| cur);
    let v = env!("CARGO_PKG_VERSION");
    let rows: Vec<(&str, String)> = vec![
        ("Name", "haflow".into()),
        ("Version", v.into()),
        ("Release_date", "-".into()),
        ("Nbthread", "1".into()),
        ("Nbproc", "1".into()),
        ("Process_num", "1".into()),
        ("Pid", w.logger.pid.to_string()),
        ("Uptime", format!("{}d {}h{:02}m{:02}s", up / 86400, up % 86400 / 3600, up % 3600 / 60, up % 60)),
        ("Uptime_sec", up.to_string()),
        ("Memmax_MB", "0".into()),
        ("PoolAlloc_MB", (alloc >> 20).to_string()),
        ("PoolUsed_MB", (used >> 20).to_string()),
        ("PoolFailed", failed.to_string()),
        ("Ulimit-n", ulimit.to_string()),
        ("Maxsock", w.global.maxsock.to_string()),
        ("Maxconn", w.global.maxconn.to_string()),
        ("Hard_maxconn", w.global.maxconn.to_string()),
        ("CurrConns", w.actconn.to_string()),
        ("CumConns", w.totalconn.to_string()),
        ("CumReq", cum_req.to_string()),
        ("MaxSslConns", "0".into()),
        ("CurrSslConns", "0".into()),
        ("CumSslConns", "0".into()),
        ("Maxpipes", w.pipes.maxpipes.to_string()),
        ("PipesUsed", w.pipes.pipes_used.to_string()),
        ("PipesFree", w.pipes.pipes_free.to_string()),
        ("ConnRate", conn_rate.to_string()),
        ("ConnRateLimit", "0".into()),
        ("MaxConnRate", conn_max.to_string()),
        ("SessRate", conn_rate.to_string()),
        ("SessRateLimit", "0".into()),
        ("MaxSessRate", conn_max.to_string()),
        ("SslRate", "0".into()),
        ("SslRateLimit", "0".into()),
        ("MaxSslRate", "0".into()),
        ("SslFrontendKeyRate", "0".into()),
        ("SslFrontendMaxKeyRate", "0".into()),
        ("SslFrontendSessionReuse_pct", "0".into()),
        ("SslBackendKeyRate", "0".into()),
        ("SslBackendMaxKeyRate", "0".into()),
        ("SslCacheLookups", "0".into()),
        ("SslCacheMisses", "0".into()),
        ("CompressBpsIn", "0".into()),
        ("CompressBpsOut", "0".into()),
        ("CompressBpsRateLim", "0".into()),
        ("Tasks", w.sched.nb_tasks().to_string()),
        ("Run_queue", w.sched.run_queue().to_string()),
        ("Idle_pct", "100".into()),
        ("node", hostname()),
        ("Stopping", u8::from(w.stopping).to_string()),
        ("Jobs", w.jobs.to_string()),
        ("Unstoppable Jobs", w.cli.conns.len().to_string()),
        ("Listeners", listeners.to_string()),
        ("ActivePeers", "0".into()),
        ("ConnectedPeers", "0".into()),
        ("DroppedLogs", w.logger.dropped.to_string()),
        ("BusyPolling", "0".into()),
        ("FailedResolutions", "0".into()),
        ("TotalBytesOut", bytes.to_string()),
        ("TotalSplicdedBytesOut", spliced_bytes_out(w).to_string()),
        ("BytesOutRate", st.bytes_out.read(bytes, ms).to_string()),
        ("DebugCommandsIssued", "0".into()),
        ("CumRecvLogs", "0".into()),
        ("Build info", v.into()),
        ("Memmax_bytes", "0".into()),
        ("PoolAlloc_bytes", alloc.to_string()),
        ("PoolUsed_bytes", used.to_string()),
        ("Start_time_sec", start.to_string()),
        ("Tainted", "0".into()),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k}: {v}");
    }
    out
}

/// The statistics page being sent to one client: 2.6's stats applet context
/// (`show_stat_ctx` of an appctx standing for the server), kept by the session while the
/// page does not fit in its response buffer at once.
#[derive(Debug)]
pub struct HttpStatsCtx {
    /// Where the dump stands.
    pub dump: StatCtx,
    /// `STAT_CHUNKED`: the body is sent in chunks (HTTP/1.1), else until the close.
    pub chunked: bool,
    /// Close the connection once the page is sent (HTTP/1.0, `Connection: close`).
    pub close_after: bool,
    /// Produced by the last step of the dump.
    pending: Vec<u8>,
    /// How much of `pending` is in the buffer already.
    sent: usize,
    /// The dump is complete (the last chunk is in `pending` or sent).
    done: bool,
}

impl HttpStatsCtx {
    /// A page to send from `dump`.
    pub fn new(dump: StatCtx, chunked: bool, close_after: bool) -> HttpStatsCtx {
        HttpStatsCtx { dump, chunked, close_after, pending: Vec::new(), sent: 0, done: false }
    }
}

/// The most one turn of the dump produces (a few rows more may follow the last one).
const HTTP_STATS_STEP: usize = 8192;

/// stats.c:http_stats_io_handler() in 2.6 (1.5.0's `http_stats_io_handler`, the stats
/// applet called by `si_applet_call`): puts what the response buffer can take of the page
/// being sent, producing it a step at a time. Returns true once the page is complete.
pub fn http_stats_io_handler(w: &mut Haproxy, s: &mut Session) -> bool {
    let _sp = tracing::debug_span!(names::HTTP_STATS_IO_HANDLER, sess = s.uniq_id).entered();
    let Some(mut ctx) = s.stats_ctx.take() else { return true };
    loop {
        if ctx.sent < ctx.pending.len() {
            let room = s.rep.size.saturating_sub(s.rep.o() + s.rep.i());
            let end = ctx.pending.len().min(ctx.sent + room);
            if end == ctx.sent || !s.rep.bo_inject(&mut w.pool2_buffer, &ctx.pending[ctx.sent..end]) {
                // Wait for the client to read: the drained buffer wakes the session.
                s.stats_ctx = Some(ctx);
                return false;
            }
            ctx.sent = end;
            if ctx.sent < ctx.pending.len() {
                continue;
            }
        }
        ctx.pending.clear();
        ctx.sent = 0;
        if ctx.done {
            if ctx.close_after {
                s.rep.buffer_auto_close();
                s.rep.buffer_shutw_now();
            }
            return true;
        }
        let mut out = String::new();
        ctx.done = stats_dump_stat_to_buffer(w, &mut ctx.dump, &mut out, HTTP_STATS_STEP);
        if ctx.chunked {
            if !out.is_empty() {
                ctx.pending.extend_from_slice(format!("{:x}\r\n", out.len()).as_bytes());
                ctx.pending.extend_from_slice(out.as_bytes());
                ctx.pending.extend_from_slice(b"\r\n");
            }
            if ctx.done {
                ctx.pending.extend_from_slice(b"0\r\n\r\n");
            }
        } else {
            ctx.pending.extend_from_slice(out.as_bytes());
        }
    }
}

/// What a POST to the page asks for (`ST_ADM_ACTION_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
enum StAdmAction {
    ST_ADM_ACTION_READY,
    ST_ADM_ACTION_DRAIN,
    ST_ADM_ACTION_MAINT,
    ST_ADM_ACTION_SHUTDOWN,
    ST_ADM_ACTION_DHLTH,
    ST_ADM_ACTION_EHLTH,
    ST_ADM_ACTION_DAGENT,
    ST_ADM_ACTION_EAGENT,
    ST_ADM_ACTION_DISABLE,
    ST_ADM_ACTION_ENABLE,
    ST_ADM_ACTION_STOP,
    ST_ADM_ACTION_START,
}

impl StAdmAction {
    fn parse(v: &str) -> Option<StAdmAction> {
        use StAdmAction::*;
        Some(match v {
            "ready" => ST_ADM_ACTION_READY,
            "drain" => ST_ADM_ACTION_DRAIN,
            "maint" => ST_ADM_ACTION_MAINT,
            "shutdown" => ST_ADM_ACTION_SHUTDOWN,
            "dhlth" => ST_ADM_ACTION_DHLTH,
            "ehlth" => ST_ADM_ACTION_EHLTH,
            "dagent" => ST_ADM_ACTION_DAGENT,
            "eagent" => ST_ADM_ACTION_EAGENT,
            "disable" => ST_ADM_ACTION_DISABLE,
            "enable" => ST_ADM_ACTION_ENABLE,
            "stop" => ST_ADM_ACTION_STOP,
            "start" => ST_ADM_ACTION_START,
            _ => return None,
        })
    }
}

/// `%XX` and `+` decoded (url_decode() with `in_form`); `None` on a bad escape.
fn url_decode_form(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// stats.c:stats_process_http_post() in 2.6 (1.5.0's proto_http.c:
/// http_process_req_stat_post()): applies the form of the page (`b=<backend>`,
/// `action=<action>`, `s=<server>` for each checked server) and returns the outcome's code
/// for the redirection (`DONE`, `PART`, `NONE`, `ERRP`). The last `b` and `action` win, as
/// 2.6 reads the parameters backwards.
/// Divergence: `hrunn`, `hnolb`, `hdown`, `arunn` and `adown` (forcing a check's result)
/// are refused as invalid parameters: haflow's checks have no such override.
pub fn stats_process_http_post(w: &mut Haproxy, body: &[u8]) -> &'static str {
    use StAdmAction::*;
    let Ok(body) = std::str::from_utf8(body) else { return "ERRP" };
    let mut px = None;
    let mut action = None;
    let mut servers = Vec::new();
    for param in body.split('&').rev() {
        let (k, v) = param.split_once('=').unwrap_or((param, ""));
        let (Some(k), Some(v)) = (url_decode_form(k), url_decode_form(v)) else { break };
        match k.as_str() {
            "b" if px.is_none() => match crate::haproxy::proxy::proxy_be_by_name(w, &v) {
                Some(p) => px = Some(p),
                None => return "ERRP",
            },
            "action" if action.is_none() => match StAdmAction::parse(&v) {
                Some(a) => action = Some(a),
                None => return "ERRP",
            },
            "s" => servers.push(v),
            _ => {}
        }
    }
    let (Some(px), Some(action)) = (px, action) else {
        return if servers.is_empty() { "NONE" } else { "ERRP" };
    };
    let (mut total, mut altered) = (0, 0);
    for name in servers.iter().rev() {
        total += 1;
        let Some(idx) = w.proxies[px.idx()].find_server(name) else { continue };
        let sid = ServerId { px, idx: idx as u32 };
        let sv = w.server(sid);
        let maint = sv.flags.contains(SrvFlags::SRV_MAINTAIN);
        let drain = sv.flags.contains(SrvFlags::SRV_DRAIN);
        let changed = match action {
            ST_ADM_ACTION_READY => {
                crate::haproxy::server::srv_adm_set_ready(w, sid);
                true
            }
            ST_ADM_ACTION_DRAIN => {
                crate::haproxy::server::srv_adm_set_drain(w, sid);
                true
            }
            ST_ADM_ACTION_MAINT => {
                crate::haproxy::server::srv_adm_set_maint(w, sid);
                true
            }
            ST_ADM_ACTION_DISABLE if !maint => {
                crate::haproxy::server::srv_adm_set_maint(w, sid);
                true
            }
            ST_ADM_ACTION_ENABLE if maint => {
                crate::haproxy::server::srv_adm_set_ready(w, sid);
                true
            }
            ST_ADM_ACTION_STOP if !drain => {
                crate::haproxy::server::srv_adm_set_drain(w, sid);
                true
            }
            ST_ADM_ACTION_START if drain => {
                crate::haproxy::server::srv_adm_set_ready(w, sid);
                true
            }
            ST_ADM_ACTION_DHLTH | ST_ADM_ACTION_EHLTH | ST_ADM_ACTION_DAGENT | ST_ADM_ACTION_EAGENT => {
                let sv = w.server_mut(sid);
                let agent = matches!(action, ST_ADM_ACTION_DAGENT | ST_ADM_ACTION_EAGENT);
                let enable = matches!(action, ST_ADM_ACTION_EHLTH | ST_ADM_ACTION_EAGENT);
                match if agent { sv.agent.as_mut() } else { sv.check.as_mut() } {
                    Some(c) => {
                        c.state.set(crate::haproxy::checks::ChkSt::CHK_ST_ENABLED, enable);
                        true
                    }
                    None => false,
                }
            }
            ST_ADM_ACTION_SHUTDOWN => {
                let slots: Vec<crate::ids::Index> =
                    w.sessions.iter().filter(|(_, s)| s.srv == Some(sid)).map(|(i, _)| i).collect();
                for slot in slots {
                    crate::haproxy::dumpstats::session_shutdown(
                        w,
                        slot,
                        crate::haproxy::session::SnErr::SN_ERR_KILLED,
                    );
                }
                true
            }
            _ => false,
        };
        if changed {
            altered += 1;
        }
    }
    if total == 0 {
        "NONE"
    } else if altered == 0 {
        "ERRP"
    } else if altered == total {
        "DONE"
    } else {
        "PART"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_haproxy_26_columns() {
        assert_eq!(field_names().len(), 128);
        assert_eq!(field_names()[0], "pxname");
        assert_eq!(field_names()[127], "h1_spliced_bytes_out");
        let fixture = include_str!("../../tests/fixtures/haproxy-2.6/show-stat-header.csv");
        assert_eq!(fixture.lines().next(), Some(STAT_HEADER));
    }

    #[test]
    fn rates_blend_the_previous_second() {
        let mut r = Rate::default();
        r.roll(10, 1);
        assert_eq!(r.prev, 10);
        assert_eq!(r.read(10, 0), 10, "at the start of a second the previous one counts fully");
        assert_eq!(r.read(14, 500), 4 + 5);
        r.roll(14, 3);
        assert_eq!(r.read(14, 0), 0, "an idle gap forgets the past");
        assert_eq!(r.max, 10);
    }

    #[test]
    fn swrate_is_the_mean_of_few_samples() {
        let mut s = Swrate::default();
        s.add(10);
        s.add(20);
        assert_eq!(s.avg(), 15);
        assert_eq!(s.max, 20);
    }
}
