//! A PostgreSQL server of the test's own (`initdb` into a temporary directory, its own
//! port on 127.0.0.1, trust authentication), for a test that stops and restarts the
//! server: the shared one at 5432 is never touched. The server runs as the `postgres`
//! user (it refuses root), without fsync (a test's data need not survive a power cut);
//! it is stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct OwnPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        let dir = tempfile::tempdir().unwrap();
        // The server's directory must be its user's.
        run(Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = OwnPostgres { port, dir };
        let data = pg.data();
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{BIN}/initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        pg.up();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        run(pg_ctl(&self.data())
            .args(["-w", "-t", "30", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("start"));
    }

    /// Stops the server (fast: every session ended, as a restart does).
    pub fn down(&self) {
        run(pg_ctl(&self.data()).args(["-w", "-m", "fast", "stop"]));
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = pg_ctl(&self.data())
            .args(["-m", "immediate", "stop"])
            .output();
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pg_ctl(data: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"])
        .arg(format!("{BIN}/pg_ctl"))
        .arg("-D")
        .arg(data);
    cmd
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .expect("the PostgreSQL 15 server binaries are installed");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
