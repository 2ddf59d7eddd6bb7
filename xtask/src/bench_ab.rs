//! `cargo xtask bench-ab OLD NEW` (was scripts/bench-ab.sh): an interleaved A/B benchmark
//! of two builds of the shop. Each round runs build A, then build B, on the production
//! topology (every role its own process, real Redis and PostgreSQL, payment delay 0),
//! measuring search, cart read and cart update via the web-gateway with wrk. It prints
//! every run and then the median of each build per scenario, since single runs on a small
//! shared machine differ by tens of percent. Everything it starts is stopped on exit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ecommerce::role::Role;
use support::shop::SWEET_TEA;

use crate::procs;
use crate::report::{self, median, table};
use crate::shop::{self, Http, Roles};
use crate::stores;
use crate::tools;
use crate::wrk::{self, WrkResult};

const NAME: &str = "bench-ab";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build A: an `ecommerce` binary.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// Build B.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Rounds of A then B (1-20).
    #[arg(long, env = "ROUNDS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Seconds of each measured run (1-120).
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub seconds: u64,
    /// wrk connections (1-1024).
    #[arg(long, env = "BENCH_CONNS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub conns: u32,
    /// wrk threads (1-64).
    #[arg(long, env = "WRK_THREADS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    #[command(flatten)]
    pub stores: stores::StoreUrls,
    /// The topology's first port (default: the first free block from 8080).
    #[arg(long, env = "BASE_PORT")]
    pub base_port: Option<u16>,
}

/// A build, A or B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::A => "A",
            Side::B => "B",
        }
    }
}

/// One measured run of one build.
#[derive(Debug, Clone, PartialEq)]
pub struct AbRow {
    pub side: Side,
    pub scenario: &'static str,
    pub result: WrkResult,
}

impl AbRow {
    fn rps(&self) -> f64 {
        // unrounded, as the medians have always been taken
        let r = &self.result;
        if r.duration_us == 0 {
            0.0
        } else {
            r.requests as f64 / (r.duration_us as f64 / 1e6)
        }
    }
}

/// Per scenario (in the order measured): each build's median req/s and p99, B/A, and the
/// errors of each build's runs.
pub fn ab_table(rows: &[AbRow]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    for r in rows {
        if !scenarios.contains(&r.scenario) {
            scenarios.push(r.scenario);
        }
    }
    let lines: Vec<Vec<String>> = scenarios
        .into_iter()
        .map(|scenario| {
            let of = |side: Side| {
                let runs: Vec<&AbRow> = rows
                    .iter()
                    .filter(|r| r.side == side && r.scenario == scenario)
                    .collect();
                let rps = median(&runs.iter().map(|r| r.rps()).collect::<Vec<_>>());
                let p99 = median(&runs.iter().map(|r| r.result.p99_ms()).collect::<Vec<_>>());
                let errors: u64 = runs.iter().map(|r| r.result.errors()).sum();
                (rps, p99, errors)
            };
            let ((ra, pa, ea), (rb, pb, eb)) = (of(Side::A), of(Side::B));
            vec![
                scenario.to_string(),
                report::group(ra, 0),
                report::group(rb, 0),
                if ra > 0.0 {
                    format!("{:.2}", rb / ra)
                } else {
                    "-".into()
                },
                format!("{pa:.1}"),
                format!("{pb:.1}"),
                format!("{ea}, {eb}"),
            ]
        })
        .collect();
    table(
        &[
            "scenario",
            "A req/s (median)",
            "B req/s (median)",
            "B/A",
            "A p99 ms",
            "B p99 ms",
            "errors A, B",
        ],
        &["---"; 7],
        &lines,
    )
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    procs::stop_everything_on_signal(NAME);
    procs::unless_interrupted(actix_web::rt::System::new().block_on(bench(args)))
}

fn say(text: impl std::fmt::Display) {
    println!("{NAME}: {text}");
}

fn executable(path: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let real = std::fs::canonicalize(path)
        .map_err(|e| format!("{}: {e} (both binaries must exist)", path.display()))?;
    let meta = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        Ok(real)
    } else {
        Err(format!("{} is not an executable file", real.display()))
    }
}

async fn bench(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let a = executable(&args.old)?;
    let b = executable(&args.new)?;
    let work = tools::root().join("target/bench-ab");
    std::fs::create_dir_all(work.join("topology"))?;
    let mut tsv = std::fs::File::create(work.join("results.tsv"))?;
    tools::ensure_wrk_and_nginx(NAME)?;
    let base = match args.base_port {
        Some(port) => port,
        None => shop::free_block(8080, 7)?,
    };
    let http = Http::new();
    say(format!("A = {}", a.display()));
    say(format!("B = {}", b.display()));
    let mut rows = Vec::new();
    for round in 1..=args.rounds {
        say(format!("round {round} of {}", args.rounds));
        for (side, binary) in [(Side::A, &a), (Side::B, &b)] {
            for row in run_side(&args, &work, &http, base, side, binary).await? {
                writeln!(
                    tsv,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    side.as_str(),
                    row.scenario,
                    row.result.requests,
                    row.result.duration_us,
                    row.result.p99_us,
                    row.result.errors()
                )?;
                rows.push(row);
            }
        }
    }
    println!("\n{}", ab_table(&rows));
    Ok(())
}

/// One topology of `binary`, the three scenarios, one row each.
async fn run_side(
    args: &Args,
    work: &Path,
    http: &Http,
    base: u16,
    side: Side,
    binary: &Path,
) -> Result<Vec<AbRow>, Box<dyn std::error::Error>> {
    let logs = work.join("topology");
    stores::prepare(
        binary,
        (&args.stores.redis_url, &args.stores.postgres_url),
        &logs,
        NAME,
    )
    .await?;
    let settings = shop::production(base, &args.stores.redis_url, &args.stores.postgres_url)?;
    let prefix = format!("{}-", side.as_str());
    let roles = Roles::start(binary, settings, &[], &logs, &prefix, http).await?;
    let web = roles.url(Role::WebGateway, "");
    let session = http.session(&web).await?;
    let session_body = format!(r#"{{"session_id":"{session}"}}"#);
    let update = format!("/api/v1/cart/{SWEET_TEA}/1");
    http.expect(
        "cart update via web-gateway does not answer",
        "PUT",
        &format!("{web}{update}"),
        Some(&session_body),
        "",
    )
    .await?;
    let script = work.join("run.lua");
    let mut rows = Vec::new();
    for (scenario, method, path, body) in [
        (
            "search",
            "POST",
            "/api/v1/product/search",
            r#"{"query":"","page":{"size":6}}"#,
        ),
        ("cart read", "POST", "/api/v1/cart", session_body.as_str()),
        ("cart update", "PUT", update.as_str(), session_body.as_str()),
    ] {
        wrk::write_script(&script, method, body)?;
        let url = format!("{web}{path}");
        wrk::Run {
            threads: 1,
            conns: 8,
            seconds: 1,
            url: &url,
            script: &script,
            latency: false,
        }
        .warm_up();
        let result = wrk::Run {
            threads: args.threads,
            conns: args.conns,
            seconds: args.seconds,
            url: &url,
            script: &script,
            latency: false,
        }
        .measure(&work.join(format!(
            "wrk-{}-{}.txt",
            side.as_str(),
            scenario.replace(' ', "-")
        )))?;
        let row = AbRow {
            side,
            scenario,
            result,
        };
        println!(
            "{NAME}: {} {:<12} {:>8.0} req/s  p99 {:>6.2} ms  errors {}",
            side.as_str(),
            scenario,
            row.rps(),
            result.p99_ms(),
            result.errors()
        );
        rows.push(row);
    }
    roles.stop().await?;
    // The next build binds the same ports.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    type Cli = crate::testing::Cli<Args>;

    fn row(side: Side, scenario: &'static str, rps: u64, p99_us: u64, errors: u64) -> AbRow {
        AbRow {
            side,
            scenario,
            result: WrkResult {
                requests: rps * 8,
                duration_us: 8_000_000,
                p50_us: 1,
                p99_us,
                connect: 0,
                read: 0,
                write: 0,
                status: errors,
                timeout: 0,
            },
        }
    }

    #[test]
    fn the_table_gives_each_builds_median_and_their_ratio() {
        let rows = vec![
            row(Side::A, "search", 11_740, 10_800, 0),
            row(Side::A, "cart read", 18_810, 6_700, 0),
            row(Side::B, "search", 10_356, 10_400, 1),
            row(Side::B, "cart read", 18_656, 6_800, 0),
            row(Side::A, "search", 11_392, 11_000, 0),
            row(Side::B, "search", 11_788, 10_300, 0),
            row(Side::A, "search", 11_767, 10_700, 0),
            row(Side::B, "search", 11_161, 10_500, 2),
        ];
        let t = ab_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "| scenario | A req/s (median) | B req/s (median) | B/A | A p99 ms | B p99 ms | errors A, B |"
        );
        assert_eq!(lines[1], "| --- | --- | --- | --- | --- | --- | --- |");
        assert_eq!(
            lines[2],
            "| search | 11,740 | 11,161 | 0.95 | 10.8 | 10.4 | 0, 3 |"
        );
        assert_eq!(
            lines[3],
            "| cart read | 18,810 | 18,656 | 0.99 | 6.7 | 6.8 | 0, 0 |"
        );
    }

    #[test]
    fn two_binaries_and_bounded_settings_are_required() {
        let cli = Cli::try_parse_from(["ab", "old", "new", "--rounds", "1"]).unwrap();
        assert_eq!(
            (cli.args.old, cli.args.new, cli.args.rounds),
            ("old".into(), "new".into(), 1)
        );
        for bad in [
            &["ab", "old"][..],
            &["ab", "a", "b", "--rounds", "0"],
            &["ab", "a", "b", "--seconds", "121"],
            &["ab", "a", "b", "--seconds", "0"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} accepted");
        }
        assert!(executable(Path::new("/nonexistent/ecommerce")).is_err());
        assert!(executable(&tools::root().join("Cargo.toml")).is_err());
        assert!(executable(Path::new("/bin/sh")).is_ok());
    }
}
