//! `cargo xtask watch --check`: the k6 journey against the web-gateway, remote-writing
//! its own metrics into the local Prometheus, while faults are switched on and off at run
//! time through the roles' admin API; then what the chart's dashboards and rules need is
//! looked for in what Prometheus scraped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use ecommerce::role::Role;
use serde_json::{json, Value};

use super::dashboards::{self, Replacement, Variable};
use super::prometheus::{self, Api, RuleFile};
use super::promql;

/// The k6 trend statistics remote-written, as the chart's synthetics send them.
pub const TREND_STATS: &str = "p(50),p(95),p(99),max";
/// The histogram whose exemplars must carry trace ids the OTLP sink received.
const EXEMPLAR_QUERY: &str = "http_server_request_duration_seconds_bucket";
/// A series k6's remote write makes.
const K6_SERIES: &str = "k6_http_reqs_total";
/// The step of the dashboards' range queries.
const STEP_SECONDS: f64 = 15.0;
/// After the journey: two scrapes and a rule evaluation, so its end is in the data.
const SETTLE: Duration = Duration::from_secs(12);
/// How long k6 may run past its duration (its graceful stop, its summary).
const K6_GRACE: Duration = Duration::from_secs(90);

/// One switch of a role's faults at run time, `at` after the journey started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub at: Duration,
    pub role: Role,
    /// The whole list the role has on from then (`PUT /faults` replaces it).
    pub faults: Vec<String>,
}

/// The faults of a journey of `duration`: payment declines half the payments (leaking
/// memory for the first half of that), then cart-data is out for a while (15 s of 75),
/// and the last third runs clean, so that recovery shows too. Each lasts longer than the
/// dashboards' 15 s step, so that a range query over the run sees it.
pub fn plan(duration: Duration) -> Vec<Switch> {
    let at = |share: f64| Duration::from_millis((duration.as_millis() as f64 * share) as u64);
    let switch = |share: f64, role: Role, faults: &[&str]| Switch {
        at: at(share),
        role,
        faults: faults.iter().map(|f| f.to_string()).collect(),
    };
    vec![
        switch(
            0.10,
            Role::Payment,
            &["payment-failure=0.5", "memory-leak=payment"],
        ),
        switch(0.27, Role::Payment, &["payment-failure=0.5"]),
        switch(0.40, Role::Payment, &[]),
        switch(0.47, Role::Cart, &["cart-data-outage"]),
        switch(0.67, Role::Cart, &[]),
    ]
}

/// What the check needs of the running shop and its Prometheus.
pub struct Setup<'a> {
    pub root: &'a Path,
    /// Where k6's output goes.
    pub dir: &'a Path,
    pub k6: &'a Path,
    /// The web-gateway (`http://host:port`).
    pub web: String,
    /// Where each role serves `/faults`.
    pub admin: BTreeMap<Role, String>,
    pub token: &'a str,
    pub api: &'a Api,
    pub rules: &'a [RuleFile],
    pub dashboards: Vec<PathBuf>,
    /// The traces the OTLP sink received.
    pub traces: &'a dyn Traces,
    /// When Prometheus started: the beginning of the window queried.
    pub since: SystemTime,
    pub duration: Duration,
    pub vus: u32,
}

/// The traces an OTLP sink received.
pub trait Traces {
    /// Whether a trace of this id (hex) arrived.
    fn seen(&self, id: &str) -> bool;
    /// How many arrived.
    fn count(&self) -> usize;
}

/// One line of the summary, and what failed.
#[derive(Debug)]
pub struct Outcome {
    pub name: &'static str,
    pub passed: bool,
    pub summary: String,
    pub failures: Vec<String>,
}

impl Outcome {
    fn new(name: &'static str, failures: Vec<String>, summary: String) -> Outcome {
        Outcome {
            name,
            passed: failures.is_empty(),
            summary,
            failures,
        }
    }
}

/// Plays the journey with its faults, lets the last scrapes land, and runs every check.
pub async fn run(setup: &Setup<'_>) -> Vec<Outcome> {
    let journey = journey(setup);
    let switches = play(setup);
    let (journey, switches) = tokio::join!(journey, switches);
    say(format!(
        "waiting {}s for the last scrapes and rule evaluations",
        SETTLE.as_secs()
    ));
    tokio::time::sleep(SETTLE).await;
    let window = (
        prometheus::unix(setup.since),
        prometheus::unix(SystemTime::now()),
    );
    let names = setup.api.names(window).await;
    let mut outcomes = vec![journey, switches, targets(setup).await];
    match &names {
        Ok(names) => {
            outcomes.push(dashboards(setup, names, window).await);
            outcomes.push(rules(setup, names).await);
            outcomes.push(exemplars(setup, window).await);
            outcomes.push(k6_series(names));
        }
        Err(e) => outcomes.push(Outcome::new(
            "metric names",
            vec![format!("/api/v1/label/__name__/values: {e}")],
            "Prometheus did not list its metric names".into(),
        )),
    }
    outcomes
}

/// The k6 journey for `duration`, remote-writing into Prometheus.
async fn journey(setup: &Setup<'_>) -> Outcome {
    let log = setup.dir.join("k6.log");
    let summary = setup.dir.join("k6-summary.json");
    let _ = std::fs::remove_file(&summary);
    say(format!(
        "k6 journey: {} VUs for {}s against {} (output: {})",
        setup.vus,
        setup.duration.as_secs(),
        setup.web,
        log.display()
    ));
    let outcome = async {
        let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let errors = file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = tokio::process::Command::new(setup.k6);
        command
            .args(["run", "--quiet", "--no-color", "--no-usage-report"])
            .args(["--out", "experimental-prometheus-rw"])
            .arg("--summary-export")
            .arg(&summary)
            .arg("scripts/k6/journey.js")
            .current_dir(setup.root)
            .env("BASE_URL", &setup.web)
            .env("VUS", setup.vus.to_string())
            .env("DURATION", format!("{}s", setup.duration.as_secs()))
            .env("PAUSE_MIN", "0")
            .env("PAUSE_MAX", "1")
            .env(
                "K6_PROMETHEUS_RW_SERVER_URL",
                format!("{}/api/v1/write", setup.api.base),
            )
            .env("K6_PROMETHEUS_RW_TREND_STATS", TREND_STATS)
            .env("K6_PROMETHEUS_RW_PUSH_INTERVAL", "5s")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(errors)
            // Its own group (Ctrl-C is this tool's to handle), killed if this is dropped.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("k6 did not start: {e}"))?;
        let within = setup.duration + K6_GRACE;
        let status = match tokio::time::timeout(within, child.wait()).await {
            Ok(status) => status.map_err(|e| format!("k6 could not be waited for: {e}"))?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(format!("k6 still ran after {within:?}: killed"));
            }
        };
        Ok(status.code())
    }
    .await;
    let journeys = std::fs::read_to_string(&summary)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|s| s["metrics"]["journeys_completed"]["count"].as_f64())
        .unwrap_or(0.0);
    let code = match &outcome {
        Ok(Some(99)) => " (thresholds crossed under the faults, as expected)",
        _ => "",
    };
    let failures = match outcome {
        // 99: thresholds crossed, which the faults are there to cause.
        Ok(Some(0 | 99)) if journeys > 0.0 => Vec::new(),
        Ok(code) => vec![format!(
            "k6 exited {} after {journeys} completed journeys (see {})",
            code.map_or("on a signal".into(), |c| c.to_string()),
            log.display()
        )],
        Err(e) => vec![e],
    };
    Outcome::new(
        "k6",
        failures,
        format!("{journeys} journeys completed{code}"),
    )
}

/// Switches the faults of [`plan`] at their times.
async fn play(setup: &Setup<'_>) -> Outcome {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .disable_redirects()
        .finish();
    let began = Instant::now();
    let plan = plan(setup.duration);
    let mut failures = Vec::new();
    for step in &plan {
        tokio::time::sleep_until((began + step.at).into()).await;
        let Some(address) = setup.admin.get(&step.role) else {
            failures.push(format!("{}: no admin address", step.role));
            continue;
        };
        let url = format!("http://{address}/faults");
        let shown = if step.faults.is_empty() {
            "off".to_string()
        } else {
            step.faults.join(", ")
        };
        let sent = client
            .put(&url)
            .insert_header(("Authorization", format!("Bearer {}", setup.token)))
            .insert_header(("Content-Type", "application/json"))
            .send_body(json!({ "faults": step.faults }).to_string())
            .await;
        match sent {
            Ok(response) if response.status().as_u16() == 200 => {
                say(format!(
                    "+{:>2}s {}: faults {shown}",
                    step.at.as_secs(),
                    step.role
                ));
            }
            Ok(mut response) => {
                let body = response.body().await.unwrap_or_default();
                failures.push(format!(
                    "PUT {url} ({shown}): {} {}",
                    response.status(),
                    String::from_utf8_lossy(&body).trim()
                ));
            }
            Err(e) => failures.push(format!("PUT {url} ({shown}): {e}")),
        }
    }
    let summary = format!(
        "{} switches at run time (payment-failure, memory-leak, cart-data-outage)",
        plan.len()
    );
    Outcome::new("faults", failures, summary)
}

/// Every role's scrape target is up.
async fn targets(setup: &Setup<'_>) -> Outcome {
    let mut failures = Vec::new();
    let targets = match setup.api.targets().await {
        Ok(targets) => targets,
        Err(e) => {
            return Outcome::new(
                "targets",
                vec![e.to_string()],
                "no answer from /api/v1/targets".into(),
            )
        }
    };
    for role in Role::ALL {
        match targets.iter().find(|t| t.job == role.as_str()) {
            Some(t) if t.health == "up" => {}
            Some(t) => failures.push(format!("{role}: {} ({})", t.health, t.last_error)),
            None => failures.push(format!("{role}: no scrape job")),
        }
    }
    let up = Role::ALL.len() - failures.len();
    Outcome::new(
        "targets",
        failures,
        format!("{up} of {} roles scraped and up", Role::ALL.len()),
    )
}

/// Every query of every panel of every dashboard returns a series over the window.
async fn dashboards(setup: &Setup<'_>, names: &BTreeSet<String>, window: (f64, f64)) -> Outcome {
    if setup.dashboards.is_empty() {
        return Outcome::new(
            "dashboards",
            Vec::new(),
            "SKIPPED: the chart has no dashboards/*.json".into(),
        );
    }
    let mut failures = Vec::new();
    let mut total = 0;
    for path in &setup.dashboards {
        let file = file_name(path);
        let document = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()))
        {
            Ok(document) => document,
            Err(e) => {
                failures.push(format!("{file}: cannot be read: {e}"));
                continue;
            }
        };
        let values = resolve(setup.api, &dashboards::variables(&document), window).await;
        for query in dashboards::queries(&document) {
            total += 1;
            let expr = dashboards::substitute(&query.expr, &values);
            let why = match setup.api.query_range(&expr, window, STEP_SECONDS).await {
                Ok(series) if !series.is_empty() => continue,
                Ok(_) => {
                    let missing: Vec<String> = promql::metric_names(&expr)
                        .into_iter()
                        .filter(|n| !names.contains(n))
                        .collect();
                    if missing.is_empty() {
                        "no series".to_string()
                    } else {
                        format!("no series (never scraped: {})", missing.join(", "))
                    }
                }
                Err(e) => e.to_string(),
            };
            failures.push(format!(
                "{file} / {:?}: {why}\n        {}",
                query.panel,
                one_line(&expr)
            ));
        }
    }
    let returned = total - failures.len().min(total);
    Outcome::new(
        "dashboards",
        failures,
        format!(
            "{returned} of {total} panel queries of {} dashboards returned series",
            setup.dashboards.len()
        ),
    )
}

/// The dashboard's variables as values: a query variable takes the first value its
/// `label_values` finds (none: every value).
async fn resolve(
    api: &Api,
    variables: &BTreeMap<String, Variable>,
    window: (f64, f64),
) -> BTreeMap<String, Replacement> {
    let mut values = BTreeMap::new();
    for (name, variable) in variables {
        let value = match variable {
            Variable::Fixed(text) => Replacement {
                text: text.clone(),
                regex: false,
            },
            Variable::All(regex) => Replacement {
                text: regex.clone(),
                regex: true,
            },
            Variable::LabelValues { selector, label } => {
                match api.label_values(label, selector.as_deref(), window).await {
                    Ok(found) if !found.is_empty() => Replacement {
                        text: found[0].clone(),
                        regex: false,
                    },
                    _ => Replacement {
                        text: ".*".into(),
                        regex: true,
                    },
                }
            }
        };
        values.insert(name.clone(), value);
    }
    values
}

/// Every metric an alerting or recording rule reads was scraped (or is recorded by a
/// rule of the chart), and every rule evaluates without error.
async fn rules(setup: &Setup<'_>, names: &BTreeSet<String>) -> Outcome {
    if setup.rules.is_empty() {
        return Outcome::new(
            "rules",
            Vec::new(),
            "SKIPPED: the chart has no rules/*.yaml".into(),
        );
    }
    let recorded: BTreeSet<&str> = setup
        .rules
        .iter()
        .flat_map(|f| &f.rules)
        .filter(|r| r.recording)
        .map(|r| r.name.as_str())
        .collect();
    let mut failures = Vec::new();
    let mut read = BTreeSet::new();
    let mut count = 0;
    for file in setup.rules {
        for rule in &file.rules {
            count += 1;
            for metric in promql::metric_names(&rule.expr) {
                if !names.contains(&metric) && !recorded.contains(metric.as_str()) {
                    failures.push(format!(
                        "{} / {}: reads {metric}, which no role exposed",
                        file_name(&file.path),
                        rule.name
                    ));
                }
                read.insert(metric);
            }
        }
    }
    match setup.api.rules().await {
        Ok(loaded) => {
            if loaded.len() != count {
                failures.push(format!(
                    "Prometheus loaded {} rules, the files hold {count}",
                    loaded.len()
                ));
            }
            for rule in loaded.iter().filter(|r| r.health == "err") {
                failures.push(format!(
                    "{}: evaluation failed: {}",
                    rule.name, rule.last_error
                ));
            }
        }
        Err(e) => failures.push(format!("/api/v1/rules: {e}")),
    }
    Outcome::new(
        "rules",
        failures,
        format!(
            "{count} rules in {} files read {} metric names",
            setup.rules.len(),
            read.len()
        ),
    )
}

/// Exemplars of the request histogram carry trace ids the OTLP sink received.
async fn exemplars(setup: &Setup<'_>, window: (f64, f64)) -> Outcome {
    let (count, ids) = match setup.api.exemplar_trace_ids(EXEMPLAR_QUERY, window).await {
        Ok(found) => found,
        Err(e) => {
            return Outcome::new(
                "exemplars",
                vec![format!("/api/v1/query_exemplars: {e}")],
                "no answer".into(),
            )
        }
    };
    let matched = ids.iter().filter(|id| setup.traces.seen(id)).count();
    let failures = if matched > 0 {
        Vec::new()
    } else if count == 0 {
        vec![format!(
            "{EXEMPLAR_QUERY} has no exemplars (the roles' /metrics must be OpenMetrics with \
             exemplars)"
        )]
    } else {
        vec![format!(
            "none of the {} trace ids of its exemplars reached the OTLP sink",
            ids.len()
        )]
    };
    Outcome::new(
        "exemplars",
        failures,
        format!(
            "{count} exemplars of {EXEMPLAR_QUERY}, {} trace ids, {matched} of them among the \
             {} traces the OTLP sink received",
            ids.len(),
            setup.traces.count()
        ),
    )
}

/// k6's remote write reached Prometheus.
fn k6_series(names: &BTreeSet<String>) -> Outcome {
    let k6: Vec<&String> = names.iter().filter(|n| n.starts_with("k6_")).collect();
    let failures = if names.contains(K6_SERIES) {
        Vec::new()
    } else {
        vec![format!("no {K6_SERIES}: k6's remote write did not arrive")]
    };
    Outcome::new(
        "k6 series",
        failures,
        format!(
            "{} k6_* metrics remote-written ({K6_SERIES} among them)",
            k6.len()
        ),
    )
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A multi-line expression on one line, for a report.
fn one_line(expr: &str) -> String {
    expr.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn say(message: impl std::fmt::Display) {
    println!("watch: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_faults_come_and_go_within_the_journey_leaving_its_last_third_clean() {
        let steps = plan(Duration::from_secs(75));
        let at: Vec<u64> = steps.iter().map(|s| s.at.as_secs()).collect();
        assert_eq!(at, [7, 20, 30, 35, 50]);
        assert!(steps.windows(2).all(|w| w[0].at <= w[1].at));
        // Each role ends with every fault off.
        for role in [Role::Payment, Role::Cart] {
            let last = steps.iter().rev().find(|s| s.role == role).unwrap();
            assert!(last.faults.is_empty(), "{role}: {:?}", last.faults);
        }
        let outage = steps
            .iter()
            .find(|s| s.faults == ["cart-data-outage"])
            .unwrap();
        assert_eq!(outage.role, Role::Cart);
        assert_eq!(
            steps[0].faults,
            ["payment-failure=0.5", "memory-leak=payment"]
        );
        // A shorter journey keeps the same shape.
        let short = plan(Duration::from_secs(30));
        assert!(short.last().unwrap().at <= Duration::from_secs(21));
    }

    #[test]
    fn the_trend_stats_are_the_chart_s() {
        assert_eq!(TREND_STATS, "p(50),p(95),p(99),max");
    }

    #[test]
    fn reports_put_expressions_on_one_line() {
        assert_eq!(one_line("sum(\n  rate(x[1m])\n)"), "sum( rate(x[1m]) )");
        assert_eq!(file_name(Path::new("/a/b/shop.json")), "shop.json");
    }
}
