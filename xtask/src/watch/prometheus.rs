//! The local Prometheus: its configuration (one scrape job per role, the chart's rules),
//! its process (Debian's `prometheus`, checked first with `promtool`), and the few calls
//! of its HTTP API that the check makes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::procs::{self, Owned};

/// How often every role is scraped and the rules evaluated.
pub const SCRAPE_INTERVAL: &str = "5s";
/// How long Prometheus may take to answer `/-/ready`.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long one API call may take.
const CALL_WITHIN: Duration = Duration::from_secs(30);

/// One role to scrape: the job is named after the role, the target is where it serves
/// `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub job: String,
    pub address: String,
}

/// `prometheus.yml`: every target its own job, scraped every [`SCRAPE_INTERVAL`], and
/// the rule files.
pub fn render_config(targets: &[ScrapeTarget], rule_files: &[PathBuf]) -> String {
    let scrape_configs: Vec<Value> = targets
        .iter()
        .map(|t| {
            json!({
                "job_name": t.job,
                "static_configs": [{"targets": [t.address]}],
            })
        })
        .collect();
    let config = json!({
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "rule_files": rule_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "scrape_configs": scrape_configs,
    });
    // Plain maps, lists and strings: nothing here fails to serialize.
    serde_norway::to_string(&config).unwrap_or_default()
}

/// One alerting or recording rule of a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub group: String,
    /// `record` or `alert`: what it produces, or what it is called.
    pub name: String,
    pub recording: bool,
    pub expr: String,
}

/// A rule file of the chart, read: its rules, and its groups as Prometheus takes them.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub path: PathBuf,
    pub rules: Vec<Rule>,
    /// `{"groups": [...]}`, whether the file is a plain rule file or a `PrometheusRule`
    /// (whose groups are under `spec`).
    pub groups: Value,
}

/// Reads a rule file: a Prometheus rule file (`groups:`) or a `PrometheusRule` object
/// (`spec.groups`), one YAML document or several.
pub fn parse_rules(path: &Path, text: &str) -> Result<RuleFile, RulesError> {
    let mut groups = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(document).map_err(RulesError::Yaml)?;
        if value.is_null() {
            continue;
        }
        let found = value
            .get("groups")
            .or_else(|| value.get("spec").and_then(|s| s.get("groups")))
            .and_then(Value::as_array)
            .ok_or(RulesError::NoGroups)?;
        groups.extend(found.iter().cloned());
    }
    let mut rules = Vec::new();
    for group in &groups {
        let group_name = group.get("name").and_then(Value::as_str).unwrap_or("");
        for rule in group
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = |key: &str| rule.get(key).and_then(Value::as_str).map(str::to_string);
            let (name, recording) = match (text("record"), text("alert")) {
                (Some(record), _) => (record, true),
                (None, Some(alert)) => (alert, false),
                (None, None) => {
                    return Err(RulesError::Unnamed {
                        group: group_name.to_string(),
                    })
                }
            };
            // An expression may be a YAML number (`expr: 1`).
            let expr = match rule.get("expr") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(RulesError::NoExpr { rule: name }),
            };
            rules.push(Rule {
                group: group_name.to_string(),
                name,
                recording,
                expr,
            });
        }
    }
    Ok(RuleFile {
        path: path.to_path_buf(),
        rules,
        groups: json!({ "groups": groups }),
    })
}

/// The `*.yaml` and `*.yml` files of `dir`, sorted; none when it does not exist.
pub fn rule_paths(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// The groups of `file` as a rule file Prometheus loads.
pub fn render_rules(file: &RuleFile) -> String {
    serde_norway::to_string(&file.groups).unwrap_or_default()
}

/// Why a rule file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("not YAML")]
    Yaml(#[source] serde_norway::Error),
    #[error("neither `groups` nor `spec.groups` (a PrometheusRule)")]
    NoGroups,
    #[error("a rule of group {group:?} has neither `record` nor `alert`")]
    Unnamed { group: String },
    #[error("rule {rule:?} has no `expr`")]
    NoExpr { rule: String },
}

/// Why Prometheus could not be set up, or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Prometheus at {}: apt-get install -y prometheus (as root), or set PROMETHEUS", .0.display())]
    Missing(PathBuf),
    #[error("apt-get {args} failed: {stderr}")]
    Install { args: String, stderr: String },
    #[error("no promtool beside {}", .0.display())]
    NoPromtool(PathBuf),
    #[error("promtool check config {} failed:\n{output}", .config.display())]
    Config { config: PathBuf, output: String },
    #[error("cannot write {}", .path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Process(#[from] procs::Error),
    #[error("prometheus exited before it was ready")]
    Exited,
    #[error("{url} did not answer 200 within {within:?}")]
    NotReady { url: String, within: Duration },
    #[error("{url}: {reason}")]
    Call { url: String, reason: String },
    #[error("{error_type}: {error}")]
    Refused { error_type: String, error: String },
}

/// Prometheus's binary, installed with apt-get when it is the default one and missing
/// (as root), and `promtool` beside it.
pub fn ensure(binary: &Path, default: &Path) -> Result<(PathBuf, PathBuf), Error> {
    if !binary.is_file() {
        // SAFETY: geteuid has no preconditions.
        if binary != default || unsafe { libc::geteuid() } != 0 {
            return Err(Error::Missing(binary.to_path_buf()));
        }
        println!("watch: installing prometheus (apt-get)");
        for args in [
            &["update", "-qq"][..],
            &[
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "prometheus",
            ][..],
        ] {
            let mut command = Command::new("apt-get");
            command
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let out = procs::output_within(command, Duration::from_secs(600))?;
            if !out.success {
                return Err(Error::Install {
                    args: args.join(" "),
                    stderr: out.stderr.trim().to_string(),
                });
            }
        }
        if !binary.is_file() {
            return Err(Error::Missing(binary.to_path_buf()));
        }
    }
    let promtool = binary.with_file_name("promtool");
    if promtool.is_file() {
        Ok((binary.to_path_buf(), promtool))
    } else {
        Err(Error::NoPromtool(binary.to_path_buf()))
    }
}

/// `promtool check config` (which checks the rule files it names too).
pub fn check_config(promtool: &Path, config: &Path) -> Result<(), Error> {
    let mut command = Command::new(promtool);
    command
        .args(["check", "config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = procs::output_within(command, Duration::from_secs(60))?;
    if out.success {
        Ok(())
    } else {
        Err(Error::Config {
            config: config.to_path_buf(),
            output: format!("{}{}", out.stdout, out.stderr).trim().to_string(),
        })
    }
}

/// The arguments of a Prometheus on `127.0.0.1:port` keeping its data in `data`.
pub fn arguments(config: &Path, data: &Path, port: u16) -> Vec<String> {
    vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", data.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--enable-feature=exemplar-storage".into(),
        "--web.enable-remote-write-receiver".into(),
        // Remote-written k6 samples may arrive a little late.
        "--storage.tsdb.retention.time=1d".into(),
    ]
}

/// Starts Prometheus (its own process group: a terminal's Ctrl-C reaches this tool, which
/// stops it in order), its output to `log`.
pub fn spawn(binary: &Path, args: &[String], log: &Path) -> Result<Owned, Error> {
    let failed = |source| Error::Log {
        path: log.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(log).map_err(failed)?;
    let errors = file.try_clone().map_err(failed)?;
    let mut command = Command::new(binary);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(errors);
    Ok(Owned::spawn("prometheus", command)?)
}

/// Seconds since the epoch, as the API takes times.
pub fn unix(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A scrape target's health, as `/api/v1/targets` says it.
#[derive(Debug, Clone)]
pub struct TargetHealth {
    pub job: String,
    pub health: String,
    pub last_error: String,
}

/// A rule's health, as `/api/v1/rules` says it.
#[derive(Debug, Clone)]
pub struct RuleHealth {
    pub name: String,
    pub health: String,
    pub last_error: String,
}

/// Prometheus's HTTP API.
pub struct Api {
    pub base: String,
    client: awc::Client,
}

impl Api {
    pub fn new(port: u16) -> Api {
        Api {
            base: format!("http://127.0.0.1:{port}"),
            client: awc::Client::builder()
                .timeout(CALL_WITHIN)
                .disable_redirects()
                .finish(),
        }
    }

    /// `GET path` (or `POST path` with a form, when given): the `data` of a successful
    /// answer.
    async fn call(&self, path: &str, body: Option<String>) -> Result<Value, Error> {
        let url = format!("{}{path}", self.base);
        let sent = match body {
            Some(body) => {
                self.client
                    .post(&url)
                    .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                    .send_body(body)
                    .await
            }
            None => self.client.get(&url).send().await,
        };
        let failed = |reason: String| Error::Call {
            url: url.clone(),
            reason,
        };
        let mut response = sent.map_err(|e| failed(e.to_string()))?;
        let bytes = response
            .body()
            .limit(256 * 1024 * 1024)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
            let start: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            failed(format!("{} {e}: {start}", response.status()))
        })?;
        if answer["status"] == "success" {
            Ok(answer["data"].clone())
        } else {
            Err(Error::Refused {
                error_type: answer["errorType"].as_str().unwrap_or("error").to_string(),
                error: answer["error"]
                    .as_str()
                    .unwrap_or("(no reason given)")
                    .to_string(),
            })
        }
    }

    /// Waits until `/-/ready` answers 200 while `running` holds.
    pub async fn wait_ready(&self, mut running: impl FnMut() -> bool) -> Result<(), Error> {
        let deadline = Instant::now() + READY_WITHIN;
        let url = format!("{}/-/ready", self.base);
        loop {
            if let Ok(response) = self.client.get(&url).send().await {
                if response.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if !running() {
                return Err(Error::Exited);
            }
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    url,
                    within: READY_WITHIN,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The series of `expr` between `start` and `end`, every `step` seconds.
    pub async fn query_range(
        &self,
        expr: &str,
        (start, end): (f64, f64),
        step: f64,
    ) -> Result<Vec<Value>, Error> {
        let body = form(&[
            ("query", expr),
            ("start", &format!("{start:.3}")),
            ("end", &format!("{end:.3}")),
            ("step", &step.to_string()),
        ]);
        let data = self.call("/api/v1/query_range", Some(body)).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The values of `label` (among the series `selector` selects, when given) between
    /// `start` and `end`.
    pub async fn label_values(
        &self,
        label: &str,
        selector: Option<&str>,
        (start, end): (f64, f64),
    ) -> Result<Vec<String>, Error> {
        let mut pairs = vec![
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
        ];
        if let Some(selector) = selector {
            pairs.push(("match[]", selector.to_string()));
        }
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = format!("/api/v1/label/{}/values?{}", encode(label), form(&pairs));
        let data = self.call(&path, None).await?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect())
    }

    /// Every metric name Prometheus holds between `start` and `end`.
    pub async fn names(&self, window: (f64, f64)) -> Result<BTreeSet<String>, Error> {
        Ok(self
            .label_values("__name__", None, window)
            .await?
            .into_iter()
            .collect())
    }

    /// The `trace_id` of every exemplar of `query` between `start` and `end`, and how
    /// many exemplars there were.
    pub async fn exemplar_trace_ids(
        &self,
        query: &str,
        (start, end): (f64, f64),
    ) -> Result<(usize, BTreeSet<String>), Error> {
        let body = form(&[
            ("query", query),
            ("start", &format!("{start:.3}")),
            ("end", &format!("{end:.3}")),
        ]);
        let data = self.call("/api/v1/query_exemplars", Some(body)).await?;
        Ok(exemplar_trace_ids(&data))
    }

    /// The health of every active scrape target.
    pub async fn targets(&self) -> Result<Vec<TargetHealth>, Error> {
        let data = self.call("/api/v1/targets?state=active", None).await?;
        Ok(data["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| TargetHealth {
                job: t["labels"]["job"].as_str().unwrap_or("").to_string(),
                health: t["health"].as_str().unwrap_or("").to_string(),
                last_error: t["lastError"].as_str().unwrap_or("").to_string(),
            })
            .collect())
    }

    /// The health of every rule loaded.
    pub async fn rules(&self) -> Result<Vec<RuleHealth>, Error> {
        let data = self.call("/api/v1/rules", None).await?;
        let mut rules = Vec::new();
        for group in data["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                rules.push(RuleHealth {
                    name: rule["name"].as_str().unwrap_or("").to_string(),
                    health: rule["health"].as_str().unwrap_or("").to_string(),
                    last_error: rule["lastError"].as_str().unwrap_or("").to_string(),
                });
            }
        }
        Ok(rules)
    }
}

/// The `trace_id` labels of the exemplars of a `query_exemplars` answer's `data`, and how
/// many exemplars there were.
pub fn exemplar_trace_ids(data: &Value) -> (usize, BTreeSet<String>) {
    let mut count = 0;
    let mut ids = BTreeSet::new();
    for series in data.as_array().into_iter().flatten() {
        for exemplar in series["exemplars"].as_array().into_iter().flatten() {
            count += 1;
            if let Some(id) = exemplar["labels"]["trace_id"].as_str() {
                ids.insert(id.to_ascii_lowercase());
            }
        }
    }
    (count, ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_scrapes_each_role_as_its_own_job_and_loads_the_rules() {
        let targets = [
            ScrapeTarget {
                job: "web-gateway".into(),
                address: "127.0.0.1:8090".into(),
            },
            ScrapeTarget {
                job: "cart".into(),
                address: "127.0.0.1:8092".into(),
            },
        ];
        let text = render_config(&targets, &["/tmp/w/rules/shop.yaml".into()]);
        let config: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(config["global"]["scrape_interval"], "5s");
        assert_eq!(config["global"]["evaluation_interval"], "5s");
        assert_eq!(config["rule_files"], json!(["/tmp/w/rules/shop.yaml"]));
        assert_eq!(
            config["scrape_configs"],
            json!([
                {"job_name": "web-gateway", "static_configs": [{"targets": ["127.0.0.1:8090"]}]},
                {"job_name": "cart", "static_configs": [{"targets": ["127.0.0.1:8092"]}]},
            ])
        );
        let none: Value = serde_norway::from_str(&render_config(&targets, &[])).unwrap();
        assert_eq!(none["rule_files"], json!([]));
    }

    #[test]
    fn the_server_keeps_exemplars_takes_remote_writes_and_listens_on_loopback() {
        let args = arguments(Path::new("/t/prometheus.yml"), Path::new("/t/data"), 9091);
        for expected in [
            "--config.file=/t/prometheus.yml",
            "--storage.tsdb.path=/t/data",
            "--web.listen-address=127.0.0.1:9091",
            "--enable-feature=exemplar-storage",
            "--web.enable-remote-write-receiver",
        ] {
            assert!(
                args.iter().any(|a| a == expected),
                "{expected} missing: {args:?}"
            );
        }
    }

    #[test]
    fn rule_files_and_prometheus_rules_both_read() {
        let plain = "\
groups:
  - name: shop
    rules:
      - record: job:requests:rate5m
        expr: sum by (job) (rate(http_server_request_duration_seconds_count[5m]))
      - alert: HighErrorRate
        expr: |
          job:errors:rate5m / job:requests:rate5m > 0.05
        for: 5m
";
        let file = parse_rules(Path::new("shop.yaml"), plain).unwrap();
        let names: Vec<(&str, bool)> = file
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.recording))
            .collect();
        assert_eq!(
            names,
            [("job:requests:rate5m", true), ("HighErrorRate", false)]
        );
        assert_eq!(
            file.rules[1].expr.trim(),
            "job:errors:rate5m / job:requests:rate5m > 0.05"
        );
        assert_eq!(file.rules[0].group, "shop");

        let crd = "\
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: shop}
spec:
  groups:
    - name: a
      rules: [{alert: Down, expr: up == 0}]
---
groups:
  - name: b
    rules: [{record: one, expr: 1}]
";
        let file = parse_rules(Path::new("crd.yaml"), crd).unwrap();
        assert_eq!(file.rules.len(), 2);
        assert_eq!(file.rules[1].expr, "1");
        // What Prometheus is given holds the groups alone.
        let rendered: Value = serde_norway::from_str(&render_rules(&file)).unwrap();
        let groups: Vec<&str> = rendered["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(groups, ["a", "b"]);

        assert!(parse_rules(Path::new("x.yaml"), "kind: ConfigMap\n").is_err());
        assert!(parse_rules(
            Path::new("x.yaml"),
            "groups: [{name: g, rules: [{expr: up}]}]"
        )
        .is_err());
    }

    #[test]
    fn forms_are_percent_encoded() {
        assert_eq!(
            form(&[
                ("query", "sum(rate(x{job=\"a b\"}[1m])) > 0.5"),
                ("step", "15")
            ]),
            "query=sum%28rate%28x%7Bjob%3D%22a%20b%22%7D%5B1m%5D%29%29%20%3E%200.5&step=15"
        );
    }

    #[test]
    fn exemplar_trace_ids_are_collected_across_series() {
        let data = json!([
            {"seriesLabels": {"job": "cart"}, "exemplars": [
                {"labels": {"trace_id": "ABC"}, "value": "0.1", "timestamp": 1.0},
                {"labels": {"span_id": "x"}, "value": "0.2", "timestamp": 2.0}
            ]},
            {"seriesLabels": {"job": "product"}, "exemplars": [
                {"labels": {"trace_id": "def"}, "value": "0.1", "timestamp": 1.0}
            ]}
        ]);
        let (count, ids) = exemplar_trace_ids(&data);
        assert_eq!(count, 3);
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["abc", "def"]);
    }
}
