//! Which service to start, restart or stop next: the supervisor's bookkeeping, without processes.

use std::time::{Duration, Instant};

use crate::pid1::services::{Service, ServicesFile};

/// Pause before a service marked `restart` is started again.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Longest pause between restarts: a service that keeps failing doubles its pause up to this.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// A service that ran at least this long before exiting is restarted after `RESTART_DELAY` again.
pub const STABLE_RUN: Duration = Duration::from_secs(10);

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet (its turn, or its `after_ready_of` service, has not come).
    Waiting,
    Running {
        pid: i32,
        since: Instant,
    },
    /// Exited; will be started again at `restart_at`.
    Exited {
        restart_at: Instant,
    },
    /// Exited for good (not marked `restart`).
    Finished,
}

/// The services and their states, in file order.
pub struct Supervisor {
    services: Vec<Service>,
    states: Vec<State>,
    ready: Vec<bool>,
    /// Pause before each service's next restart (doubles while it keeps failing fast).
    delays: Vec<Duration>,
    /// Index of the first service never started; earlier ones have all had their turn.
    next: usize,
}

impl Supervisor {
    /// All services waiting, none ready.
    pub fn new(file: ServicesFile) -> Self {
        let n = file.services.len();
        Supervisor {
            services: file.services,
            states: vec![State::Waiting; n],
            ready: vec![false; n],
            delays: vec![RESTART_DELAY; n],
            next: 0,
        }
    }

    /// The service at `i` (file order).
    pub fn service(&self, i: usize) -> &Service {
        &self.services[i]
    }

    /// The state of the service at `i`.
    pub fn state(&self, i: usize) -> State {
        self.states[i]
    }

    /// Marks running services whose `ready_path` now exists as ready; returns those newly ready.
    pub fn check_ready(&mut self, exists: &dyn Fn(&str) -> bool) -> Vec<usize> {
        let mut newly = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            let path_ready = s.ready_path.as_deref().is_none() || s.ready_path.as_deref().is_some_and(exists);
            if !self.ready[i] && matches!(self.states[i], State::Running { .. }) && path_ready {
                self.ready[i] = true;
                newly.push(i);
            }
        }
        newly
    }

    /// True while the next service to start waits for a running service
    /// that is not ready yet (init then looks for its path more often).
    pub fn awaiting_ready(&self) -> bool {
        let Some(dep) = self.services.get(self.next).and_then(|s| s.after_ready_of.as_deref()) else { return false };
        self.services.iter().enumerate().any(|(i, s)| s.name == dep && !self.ready[i] && matches!(self.states[i], State::Running { .. }))
    }

    /// Services to spawn now: restarts that are due, then unstarted ones in file order up to the
    /// first whose `after_ready_of` service is not ready. Report each with `started` or `exited_at`.
    pub fn due(&mut self, now: Instant) -> Vec<usize> {
        let mut out: Vec<usize> =
            (0..self.next).filter(|&i| matches!(self.states[i], State::Exited { restart_at } if now >= restart_at)).collect();
        while let Some(s) = self.services.get(self.next) {
            let blocked =
                s.after_ready_of.as_ref().is_some_and(|dep| !self.services.iter().zip(&self.ready).any(|(d, &r)| &d.name == dep && r));
            if blocked {
                break;
            }
            out.push(self.next);
            self.next += 1;
        }
        out
    }

    /// Records that service `i` runs as `pid` since `now`.
    pub fn started(&mut self, i: usize, pid: i32, now: Instant) {
        self.states[i] = State::Running { pid, since: now };
    }

    /// Records that service `i` stopped (or could not be spawned) at `now`; returns the restart pause, if it restarts.
    pub fn exited_at(&mut self, i: usize, now: Instant) -> Option<Duration> {
        if !self.services[i].restart {
            self.states[i] = State::Finished;
            return None;
        }
        let stable = matches!(self.states[i], State::Running { since, .. } if now.duration_since(since) >= STABLE_RUN);
        let delay = if stable { RESTART_DELAY } else { self.delays[i] };
        self.delays[i] = if stable { RESTART_DELAY } else { (delay * 2).min(MAX_RESTART_DELAY) };
        self.states[i] = State::Exited { restart_at: now + delay };
        Some(delay)
    }

    /// Records the exit of `pid`: the service it was (None for an orphan) and its restart pause.
    pub fn exited(&mut self, pid: i32, now: Instant) -> Option<(usize, Option<Duration>)> {
        let i = self.states.iter().position(|s| matches!(*s, State::Running { pid: p, .. } if p == pid))?;
        Some((i, self.exited_at(i, now)))
    }

    /// Running services in stop order (reverse of start order) with their pids.
    pub fn stop_order(&self) -> Vec<(usize, i32)> {
        (0..self.states.len())
            .rev()
            .filter_map(|i| match self.states[i] {
                State::Running { pid, .. } => Some((i, pid)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sup() -> Supervisor {
        let getty = Service {
            name: "getty".into(),
            argv: vec!["/sbin/agetty".into(), "ttyS0".into()],
            env: Default::default(),
            restart: true,
            after_ready_of: None,
            ready_path: None,
            stop_timeout: Default::default(),
        };
        Supervisor::new(ServicesFile::standard("/usr/sbin/qemu-ga", None, vec!["/usr/bin/dockerd".into()], vec![getty]))
    }

    #[test]
    fn starts_in_order_and_waits_for_readiness() {
        let mut s = sup();
        let t0 = Instant::now();
        assert_eq!(s.due(t0), vec![0, 1], "post waits for dockerd; getty may not overtake it");
        assert!(!s.awaiting_ready(), "nothing started yet");
        s.started(0, 100, t0);
        s.started(1, 101, t0);
        assert_eq!(s.check_ready(&|_| false), vec![0], "qemu-ga has no ready_path");
        assert!(s.awaiting_ready(), "dockerd runs without its socket yet");
        assert_eq!(s.due(t0), Vec::<usize>::new());
        assert_eq!(s.check_ready(&|p| p == "/var/run/docker.sock"), vec![1]);
        assert!(!s.awaiting_ready());
        assert_eq!(s.due(t0), vec![2, 3]);
        s.started(2, 102, t0);
        s.started(3, 103, t0);
        assert_eq!(s.due(t0), Vec::<usize>::new());
        assert_eq!(s.stop_order(), vec![(3, 103), (2, 102), (1, 101), (0, 100)]);
    }

    #[test]
    fn restarts_after_delay_only_when_marked() {
        let mut s = sup();
        let t0 = Instant::now();
        s.due(t0);
        s.started(0, 100, t0);
        s.started(1, 101, t0);
        s.check_ready(&|_| true);
        s.due(t0);
        s.started(2, 102, t0);
        s.started(3, 103, t0);
        assert_eq!(s.exited(102, t0), Some((2, None)));
        assert_eq!(s.state(2), State::Finished, "dinv-post is one-shot");
        assert_eq!(s.exited(100, t0), Some((0, Some(RESTART_DELAY))));
        assert_eq!(s.exited(999, t0), None, "orphans are not services");
        assert_eq!(s.due(t0 + Duration::from_millis(500)), Vec::<usize>::new());
        assert_eq!(s.due(t0 + RESTART_DELAY), vec![0]);
        s.started(0, 200, t0);
        assert_eq!(s.stop_order(), vec![(3, 103), (1, 101), (0, 200)]);
    }

    #[test]
    fn failed_spawn_counts_as_exit() {
        let mut s = sup();
        let t0 = Instant::now();
        s.due(t0);
        assert_eq!(s.exited_at(0, t0), Some(RESTART_DELAY));
        s.started(1, 101, t0);
        assert_eq!(s.state(0), State::Exited { restart_at: t0 + RESTART_DELAY });
        assert_eq!(s.stop_order(), vec![(1, 101)]);
    }

    #[test]
    fn fast_failures_back_off_and_a_stable_run_resets() {
        let mut s = sup();
        let mut now = Instant::now();
        s.due(now);
        let mut pauses = Vec::new();
        for pid in 1..=7 {
            s.started(0, pid, now);
            now += Duration::from_millis(100);
            pauses.push(s.exited(pid, now).unwrap().1.unwrap().as_secs());
            now += MAX_RESTART_DELAY;
        }
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30]);
        s.started(0, 8, now);
        assert_eq!(s.exited(8, now + STABLE_RUN).unwrap().1, Some(RESTART_DELAY));
        let again: Vec<u64> = (9..=11)
            .map(|pid| {
                s.started(0, pid, now);
                s.exited(pid, now).unwrap().1.unwrap().as_secs()
            })
            .collect();
        assert_eq!(again, [1, 2, 4], "doubling starts over after a stable run");
    }
}
