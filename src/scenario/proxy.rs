//! haflow in a thread: start the real proxy from configuration text, talk to it, stop it.
//!
//! Tests, the scenario runner and the demo use `RunningProxy` to run the very code the
//! binary runs (`readcfgfile`, `bind_and_enable`, `run_poll_loop`) on a thread of their own,
//! with `bind 127.0.0.1:0` ports resolved after binding, log lines captured instead of
//! printed, and optionally a `tracing` subscriber (the capture layer) on the proxy thread.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::haproxy::cfgparse::{Diag, readcfgfile};
use crate::haproxy::fd::Sock;
use crate::haproxy::haproxy::{
    Command, Control, Haproxy, InitError, Observer, OnLoopTurn, bind_and_enable, observe, run_poll_loop,
};
use crate::haproxy::session::Session;
use crate::scenario::recent::Recent;

/// Log and debug lines kept: the latest ones. A proxy that runs for hours (the demo)
/// must not keep every line it ever logged; older ones are dropped and counted.
const KEPT_LINES: usize = 1_000;

/// Log lines and finished sessions seen by the proxy, shared with the test thread.
struct Seen {
    logs: Recent<String>,
    debug: Recent<String>,
    sessions_freed: u64,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { logs: Recent::new(KEPT_LINES), debug: Recent::new(KEPT_LINES), sessions_freed: 0 }
    }
}

type Shared = Arc<(Mutex<Seen>, Condvar)>;

/// Records what the tests wait for.
struct SeenObserver(Shared);

impl Observer for SeenObserver {
    fn log(&mut self, line: &str) {
        let (m, c) = &*self.0;
        m.lock().unwrap_or_else(|e| e.into_inner()).logs.push(line.to_string());
        c.notify_all();
    }
    fn session_freed(&mut self, _s: &Session) {
        let (m, c) = &*self.0;
        m.lock().unwrap_or_else(|e| e.into_inner()).sessions_freed += 1;
        c.notify_all();
    }
}

/// Why a proxy did not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration has ALERTs.
    Config(Diag),
    /// A listener could not be bound, or the poller not created.
    Start(String),
}

/// Options for `RunningProxy::start_with`.
#[derive(Default)]
pub struct StartOptions {
    /// Where the proxy thread's span records go (see `trace::subscriber::route_this_thread`).
    pub capture: Option<crate::trace::capture::Sink>,
    /// A second destination for them (e.g. a UI watching a scenario the runner checks).
    pub also: Option<crate::trace::capture::Sink>,
    /// Print `-d` debug lines (captured, see `RunningProxy::debug_lines`).
    pub debug: bool,
    /// Another observer on the proxy thread (the UI's snapshot producer, the
    /// walkthrough's stepper), registered before the configuration is read.
    pub observer: Option<Box<dyn Observer>>,
    /// How long to wait for the proxy to be ready (default 10 s; the walkthrough pauses
    /// start-up for as long as the learner reads).
    pub ready_within: Option<Duration>,
}

/// A haflow instance running on its own thread.
pub struct RunningProxy {
    control: Control,
    thread: Option<JoinHandle<()>>,
    /// Bound listeners: frontend name and local address, in configuration order.
    pub addrs: Vec<(String, SocketAddr)>,
    seen: Shared,
    /// Where the configuration was written.
    pub cfg_path: PathBuf,
    /// The configuration's warnings.
    pub warnings: Vec<String>,
}

fn write_cfg(text: &str) -> std::io::Result<PathBuf> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("haflow-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("haflow.cfg");
    std::fs::write(&path, text)?;
    Ok(path)
}

impl RunningProxy {
    /// Starts haflow with `cfg` (`"${NAME}"` expands from `env`, then the process env).
    pub fn start(cfg: &str, env: &[(&str, String)]) -> Result<RunningProxy, StartError> {
        Self::start_with(cfg, env, StartOptions::default())
    }

    /// Like `start`, with options.
    pub fn start_with(
        cfg: &str,
        env: &[(&str, String)],
        opts: StartOptions,
    ) -> Result<RunningProxy, StartError> {
        // Before any span exists in this process: one routed subscriber for every proxy.
        crate::trace::subscriber::install_routed_global();
        let path = write_cfg(cfg).map_err(|e| StartError::Start(e.to_string()))?;
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let seen: Shared = Arc::default();
        let ready_within = opts.ready_within.unwrap_or(Duration::from_secs(10));
        let (ready_tx, ready_rx) =
            channel::<Result<(Control, Vec<(String, SocketAddr)>, Vec<String>), StartError>>();
        let seen2 = Arc::clone(&seen);
        let path2 = path.clone();
        let thread = std::thread::Builder::new()
            .name("haflow-proxy".into())
            .spawn(move || {
                for sink in opts.capture.into_iter().chain(opts.also) {
                    crate::trace::subscriber::route_this_thread(crate::trace::subscriber::Route {
                        sink,
                        max: tracing::Level::TRACE,
                    });
                }
                // Each turn's span records go out before the loop may sleep.
                observe(Box::new(OnLoopTurn(crate::trace::subscriber::flush_thread)));
                observe(Box::new(SeenObserver(Arc::clone(&seen2))));
                if let Some(o) = opts.observer {
                    observe(o);
                }
                let run = move || {
                    let lookup = |k: &str| {
                        env.iter()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v.clone())
                            .or_else(|| std::env::var(k).ok())
                    };
                    let cfg = match readcfgfile(&[path2], &lookup) {
                        Ok(c) => c,
                        Err(d) => {
                            let _ = ready_tx.send(Err(StartError::Config(d)));
                            return;
                        }
                    };
                    let warnings = cfg.warnings.clone();
                    let mut w = match Haproxy::new(cfg) {
                        Ok(w) => w,
                        Err(e) => {
                            let _ = ready_tx.send(Err(StartError::Start(e.to_string())));
                            return;
                        }
                    };
                    w.logger.mute_std = true;
                    w.global.debug |= opts.debug;
                    let seen3 = Arc::clone(&seen2);
                    w.debug_sink = Some(Box::new(move |l: &str| {
                        seen3.0.lock().unwrap_or_else(|e| e.into_inner()).debug.push(l.to_string());
                    }));
                    if let Err(e) = bind_and_enable(&mut w) {
                        let msg = match e {
                            InitError::Bind(m) => m,
                            other => format!("{other:?}"),
                        };
                        let _ = ready_tx.send(Err(StartError::Start(msg)));
                        return;
                    }
                    let addrs = bound_addrs(&mut w);
                    let _ = ready_tx.send(Ok((w.control(), addrs, warnings)));
                    run_poll_loop(&mut w);
                };
                run();
            })
            .map_err(|e| StartError::Start(e.to_string()))?;
        let (control, addrs, warnings) = recv_ready(ready_rx, ready_within)?;
        Ok(RunningProxy { control, thread: Some(thread), addrs, seen, cfg_path: path, warnings })
    }

    /// The address of the first listener of frontend `fe`.
    pub fn addr(&self, fe: &str) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(n, _)| n == fe)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no listener for '{fe}'"))
    }

    /// The frontends with a bound listener, in configuration order.
    pub fn frontends(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (n, _) in &self.addrs {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }

    /// Every bound listener's address, with its frontend.
    pub fn frontend_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.addrs.clone()
    }

    /// Runs `f` on the proxy thread and returns its result (e.g. to read counters).
    pub fn query<T: Send + 'static>(&self, f: impl FnOnce(&mut Haproxy) -> T + Send + 'static) -> T {
        let (tx, rx) = channel();
        self.control.send(Command::Apply(Box::new(move |w| {
            let _ = tx.send(f(w));
        })));
        rx.recv_timeout(Duration::from_secs(10)).expect("the proxy thread answers queries")
    }

    /// Objects in use in all pools (sessions, tasks, buffers). Zero when idle.
    pub fn pools_in_use(&self) -> u64 {
        self.query(|w| w.pools_in_use())
    }

    /// Waits until no session is alive and every pool is back to zero use, or until the
    /// loop ended on its own (a soft stop leaves it once no session is left).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let (tx, rx) = channel();
            self.control.send(Command::Apply(Box::new(move |w| {
                let _ = tx.send(w.sessions.is_empty() && w.pools_in_use() == 0);
            })));
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(true) | Err(RecvTimeoutError::Disconnected) => return true,
                Ok(false) => {}
                Err(RecvTimeoutError::Timeout) => return false,
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The control handle.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Log lines so far (the latest `KEPT_LINES`).
    pub fn logs(&self) -> Vec<String> {
        self.logs_since(0).0
    }

    /// The log lines numbered `from` (counting from 0 at start) and after, as far as they
    /// are kept, and the number of lines logged so far.
    pub fn logs_since(&self, from: usize) -> (Vec<String>, usize) {
        let s = self.seen.0.lock().unwrap_or_else(|e| e.into_inner());
        (s.logs.since(from), s.logs.total)
    }

    /// Log lines dropped to keep within `KEPT_LINES`.
    pub fn logs_dropped(&self) -> usize {
        self.seen.0.lock().unwrap_or_else(|e| e.into_inner()).logs.dropped()
    }

    /// `-d` debug lines so far (the latest `KEPT_LINES`).
    pub fn debug_lines(&self) -> Vec<String> {
        self.seen.0.lock().unwrap_or_else(|e| e.into_inner()).debug.since(0)
    }

    /// Waits until at least `n` log lines were emitted; returns those kept.
    pub fn wait_logs(&self, n: usize, timeout: Duration) -> Vec<String> {
        let (m, c) = &*self.seen;
        let guard = m.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) =
            c.wait_timeout_while(guard, timeout, |s| s.logs.total < n).unwrap_or_else(|e| e.into_inner());
        guard.logs.since(0)
    }

    /// Stops the proxy (hard stop) and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.control.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(dir) = self.cfg_path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn recv_ready<T>(rx: Receiver<Result<T, StartError>>, within: Duration) -> Result<T, StartError> {
    rx.recv_timeout(within).map_err(|_| StartError::Start("the proxy thread did not start".into()))?
}

/// The local address of every bound TCP listener, with its frontend's name.
fn bound_addrs(w: &mut Haproxy) -> Vec<(String, SocketAddr)> {
    let mut out = Vec::new();
    for l in &w.listeners {
        let Some(fd) = l.fd else { continue };
        if let Some(Sock::TcpListener(t)) = w.fdtab.get(fd).map(|e| &e.sock)
            && let Ok(a) = t.local_addr()
        {
            out.push((w.proxies[l.frontend.idx()].name.clone(), a));
        }
    }
    out
}
