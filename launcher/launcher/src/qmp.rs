//! QMP client: greeting, `qmp_capabilities`, then one command; events
//! arriving in between are skipped.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// An open QMP session in command mode.
pub struct Qmp {
    path: PathBuf,
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Qmp {
    /// Connects, reads the greeting and negotiates capabilities.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp, String> {
        let stream = UnixStream::connect(path).map_err(|e| format!("QMP {}: connect: {e}", path.display()))?;
        stream.set_read_timeout(Some(timeout)).and_then(|()| stream.set_write_timeout(Some(timeout))).map_err(|e| e.to_string())?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut q = Qmp { path: path.to_path_buf(), stream, reader };
        let greeting = q.read()?.ok_or_else(|| q.err("closed before the greeting"))?;
        if greeting.get("QMP").is_none() {
            return Err(q.err(&format!("unexpected greeting {greeting}")));
        }
        q.execute("qmp_capabilities")?;
        Ok(q)
    }

    fn err(&self, why: &str) -> String {
        format!("QMP {}: {why}", self.path.display())
    }

    /// Next non-event message, or None at end of stream.
    fn read(&mut self) -> Result<Option<Value>, String> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).map_err(|e| self.err(&format!("reading: {e}")))? == 0 {
                return Ok(None);
            }
            let v: Value = serde_json::from_str(line.trim()).map_err(|e| self.err(&format!("bad JSON {line:?}: {e}")))?;
            if v.get("event").is_none() {
                return Ok(Some(v));
            }
        }
    }

    /// Runs a command without arguments and returns its `return` value.
    /// End of stream right after `quit` counts as success.
    pub fn execute(&mut self, command: &str) -> Result<Value, String> {
        let req = format!("{{\"execute\":\"{command}\"}}\n");
        self.stream.write_all(req.as_bytes()).map_err(|e| self.err(&format!("sending {command}: {e}")))?;
        self.reply(command)
    }

    /// Runs a command with arguments.
    pub fn execute_with(&mut self, command: &str, arguments: Value) -> Result<Value, String> {
        let req = format!("{}\n", serde_json::json!({"execute": command, "arguments": arguments}));
        self.stream.write_all(req.as_bytes()).map_err(|e| self.err(&format!("sending {command}: {e}")))?;
        self.reply(command)
    }

    fn reply(&mut self, command: &str) -> Result<Value, String> {
        match self.read()? {
            Some(v) if v.get("return").is_some() => Ok(v["return"].clone()),
            Some(v) => Err(self.err(&format!("{command} failed: {}", v.get("error").unwrap_or(&v)))),
            None if command == "quit" => Ok(Value::Null),
            None => Err(self.err(&format!("closed before answering {command}"))),
        }
    }
}

/// Asks the guest to power off via ACPI (`system_powerdown`).
pub fn system_powerdown(path: &Path, timeout: Duration) -> Result<(), String> {
    Qmp::connect(path, timeout)?.execute("system_powerdown").map(drop)
}

/// Makes QEMU exit at once (`quit`), like pulling the plug but with QEMU
/// flushing its disk caches first.
pub fn quit(path: &Path, timeout: Duration) -> Result<(), String> {
    Qmp::connect(path, timeout)?.execute("quit").map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn negotiates_then_runs_the_command() {
        let d = std::env::temp_dir().join(format!("dinv-qmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let sock = d.join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let h = std::thread::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..2 {
                let (mut conn, _) = listener.accept().unwrap();
                conn.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n").unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap() > 0 {
                    got.push(line.trim().to_string());
                    if line.contains("system_powerdown") {
                        conn.write_all(b"{\"event\": \"POWERDOWN\", \"data\": {}}\r\n").unwrap();
                    }
                    if line.contains("quit") {
                        break; // QEMU may exit without answering
                    }
                    conn.write_all(b"{\"return\": {}}\r\n").unwrap();
                    line.clear();
                }
            }
            got
        });
        system_powerdown(&sock, Duration::from_secs(5)).unwrap();
        quit(&sock, Duration::from_secs(5)).unwrap();
        assert_eq!(
            h.join().unwrap(),
            [
                r#"{"execute":"qmp_capabilities"}"#,
                r#"{"execute":"system_powerdown"}"#,
                r#"{"execute":"qmp_capabilities"}"#,
                r#"{"execute":"quit"}"#
            ]
        );
        assert!(quit(&d.join("none.sock"), Duration::from_millis(100)).unwrap_err().contains("none.sock"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
