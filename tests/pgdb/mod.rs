//! A PostgreSQL database of the test's own on the local server (127.0.0.1:5432, trust),
//! or on a server of the test's own ([`own::OwnPostgres`], for a test that restarts it),
//! created empty and dropped when the guard goes, even if the test panics.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod own;
pub mod proxy;

use std::process::Command;

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";
/// The local server's port.
pub const PORT: u16 = 5432;

pub struct TestDb {
    pub name: String,
    /// The server's port on 127.0.0.1.
    pub port: u16,
}

impl TestDb {
    pub fn create(tag: &str) -> TestDb {
        TestDb::create_on(PORT, tag)
    }

    /// A database of the test's own on the server at 127.0.0.1:`port`.
    pub fn create_on(port: u16, tag: &str) -> TestDb {
        let name = format!("wardops_test_{tag}_{:08x}", rand::random::<u32>());
        let sql = format!("CREATE DATABASE {name}");
        run(psql_on("postgres", port).args(["-q", "-c", &sql]), &sql);
        TestDb { name, port }
    }

    /// URL of this database on the server.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, self.name)
    }

    /// The store's migrations applied, as the appliance applies them at start, and a pool
    /// of 8 connections on the database.
    pub async fn migrated(&self) -> sqlx::PgPool {
        use wardops::store::Store as _;
        let url = self.url();
        let store = wardops::store::Db::open(
            &url,
            std::path::Path::new("."),
            wardops::store::AlertRules::default(),
        )
        .unwrap();
        store.migrate().await.unwrap();
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
            .unwrap()
    }

    /// URL of this database through another address (a proxy), same credentials.
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        format!("postgres://postgres@{addr}/{}", self.name)
    }

    /// Runs `sql` with psql and returns its unaligned output.
    pub fn query(&self, sql: &str) -> String {
        run(
            psql_on(&self.name, self.port).args(["-At", "-F", "|", "-c", sql]),
            sql,
        )
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = psql_on("postgres", self.port)
            .args(["-q", "-c", &drop])
            .output();
    }
}

/// Runs `sql` on the server's maintenance database (`postgres`).
pub fn psql(sql: &str) {
    run(psql_on("postgres", PORT).args(["-q", "-c", sql]), sql);
}

/// psql against `database` on the server at 127.0.0.1:`port`, stopping at the first
/// error.
fn psql_on(database: &str, port: u16) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(["-d", database, "-v", "ON_ERROR_STOP=1"]);
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

/// Runs each named `async fn(&Db)` of the calling test file twice, once per backend: on
/// a PostgreSQL database of its own, and on SQLite at `data/wardops.db` in a temporary
/// directory; each store migrated first, with the alert rules `$rules`.
#[macro_export]
macro_rules! on_both_backends {
    (rules: $rules:expr; $($name:ident),* $(,)?) => {
        mod postgres {
            use wardops::store::Store as _;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::pgdb::TestDb::create(stringify!($name));
                    let path = std::path::Path::new(".");
                    let store = wardops::store::Db::open(&db.url(), path, $rules).unwrap();
                    store.migrate().await.unwrap();
                    super::$name(&store).await;
                }
            )*
        }
        mod sqlite {
            use wardops::store::Store as _;
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = "sqlite://data/wardops.db";
                    let store = wardops::store::Db::open(url, dir.path(), $rules).unwrap();
                    store.migrate().await.unwrap();
                    super::$name(&store).await;
                    assert!(dir.path().join("data/wardops.db").exists());
                }
            )*
        }
    };
}
