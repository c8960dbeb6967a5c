//! Processes and commands: spawning daemons inside a namespace, identifying them by pid
//! *and* start time (so a recycled pid is never signalled), stopping them, and running
//! `ip` and shell commands with their errors captured.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A process we started: its pid and its start time in clock ticks since boot
/// (`/proc/<pid>/stat` field 22), which together name it uniquely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcId {
    /// Identifies a live process.
    pub fn of(pid: i32) -> Option<ProcId> {
        let (start_time, _) = stat(pid)?;
        Some(ProcId { pid, start_time })
    }

    /// Whether this very process still runs (a zombie counts as gone; it is reaped).
    pub fn alive(&self) -> bool {
        match stat(self.pid) {
            Some((start, state)) if start == self.start_time => {
                if state == 'Z' {
                    reap(self.pid);
                    false
                } else {
                    true
                }
            }
            _ => false,
        }
    }

    /// Sends `sig` if the process is still the one we started.
    pub fn signal(&self, sig: Signal) {
        if self.alive() {
            let _ = kill(Pid::from_raw(self.pid), sig);
        }
    }
}

/// Start time and state letter of a pid, from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (state); start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// Reaps `pid` if it is our exited child; harmless otherwise.
fn reap(pid: i32) {
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

/// Stops processes: SIGTERM, then SIGKILL for those still alive after `grace`, then waits
/// until all are gone (reaping our own children).
pub fn stop_all(procs: &[ProcId], grace: Duration) {
    for p in procs {
        p.signal(Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while procs.iter().any(ProcId::alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in procs {
        p.signal(Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs.iter().any(ProcId::alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Spawns `argv` inside network namespace `ns` as a process of its own (own process
/// group, stdin closed, stdout and stderr appended to `log`). `ip netns exec` execs the
/// command, so the returned pid is the daemon's own.
pub fn spawn_in_ns(
    ns: &str,
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    log: &Path,
) -> Result<ProcId> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::io(log, e))?;
    let err = out.try_clone().map_err(|e| Error::io(log, e))?;
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Command {
            context: format!("namespace {ns}"),
            command: argv.join(" "),
            stderr: e.to_string(),
        })?;
    let pid = child.id() as i32;
    // The child is tracked by pid from now on; dropping the handle neither waits nor kills.
    drop(child);
    ProcId::of(pid).ok_or_else(|| Error::Command {
        context: format!("namespace {ns}"),
        command: argv.join(" "),
        stderr: "exited immediately".into(),
    })
}

/// Runs a command to completion and returns its stdout; a non-zero exit is an error
/// carrying stderr (or stdout when stderr is empty).
pub fn run(context: &str, cmd: &mut Command, stdin: Option<&str>) -> Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().map_err(|e| Error::Command {
        context: context.to_string(),
        command: shown.clone(),
        stderr: e.to_string(),
    })?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // A command that exits early closes the pipe; its exit status tells the story.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| Error::Command {
        context: context.to_string(),
        command: shown.clone(),
        stderr: e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if msg.is_empty() {
            msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        if msg.is_empty() {
            msg = out.status.to_string();
        }
        Err(Error::Command {
            context: context.to_string(),
            command: shown,
            stderr: msg,
        })
    }
}

/// `ip ARGS...`.
pub fn ip(context: &str, args: &[&str]) -> Result<String> {
    run(context, Command::new("ip").args(args), None)
}

/// `ip [-n NS] -batch -` with `batch` on stdin.
pub fn ip_batch(context: &str, ns: Option<&str>, batch: &str) -> Result<String> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    cmd.args(["-batch", "-"]);
    run(context, &mut cmd, Some(batch))
}

/// The last `n` lines of a log file (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read: {e})"),
    }
}

/// Whether a network namespace of this name exists.
pub fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// Pids of every process inside namespace `ns` (`ip netns pids`).
pub fn netns_pids(ns: &str) -> Vec<i32> {
    ip("netns pids", &["netns", "pids", ns])
        .map(|out| out.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_with_stable_identity() {
        let me = ProcId::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        let other = ProcId {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(
            !other.alive(),
            "a different start time is a different process"
        );
    }

    #[test]
    fn stop_all_terminates_and_reaps_a_child() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let id = ProcId::of(child.id() as i32).unwrap();
        stop_all(std::slice::from_ref(&id), Duration::from_secs(2));
        assert!(!id.alive());
        // stop_all reaped it already; wait() then reports the child as gone.
        let _ = child.wait();
    }

    #[test]
    fn run_reports_stderr() {
        let err = run(
            "test",
            Command::new("sh").args(["-c", "echo oops >&2; exit 3"]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("oops"), "{err}");
        assert_eq!(
            run("test", &mut Command::new("cat"), Some("hi")).unwrap(),
            "hi"
        );
    }
}
