//! QEMU guest agent client: `guest-sync` with a random id (so a stale reply
//! from an earlier client cannot be mistaken for ours), then commands:
//! `guest-shutdown` (never answered), and for a restored guest
//! `guest-exec` with its status.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// A random guest-sync id from /dev/urandom (31 bits, so any JSON reader
/// keeps it exact).
pub fn random_id() -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b) & 0x7fff_ffff)
}

/// The exact request line for guest-sync.
pub fn sync_request(id: u32) -> String {
    format!("{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{id}}}}}\n")
}

/// The exact request line for guest-shutdown (power off).
pub const SHUTDOWN_REQUEST: &str = "{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"powerdown\"}}\n";

/// A connection to the agent, synchronised.
pub struct Qga {
    path: PathBuf,
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    deadline: Instant,
}

/// What a `guest-exec`'d program did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exited {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl Qga {
    /// Connects and synchronises; every later answer must come before
    /// `timeout` from now.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Qga, String> {
        let ctx = |what: &str, e: std::io::Error| format!("guest agent {}: {what}: {e}", socket.display());
        let stream = UnixStream::connect(socket).map_err(|e| ctx("connect", e))?;
        stream.set_write_timeout(Some(timeout)).map_err(|e| ctx("socket", e))?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| ctx("socket", e))?);
        let mut q = Qga { path: socket.to_path_buf(), stream, reader, deadline: Instant::now() + timeout };
        let id = random_id().map_err(|e| format!("/dev/urandom: {e}"))?;
        q.send(&sync_request(id))?;
        q.answer(&|v| v.get("return").and_then(|r| r.as_u64()) == Some(id as u64), "guest-sync")?;
        Ok(q)
    }

    fn err(&self, what: &str) -> String {
        format!("guest agent {}: {what}", self.path.display())
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        (&self.stream).write_all(line.as_bytes()).map_err(|e| self.err(&format!("sending: {e}")))
    }

    /// The next JSON line `wanted` accepts; others (stale answers) are skipped.
    fn answer(&mut self, wanted: &dyn Fn(&Value) -> bool, what: &str) -> Result<Value, String> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.err(&format!("no answer to {what} in time")));
            }
            self.stream.set_read_timeout(Some(left)).map_err(|e| self.err(&e.to_string()))?;
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return Err(self.err(&format!("connection closed before {what} answered"))),
                Ok(_) => {
                    if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
                        if wanted(&v) {
                            return Ok(v);
                        }
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(e) => return Err(self.err(&format!("reading: {e}"))),
            }
        }
    }

    /// Runs one command; its `return` value, or its error's description.
    pub fn call(&mut self, command: &str, arguments: Value) -> Result<Value, String> {
        let mut req = json!({"execute": command});
        if !arguments.is_null() {
            req["arguments"] = arguments;
        }
        self.send(&format!("{req}\n"))?;
        let v = self.answer(&|v| v.get("return").is_some() || v.get("error").is_some(), command)?;
        match v.get("return") {
            Some(r) => Ok(r.clone()),
            None => Err(self.err(&format!("{command}: {}", v["error"]["desc"].as_str().unwrap_or(&v["error"].to_string())))),
        }
    }

    /// Runs `path args` in the guest with `input` on its stdin, and waits
    /// for it to exit (polling every `poll`).
    pub fn exec(&mut self, path: &str, args: &[&str], input: &[u8], poll: Duration) -> Result<Exited, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let started = self.call("guest-exec", json!({"path": path, "arg": args, "input-data": b64.encode(input), "capture-output": true}))?;
        let pid = started["pid"].as_i64().ok_or_else(|| self.err(&format!("guest-exec answered {started}")))?;
        loop {
            let st = self.call("guest-exec-status", json!({"pid": pid}))?;
            if st["exited"].as_bool() == Some(true) {
                let text = |k: &str| st[k].as_str().and_then(|d| b64.decode(d).ok()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                // A program killed by a signal has no exit code.
                let code = st["exitcode"].as_i64().unwrap_or_else(|| 128 + st["signal"].as_i64().unwrap_or(0));
                return Ok(Exited { code, stdout: text("out-data"), stderr: text("err-data") });
            }
            std::thread::sleep(poll);
        }
    }
}

/// Asks the guest to power off. Fails if the agent does not answer the
/// sync within `timeout` (not running yet, or the guest is hung).
pub fn shutdown(socket: &Path, timeout: Duration) -> Result<(), String> {
    let mut q = Qga::connect(socket, timeout)?;
    q.send(SHUTDOWN_REQUEST).map_err(|e| e.replace("sending", "sending guest-shutdown"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake agent: answers guest-sync (after a stale line), records what it got.
    fn fake_agent(dir: &Path, answer: bool) -> (std::path::PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let sock = dir.join("qga.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let h = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut got = Vec::new();
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 0 {
                got.push(line.clone());
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if v["execute"] == "guest-sync" && answer {
                    let id = v["arguments"]["id"].as_u64().unwrap();
                    (&conn).write_all(format!("{{\"return\": {}}}\n", id.wrapping_add(1)).as_bytes()).unwrap();
                    (&conn).write_all(format!("{{\"return\": {id}}}\n").as_bytes()).unwrap();
                }
                line.clear();
            }
            got
        });
        (sock, h)
    }

    #[test]
    fn sync_then_shutdown() {
        let d = std::env::temp_dir().join(format!("dinv-qga-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let (sock, h) = fake_agent(&d, true);
        shutdown(&sock, Duration::from_secs(5)).unwrap();
        let got = h.join().unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        let v: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
        let id = v["arguments"]["id"].as_u64().unwrap() as u32;
        assert_eq!(got[0], sync_request(id));
        assert_eq!(got[1], SHUTDOWN_REQUEST);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn silent_agent_times_out_without_shutdown() {
        let d = std::env::temp_dir().join(format!("dinv-qga-silent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let (sock, h) = fake_agent(&d, false);
        let t = Instant::now();
        let err = shutdown(&sock, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("no answer to guest-sync"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(2));
        let got = h.join().unwrap();
        assert_eq!(got.len(), 1, "guest-shutdown must not be sent: {got:?}");
        assert!(shutdown(&d.join("absent.sock"), Duration::from_millis(100)).unwrap_err().contains("connect"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ids_differ() {
        let ids: std::collections::BTreeSet<u32> = (0..4).map(|_| random_id().unwrap()).collect();
        assert!(ids.len() > 1 && ids.iter().all(|&i| i <= 0x7fff_ffff));
    }

    #[test]
    fn errors_and_exec_with_stdin() {
        let d = std::env::temp_dir().join(format!("dinv-qga-exec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let sock = d.join("qga.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let h = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let (mut got, mut polls) = (Vec::new(), 0);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 0 {
                let v: Value = serde_json::from_str(&line).unwrap();
                got.push(v.clone());
                let answer = match v["execute"].as_str().unwrap() {
                    "guest-sync" => json!({"return": v["arguments"]["id"]}),
                    "guest-set-time" => json!({"error": {"class": "GenericError", "desc": "this feature or command is not currently supported"}}),
                    "guest-exec" => json!({"return": {"pid": 42}}),
                    "guest-exec-status" if polls == 0 => {
                        polls += 1;
                        json!({"return": {"exited": false}})
                    }
                    "guest-exec-status" => json!({"return": {"exited": true, "exitcode": 3, "out-data": "aGVsbG8K"}}),
                    other => panic!("{other}"),
                };
                (&conn).write_all(format!("{answer}\n").as_bytes()).unwrap();
                line.clear();
            }
            got
        });
        let mut q = Qga::connect(&sock, Duration::from_secs(5)).unwrap();
        let e = q.call("guest-set-time", json!({"time": 1_700_000_000_000_000_000i64})).unwrap_err();
        assert!(e.contains("guest-set-time: this feature or command is not currently supported"), "{e}");
        let out = q.exec("/usr/sbin/dinv-guest", &["restore"], b"{}", Duration::from_millis(10)).unwrap();
        assert_eq!(out, Exited { code: 3, stdout: "hello\n".into(), stderr: String::new() });
        drop(q);
        let got = h.join().unwrap();
        assert_eq!(got[1]["arguments"]["time"], 1_700_000_000_000_000_000i64);
        assert_eq!(got[2]["arguments"], json!({"path": "/usr/sbin/dinv-guest", "arg": ["restore"], "input-data": "e30=", "capture-output": true}));
        assert_eq!(got[3..].iter().map(|v| v["arguments"]["pid"].as_i64()).collect::<Vec<_>>(), [Some(42), Some(42)]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
