//! The real binary under a pretend systemd: the test binds the unix datagram socket that
//! `NOTIFY_SOCKET` names (as systemd does for a `Type=notify` unit), sets `WATCHDOG_USEC`,
//! and reads what the appliance says: `READY=1` once it serves, `WATCHDOG=1` every half
//! period while the prober is healthy, `RELOADING=1` … `READY=1` around a SIGHUP,
//! `STOPPING=1` at SIGTERM. Then it stalls the prober — one thread of the appliance stopped
//! with ptrace, as a hung scheduler would be, while the HTTP server and the watchdog task
//! run on — and sees the pings stop while `/readyz` says why, and start again when the
//! thread runs again.
//!
//! Needs root (ptrace of a process that is not our child's thread group leader).

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Appliance, wait_for, wait_status, write_fast_config};

/// The manager's side of the notify socket: a thread reads every datagram as it comes
/// (as systemd does; a reader that pauses fills the socket's queue of ten) and hands
/// them to the test in order.
struct NotifySocket {
    datagrams: mpsc::Receiver<String>,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let socket = UnixDatagram::bind(path).unwrap();
        let (tx, datagrams) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        NotifySocket { datagrams }
    }

    /// Every datagram received within `window`, one string each.
    fn during(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            got.extend(self.next());
        }
        got
    }

    /// Reads until a datagram has a line equal to `line`; everything read up to it.
    fn until(&self, line: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            if let Some(d) = self.next() {
                let found = d.lines().any(|l| l == line);
                got.push(d);
                if found {
                    return got;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {line} within {timeout:?}; got {got:?}"
            );
        }
    }

    /// The next `STATUS=` line received within `timeout`.
    fn until_status(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(d) = self.next()
                && let Some(s) = d.lines().find_map(|l| l.strip_prefix("STATUS="))
                && s != "serving"
            {
                return s.to_string();
            }
            assert!(Instant::now() < deadline, "no STATUS= within {timeout:?}");
        }
    }

    fn next(&self) -> Option<String> {
        self.datagrams.recv_timeout(Duration::from_millis(100)).ok()
    }
}

fn pings(datagrams: &[String]) -> usize {
    datagrams
        .iter()
        .filter(|d| d.lines().any(|l| l == "WATCHDOG=1"))
        .count()
}

/// The thread id of the appliance's prober (`ProberThread` names it).
fn prober_tid(pid: u32) -> i32 {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap();
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "wardops-prober" {
            return task.file_name().to_str().unwrap().parse().unwrap();
        }
    }
    panic!("no wardops-prober thread in /proc/{pid}/task");
}

/// One thread of another process held stopped (ptrace's group-stop-free
/// `PTRACE_INTERRUPT`), the rest of the process running; resumed when dropped, or after
/// a minute whatever happens to the test.
struct Frozen {
    release: Option<mpsc::Sender<()>>,
    tracer: Option<std::thread::JoinHandle<()>>,
}

fn freeze(tid: i32) -> Frozen {
    let (stopped_tx, stopped) = mpsc::channel::<Result<(), String>>();
    let (release, released) = mpsc::channel::<()>();
    // ptrace ties the tracee to the tracing thread: seize, wait and detach all here.
    let tracer = std::thread::spawn(move || {
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: ptrace and waitpid on a thread id; no memory of ours is handed over.
        unsafe {
            if libc::ptrace(libc::PTRACE_SEIZE, tid, null, null) != 0 {
                let e = std::io::Error::last_os_error();
                let _ = stopped_tx.send(Err(format!("PTRACE_SEIZE {tid}: {e}")));
                return;
            }
            // Stopped at an arbitrary instruction, the thread could be inside malloc with
            // an arena's lock held, and every thread sharing that arena would hang with
            // it: no hung prober does that. So it is stopped again until it is caught
            // waiting in epoll_wait, where it holds nothing.
            let mut idle = false;
            for _ in 0..1000 {
                libc::ptrace(libc::PTRACE_INTERRUPT, tid, null, null);
                let mut status = 0;
                libc::waitpid(tid, &mut status, libc::__WALL);
                if waiting_in_epoll(tid) {
                    idle = true;
                    break;
                }
                libc::ptrace(libc::PTRACE_CONT, tid, null, null);
                std::thread::sleep(Duration::from_millis(3));
            }
            if !idle {
                libc::ptrace(libc::PTRACE_DETACH, tid, null, null);
                let _ = stopped_tx.send(Err(format!("{tid} never caught in epoll_wait")));
                return;
            }
            let _ = stopped_tx.send(Ok(()));
            let _ = released.recv_timeout(Duration::from_secs(60));
            libc::ptrace(libc::PTRACE_DETACH, tid, null, null);
        }
    });
    stopped
        .recv_timeout(Duration::from_secs(10))
        .expect("the tracer answers")
        .unwrap();
    Frozen {
        release: Some(release),
        tracer: Some(tracer),
    }
}

/// Whether thread `tid` (stopped) is in epoll_wait or epoll_pwait: the first field of
/// /proc/PID/syscall is the number of the system call it is blocked in.
fn waiting_in_epoll(tid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{tid}/syscall")) else {
        return false;
    };
    let number: Option<libc::c_long> = text.split(' ').next().and_then(|n| n.parse().ok());
    [
        libc::SYS_epoll_wait,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_pwait2,
    ]
    .iter()
    .any(|&call| number == Some(call))
}

impl Drop for Frozen {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.tracer.take() {
            let _ = t.join();
        }
    }
}

fn readyz(app: &Appliance) -> (u16, String) {
    let resp = reqwest::blocking::get(app.url("/readyz")).unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

#[test]
fn the_watchdog_is_fed_while_the_prober_is_healthy_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    write_fast_config(dir.path(), "sdnotify", &[("sd-atm-1", "127.151.0.1")]);
    let socket_path = dir.path().join("notify.sock");
    let notify = NotifySocket::bind(&socket_path);
    let app = Appliance::start_with(
        dir.path(),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            // One second: a ping every half second.
            ("WATCHDOG_USEC", "1000000"),
        ],
    );

    let before_ready = notify.until("READY=1", Duration::from_secs(20));
    assert_eq!(pings(&before_ready), 0, "no ping before READY=1");
    wait_status(&app, "sd-atm-1", "up");
    let healthy = notify.during(Duration::from_secs(3));
    assert!(
        (3..=8).contains(&pings(&healthy)),
        "about six pings in 3 s at a 500 ms period: {healthy:?}"
    );

    // SIGHUP: systemd is told a reload is under way and when it is over.
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &app.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let reload = notify.until("RELOADING=1", Duration::from_secs(5));
    assert!(
        reload
            .last()
            .unwrap()
            .lines()
            .any(|l| l.starts_with("MONOTONIC_USEC=")),
        "RELOADING=1 comes with MONOTONIC_USEC: {reload:?}"
    );
    notify.until("READY=1", Duration::from_secs(10));

    // The prober's thread stops; the server and the watchdog task do not.
    let frozen = freeze(prober_tid(app.pid()));
    let (_, why) = wait_for(Duration::from_secs(30), "/readyz to fail", || {
        Some(readyz(&app)).filter(|(code, _)| *code == 503)
    });
    assert!(why.contains("stalled"), "{why}");
    // A tick may have been on its way when /readyz was asked.
    let withheld = notify.until_status(Duration::from_secs(30));
    assert!(
        withheld.contains("the prober is stalled"),
        "systemctl status says why: {withheld}"
    );
    let stalled = notify.during(Duration::from_secs(3));
    assert_eq!(pings(&stalled), 0, "no ping while stalled: {stalled:?}");
    assert!(
        app.log().contains("not feeding the systemd watchdog"),
        "{}",
        app.log()
    );

    drop(frozen);
    wait_for(Duration::from_secs(20), "/readyz to pass again", || {
        Some(readyz(&app)).filter(|(code, _)| *code == 200)
    });
    notify.until("WATCHDOG=1", Duration::from_secs(5));
    let resumed = notify.during(Duration::from_secs(2));
    assert!(pings(&resumed) >= 2, "pings again: {resumed:?}");

    // SIGTERM (the Appliance's drop): the drain is announced.
    drop(app);
    notify.until("STOPPING=1", Duration::from_secs(5));
}

#[test]
fn without_a_notify_socket_there_is_no_watchdog() {
    // Started by hand or by a unit that is not Type=notify: nothing to tell, no task.
    let dir = tempfile::tempdir().unwrap();
    write_fast_config(dir.path(), "sdnone", &[("sd-atm-2", "127.151.0.2")]);
    let app = Appliance::start_with(dir.path(), &[("WATCHDOG_USEC", "1000000")]);
    wait_status(&app, "sd-atm-2", "up");
    let log = app.log();
    assert!(!log.contains("systemd watchdog"), "{log}");
}
