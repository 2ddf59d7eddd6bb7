//! The process figures every Prometheus client library exports (`process_*`), read from
//! `/proc` at scrape time. Elsewhere than Linux there is no `/proc`, and nothing is added.

use std::fs;

use super::metrics::Scrape;

/// What `/proc/self/stat` and friends say about this process.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
}

/// Adds the process figures to a scrape.
pub fn record(scrape: &mut Scrape) {
    let Some(figures) = read() else {
        return;
    };
    let one = |value: f64| [(Vec::new(), value)];
    scrape.counter(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        one(figures.cpu_seconds),
    );
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            figures.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            figures.virtual_bytes,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            figures.start_time_seconds,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            figures.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            figures.max_fds,
        ),
    ];
    for (name, help, value) in gauges {
        scrape.gauge(name, help, one(value));
    }
}

fn read() -> Option<Figures> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_boot_time(&s))?;
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let mut figures = parse_stat(&stat, ticks as f64, page as f64, boot_time)?;
    figures.open_fds = fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    figures.max_fds = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft as f64)
        .unwrap_or(0.0);
    Some(figures)
}

/// The figures in `/proc/self/stat` (fields from `man 5 proc`), the command name being
/// skipped by its closing parenthesis, as it may hold spaces.
fn parse_stat(
    stat: &str,
    ticks_per_second: f64,
    page_size: f64,
    boot_time: f64,
) -> Option<Figures> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // Field 3 (state) is the first after the name.
    let fields: Vec<f64> = after_name
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let field = |n: usize| fields.get(n - 3).copied();
    Some(Figures {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
        start_time_seconds: boot_time + field(22)? / ticks_per_second,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        ..Figures::default()
    })
}

/// `btime` of `/proc/stat`: when the machine booted, in seconds since the epoch.
fn parse_boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_become_figures() {
        let stat = "4242 (ecommerce (x)) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 3 0 5000 104857600 2560 18446744073709551615";
        let figures = parse_stat(stat, 100.0, 4096.0, 1_700_000_000.0).unwrap();
        assert_eq!(figures.cpu_seconds, 4.0);
        assert_eq!(figures.start_time_seconds, 1_700_000_050.0);
        assert_eq!(figures.virtual_bytes, 104_857_600.0);
        assert_eq!(figures.resident_bytes, 2560.0 * 4096.0);
        assert_eq!(
            parse_boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
    }

    #[test]
    fn this_process_is_measured() {
        let figures = read().expect("Linux has /proc");
        assert!(figures.resident_bytes > 1_000_000.0, "{figures:?}");
        assert!(
            figures.open_fds >= 3.0 && figures.max_fds >= figures.open_fds,
            "{figures:?}"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (now - figures.start_time_seconds).abs() < 3600.0,
            "{figures:?}"
        );
    }
}
