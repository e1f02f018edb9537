//! The standard `process_*` families, read from `/proc/self` at scrape time (Linux
//! only; elsewhere nothing is written). The names follow the Prometheus client
//! libraries' process collector so that stock dashboards work.

use super::exposition::{Kind, Writer};

/// Figures of this process, each absent when its source cannot be read.
#[derive(Debug, Default, PartialEq)]
pub struct Process {
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

impl Process {
    pub fn read() -> Process {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_boot_time(&s));
        let mut process = stat
            .as_deref()
            .map(|s| parse_stat(s, ticks_per_second(), page_size(), boot_time))
            .unwrap_or_default();
        process.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        process.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| parse_max_fds(&s));
        process
    }

    pub fn encode(&self, w: &mut Writer) {
        let gauges: [(&str, &str, Option<f64>); 5] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                self.resident_memory_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                self.virtual_memory_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                self.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                self.max_fds.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                self.start_time_seconds,
            ),
        ];
        if let Some(cpu) = self.cpu_seconds {
            w.family(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                Kind::Counter,
            );
            w.sample("process_cpu_seconds_total", b"", cpu);
        }
        for (name, help, value) in gauges {
            if let Some(value) = value {
                w.family(name, help, Kind::Gauge);
                w.sample(name, b"", value);
            }
        }
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

/// Fields of `/proc/self/stat` (see proc(5)). The command name in field 2 is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_stat(stat: &str, ticks: f64, page_size: u64, boot_time: Option<u64>) -> Process {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Process::default();
    };
    // rest starts at field 3 (state); field k is at index k - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |k: usize| fields.get(k - 3).and_then(|v| v.parse::<u64>().ok());
    let cpu = field(14)
        .zip(field(15))
        .map(|(user, system)| (user + system) as f64 / ticks);
    Process {
        cpu_seconds: cpu,
        virtual_memory_bytes: field(23),
        resident_memory_bytes: field(24).map(|pages| pages * page_size),
        start_time_seconds: field(22)
            .zip(boot_time)
            .map(|(start, boot)| boot as f64 + start as f64 / ticks),
        ..Process::default()
    }
}

fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1000 123456789 300 18446744073709551615";
        let p = parse_stat(stat, 100.0, 4096, Some(1_700_000_000));
        assert_eq!(p.cpu_seconds, Some(3.0));
        assert_eq!(p.virtual_memory_bytes, Some(123_456_789));
        assert_eq!(p.resident_memory_bytes, Some(300 * 4096));
        assert_eq!(p.start_time_seconds, Some(1_700_000_010.0));
    }

    #[test]
    fn limits_and_boot_time_parse() {
        let limits = "Limit  Soft Limit Hard Limit Units\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn this_process_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            let p = Process::read();
            assert!(p.resident_memory_bytes.unwrap() > 0 && p.open_fds.unwrap() > 0);
            assert!(p.start_time_seconds.unwrap() > 1_500_000_000.0);
        }
    }
}
