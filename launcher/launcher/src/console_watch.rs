//! Follows the console log QEMU writes (`-chardev stdio,...,logfile=`) and
//! feeds each line to the boot [`Timeline`]. QEMU writes the log with plain
//! write(2) calls as the guest prints, so reading the file adds nothing to
//! the console's own path (stdout stays QEMU's); a thread woken by inotify
//! notes when each line arrived. It runs only until readiness.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::timeline::Timeline;

/// A line longer than this without a newline is dropped (not a marker).
const MAX_LINE: usize = 64 * 1024;

/// Reads the log incrementally; line times count from `start` (QEMU's start).
pub struct ConsoleReader {
    path: PathBuf,
    start: Instant,
    file: Option<File>,
    offset: u64,
    partial: Vec<u8>,
    timeline: Timeline,
}

impl ConsoleReader {
    pub fn new(path: impl Into<PathBuf>, start: Instant) -> ConsoleReader {
        ConsoleReader { path: path.into(), start, file: None, offset: 0, partial: Vec::new(), timeline: Timeline::default() }
    }

    /// The markers seen so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Reads whatever the log gained since the last call. A log that does
    /// not exist yet (QEMU still starting) is simply not read.
    pub fn poll(&mut self) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(mut file) = self.file.take() else { return };
        // A shorter file was truncated by a new QEMU: start over with it.
        if file.metadata().is_ok_and(|m| m.len() < self.offset) && file.rewind().is_ok() {
            self.offset = 0;
            self.partial.clear();
            self.timeline = Timeline::default();
        }
        self.read_all(&mut file);
        self.file = Some(file);
    }

    fn read_all(&mut self, file: &mut File) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    self.offset += n as u64;
                    let read = self.start.elapsed().as_secs_f64();
                    self.feed(&buf[..n], read);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Splits `bytes` into lines (keeping an unfinished one for later).
    fn feed(&mut self, bytes: &[u8], read: f64) {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.timeline.observe(String::from_utf8_lossy(&line[..end]).as_ref(), read);
        }
        if self.partial.len() > MAX_LINE {
            self.partial.clear();
        }
    }
}

/// An inotify descriptor watching one file for writes.
struct Inotify(libc::c_int);

impl Inotify {
    fn new() -> Option<Inotify> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        (fd >= 0).then_some(Inotify(fd))
    }

    /// Watches `path` for writes; false if it does not exist (yet).
    fn watch(&self, path: &Path) -> bool {
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
        // SAFETY: a valid descriptor and NUL-terminated path.
        unsafe { libc::inotify_add_watch(self.0, c.as_ptr(), libc::IN_MODIFY) >= 0 }
    }

    /// Waits up to `timeout` for a write, then empties the event queue.
    fn wait(&self, timeout: Duration) {
        let mut pfd = libc::pollfd { fd: self.0, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
        let mut buf = [0u8; 4096];
        // SAFETY: reading into our buffer from a non-blocking descriptor.
        while unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// A thread following the console log until [`Follower::finish`] or drop.
pub struct Follower {
    reader: Arc<Mutex<ConsoleReader>>,
    stop: Arc<AtomicBool>,
}

impl Follower {
    /// Follows `path`, timing lines from `start`.
    pub fn start(path: PathBuf, start: Instant) -> Follower {
        let reader = Arc::new(Mutex::new(ConsoleReader::new(path.clone(), start)));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (reader.clone(), stop.clone());
        std::thread::spawn(move || follow(&path, &r, &s));
        Follower { reader, stop }
    }

    /// Whether the console showed the guest's kernel running yet (see
    /// [`Timeline::kernel_running`]).
    pub fn kernel_running(&self) -> bool {
        self.reader.lock().unwrap_or_else(|e| e.into_inner()).timeline().kernel_running()
    }

    /// Stops following and returns the timeline, including lines written
    /// up to now.
    pub fn finish(self) -> Timeline {
        self.stop.store(true, Ordering::SeqCst);
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        reader.poll();
        reader.timeline().clone()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn follow(path: &Path, reader: &Mutex<ConsoleReader>, stop: &AtomicBool) {
    let notify = Inotify::new();
    let mut watching = false;
    while !stop.load(Ordering::SeqCst) {
        // Watch before reading, so a write between the two still wakes us.
        if !watching {
            watching = notify.as_ref().is_some_and(|n| n.watch(path));
        }
        reader.lock().unwrap_or_else(|e| e.into_inner()).poll();
        match (&notify, watching) {
            // The timeout only bounds how late a stop is noticed.
            (Some(n), true) => n.wait(Duration::from_millis(100)),
            // No log yet (QEMU creates it within milliseconds), or no inotify.
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Marker;
    use std::io::Write;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dinv-console-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lines_split_across_reads_and_truncation() {
        let dir = scratch("reader");
        let log = dir.join("console.log");
        let mut r = ConsoleReader::new(&log, Instant::now());
        r.poll(); // no file yet
        let mut f = File::create(&log).unwrap();
        f.write_all(b"[    1.000] dinv-init: sta").unwrap();
        r.poll();
        assert!(r.timeline().get(Marker::Initramfs).is_none(), "half a line is not a line");
        f.write_all(b"rting\r\n[    2.000] dinv-init: switched root; executing /sbin/init\r\n").unwrap();
        r.poll();
        assert_eq!(r.timeline().get(Marker::Initramfs).unwrap().line, "[    1.000] dinv-init: starting");
        assert!(r.timeline().get(Marker::SwitchRoot).is_some());
        // A new QEMU truncates the log: the old run's markers are dropped.
        let mut f = File::create(&log).unwrap();
        f.write_all(b"[    0.500] dinv-guest: init starting\n").unwrap();
        r.poll();
        assert!(r.timeline().get(Marker::Initramfs).is_none());
        assert!(r.timeline().get(Marker::GuestInit).is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn follower_sees_lines_as_they_are_written() {
        let dir = scratch("follow");
        let log = dir.join("console.log");
        let start = Instant::now();
        let follower = Follower::start(log.clone(), start);
        std::thread::sleep(Duration::from_millis(50));
        let mut f = File::create(&log).unwrap();
        writeln!(f, "[    0.000000] Linux version 6.1.0-test").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        writeln!(f, "[    0.200] dinv-guest: started dockerd (pid 7)").unwrap();
        let t = follower.finish();
        let kernel = t.get(Marker::Kernel).expect("kernel line");
        let dockerd = t.get(Marker::Dockerd).expect("the line written just before finish");
        // Read promptly after being written (inotify, not a slow poll).
        assert!(kernel.read >= 0.05 && kernel.read < 0.2, "{kernel:?}");
        assert!(dockerd.read - kernel.read >= 0.15, "{kernel:?} {dockerd:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
