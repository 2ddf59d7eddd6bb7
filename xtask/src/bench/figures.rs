//! The figures of `cargo xtask bench`: its runs and memory, the results table, the targets
//! of issue 5, k6's summary, and BENCHMARKS.md made of them. Nothing here runs anything.

use ecommerce::role::Role;
use support::shop::SWEET_TEA;

use crate::report::{self, fmt_ms, fmt_rate, mb, table};
use crate::wrk::WrkResult;

/// What was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Search,
    CartRead,
    CartUpdate,
    K6Journey,
    HopGateway,
    HopNginx,
    HopGatewayHealthz,
    HopNginxHealthz,
    SearchOneProcess,
}

impl Scenario {
    /// Its name in the progress lines and results.jsonl.
    pub fn key(self) -> &'static str {
        match self {
            Scenario::Search => "search",
            Scenario::CartRead => "cart read",
            Scenario::CartUpdate => "cart update",
            Scenario::K6Journey => "k6 journey",
            Scenario::HopGateway => "hop api-gateway",
            Scenario::HopNginx => "hop nginx",
            Scenario::HopGatewayHealthz => "hop api-gateway healthz",
            Scenario::HopNginxHealthz => "hop nginx healthz",
            Scenario::SearchOneProcess => "search, --role all",
        }
    }

    /// Its row's name in the report.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Search => "search for six, via web-gateway",
            Scenario::CartRead => "cart read, via web-gateway",
            Scenario::CartUpdate => "cart update, via web-gateway",
            Scenario::K6Journey => "k6 journey, no pauses (journeys/s)",
            Scenario::HopGateway => "one hop: api-gateway → product",
            Scenario::HopNginx => "one hop: nginx → product",
            Scenario::HopGatewayHealthz => "one hop: api-gateway → product `/healthz`",
            Scenario::HopNginxHealthz => "one hop: nginx → product `/healthz`",
            Scenario::SearchOneProcess => "search for six, `--role all` (one process)",
        }
    }

    /// Whose resident memory its RSS column gives.
    pub fn rss_of(self) -> &'static str {
        match self {
            Scenario::Search | Scenario::CartRead | Scenario::CartUpdate | Scenario::K6Journey => {
                "shop"
            }
            Scenario::HopGateway | Scenario::HopGatewayHealthz => "api-gateway",
            Scenario::HopNginx | Scenario::HopNginxHealthz => "nginx",
            Scenario::SearchOneProcess => "process",
        }
    }

    /// For an nginx hop: the api-gateway hop it is compared with, and the ratio row's
    /// qualifier.
    pub fn compared_with(self) -> Option<(Scenario, &'static str)> {
        match self {
            Scenario::HopNginx => Some((Scenario::HopGateway, "")),
            Scenario::HopNginxHealthz => Some((Scenario::HopGatewayHealthz, " (`/healthz`)")),
            _ => None,
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub scenario: Scenario,
    pub conns: u32,
    /// Requests (for k6: journeys) per second.
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub non2xx: u64,
    pub socket_errors: u64,
    pub rss_kb: u64,
    pub requests: u64,
}

impl Run {
    pub fn of_wrk(scenario: Scenario, conns: u32, r: &WrkResult, rss_kb: u64) -> Run {
        Run {
            scenario,
            conns,
            rps: r.rps(),
            p50_ms: r.p50_ms(),
            p99_ms: r.p99_ms(),
            errors: r.errors(),
            non2xx: r.status,
            socket_errors: r.socket_errors(),
            rss_kb,
            requests: r.requests,
        }
    }
}

/// Whose memory a memory row gives: a role process, or `--role all` in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Process {
    Role(Role),
    All,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Memory {
    pub idle_kb: Option<u64>,
    pub peak_kb: Option<u64>,
}

/// Everything a run measured; the report is made of this alone.
#[derive(Debug, Default)]
pub struct Results {
    pub runs: Vec<Run>,
    pub memory: std::collections::BTreeMap<Process, Memory>,
}

impl Results {
    fn run(&self, scenario: Scenario, conns: u32) -> Option<&Run> {
        self.runs
            .iter()
            .find(|r| r.scenario == scenario && r.conns == conns)
    }

    fn conns(&self) -> Vec<u32> {
        let mut conns: Vec<u32> = self.runs.iter().map(|r| r.conns).collect();
        conns.sort_unstable();
        conns.dedup();
        conns
    }

    /// The highest connection count, where the targets are judged.
    fn high(&self) -> u32 {
        self.conns().last().copied().unwrap_or(64)
    }

    /// api-gateway ÷ nginx req/s at each connection count for the nginx hop `nginx`.
    fn ratios(&self, nginx: Scenario) -> Vec<(u32, f64)> {
        let Some((gateway, _)) = nginx.compared_with() else {
            return Vec::new();
        };
        self.conns()
            .into_iter()
            .filter_map(|c| {
                let (gw, ng) = (self.run(gateway, c)?, self.run(nginx, c)?);
                (ng.rps != 0.0).then(|| (c, gw.rps / ng.rps))
            })
            .collect()
    }
}

/// The results table: each scenario's runs by connection count, the api-gateway ÷
/// nginx ratios after each nginx hop, then each process's memory.
pub fn results_table(results: &Results) -> String {
    let mut seen: Vec<Scenario> = Vec::new();
    for r in &results.runs {
        if !seen.contains(&r.scenario) {
            seen.push(r.scenario);
        }
    }
    let mut rows = Vec::new();
    for scenario in seen {
        for c in results.conns() {
            let Some(r) = results.run(scenario, c) else {
                continue;
            };
            let mut errors = report::thousands(r.errors);
            if r.errors > 0 {
                errors += &format!(
                    " ({} non-2xx, {} socket)",
                    report::thousands(r.non2xx),
                    report::thousands(r.socket_errors)
                );
            }
            rows.push(vec![
                scenario.label().to_string(),
                c.to_string(),
                fmt_rate(r.rps),
                fmt_ms(r.p50_ms),
                fmt_ms(r.p99_ms),
                errors,
                format!("{:.1} MB {}", mb(r.rss_kb), scenario.rss_of()),
            ]);
        }
        if let Some((_, what)) = scenario.compared_with() {
            for (c, ratio) in results.ratios(scenario) {
                let mut row = vec![
                    format!("api-gateway ÷ nginx{what}"),
                    c.to_string(),
                    format!("{ratio:.2}x"),
                ];
                row.resize(7, String::new());
                rows.push(row);
            }
        }
    }
    for (process, m) in &results.memory {
        let name = match process {
            Process::Role(role) => role.as_str().to_string(),
            Process::All => "`--role all`, one process".into(),
        };
        let mut row = vec![format!("memory: {name}")];
        row.resize(6, String::new());
        row.push(format!(
            "{:.1} MB idle, {:.1} MB peak",
            mb(m.idle_kb.unwrap_or(0)),
            mb(m.peak_kb.unwrap_or(0))
        ));
        rows.push(row);
    }
    table(
        &[
            "scenario",
            "connections",
            "req/s",
            "p50",
            "p99",
            "errors",
            "RSS",
        ],
        &["---", "---:", "---:", "---:", "---:", "---:", "---:"],
        &rows,
    )
}

/// A target, met or not, and what was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub met: bool,
    pub measured: String,
}

fn below(value: f64, goal: f64) -> String {
    format!("{:.0}% below the target", (goal - value) / goal * 100.0)
}

/// The targets of issue 5, and the stretch targets.
pub fn targets(results: &Results) -> (Vec<Target>, Vec<Target>) {
    let hi = results.high();
    let mut targets = Vec::new();
    let mut target = |name: String, met: bool, measured: String| {
        targets.push(Target {
            name,
            met,
            measured,
        })
    };
    for (scenario, name, goal, p99_goal) in [
        (Scenario::Search, "search", 4000.0, 25.0),
        (Scenario::CartRead, "cart read", 6000.0, 15.0),
        (Scenario::CartUpdate, "cart update", 6000.0, 15.0),
    ] {
        let label = format!(
            "{name} via web-gateway ≥ {} req/s, p99 ≤ {p99_goal} ms ({hi} connections)",
            report::group(goal, 0)
        );
        let Some(r) = results.run(scenario, hi) else {
            target(label, false, "not measured".into());
            continue;
        };
        let mut parts = Vec::new();
        let mut met = true;
        if r.rps >= goal {
            parts.push(format!("{} req/s", fmt_rate(r.rps)));
        } else {
            met = false;
            parts.push(format!("{} req/s, {}", fmt_rate(r.rps), below(r.rps, goal)));
        }
        if r.p99_ms <= p99_goal {
            parts.push(format!("p99 {}", fmt_ms(r.p99_ms)));
        } else {
            met = false;
            parts.push(format!(
                "p99 {}, {:.1}x the {p99_goal} ms target",
                fmt_ms(r.p99_ms),
                r.p99_ms / p99_goal
            ));
        }
        target(
            label,
            met,
            format!("at {hi} connections: {}", parts.join("; ")),
        );
    }

    let hop = "api-gateway hop ≥ 0.8x nginx on the same upstream, same run".to_string();
    let (ratios, cheap) = (
        results.ratios(Scenario::HopNginx),
        results.ratios(Scenario::HopNginxHealthz),
    );
    let list = |rs: &[(u32, f64)]| {
        rs.iter()
            .map(|(c, r)| format!("{r:.2}x at {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if ratios.is_empty() {
        target(hop, false, "not measured".into());
    } else {
        let worst = ratios.iter().map(|(_, r)| *r).fold(f64::INFINITY, f64::min);
        let mut detail = format!(
            "GET /api/v1/product/products/{SWEET_TEA}: {}",
            list(&ratios)
        );
        if !cheap.is_empty() {
            detail += &format!(
                "; to product's /healthz (the proxy's own cost): {}",
                list(&cheap)
            );
        }
        target(hop, worst >= 0.8, detail);
    }

    let idle: Vec<(Role, f64)> = results
        .memory
        .iter()
        .filter_map(|(p, m)| match p {
            Process::Role(role) => Some((*role, mb(m.idle_kb?))),
            Process::All => None,
        })
        .collect();
    if let Some((big, most)) = idle
        .iter()
        .copied()
        .reduce(|a, b| if b.1 > a.1 { b } else { a })
    {
        let over: Vec<String> = idle
            .iter()
            .filter(|(_, v)| *v > 10.0)
            .map(|(r, v)| format!("{r} {v:.1} MB"))
            .collect();
        let mut detail = format!("largest: {big} {most:.1} MB");
        if !over.is_empty() {
            detail += &format!("; over: {}", over.join(", "));
        }
        target(
            "each role ≤ 10 MB resident when idle".into(),
            over.is_empty(),
            detail,
        );
    }
    let all = results
        .memory
        .get(&Process::All)
        .copied()
        .unwrap_or_default();
    if let Some(kb) = all.idle_kb {
        let v = mb(kb);
        target(
            "`--role all` ≤ 30 MB idle".into(),
            v <= 30.0,
            format!("{v:.1} MB"),
        );
    }
    if let Some(kb) = all.peak_kb {
        let v = mb(kb);
        target(
            "`--role all` ≤ 64 MB under the search load".into(),
            v <= 64.0,
            format!("{v:.1} MB peak (VmHWM)"),
        );
    }
    let errored: Vec<String> = results
        .runs
        .iter()
        .filter(|r| r.errors > 0)
        .map(|r| {
            format!(
                "{} at {}: {}",
                r.scenario.key(),
                r.conns,
                report::thousands(r.errors)
            )
        })
        .collect();
    target(
        "zero errors in every run".into(),
        errored.is_empty(),
        if errored.is_empty() {
            "none".into()
        } else {
            errored.join("; ")
        },
    );

    let mut stretch = Vec::new();
    for (scenario, goal) in [
        (Scenario::Search, 6500.0),
        (Scenario::CartRead, 8000.0),
        (Scenario::CartUpdate, 8000.0),
    ] {
        if let Some(r) = results.run(scenario, hi) {
            let met = r.rps >= goal;
            let mut measured = format!("{} req/s", fmt_rate(r.rps));
            if !met {
                measured += &format!(", {}", below(r.rps, goal));
            }
            stretch.push(Target {
                name: format!(
                    "{} ≥ {} req/s ({hi} connections)",
                    scenario.key(),
                    report::group(goal, 0)
                ),
                met,
                measured,
            });
        }
    }
    (targets, stretch)
}

pub fn target_table(items: &[Target]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                if t.met { "met" } else { "**missed**" }.into(),
                t.measured.clone(),
            ]
        })
        .collect();
    table(
        &["target", "result", "measured"],
        &["---", "---", "---"],
        &rows,
    )
}

/// The machine and its peers, for the report.
#[derive(Debug, Clone)]
pub struct Context {
    pub machine: report::Machine,
    pub date: String,
    pub load_before: String,
    pub load_after: String,
    pub threads: u32,
    pub k6: String,
    pub nginx: String,
    pub redis: String,
    pub postgres: String,
}

/// BENCHMARKS.md down to the marker.
pub fn document(results: &Results, seconds: u64, command: &str, context: &Context) -> String {
    let (targets, stretch) = targets(results);
    let or = |v: &str, d: &str| {
        if v.is_empty() {
            d.to_string()
        } else {
            v.to_string()
        }
    };
    let m = &context.machine;
    let machine = [
        format!("- CPUs: {} (`nproc`: {}), {}", m.cpus, m.nproc, m.model),
        format!("- memory: {:.1} GiB", m.memory_gib),
        format!("- kernel: {} {} ({})", m.system, m.release, m.arch),
        format!("- date: {}", context.date),
        format!(
            "- load average (1/5/15 min) before the run: {} / after: {}",
            context.load_before, context.load_after
        ),
        format!(
            "- load generators and peers on the same machine: wrk ({} threads), {}, {}, Redis {}, PostgreSQL {}",
            context.threads,
            or(&context.k6, "k6"),
            or(&context.nginx, "nginx"),
            or(&context.redis, "?"),
            or(&context.postgres, "?")
        ),
    ]
    .join("\n");
    format!(
        "# Benchmarks

Produced by `cargo xtask bench` (issue 5): the production topology (every role its own
process, web-gateway → api-gateway → services) on real Redis and PostgreSQL, payment
delay 0, roles at `RUST_LOG=warn`; load from wrk (`--latency`, keep-alive) and k6 on the
same machine. Each run lasts {seconds} s. req/s is wrk's requests ÷ duration (for the k6
journey: whole journeys per second, and p50/p99 of one journey); errors are non-2xx/3xx
answers plus socket errors (connect, read, write, timeout), for k6 failed requests plus
failed checks. RSS is resident memory (VmRSS, MB = 10^6 bytes) right after the run: of
all seven roles (\"shop\"), of the one process measured, or of nginx's master and worker;
the memory rows give each role idle (before any load) and at peak (VmHWM after all load).
The proxy hop is measured twice in the same run, api-gateway and nginx (one worker,
keep-alive upstream) in turn: to `GET /products/{SWEET_TEA}` (the issue's target, a catalog
lookup in PostgreSQL) and to the product role's `/healthz` (next to no work upstream, so
the proxy's own cost shows).

## Machine

{machine}

## Command

```
{command}
```

## Results

{table}

## Targets (issue 5)

{targets}

Aiming higher:

{stretch}
",
        table = results_table(results),
        targets = target_table(&targets),
        stretch = target_table(&stretch),
    )
}

/// k6's `--summary-export`, as far as the report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct K6Summary {
    /// Journeys per second.
    pub rate: f64,
    /// p50 and p99 of one journey, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub failed_requests: u64,
    pub failed_checks: u64,
    pub iterations: u64,
}

pub fn parse_k6_summary(text: &str) -> Result<K6Summary, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let m = &json["metrics"];
    let number = |metric: &str, field: &str| {
        m[metric][field]
            .as_f64()
            .ok_or_else(|| format!("no {metric}.{field} in k6's summary"))
    };
    Ok(K6Summary {
        rate: (number("iterations", "rate")? * 10.0).round() / 10.0,
        p50_ms: number("iteration_duration", "med")?,
        p99_ms: number("iteration_duration", "p(99)")?,
        failed_requests: number("http_req_failed", "passes")? as u64,
        failed_checks: number("checks", "fails")? as u64,
        iterations: number("iterations", "count")? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: Scenario, conns: u32, rps: f64, p50: f64, p99: f64, rss_kb: u64) -> Run {
        Run {
            scenario,
            conns,
            rps,
            p50_ms: p50,
            p99_ms: p99,
            errors: 0,
            non2xx: 0,
            socket_errors: 0,
            rss_kb,
            requests: 1,
        }
    }

    /// Figures of the committed BENCHMARKS.md (2026-11-25), as runs.
    fn measured() -> Results {
        let mut results = Results {
            runs: vec![
                run(Scenario::Search, 16, 4375.2, 3.49, 7.45, 54_688),
                run(Scenario::Search, 64, 4055.0, 15.04, 30.01, 60_840),
                run(Scenario::CartRead, 64, 5677.0, 10.99, 20.76, 64_453),
                run(Scenario::CartUpdate, 64, 5052.0, 12.36, 23.32, 64_551),
                run(Scenario::K6Journey, 16, 80.9, 196.2, 269.0, 71_289),
                run(Scenario::HopGateway, 16, 7699.0, 1.98, 4.73, 12_305),
                run(Scenario::HopNginx, 16, 7936.0, 1.90, 5.47, 12_891),
                run(Scenario::HopGateway, 64, 5774.0, 11.0, 25.59, 11_426),
                run(Scenario::HopNginx, 64, 5884.0, 10.62, 18.85, 13_379),
            ],
            ..Results::default()
        };
        for (role, idle, peak) in [
            (Role::WebGateway, 7_617, 25_684),
            (Role::Cart, 7_715, 11_524),
        ] {
            results.memory.insert(
                Process::Role(role),
                Memory {
                    idle_kb: Some(idle),
                    peak_kb: Some(peak),
                },
            );
        }
        results.memory.insert(
            Process::All,
            Memory {
                idle_kb: Some(8_789),
                peak_kb: Some(18_066),
            },
        );
        results
    }

    #[test]
    fn the_results_table_reads_as_before() {
        let table = results_table(&measured());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| scenario | connections | req/s | p50 | p99 | errors | RSS |"
        );
        assert_eq!(
            lines[2],
            "| search for six, via web-gateway | 16 | 4,375 | 3.49 ms | 7.45 ms | 0 | 56.0 MB shop |"
        );
        assert!(table.contains(
            "| k6 journey, no pauses (journeys/s) | 16 | 80.9 | 196 ms | 269 ms | 0 | 73.0 MB shop |"
        ));
        // the ratio rows follow the nginx hop, at each connection count
        let nginx_64 = lines
            .iter()
            .position(|l| l.starts_with("| one hop: nginx → product | 64 |"))
            .unwrap();
        assert_eq!(
            lines[nginx_64 + 1],
            "| api-gateway ÷ nginx | 16 | 0.97x | | | | |"
        );
        assert_eq!(
            lines[nginx_64 + 2],
            "| api-gateway ÷ nginx | 64 | 0.98x | | | | |"
        );
        assert!(table.contains("| memory: web-gateway | | | | | | 7.8 MB idle, 26.3 MB peak |"));
        assert!(table.ends_with(
            "| memory: `--role all`, one process | | | | | | 9.0 MB idle, 18.5 MB peak |"
        ));
    }

    #[test]
    fn errors_are_broken_down_in_the_table_and_fail_the_zero_errors_target() {
        let mut results = measured();
        results.runs[0].errors = 1234;
        results.runs[0].non2xx = 1200;
        results.runs[0].socket_errors = 34;
        assert!(results_table(&results).contains("| 1,234 (1,200 non-2xx, 34 socket) |"));
        let (targets, _) = targets(&results);
        let zero = targets
            .iter()
            .find(|t| t.name == "zero errors in every run")
            .unwrap();
        assert!(!zero.met);
        assert_eq!(zero.measured, "search at 16: 1,234");
    }

    #[test]
    fn targets_are_judged_at_the_highest_connection_count() {
        let (targets, stretch) = targets(&measured());
        let table = target_table(&targets);
        assert!(table.contains(
            "| search via web-gateway ≥ 4,000 req/s, p99 ≤ 25 ms (64 connections) | **missed** | at 64 connections: 4,055 req/s; p99 30.01 ms, 1.2x the 25 ms target |"
        ), "{table}");
        assert!(table.contains(
            "| cart read via web-gateway ≥ 6,000 req/s, p99 ≤ 15 ms (64 connections) | **missed** | at 64 connections: 5,677 req/s, 5% below the target; p99 20.76 ms, 1.4x the 15 ms target |"
        ));
        assert!(table.contains(
            "| api-gateway hop ≥ 0.8x nginx on the same upstream, same run | met | GET /api/v1/product/products/f95e2475: 0.97x at 16, 0.98x at 64 |"
        ));
        assert!(
            table.contains("| each role ≤ 10 MB resident when idle | met | largest: cart 7.9 MB |")
        );
        assert!(table.contains("| `--role all` ≤ 30 MB idle | met | 9.0 MB |"));
        assert!(table.contains(
            "| `--role all` ≤ 64 MB under the search load | met | 18.5 MB peak (VmHWM) |"
        ));
        assert!(table.ends_with("| zero errors in every run | met | none |"));
        assert_eq!(
            target_table(&stretch).lines().nth(2),
            Some("| search ≥ 6,500 req/s (64 connections) | **missed** | 4,055 req/s, 38% below the target |")
        );
    }

    #[test]
    fn a_scenario_not_measured_misses_its_target() {
        let (targets, stretch) = targets(&Results::default());
        assert!(targets[0].measured == "not measured" && !targets[0].met);
        assert!(stretch.is_empty());
    }

    #[test]
    fn the_document_has_the_sections_the_analysis_expects() {
        let context = Context {
            machine: report::Machine {
                cpus: 2,
                nproc: 2,
                model: "AMD EPYC".into(),
                memory_gib: 23.5,
                system: "Linux".into(),
                release: "6.1".into(),
                arch: "x86_64",
            },
            date: "2026-11-25 19:49 UTC".into(),
            load_before: "0.1 0.2 0.3".into(),
            load_after: "1.0 1.1 1.2".into(),
            threads: 2,
            k6: "k6 v1.1.0".into(),
            nginx: "nginx/1.22.1".into(),
            redis: String::new(),
            postgres: "15.20".into(),
        };
        let doc = document(&measured(), 10, "cargo xtask bench", &context);
        let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(
            headings,
            [
                "# Benchmarks",
                "## Machine",
                "## Command",
                "## Results",
                "## Targets (issue 5)"
            ]
        );
        assert!(doc.contains("Each run lasts 10 s."));
        assert!(doc.contains("- CPUs: 2 (`nproc`: 2), AMD EPYC\n- memory: 23.5 GiB\n"));
        assert!(doc.contains(
            "- load generators and peers on the same machine: wrk (2 threads), k6 v1.1.0, nginx/1.22.1, Redis ?, PostgreSQL 15.20\n"
        ));
        assert!(doc.contains("```\ncargo xtask bench\n```"));
        assert!(doc.ends_with("\n\nAiming higher:\n\n| target | result | measured |\n| --- | --- | --- |\n| search ≥ 6,500 req/s (64 connections) | **missed** | 4,055 req/s, 38% below the target |\n| cart read ≥ 8,000 req/s (64 connections) | **missed** | 5,677 req/s, 29% below the target |\n| cart update ≥ 8,000 req/s (64 connections) | **missed** | 5,052 req/s, 37% below the target |\n"));
    }

    #[test]
    fn k6_summaries_give_journeys_per_second_and_their_latency() {
        let summary = r#"{"metrics": {
            "iterations": {"count": 809, "rate": 80.94},
            "iteration_duration": {"med": 196.2, "p(99)": 269.1, "avg": 197},
            "http_req_failed": {"passes": 2, "fails": 9000, "value": 0.0002},
            "checks": {"passes": 9100, "fails": 1, "value": 0.9999}}}"#;
        assert_eq!(
            parse_k6_summary(summary),
            Ok(K6Summary {
                rate: 80.9,
                p50_ms: 196.2,
                p99_ms: 269.1,
                failed_requests: 2,
                failed_checks: 1,
                iterations: 809
            })
        );
        assert!(parse_k6_summary(r#"{"metrics": {}}"#)
            .unwrap_err()
            .contains("iterations.rate"));
    }
}
