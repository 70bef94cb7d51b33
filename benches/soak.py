#!/usr/bin/env python3
"""The soak harness's python half (standard library only); benches/soak.sh drives it.

  soak.py ports N                     print N free 127.0.0.1 TCP ports
  soak.py backend PORT_S1 PORT_S2 ... the origin servers s1, s2 (both proxies share them)
  soak.py drive --proxy NAME:PORT:PID:SOCK:LOG ...
                                      same-seed mixed traffic at every proxy, sampling,
                                      settling, termination-state tallies and a verdict
"""
import argparse, collections, contextlib, os, queue, random, re, socket, statistics, struct, sys, threading, time

CLIENT_TIMEOUT = 8.0  # > the 3 s /stall and the 2 s http-request timeout: a hit means "stuck"
NCHECKS = 2           # servers with `check`: at most that many check fds open at any time
HZ = os.sysconf("SC_CLK_TCK")

def spawn(f, *args):
    t = threading.Thread(target=f, args=args, daemon=True)
    t.start()
    return t

def hard_close(s):
    """close() with SO_LINGER {on, 0}: the kernel sends a RST instead of a FIN."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

# ------------------------------------------------------------------ backend
BODY_1M = bytes(range(256)) * 4096

def backend(ports, fail_every=40.0, fail_for=5.0, max_seconds=7200):
    t0 = time.monotonic()

    def respond(c, idx, path, close):
        """Answers one request; returns whether the connection may serve another one."""
        conn_hdr = b"Connection: close\r\n" if close else b""

        def send(status, body):
            c.sendall(b"HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
                      % (status, len(body), conn_hdr) + body)
        if path == "/small":
            send(b"200 OK", b"small body from s%d\n" % (idx + 1))
        elif path == "/b1m":
            send(b"200 OK", BODY_1M)
        elif path == "/health":  # s2 fails its check for fail_for s every fail_every s
            down = idx == 1 and (time.monotonic() - t0) % fail_every >= fail_every - fail_for
            send(b"503 Service Unavailable" if down else b"200 OK", b"health\n")
        elif path == "/chunked":
            chunks = b"".join(b"%x\r\n%s\r\n" % (n, b"c" * n) for n in (5, 1000, 17, 8192))
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n%s0\r\n\r\n"
                      % (conn_hdr, chunks))
        elif path == "/rstmid":  # promise 100000 bytes, send 30000, then RST
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + BODY_1M[:30000])
            time.sleep(0.05)
            hard_close(c)
            return False
        elif path == "/badchunk":
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            # The proxy must reject "zz" by itself: wait (bounded) for it to close on us.
            c.settimeout(10)
            while c.recv(4096):
                pass
            return False
        elif path == "/stall":  # half the body, 3 s of silence, then FIN
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + BODY_1M[:10000])
            time.sleep(3)
            return False
        else:
            send(b"404 Not Found", b"not found\n")
        return not close

    def serve(c, idx):
        buf = b""
        try:
            while True:
                c.settimeout(1.0)  # idle keep-alive connections are closed after 1 s
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                line, _, hdrs = head.partition(b"\r\n")
                parts, hdrs = line.split(), hdrs.lower()
                close = b"connection: close" in hdrs or (
                    parts[-1] == b"HTTP/1.0" and b"connection: keep-alive" not in hdrs)
                c.settimeout(10)
                path = parts[1].decode(errors="replace") if len(parts) > 1 else "/"
                if not respond(c, idx, path, close):
                    return
        except (OSError, ValueError, IndexError):
            pass
        finally:
            c.close()

    for idx, port in enumerate(ports):
        lsn = socket.socket()
        lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsn.bind(("127.0.0.1", port))
        lsn.listen(1024)

        def accept_loop(lsn=lsn, idx=idx):
            while True:
                c, _ = lsn.accept()
                spawn(serve, c, idx)
        spawn(accept_loop)
    print("ready", flush=True)  # soak.sh starts the proxies after this line
    time.sleep(max_seconds)  # soak.sh kills us long before; bounded all the same

# ------------------------------------------------------------------ clients
class Reader:
    """Buffered reading of HTTP/1.1 responses from a client socket."""

    def __init__(self, s):
        self.s, self.buf, self.status = s, b"", None

    def more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def until(self, sep):
        while sep not in self.buf:
            self.more()
        out, _, self.buf = self.buf.partition(sep)
        return out

    def skip(self, n):
        while len(self.buf) < n:
            n -= len(self.buf)
            self.buf = b""
            self.more()
        self.buf = self.buf[n:]

    def response(self):
        """Reads one whole response: (status, server-will-close). EOFError/OSError if cut."""
        self.status = None
        head = self.until(b"\r\n\r\n").lower()
        self.status = st = int(head.split(None, 2)[1])
        close = b"\r\nconnection: close" in head
        m = re.search(rb"\r\ncontent-length: *(\d+)", head)
        if m:
            self.skip(int(m.group(1)))
        elif b"\r\ntransfer-encoding: chunked" in head:
            while True:
                n = int(self.until(b"\r\n").split(b";")[0], 16)
                if n == 0:
                    while self.until(b"\r\n"):  # trailers up to the empty line
                        pass
                    break
                self.skip(n + 2)
        elif st not in (204, 304):  # delimited by the close
            with contextlib.suppress(EOFError):
                while True:
                    self.buf = b""
                    self.more()
            close = True
        return st, close

    def timed(self):
        """response(), its status as a label with " >1s" when it took over a second
        (every path but /stall answers in milliseconds: a second is a stall in the proxy)."""
        t = time.monotonic()
        st, close = self.response()
        return f"{st}{' >1s' if time.monotonic() - t > 1.0 else ''}", close

def req(path, close=False):
    return b"GET %s HTTP/1.1\r\nHost: soak\r\n%s\r\n" % (
        path.encode(), b"Connection: close\r\n" if close else b"")

def pick_path(rng):
    return rng.choices(["/ping", "/small", "/404", "/deny", "/chunked", "/b1m"],
                       [25, 35, 10, 8, 18, 4])[0]

# Scenario kinds and their weights (one "action" = one client connection).
KINDS = {"ka": 30, "close": 15, "pipe": 10, "abort-req": 6, "abort-resp": 6,
         "rstmid": 4, "badchunk": 4, "stall": 3, "slow": 3}

def run_action(kind, seed, port, out):
    """Plays one client connection; out(key) records each outcome ("ka /small 200"...)."""
    rng, s, r, tag = random.Random(seed), socket.socket(), None, kind
    try:
        s.settimeout(CLIENT_TIMEOUT)
        if kind == "abort-resp":
            # Loopback's 64 KiB MSS lets the proxy's send buffer autotune past 1 MiB: it
            # would write all of /b1m to the kernel before we leave. A small advertised MSS
            # and receive window keep most of the body in the proxy when the client aborts.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1400)
        s.connect(("127.0.0.1", port))
        r = Reader(s)
        if kind == "ka":  # keep-alive: 2-6 requests on one connection
            for _ in range(rng.randint(2, 6)):
                p = pick_path(rng)
                tag = f"ka {p}"
                s.sendall(req(p))
                st, close = r.timed()
                out(f"{tag} {st}")
                if close:
                    break
                time.sleep(rng.uniform(0, 0.05))
        elif kind == "close":  # Connection: close, and the proxy must close after it
            p = pick_path(rng)
            tag = f"close {p}"
            s.sendall(req(p, True))
            st, _ = r.timed()
            s.settimeout(2)
            try:
                r.more()
                st = f"{st} no-close"
            except EOFError:
                pass
            out(f"{tag} {st}")
        elif kind == "pipe":  # 3 requests in one write, 3 responses
            ps = [pick_path(rng) for _ in range(3)]
            s.sendall(b"".join(req(p) for p in ps))
            for p in ps:
                tag = f"pipe {p}"
                st, close = r.timed()
                out(f"{tag} {st}")
                if close:
                    break
        elif kind in ("abort-req", "abort-resp"):  # the client leaves, with a FIN or a RST
            how = rng.choice(["fin", "rst"])
            tag = f"{kind} {how}"
            if kind == "abort-req":  # half a request head
                h = req("/small")
                s.sendall(h[:rng.randint(5, len(h) - 5)])
            else:  # a few bytes of /b1m
                s.sendall(req("/b1m"))
                r.until(b"\r\n\r\n")
                r.skip(rng.randint(1, 200000))
            time.sleep(0.05)
            if how == "rst":
                hard_close(s)
            else:  # FIN first; the close() that follows resets if data is still unread
                s.shutdown(socket.SHUT_WR)
                time.sleep(0.1)
                s.close()
            s = None
            out(tag)
        elif kind == "slow":  # a partial head, then silence past timeout http-request: 408
            h = req("/small")
            s.sendall(h[:rng.randint(5, len(h) - 5)])
            st, _ = r.response()
            out(f"{tag} {st}")
        else:  # rstmid, badchunk, stall: the server misbehaves, read what comes
            s.sendall(req("/" + kind))
            st, _ = r.response()
            out(f"{tag} {st}")
    except Exception as e:  # the outcome is the error: eof, ConnectionResetError, timeout...
        err = "eof" if isinstance(e, EOFError) else type(e).__name__.replace("Error", "")
        out(f"{tag} {r.status if r and r.status else '-'} {err}")
    finally:
        if s is not None:
            s.close()

# ------------------------------------------------------------------ proxies and samples
def cli(sock, cmd):
    """One stats-socket command, like `echo cmd | socat - UNIX:sock`."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(3)
        s.connect(sock)
        s.sendall(cmd.encode() + b"\n")
        return b"".join(iter(lambda: s.recv(65536), b"")).decode(errors="replace")

TERM = re.compile(r" (\S{4}) \d+/\d+/\d+/\d+/\d+ \d+/\d+ ")  # "... - - CD-- 1/1/0/0/0 0/0 ..."
SRV = re.compile(r"^Server (\S+) is (UP/READY|UP|DOWN|going DOWN for maintenance)")

class Proxy:
    def __init__(self, spec):
        self.name, port, pid, self.sock, self.log = spec.split(":", 4)
        self.port, self.pid = int(port), int(pid)
        self.samples, self.prev, self.log_off = [], None, 0
        self.terms, self.events, self.outcomes = (collections.Counter() for _ in range(3))
        self.lock = threading.Lock()
        self.queue, self.threads = queue.Queue(), []

    def out(self, key):
        with self.lock:
            self.outcomes[key] += 1

    def read_log(self):
        """Tallies the termination states of the log lines written since the last call."""
        with open(self.log, "rb") as f:
            f.seek(self.log_off)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        self.log_off += cut
        for line in data[:cut].decode(errors="replace").splitlines():
            m = TERM.search(line)
            if m:
                self.terms[m.group(1)] += 1
            elif m := SRV.search(line):
                self.events[f"{m.group(1)} {m.group(2).split()[-1]}"] += 1  # "be/s2 DOWN"...

    def sample(self, t):
        s = {"t": t}
        try:
            status = open(f"/proc/{self.pid}/status").read()
            stat = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
            fds = os.listdir(f"/proc/{self.pid}/fd")
        except FileNotFoundError:
            return dict(s, dead=True)
        s["rss"] = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        s["fds"] = len(fds)
        inodes = set()
        for fd in fds:
            with contextlib.suppress(OSError):  # closed meanwhile
                link = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        s["cw"] = close_wait(inodes)
        ticks, now = int(stat[11]) + int(stat[12]), time.monotonic()  # utime + stime
        s["cpu"] = (ticks - self.prev[0]) / HZ / (now - self.prev[1]) * 100 if self.prev else 0.0
        s.update(rps=0.0, conns=-1, cumreq=-1, sess=-1, pool=-1)  # -1: the CLI did not answer
        try:
            info = dict(l.split(": ", 1) for l in cli(self.sock, "show info").splitlines() if ": " in l)
            s["conns"], s["cumreq"] = int(info["CurrConns"]), int(info["CumReq"])
            if self.prev:
                s["rps"] = (s["cumreq"] - self.prev[2]) / (now - self.prev[1])
            # every stream but the CLI's own (fe=GLOBAL)
            s["sess"] = sum(1 for l in cli(self.sock, "show sess").splitlines()
                            if ": proto=" in l and "fe=GLOBAL" not in l)
            m = re.search(r"Total: \d+ pools, \d+ bytes allocated, (\d+) used",
                          cli(self.sock, "show pools"))
            s["pool"] = int(m.group(1)) if m else -1
        except (OSError, KeyError, ValueError):
            pass
        self.prev = (ticks, now, s["cumreq"])
        self.read_log()
        s["logs"] = sum(self.terms.values())
        return s

def close_wait(inodes):
    """How many of these socket inodes are TCP sockets in CLOSE-WAIT (state 08)."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in open(f).read().splitlines()[1:]:
                x = line.split()
                n += x[3] == "08" and x[9] in inodes
        except OSError:
            pass
    return n

COLS = "{t:>6} {proxy:<8} {rss:>8} {fds:>5} {cpu:>6} {conns:>6} {sess:>5} {pool:>9} {cumreq:>8} {rps:>6} {cw:>4} {logs:>7}"

def row(p, s, phase):
    if s.get("dead"):
        return f"{s['t']:>6.0f} {p.name:<8} PROCESS GONE"
    return COLS.format(t=f"{s['t']:.0f}" + ("*" if phase == "final" else ""), proxy=p.name,
                       rss=s["rss"], fds=s["fds"], cpu=f"{s['cpu']:.1f}", conns=s["conns"],
                       sess=s["sess"], pool=s["pool"], cumreq=s["cumreq"], rps=f"{s['rps']:.0f}",
                       cw=s["cw"], logs=s["logs"])

# ------------------------------------------------------------------ drive
def wait_ready(p, deadline):
    """/ping answers and both servers are UP by their checks."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", p.port), timeout=1) as s:
                s.sendall(req("/ping", True))
                ok = Reader(s).response()[0] == 200
            up = [l.split(",")[17] for l in cli(p.sock, "show stat").splitlines()
                  if l.startswith("be,s")]
            if ok and up == ["UP", "UP"]:
                return True
        except (OSError, ValueError, IndexError, EOFError):
            pass
        time.sleep(0.25)
    return False

def dispatch(p, seed, rate, t0, deadline, stop, nworkers):
    """Same seed at every proxy: the same actions in the same order at the same times."""
    rng, kinds, k = random.Random(seed), list(KINDS), 0
    while not stop.is_set():
        at = t0 + k / rate
        if at > deadline:
            break
        stop.wait(max(0.0, at - time.monotonic()))
        action = (rng.choices(kinds, list(KINDS.values()))[0], rng.getrandbits(32))
        k += 1
        if p.queue.qsize() >= nworkers:  # every worker busy: drop rather than burst later
            p.out("(action dropped: all workers busy)")
        else:
            p.queue.put(action)
    for _ in range(nworkers):
        p.queue.put(None)

def worker(p):
    while (a := p.queue.get()) is not None:
        run_action(a[0], a[1], p.port, p.out)

def admin(p, t0, deadline, stop):
    """Every 20 s: `disable server be/s2`, 5 s later `enable server be/s2`."""
    k = 1
    while t0 + 20 * k + 5 <= deadline:
        if stop.wait(max(0.0, t0 + 20 * k - time.monotonic())):
            return
        try:
            p.out("admin disable " + (cli(p.sock, "disable server be/s2").strip() or "ok"))
            stop.wait(5)  # enable even when stopped meanwhile
            p.out("admin enable " + (cli(p.sock, "enable server be/s2").strip() or "ok"))
        except OSError as e:
            p.out(f"admin {type(e).__name__}")
        k += 1

def median_of(samples, key):
    return statistics.median(s[key] for s in samples)

def verdict(p, warm, idle_fds):
    """[(check, passed, detail)]. Growth: median of the first third of the samples taken
    after warm-up against the median of the last third (medians shrug off the odd burst of
    concurrent connections a linear fit would chase). fds get 10 fds of slack on top of the
    5%: a sample catches 0 to ~10 concurrent connections (1-2 fds each), a leak is linear."""
    res, run = [], [s for s in p.samples[:-1] if s["t"] >= warm and not s.get("dead")]
    if len(run) >= 4:
        k = max(2, len(run) // 3)
        for key, slack in (("rss", 0), ("fds", 10)):
            a, b = median_of(run[:k], key), median_of(run[-k:], key)
            res.append((f"{key} growth after warm-up", b <= a * 1.05 + slack,
                        f"median {a:.0f} -> {b:.0f} ({(b - a) / a * 100:+.1f}%)"))
    else:
        res.append(("growth after warm-up", True, f"n/a: {len(run)} samples after warm-up (run longer)"))
    f = p.samples[-1]
    if f.get("dead"):
        return res + [("process alive at the end", False, "gone")]
    res += [("0 live sessions at the end", f["sess"] == 0 and f["conns"] == 0,
             f"show sess {f['sess']}, CurrConns {f['conns']}"),
            ("fds back to idle", f["fds"] <= idle_fds + NCHECKS,
             f"{f['fds']} (idle before traffic {idle_fds}, +{NCHECKS} checks in flight allowed)"),
            ("idle CPU < 2%", f["cpu"] < 2.0, f"{f['cpu']:.2f}%"),
            ("no CLOSE-WAIT socket", f["cw"] == 0, f"{f['cw']} in CLOSE-WAIT")]
    return res

def side_by_side(title, proxies, counters):
    keys = sorted(set().union(*counters), key=lambda k: (-sum(c[k] for c in counters), k))
    print(f"\n{title:<40}" + "".join(f"{p.name:>10}" for p in proxies))
    for k in keys:
        v = [c[k] for c in counters]
        odd = max(v) - min(v) > max(3, 0.2 * max(v))  # a difference worth a look
        print(f"  {k:<38}" + "".join(f"{x:>10}" for x in v) + ("   <>" if odd and len(v) > 1 else ""))

def drive(a):
    proxies = [Proxy(s) for s in a.proxy]
    deadline = time.monotonic() + 20
    for p in proxies:
        if not wait_ready(p, deadline):
            print(f"{p.name}: not ready (no /ping 200 or servers not UP by checks)", file=sys.stderr)
            return 2
    # idle fd count before any traffic: the minimum over 3 s (a check may be in flight)
    idle = {}
    for _ in range(6):
        for p in proxies:
            idle[p.name] = min(idle.get(p.name, 1 << 30), len(os.listdir(f"/proc/{p.pid}/fd")))
        time.sleep(0.5)
    warm = max(0.2 * a.seconds, min(30.0, 0.5 * a.seconds))
    print(f"soak: {a.seconds}s, sample every {a.interval}s, {a.rate} client connections/s per proxy, "
          f"{a.workers} workers each, seed {a.seed}, warm-up {warm:.0f}s; idle fds "
          + ", ".join(f"{k} {v}" for k, v in idle.items()))
    print(COLS.format(t="t", proxy="proxy", rss="RSS_KiB", fds="fds", cpu="cpu%", conns="conns",
                      sess="sess", pool="pool_B", cumreq="CumReq", rps="req/s", cw="CW", logs="loglines"),
          flush=True)
    stop, t0 = threading.Event(), time.monotonic()
    end = t0 + a.seconds
    for p in proxies:
        p.sample(0)  # CPU baseline
        p.threads = [spawn(dispatch, p, a.seed, a.rate, t0, end, stop, a.workers),
                     spawn(admin, p, t0, end, stop)] + [spawn(worker, p) for _ in range(a.workers)]
    try:
        n = 1
        while (at := t0 + n * a.interval) <= end:
            time.sleep(max(0.0, at - time.monotonic()))
            for p in proxies:
                p.samples.append(p.sample(at - t0))
                print(row(p, p.samples[-1], "run"), flush=True)
            n += 1
    except KeyboardInterrupt:
        print("interrupted: stopping the traffic")
    stop.set()
    # every action ends within CLIENT_TIMEOUT (+ a pause or two): join with a deadline
    join_by = time.monotonic() + CLIENT_TIMEOUT + 5
    for p in proxies:
        for t in p.threads:
            t.join(max(0.0, join_by - time.monotonic()))
    # settle: poll until no live session, no CLOSE-WAIT, fds back to idle, or 15 s
    settle_by, t_stop = time.monotonic() + 15, time.monotonic() - t0
    while time.monotonic() < settle_by:
        ss = [(p, p.sample(time.monotonic() - t0)) for p in proxies]
        if all(s.get("dead") or (s["sess"] == 0 and s["conns"] <= 0 and s["cw"] == 0
                                 and s["fds"] <= idle[p.name] + NCHECKS) for p, s in ss):
            break
        time.sleep(0.5)
    settled = time.monotonic() - t0 - t_stop
    time.sleep(3)  # the final sample's CPU% is measured over these 3 idle seconds
    for p in proxies:
        p.samples.append(p.sample(time.monotonic() - t0))
        print(row(p, p.samples[-1], "final"), flush=True)
    print(f"(* = final sample, {settled:.1f}s of settling after the traffic stopped + 3s idle)")

    side_by_side("termination states (log lines)", proxies, [p.terms for p in proxies])
    side_by_side("server events (log lines)", proxies, [p.events for p in proxies])
    side_by_side("client outcomes (scenario path status/error)", proxies, [p.outcomes for p in proxies])
    rc = 0
    for p in proxies:
        checks = verdict(p, warm, idle[p.name])
        ok = all(c[1] for c in checks)
        print(f"\nverdict {p.name}: {'PASS' if ok else 'FAIL'}")
        for name, passed, detail in checks:
            print(f"  [{'ok' if passed else 'FAIL'}] {name}: {detail}")
        if p.name == "haflow" or len(proxies) == 1:
            rc = 0 if ok else 1
        if p.samples[-1].get("sess", 0) > 0:  # what the leftover sessions look like
            with contextlib.suppress(OSError):
                left = [l for l in cli(p.sock, "show sess").splitlines() if "fe=GLOBAL" not in l]
                print("  leftover sessions, e.g.:\n    " + "\n    ".join(left[:3]))
    return rc

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ports").add_argument("n", type=int)
    sub.add_parser("backend").add_argument("port", type=int, nargs="+")
    d = sub.add_parser("drive")
    d.add_argument("--proxy", action="append", required=True, help="NAME:PORT:PID:SOCK:LOG")
    for name, kind, default in (("seconds", float, 600), ("interval", float, 5),
                                ("rate", float, 80), ("workers", int, 40), ("seed", int, 1)):
        d.add_argument("--" + name, type=kind, default=default)
    a = ap.parse_args()
    if a.cmd == "ports":  # bound together so they are distinct, then released
        socks = [socket.socket() for _ in range(a.n)]
        [s.bind(("127.0.0.1", 0)) for s in socks]
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    elif a.cmd == "backend":
        backend(a.port)
    else:
        sys.exit(drive(a))

if __name__ == "__main__":
    main()
