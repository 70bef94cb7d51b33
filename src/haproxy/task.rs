//! The scheduler: tasks, the run queue and the timer wait queue.
//!
//! Reproduces `task.c` and `include/proto/task.h` (1.5-dev8). HAProxy's event loop does
//! not run sessions, it runs *tasks*: each session has one task whose `process` function
//! is `process_session`, and I/O callbacks only *wake* that task (`task_wakeup`) with a
//! reason (`TASK_WOKEN_IO`, `TASK_WOKEN_TIMER`...). Woken tasks wait in the run queue,
//! ordered by wake-up order (HAProxy's `rqueue_ticks`, shifted by `nice`); tasks with a
//! timer wait in the wait queue ordered by expiry. `wake_expired_tasks` moves due tasks
//! from the wait queue to the run queue; `process_runnable_tasks` runs a bounded batch.
//!
//! Like HAProxy, timers are updated lazily: moving a task's `expire` later does not touch
//! the wait queue; when the old position comes due, `wake_expired_tasks` sees the new date
//! and re-queues the task instead of waking it. Keep-alive sessions push their timers
//! forward on every request, so this saves most tree operations.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::memory::{Pool, PoolStats};
use crate::haproxy::time::{Expire, Tick, tick_first};
use crate::ids::{Index, SessionId, Table, TaskId};
use crate::trace::fields::Coded;
use crate::trace::names;

bitflags::bitflags! {
    /// `t->state`: running flag and wake-up reasons (1.5's `TASK_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct TaskState: u16 {
        /// The task's `process` function is executing.
        const TASK_RUNNING      = 0x01;
        /// Woken for its first run, right after creation.
        const TASK_WOKEN_INIT   = 0x02;
        /// Woken because its timer expired.
        const TASK_WOKEN_TIMER  = 0x04;
        /// Woken by I/O on one of its fds.
        const TASK_WOKEN_IO     = 0x08;
        /// Woken by a signal.
        const TASK_WOKEN_SIGNAL = 0x10;
        /// Woken by a message from another entity (e.g. the stats socket).
        const TASK_WOKEN_MSG    = 0x20;
        /// Woken because a resource became available (queue slot, server).
        const TASK_WOKEN_RES    = 0x40;
        /// Woken for another reason.
        const TASK_WOKEN_OTHER  = 0x80;
        /// Any wake-up reason.
        const TASK_WOKEN_ANY    = 0xfe;
    }
}

impl fmt::Display for TaskState {
    /// HAProxy's flag names joined by `|` (`TASK_WOKEN_IO|TASK_WOKEN_TIMER`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, _) in self.iter_names() {
            if name == "TASK_WOKEN_ANY" {
                continue;
            }
            if !first {
                f.write_str("|")?;
            }
            f.write_str(name)?;
            first = false;
        }
        if first {
            f.write_str("TASK_SLEEPING")?;
        }
        Ok(())
    }
}

/// What a task works on (`t->context`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskContext {
    /// A session: `process` is `process_session`.
    Session(SessionId),
    /// A server's health check: `process` is `process_chk`.
    Check(crate::haproxy::checks::CheckId),
    /// A stats socket client (index in the CLI table).
    Cli(Index),
    /// A stick table's expiry: `process` is `process_table_expire`.
    StkTable(crate::ids::ProxyId),
    /// Global work not tied to one object (listener queues, soft stop).
    Global,
}

/// What `process` says about the task after running it (HAProxy returns the task or NULL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskRun {
    /// The task lives on; it is re-queued on its `expire` date.
    Alive,
    /// The task freed itself (`task_free` was called).
    Freed,
}

/// `t->process`.
pub type TaskProcess = fn(&mut Haproxy, TaskId) -> TaskRun;

/// `struct task`.
#[derive(Debug)]
pub struct Task {
    /// Running flag and accumulated wake-up reasons.
    pub state: TaskState,
    /// Scheduling priority (-1024..1024); higher runs later.
    pub nice: i16,
    /// Number of times `process` was called.
    pub calls: u64,
    /// The function run when the task is woken.
    pub process: TaskProcess,
    /// The object the task works on.
    pub context: TaskContext,
    /// When the task wants to be woken (`TICK_ETERNITY`: only by events).
    pub expire: Expire,
    /// Key of its run-queue node when queued.
    rq_key: Option<u64>,
    /// Key of its wait-queue node when queued (may be earlier than `expire`: lazy update).
    wq_key: Option<Tick>,
}

/// The scheduler's state: HAProxy's `rqueue`, `timers`, `run_queue`, `nb_tasks`, `pool2_task`.
#[derive(Debug)]
pub struct Scheduler {
    tasks: Table<Task>,
    pool2_task: Pool<Task>,
    rqueue: BTreeMap<u64, TaskId>,
    rqueue_ticks: u64,
    timers: BTreeSet<(Tick, TaskId)>,
    /// Tasks run since start (for `show activity`).
    pub tasks_run: u64,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler {
            tasks: Table::default(),
            pool2_task: Pool::create_pool("task", std::mem::size_of::<Task>()),
            rqueue: BTreeMap::new(),
            rqueue_ticks: 0,
            timers: BTreeSet::new(),
            tasks_run: 0,
        }
    }
}

impl Task {
    /// True while the task waits in the run queue (`task_in_rq()`).
    pub fn in_run_queue(&self) -> bool {
        self.rq_key.is_some()
    }
}

impl Scheduler {
    /// task.h:task_new() in 1.5-dev8: allocate a task from `pool2_task`, not queued anywhere.
    pub fn task_new(&mut self, process: TaskProcess, context: TaskContext) -> Option<TaskId> {
        let span = tracing::trace_span!(names::TASK_NEW, task = tracing::field::Empty);
        let _g = span.enter();
        let t = self.pool2_task.pool_alloc2(|| Task {
            state: TaskState::empty(),
            nice: 0,
            calls: 0,
            process,
            context,
            expire: None,
            rq_key: None,
            wq_key: None,
        })?;
        let id = TaskId::from(self.tasks.insert(t));
        span.record("task", id.slot());
        Some(id)
    }

    /// The task `t`, if it exists.
    pub fn get(&self, t: TaskId) -> Option<&Task> {
        self.tasks.get(t.idx())
    }

    /// The task `t`, mutably.
    pub fn get_mut(&mut self, t: TaskId) -> Option<&mut Task> {
        self.tasks.get_mut(t.idx())
    }

    // ANCHOR: task_wakeup
    /// task.h:task_wakeup() in 1.5-dev8: put the task in the run queue (if not already
    /// there) and add `reason` to its state. The first wake-up since the last run clears
    /// the previous reasons, so `process` sees why it was woken *this* time.
    /// Divergence: `nice` shifts the key by a fixed `nice / 64` of a wake-up, where dev8
    /// shifts it by `run_queue * nice / 32` wake-ups.
    pub fn task_wakeup(&mut self, t: TaskId, reason: TaskState) {
        let _s = tracing::trace_span!(names::TASK_WAKEUP, task = t.slot(), reason = reason.coded()).entered();
        let Some(task) = self.tasks.get_mut(t.idx()) else { return };
        if task.rq_key.is_none() {
            // __task_wakeup(): the key orders the run queue; `nice` shifts it.
            self.rqueue_ticks += 1;
            let key = (self.rqueue_ticks << 11).saturating_add_signed(i64::from(task.nice) * 32);
            task.rq_key = Some(key);
            task.state.remove(TaskState::TASK_WOKEN_ANY);
            self.rqueue.insert(key, t);
        }
        task.state.insert(reason);
    }
    // ANCHOR_END: task_wakeup

    /// task.h:task_queue() in 1.5-dev8: (re)insert the task in the wait queue at `expire`,
    /// unless it is already queued at an earlier date (lazy update, see module doc).
    pub fn task_queue(&mut self, t: TaskId) {
        let Some(task) = self.tasks.get_mut(t.idx()) else { return };
        let Some(exp) = task.expire else { return };
        if let Some(k) = task.wq_key {
            if k <= exp {
                return;
            }
            self.timers.remove(&(k, t));
        }
        task.wq_key = Some(exp);
        self.timers.insert((exp, t));
    }

    /// task.h:task_schedule() in 1.5-dev8: make the task expire no later than `when`.
    /// Divergence: also for a task in the run queue (dev8 leaves it alone), and the
    /// earlier of `when` and `expire` is kept even when the task is not in the wait queue
    /// (dev8 then takes `when`).
    pub fn task_schedule(&mut self, t: TaskId, when: Tick) {
        if let Some(task) = self.tasks.get_mut(t.idx()) {
            task.expire = tick_first(task.expire, Some(when));
        }
        self.task_queue(t);
    }

    /// task.h:task_delete() in 1.5-dev8: unlink the task from both queues.
    pub fn task_delete(&mut self, t: TaskId) {
        let _s = tracing::trace_span!(names::TASK_DELETE, task = t.slot()).entered();
        self.unlink(t);
    }

    /// Takes the task out of both queues (what `task_delete` does, without a span).
    fn unlink(&mut self, t: TaskId) {
        let Some(task) = self.tasks.get_mut(t.idx()) else { return };
        if let Some(k) = task.rq_key.take() {
            self.rqueue.remove(&k);
        }
        if let Some(k) = task.wq_key.take() {
            self.timers.remove(&(k, t));
        }
    }

    /// task.h:task_free() in 1.5-dev8: give the task back to `pool2_task`.
    pub fn task_free(&mut self, t: TaskId) {
        let _s = tracing::trace_span!(names::TASK_FREE, task = t.slot()).entered();
        // HAProxy expects task_delete() first; unlinking again here keeps a forgotten call
        // from leaving a dangling queue entry.
        self.unlink(t);
        if let Some(task) = self.tasks.remove(t.idx()) {
            self.pool2_task.pool_free2(task);
        }
    }

    /// Number of tasks in the run queue (`run_queue`).
    pub fn run_queue(&self) -> usize {
        self.rqueue.len()
    }

    /// Number of live tasks (`nb_tasks`).
    pub fn nb_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Number of tasks waiting for a timer.
    pub fn wait_queue(&self) -> usize {
        self.timers.len()
    }

    /// Counters of `pool2_task`.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool2_task.stats()
    }

    /// Live tasks, for `show tasks`.
    pub fn iter(&self) -> impl Iterator<Item = (TaskId, &Task)> {
        self.tasks.iter().map(|(i, t)| (TaskId::from(i), t))
    }

    /// The date of the first timer in the wait queue.
    pub fn next_timer(&self) -> Expire {
        self.timers.first().map(|&(k, _)| k)
    }
}

/// task.c:wake_expired_tasks() in 1.5-dev8: move every task whose timer is due to the run
/// queue with `TASK_WOKEN_TIMER`; returns the date of the next timer. Tasks whose `expire`
/// moved later since they were queued are re-queued at their new date instead.
pub fn wake_expired_tasks(w: &mut Haproxy) -> Expire {
    let now = w.clock.now_ms;
    // Due tasks are collected first so that their wake-ups nest under this function's
    // span, which only exists when something is due (not at every loop turn).
    let mut due = Vec::new();
    let sched = &mut w.sched;
    while let Some(&(k, t)) = sched.timers.first() {
        if k > now {
            break;
        }
        sched.timers.pop_first();
        let Some(task) = sched.tasks.get_mut(t.idx()) else { continue };
        task.wq_key = None;
        match task.expire {
            None => {}
            Some(exp) if exp > now => sched.task_queue(t),
            Some(_) => due.push(t),
        }
    }
    if !due.is_empty() {
        let _s = tracing::trace_span!(names::WAKE_EXPIRED_TASKS, woken = due.len()).entered();
        for t in &due {
            sched.task_wakeup(*t, TaskState::TASK_WOKEN_TIMER);
        }
    }
    w.activity.wake_tasks += due.len() as u64;
    sched.next_timer()
}

/// Most tasks run in one batch (HAProxy's limit of 200 per `process_runnable_tasks`).
const MAX_TASKS_PER_BATCH: usize = 200;

// ANCHOR: process_runnable_tasks
/// task.c:process_runnable_tasks() in 1.5-dev8: run up to 200 queued tasks in run-queue
/// order, each once; surviving tasks are re-queued on their timer.
/// Divergence: the batch is not cut to a quarter while niced tasks exist.
pub fn process_runnable_tasks(w: &mut Haproxy) {
    let max = w.sched.run_queue().min(MAX_TASKS_PER_BATCH);
    if max == 0 {
        return;
    }
    let span = tracing::trace_span!(names::PROCESS_RUNNABLE_TASKS, run_queue = w.sched.run_queue());
    let _g = span.enter();
    for _ in 0..max {
        let Some((_, t)) = w.sched.rqueue.pop_first() else { break };
        let Some(task) = w.sched.tasks.get_mut(t.idx()) else { continue };
        task.rq_key = None;
        task.state.insert(TaskState::TASK_RUNNING);
        task.calls += 1;
        let process = task.process;
        w.sched.tasks_run += 1;
        if process(w, t) == TaskRun::Alive {
            if let Some(task) = w.sched.tasks.get_mut(t.idx()) {
                task.state.remove(TaskState::TASK_RUNNING);
            }
            w.sched.task_queue(t);
        }
    }
}
// ANCHOR_END: process_runnable_tasks

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_: &mut Haproxy, _: TaskId) -> TaskRun {
        TaskRun::Alive
    }

    #[test]
    fn wakeup_queues_once_and_accumulates_reasons() {
        let mut s = Scheduler::default();
        let t = s.task_new(noop, TaskContext::Global).unwrap();
        s.task_wakeup(t, TaskState::TASK_WOKEN_IO);
        s.task_wakeup(t, TaskState::TASK_WOKEN_TIMER);
        assert_eq!(s.run_queue(), 1, "a queued task is not queued twice");
        let st = s.get(t).unwrap().state;
        assert!(st.contains(TaskState::TASK_WOKEN_IO | TaskState::TASK_WOKEN_TIMER));
        assert_eq!(st.to_string(), "TASK_WOKEN_TIMER|TASK_WOKEN_IO");
        s.task_free(t);
        assert_eq!((s.run_queue(), s.nb_tasks(), s.pool_stats().used), (0, 0, 0));
    }

    #[test]
    fn later_expire_does_not_move_the_timer_but_earlier_does() {
        let mut s = Scheduler::default();
        let t = s.task_new(noop, TaskContext::Global).unwrap();
        s.get_mut(t).unwrap().expire = Some(Tick(100));
        s.task_queue(t);
        s.get_mut(t).unwrap().expire = Some(Tick(200));
        s.task_queue(t);
        assert_eq!(s.next_timer(), Some(Tick(100)), "pushing a timer later is lazy");
        s.get_mut(t).unwrap().expire = Some(Tick(50));
        s.task_queue(t);
        assert_eq!(s.next_timer(), Some(Tick(50)));
        assert_eq!(s.wait_queue(), 1);
    }
}
