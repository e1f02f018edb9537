//! A real SNMP agent: snmpsim (PyPI `snmpsim`, with `pysmi`; `scripts/test` installs
//! both) on a loopback UDP port, serving a recorded branch router's interfaces from a
//! `.snmprec` data file in a temp dir, over v2c and v3 (SHA-256 + AES-128). Killed when
//! dropped. The credentials are test-only and live here, nowhere else.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The v2c community: snmpsim serves `DIR/<community>.snmprec` to that community.
pub const COMMUNITY: &str = "public";
pub const V3_USER: &str = "wardops-test";
pub const V3_AUTH_KEY: &str = "test-auth-key-1";
pub const V3_PRIV_KEY: &str = "test-priv-key-1";

/// One interface of the recorded router, as the data file writes it.
#[derive(Debug, Clone)]
pub struct Row {
    pub index: u32,
    pub name: &'static str,
    pub descr: &'static str,
    pub alias: &'static str,
    pub admin: u8,
    pub oper: u8,
    pub in_octets: u64,
    pub out_octets: u64,
}

/// A branch router as recorded: two ISP lines, a loopback and a port shut by its admin.
pub fn branch_router() -> Vec<Row> {
    let row = |index, name, descr, alias, admin, oper, in_octets, out_octets| Row {
        index,
        name,
        descr,
        alias,
        admin,
        oper,
        in_octets,
        out_octets,
    };
    vec![
        row(
            1,
            "Gi0/0",
            "GigabitEthernet0/0",
            "MAGTI-uplink",
            1,
            1,
            987_654_321_012,
            123_456_789_012,
        ),
        row(
            2,
            "Gi0/1",
            "GigabitEthernet0/1",
            "SILKNET-uplink",
            1,
            1,
            55_000_000_001,
            44_000_000_002,
        ),
        row(3, "Lo0", "Loopback0", "mgmt", 1, 1, 0, 0),
        row(4, "Gi0/2", "GigabitEthernet0/2", "spare", 2, 2, 0, 0),
    ]
}

/// The `.snmprec` text (`OID|TYPE|VALUE`; 2 Integer, 4 OctetString, 70 Counter64), in
/// OID order as snmpsim's index expects: column by column, each by ifIndex.
pub fn snmprec(rows: &[Row]) -> String {
    let mut lines = vec![
        "1.3.6.1.2.1.1.1.0|4|Cisco IOS Software, ISR4321 (recorded for wardops tests)".to_string(),
        "1.3.6.1.2.1.1.5.0|4|vake-rtr-1".to_string(),
        format!("1.3.6.1.2.1.2.1.0|2|{}", rows.len()),
    ];
    type Cell = fn(&Row) -> String;
    let if_table: [(u32, &str, Cell); 4] = [
        (1, "2", |r| r.index.to_string()),
        (2, "4", |r| r.descr.to_string()),
        (7, "2", |r| r.admin.to_string()),
        (8, "2", |r| r.oper.to_string()),
    ];
    for (column, ty, value) in if_table {
        for r in rows {
            lines.push(format!(
                "1.3.6.1.2.1.2.2.1.{column}.{}|{ty}|{}",
                r.index,
                value(r)
            ));
        }
    }
    let if_x_table: [(u32, &str, Cell); 4] = [
        (1, "4", |r| r.name.to_string()),
        (6, "70", |r| r.in_octets.to_string()),
        (10, "70", |r| r.out_octets.to_string()),
        (18, "4", |r| r.alias.to_string()),
    ];
    for (column, ty, value) in if_x_table {
        for r in rows {
            lines.push(format!(
                "1.3.6.1.2.1.31.1.1.1.{column}.{}|{ty}|{}",
                r.index,
                value(r)
            ));
        }
    }
    lines.join("\n") + "\n"
}

pub struct Snmpsim {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Snmpsim {
    /// Starts the agent serving `rows` and waits until it answers a v2c GET.
    pub fn start(rows: &[Row]) -> Snmpsim {
        Snmpsim::start_records(&snmprec(rows))
    }

    /// Starts the agent serving `records` (`.snmprec` text) as they are.
    pub fn start_records(records: &str) -> Snmpsim {
        Snmpsim::start_at(records, &["127.0.0.1"])
    }

    /// Starts one agent process answering on each of `addresses` (loopback ones), all
    /// on the same port, serving `records`: several routers of one recording.
    pub fn start_at(records: &str, addresses: &[&str]) -> Snmpsim {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::create_dir(dir.path().join("cache")).unwrap();
        write_data(&dir.path().join("data"), records);
        let port = free_udp_port();
        let child = Command::new("snmpsim-command-responder")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(
                addresses
                    .iter()
                    .map(|a| format!("--agent-udpv4-endpoint={a}:{port}")),
            )
            .args(["--v3-user", V3_USER, "--v3-auth-key", V3_AUTH_KEY])
            .args(["--v3-auth-proto", "SHA256", "--v3-priv-key", V3_PRIV_KEY])
            .args(["--v3-priv-proto", "AES"])
            // As root snmpsim insists on dropping to another user, who could not read
            // the temp dir; this agent only ever listens on loopback.
            .env("SNMPSIM_ALLOW_ROOT", "true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("snmpsim.log")).unwrap())
            .spawn()
            .expect("start snmpsim-command-responder (scripts/test installs snmpsim and pysmi)");
        let mut sim = Snmpsim { child, port, dir };
        for address in addresses {
            sim.wait_answering(address);
        }
        sim
    }

    /// Rewrites the data file. snmpsim re-reads a data file whose mtime (in whole
    /// seconds) changed and rebuilds its index when the file is not older than it, so
    /// the mtime is set past both: two rewrites within one second are still seen.
    pub fn rewrite(&self, rows: &[Row]) {
        let data = self.dir.path().join("data");
        let old = std::fs::metadata(data.join(format!("{COMMUNITY}.snmprec")))
            .and_then(|m| m.modified())
            .unwrap();
        write_data(&data, &snmprec(rows));
        let mtime = old.max(SystemTime::now()) + Duration::from_secs(2);
        for file in data_files(&data) {
            let f = std::fs::File::options().write(true).open(file).unwrap();
            f.set_modified(mtime).unwrap();
        }
    }

    /// What the agent logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("snmpsim.log")).unwrap_or_default()
    }

    fn wait_answering(&mut self, address: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 1500];
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("snmpsim exited ({status}):\n{}", self.log());
            }
            socket
                .send_to(&v2c_get_request(COMMUNITY), (address, self.port))
                .unwrap();
            if socket.recv(&mut buf).is_ok_and(|n| n > 0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "snmpsim did not answer on {address}:{} within 30 s:\n{}",
                self.port,
                self.log()
            );
        }
    }
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The same records for v2c (`public.snmprec`, community "public") and for v3 without a
/// context name: snmpsim looks for the empty context under `self` (its own engine) before
/// falling back, so `self.snmprec` is what a v3 request with no context is served.
fn write_data(data: &Path, text: &str) {
    for file in data_files(data) {
        std::fs::write(file, text).unwrap();
    }
}

fn data_files(data: &Path) -> [std::path::PathBuf; 2] {
    [
        data.join(format!("{COMMUNITY}.snmprec")),
        data.join("self.snmprec"),
    ]
}

/// A free UDP port on 127.0.0.1 (the kernel's pick, released for the agent to bind).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A v2c GetRequest for sysDescr.0, BER by hand: the readiness check must not depend on
/// the client under test.
fn v2c_get_request(community: &str) -> Vec<u8> {
    let oid = [0x2b, 6, 1, 2, 1, 1, 1, 0]; // 1.3.6.1.2.1.1.1.0
    let mut varbind = vec![0x06, oid.len() as u8];
    varbind.extend_from_slice(&oid);
    varbind.extend_from_slice(&[0x05, 0x00]); // NULL value
    let varbind = tlv(0x30, &varbind);
    let list = tlv(0x30, &varbind);
    let mut pdu = vec![0x02, 1, 1, 0x02, 1, 0, 0x02, 1, 0]; // request-id 1, no error
    pdu.extend_from_slice(&list);
    let pdu = tlv(0xa0, &pdu);
    let mut message = vec![0x02, 1, 1]; // version: v2c
    message.extend_from_slice(&tlv(0x04, community.as_bytes()));
    message.extend_from_slice(&pdu);
    tlv(0x30, &message)
}

/// A short-form TLV (every part here is under 128 bytes).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, content.len() as u8];
    out.extend_from_slice(content);
    out
}
