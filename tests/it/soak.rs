//! The short soak: the real binary under 25 s of mixed, partly hostile traffic, then the
//! proof that it is idle again. Single scenarios do not see what a proxy must keep true
//! for hours; this runs them all at once and samples the process as `benches/soak.sh`
//! does for minutes, beside HAProxy. It asserts the verdict: nothing grows after warm-up,
//! and at the end no session, no fd but the process's own, none in CLOSE-WAIT, an idle CPU.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use haflow::scenario::client::{Request, get};

use crate::util::*;

const RUN: Duration = Duration::from_secs(25);
const WARM_UP: Duration = Duration::from_secs(8);

/// One `/proc` sample of a process.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub rss_kb: u64,
    pub fds: usize,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

pub fn sample(pid: u32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    Sample { rss_kb, fds, cpu_ticks: f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0) }
}

/// The process's TCP sockets in CLOSE-WAIT (state 08 in /proc/net/tcp), by inode.
pub fn close_wait_sockets(pid: u32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    l.to_string_lossy().strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(3) == Some(&"08") && f.get(9).is_some_and(|i| inodes.iter().any(|x| x == i))
        })
        .count()
}

/// One command on a stats socket, its answer.
pub fn cli(sock: &std::path::Path, cmd: &str) -> String {
    let Ok(mut s) = UnixStream::connect(sock) else { return String::new() };
    let _ = s.set_read_timeout(Some(SOON));
    let _ = s.write_all(format!("{cmd}\n").as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Median of a slice of numbers.
fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Repeats `f` with pauses until `stop`; counts the rounds.
fn spawn_loop(
    stop: &Arc<AtomicBool>,
    rounds: &Arc<AtomicU64>,
    pause: Duration,
    mut f: impl FnMut(u64) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let (stop, rounds) = (Arc::clone(stop), Arc::clone(rounds));
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            f(n);
            n += 1;
            rounds.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(pause);
        }
    })
}

#[test]
fn a_short_soak_of_mixed_hostile_traffic_leaves_nothing_behind() {
    let ok = |name: &str| {
        backend(BackendSpec::Http(HttpBehaviour {
            body_size: 512,
            health_path: Some("/health".into()),
            ..HttpBehaviour::named(name)
        }))
    };
    let (s1, s2) = (ok("s1"), ok("s2"));
    let big = backend(BackendSpec::Http(HttpBehaviour { body_size: 1 << 20, ..HttpBehaviour::named("big") }));
    let chunked = backend(BackendSpec::Http(HttpBehaviour {
        body_size: 20_000,
        chunked: true,
        ..HttpBehaviour::named("chunked")
    }));
    let notfound = backend(BackendSpec::Http(HttpBehaviour { status: 404, ..HttpBehaviour::named("nf") }));
    let stall = backend(BackendSpec::Http(HttpBehaviour {
        body_size: 4096,
        delay_mid_body: Some(Duration::from_millis(700)),
        ..HttpBehaviour::named("stall")
    }));
    let rst = ScriptedServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial", Then::Reset);
    let badchunk =
        ScriptedServer::start(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Then::Stay);
    let idleclose = ScriptedServer::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        Then::CloseIdleAfter(Duration::from_millis(300)),
    );
    let dir = tmpdir("soak");
    let sock = dir.join("stats.sock");
    let port = free_port();
    let cfg = format!(
        "global\n    maxconn 500\n    stats socket {sock} level admin\n\
         defaults\n    mode http\n    option http-keep-alive\n    timeout connect 1s\n    timeout client 3s\n    timeout server 3s\n    timeout http-request 1s\n    timeout http-keep-alive 1s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   http-request return status 200 content-type text/plain string pong if {{ path /ping }}\n\
         \x20   http-request deny if {{ path_beg /deny }}\n\
         \x20   use_backend big if {{ path /big }}\n    use_backend chunked if {{ path /chunked }}\n\
         \x20   use_backend nf if {{ path /404 }}\n    use_backend stall if {{ path /stall }}\n\
         \x20   use_backend rst if {{ path /rst }}\n    use_backend badchunk if {{ path /badchunk }}\n\
         \x20   use_backend idleclose if {{ path /idle }}\n    default_backend app\n\
         backend app\n    option httpchk GET /health\n    server s1 {s1} check inter 300ms fall 2 rise 2\n    server s2 {s2} check inter 300ms fall 2 rise 2\n\
         backend big\n    server b {big}\nbackend chunked\n    server c {chunked}\nbackend nf\n    server n {nf}\n\
         backend stall\n    server st {stall}\nbackend rst\n    server r {rst}\nbackend badchunk\n    server bc {badchunk}\n\
         backend idleclose\n    server i {idle}\n",
        sock = sock.display(),
        s1 = s1.addr(),
        s2 = s2.addr(),
        big = big.addr(),
        chunked = chunked.addr(),
        nf = notfound.addr(),
        stall = stall.addr(),
        rst = rst.addr(),
        badchunk = badchunk.addr(),
        idle = idleclose.addr(),
    );
    let haflow = HaflowProcess::start("soak", &cfg);
    let pid = haflow.pid();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(eventually(SOON, || get(addr, "/ping").is_ok_and(|r| r.status == 200)), "haflow serves");
    assert!(eventually(SOON, || cli(&sock, "show stat").contains("app,s2,")), "the stats socket answers");
    let idle_fds = sample(pid).fds;

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    // Keep-alive clients: several requests per connection, across every kind of answer.
    for k in 0..2 {
        threads.push(spawn_loop(&stop, &rounds, Duration::from_millis(20), move |n| {
            let paths = ["/", "/ping", "/deny", "/404", "/chunked", "/idle", "/", "/badchunk"];
            let Ok(mut c) = Conn::connect(addr, SOON) else { return };
            for i in 0..4 {
                let p = paths[(n as usize * 4 + i + k) % paths.len()];
                match c.request(&Request::get(p)) {
                    Ok(r) if !r.closes_connection() => {}
                    _ => break,
                }
            }
        }));
    }
    // Close-mode clients, now and then on a long body, a reset or a stalling server.
    threads.push(spawn_loop(&stop, &rounds, Duration::from_millis(30), move |n| {
        let p = ["/", "/big", "/rst", "/stall", "/chunked"][n as usize % 5];
        if let Ok(mut c) = Conn::connect(addr, SOON) {
            let _ = c.request(&Request::get(p).header("Connection", "close"));
        }
    }));
    // Pipelined clients: three requests in one write, three answers in order.
    threads.push(spawn_loop(&stop, &rounds, Duration::from_millis(40), move |_| {
        let Ok(mut c) = Conn::connect(addr, SOON) else { return };
        let mut bytes = Vec::new();
        for p in ["/", "/ping", "/404"] {
            bytes.extend(Request::get(p).to_bytes());
        }
        if c.send_raw(&bytes).is_ok() {
            let statuses: Vec<u16> =
                (0..3).filter_map(|_| c.read_response(false).ok().map(|r| r.status)).collect();
            // `/` may find both app servers out (s1's check down, s2 disabled): 503.
            let first_ok = matches!(statuses.first(), Some(200 | 503));
            assert!(first_ok && statuses[1..] == [200, 404], "pipelined answers, in order: {statuses:?}");
        }
    }));
    // Clients that leave: mid-request and mid-response, with a FIN or an RST.
    threads.push(spawn_loop(&stop, &rounds, Duration::from_millis(25), move |n| {
        let Ok(mut c) = Conn::connect(addr, SOON) else { return };
        if n % 2 == 0 {
            let _ = c.send_raw(b"GET /big HTTP/1.1\r\nHost: soak\r\n\r\n");
            let _ = c.read_exact(100);
        } else {
            let _ = c.send_raw(b"GET / HTTP/1.1\r\nHost: so");
        }
        if n % 4 < 2 {
            let _ = c.abort();
        }
    }));
    // Slow clients: half a head, then silence until `timeout http-request` (408).
    threads.push(spawn_loop(&stop, &rounds, Duration::from_millis(200), move |_| {
        let Ok(mut c) = Conn::connect(addr, SOON) else { return };
        let _ = c.send_raw(b"GET /slow HTTP/1.1\r\nHost: soak\r\n");
        let _ = c.read_to_close();
    }));
    // The administrator and the checks: s2 disabled and enabled on the socket, s1's
    // health check failing for a while.
    let sock2 = sock.clone();
    threads.push(spawn_loop(&stop, &rounds, Duration::from_millis(1500), move |n| {
        let cmd = if n % 2 == 0 { "disable server app/s2" } else { "enable server app/s2" };
        let _ = cli(&sock2, cmd);
    }));

    let started = Instant::now();
    let mut samples = Vec::new();
    let mut flaps = 0;
    while started.elapsed() < RUN {
        std::thread::sleep(Duration::from_secs(1));
        let secs = started.elapsed().as_secs();
        let down = (6..10).contains(&(secs % 12));
        if s1.set_up(!down).is_ok() && down {
            flaps += 1;
        }
        samples.push((started.elapsed(), sample(pid)));
    }
    stop.store(true, Ordering::Relaxed);
    s1.set_up(true).unwrap();
    let _ = cli(&sock, "enable server app/s2");
    for t in threads {
        t.join().expect("a traffic thread failed");
    }
    assert!(rounds.load(Ordering::Relaxed) > 500, "traffic ran: {} rounds", rounds.load(Ordering::Relaxed));
    assert!(flaps > 0);

    // Nothing grows after warm-up: the last third against the first third that follows it.
    let after: Vec<Sample> = samples.iter().filter(|(t, _)| *t >= WARM_UP).map(|(_, s)| *s).collect();
    let third = after.len() / 3;
    let rss_first = median(after[..third].iter().map(|s| s.rss_kb).collect());
    let rss_last = median(after[after.len() - third..].iter().map(|s| s.rss_kb).collect());
    let table: Vec<String> = samples
        .iter()
        .map(|(t, s)| format!("{:>3}s rss {} kB fds {}", t.as_secs(), s.rss_kb, s.fds))
        .collect();
    assert!(
        rss_last * 100 <= rss_first * 110,
        "RSS grows after warm-up: {rss_first} -> {rss_last} kB\n{}",
        table.join("\n")
    );

    // Idle again: no session (the CLI's own aside), the fds of an idle proxy, none in
    // CLOSE-WAIT, no pool object in use, and a loop that sleeps.
    let mut state = String::new();
    let idle = eventually(Duration::from_secs(10), || {
        let sess = cli(&sock, "show sess");
        let live = sess.lines().filter(|l| l.contains("proto=tcpv4")).count();
        let s = sample(pid);
        let cw = close_wait_sockets(pid);
        // The servers' idle connections (`http-reuse safe`) are the proxy's to keep until
        // their purge: `show servers conn` counts them (its idle_cur column).
        let pooled: usize = cli(&sock, "show servers conn")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().nth(12)?.parse::<usize>().ok())
            .sum();
        state = format!(
            "{live} sessions, {} fds (idle: {idle_fds}, pooled: {pooled}), {cw} in CLOSE-WAIT\n{sess}",
            s.fds
        );
        live == 0 && s.fds <= idle_fds + pooled && cw == 0
    });
    assert!(idle, "not idle after the soak: {state}\n{}", table.join("\n"));
    // Sessions and buffers all back (the task pool keeps the checks' and the process's).
    let pools = cli(&sock, "show pools");
    let in_use = |pool: &str| {
        pools.lines().find(|l| l.contains(&format!("Pool {pool} "))).and_then(|l| {
            l.split(", ").find_map(|f| f.strip_suffix(" used (~0 by thread caches)")?.parse::<u64>().ok())
        })
    };
    assert_eq!((in_use("session"), in_use("buffer")), (Some(0), Some(0)), "{pools}");
    let before = sample(pid).cpu_ticks;
    std::thread::sleep(Duration::from_secs(2));
    let ticks = sample(pid).cpu_ticks - before;
    // 2% of 2 s is 4 ticks at 100 Hz: an idle loop wakes only for checks and timers.
    assert!(ticks <= 4, "idle CPU: {ticks} ticks in 2 s");
    drop(haflow);
}
