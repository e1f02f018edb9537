//! A PostgreSQL database of the test's own on the local server (127.0.0.1:5432, trust),
//! created empty and dropped when the guard goes, even if the test panics.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod proxy;

use std::process::Command;

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn create(tag: &str) -> TestDb {
        let name = format!("wardops_test_{tag}_{:08x}", rand::random::<u32>());
        psql(&format!("CREATE DATABASE {name}"));
        TestDb { name }
    }

    /// URL of this database on the server.
    pub fn url(&self) -> String {
        format!("{SERVER}/{}", self.name)
    }

    /// URL of this database through another address (a proxy), same credentials.
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        format!("postgres://postgres@{addr}/{}", self.name)
    }

    /// Runs `sql` with psql and returns its unaligned output.
    pub fn query(&self, sql: &str) -> String {
        run(psql_on(&self.name).args(["-At", "-F", "|", "-c", sql]), sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = psql_on("postgres").args(["-q", "-c", &drop]).output();
    }
}

/// Runs `sql` on the server's maintenance database (`postgres`).
pub fn psql(sql: &str) {
    run(psql_on("postgres").args(["-q", "-c", sql]), sql);
}

/// psql against `database` on the local server, stopping at the first error.
fn psql_on(database: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args(["-h", "127.0.0.1", "-U", "postgres", "-d", database])
        .args(["-v", "ON_ERROR_STOP=1"]);
    cmd
}

/// Runs a psql command, failing the test with psql's message if it fails.
fn run(cmd: &mut Command, sql: &str) -> String {
    let out = cmd.output().expect("psql is installed");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
