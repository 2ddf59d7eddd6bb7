//! What the benches print and write: numbers as the reports spell them, medians, Markdown
//! tables, the machine's description, and BENCHMARKS.md rewritten with its hand-written
//! analysis kept.

use std::path::Path;

/// The line in BENCHMARKS.md after which everything is hand-written, and kept when the
/// bench rewrites the file (the same line the bash bench wrote, so files it wrote keep
/// their analysis too).
pub const MARKER: &str = "<!-- analysis below: kept when scripts/bench.sh rewrites this file -->";

/// `n` with thousands separators: `1,588,932`.
pub fn thousands(n: u64) -> String {
    group(n as f64, 0)
}

/// `x` to `decimals` places with thousands separators: `group(4375.2, 0)` is `4,375`.
pub fn group(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A rate: whole numbers from 100 up, one decimal below (`80.9` journeys/s).
pub fn fmt_rate(x: f64) -> String {
    if x >= 100.0 {
        group(x, 0)
    } else {
        group(x, 1)
    }
}

/// Milliseconds: two decimals below 100 ms, whole ones above.
pub fn fmt_ms(x: f64) -> String {
    if x < 100.0 {
        format!("{x:.2} ms")
    } else {
        format!("{} ms", group(x, 0))
    }
}

/// kB (as /proc counts, 1024 bytes) to MB (10^6 bytes, as the targets are written).
pub fn mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

/// The median: the middle value, or the mean of the two middle ones; 0 of nothing.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A Markdown table: `align` holds `---` or `---:` per column; an empty cell is `| |`.
pub fn table(header: &[&str], align: &[&str], rows: &[Vec<String>]) -> String {
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::from("|");
        for cell in cells {
            if cell.is_empty() {
                out.push_str(" |");
            } else {
                out.push_str(&format!(" {cell} |"));
            }
        }
        out
    };
    let mut lines = vec![
        line(&mut header.iter().copied()),
        line(&mut align.iter().copied()),
    ];
    lines.extend(rows.iter().map(|r| line(&mut r.iter().map(String::as_str))));
    lines.join("\n")
}

/// `doc` (ending in a newline), then the marker, then what followed the marker in `old`,
/// the file this one replaces.
pub fn keeping_analysis(doc: &str, old: Option<&str>) -> String {
    let kept = old
        .and_then(|o| o.split_once(MARKER))
        .map(|(_, after)| after.trim_matches('\n'))
        .unwrap_or_default();
    let mut out = format!("{doc}\n{MARKER}\n");
    if !kept.is_empty() {
        out.push_str(&format!("\n{kept}\n"));
    }
    out
}

/// Writes `doc` to `path`, keeping the hand-written analysis of the file there.
pub fn write_keeping_analysis(path: &Path, doc: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path).ok();
    std::fs::write(path, keeping_analysis(doc, old.as_deref()))
}

/// A value for a shell command line, quoted when it needs to be.
pub fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// `NAME=value ... <command>` for the settings that differ from their defaults.
pub fn command_line(settings: &[(&str, String, String)], command: &str) -> String {
    let mut line = String::new();
    for (name, value, default) in settings {
        if value != default {
            line.push_str(&format!("{name}={} ", shell_quote(value)));
        }
    }
    line + command
}

/// What the machine is, as the reports describe it.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPUs online (Python's `os.cpu_count()`).
    pub cpus: usize,
    /// CPUs this process may use (`nproc`).
    pub nproc: usize,
    pub model: String,
    pub memory_gib: f64,
    pub system: String,
    pub release: String,
    pub arch: &'static str,
}

impl Machine {
    pub fn read() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let meminfo = read("/proc/meminfo");
        // SAFETY: sysconf takes an integer and returns one.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        let nproc = std::process::Command::new("nproc")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(0);
        Machine {
            cpus: usize::try_from(online).unwrap_or(0),
            nproc,
            model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            memory_gib: memory_kb(&meminfo).unwrap_or(0) as f64 / 1024.0 / 1024.0,
            system: read("/proc/sys/kernel/ostype").trim().to_string(),
            release: read("/proc/sys/kernel/osrelease").trim().to_string(),
            arch: std::env::consts::ARCH,
        }
    }
}

pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

pub fn memory_kb(meminfo: &str) -> Option<u64> {
    crate::procs::status_field_kb(meminfo, "MemTotal")
}

/// Now, to the minute: `2026-11-25 23:37 UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_minute(secs)
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC` (the proleptic Gregorian calendar).
pub fn utc_minute(secs: u64) -> String {
    let (year, month, day) = civil_date(secs / 86_400);
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// The calendar date (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's days-to-civil): the tools print UTC dates without a date library.
pub fn civil_date(days: u64) -> (i64, i64, i64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_spelled_as_the_reports_spell_them() {
        assert_eq!(thousands(1_588_932), "1,588,932");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(group(4375.4, 0), "4,375");
        assert_eq!(group(-1234.56, 1), "-1,234.6");
        assert_eq!(fmt_rate(4375.4), "4,375");
        assert_eq!(fmt_rate(80.94), "80.9");
        assert_eq!(fmt_ms(3.4912), "3.49 ms");
        assert_eq!(fmt_ms(1993.2), "1,993 ms");
        // 54,688 kB = 56.0 MB (10^6 bytes)
        assert_eq!(format!("{:.1}", mb(54_688)), "56.0");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[10_895.0, 11_062.0, 11_044.0]), 11_044.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn tables_are_markdown_with_empty_cells_kept_narrow() {
        let t = table(
            &["scenario", "connections", "req/s"],
            &["---", "---:", "---:"],
            &[
                vec!["search".into(), "16".into(), "4,375".into()],
                vec!["api-gateway ÷ nginx".into(), "".into(), "".into()],
            ],
        );
        assert_eq!(
            t,
            "| scenario | connections | req/s |\n| --- | ---: | ---: |\n\
             | search | 16 | 4,375 |\n| api-gateway ÷ nginx | | |"
        );
    }

    #[test]
    fn a_rewrite_keeps_what_follows_the_marker() {
        let old = format!("# Benchmarks\n\nold table\n\n{MARKER}\n\n## Reading these\n\nwhy\n\n");
        let new = keeping_analysis("# Benchmarks\n\nnew table\n", Some(&old));
        assert_eq!(
            new,
            format!("# Benchmarks\n\nnew table\n\n{MARKER}\n\n## Reading these\n\nwhy\n")
        );
        // no old file, or one without the marker: the marker alone
        let fresh = keeping_analysis("doc\n", None);
        assert_eq!(fresh, format!("doc\n\n{MARKER}\n"));
        assert_eq!(keeping_analysis("doc\n", Some("no marker")), fresh);
    }

    #[test]
    fn the_command_line_names_what_differs_from_the_defaults() {
        let settings = [
            ("BENCH_SECONDS", "5".to_string(), "10".to_string()),
            ("BENCH_CONNS", "16 64".to_string(), "16 64".to_string()),
            ("WRK_THREADS", "1 2".to_string(), "2".to_string()),
        ];
        assert_eq!(
            command_line(&settings, "cargo xtask bench"),
            "BENCH_SECONDS=5 WRK_THREADS='1 2' cargo xtask bench"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn machine_facts_come_from_proc() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(memory_kb("MemTotal:       24641536 kB\n"), Some(24_641_536));
    }

    #[test]
    fn unix_times_become_utc_dates() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(utc_minute(951_825_600), "2000-02-29 12:00 UTC");
    }
}
