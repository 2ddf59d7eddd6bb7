//! `cargo xtask bench` (was scripts/bench.sh), the benchmark of issue 5: the production
//! topology on real Redis and PostgreSQL, payment delay 0, measured at each connection
//! count, every run bounded in time:
//!
//! ```text
//! search        POST /api/v1/product/search {"query":"","page":{"size":6}} via web-gateway
//! cart read     POST /api/v1/cart {"session_id": <signed session>} via web-gateway
//! cart update   PUT  /api/v1/cart/f95e2475/1 {"session_id": ...} via web-gateway
//! k6 journey    the whole journey of scripts/k6/journey.js without pauses (journeys/s)
//! hop           GET /api/v1/product/products/f95e2475 through the api-gateway, and the
//!               same hop through nginx (one worker, keep-alive upstream) to the same
//!               product role, in the same run, as a ratio; again to product's /healthz
//! memory        resident memory of each role idle (VmRSS before load) and at peak
//!               (VmHWM after load); `--role all` in one process idle and under search
//! ```
//!
//! It prints one Markdown table and writes BENCHMARKS.md (machine, command, table, targets
//! met or missed), keeping the file's hand-written analysis. Everything it starts (roles,
//! nginx, the one-process shop) is stopped on exit, failure or Ctrl-C included. Logs, wrk
//! and k6 output and results.jsonl: target/bench/.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ecommerce::role::Role;
use serde_json::json;
use support::shop::SWEET_TEA;

use crate::procs::{self, Owned};
use crate::report;
use crate::shop::{self, Http, OneProcess, Roles};
use crate::stores;
use crate::tools;
use crate::wrk;

mod figures;

pub use figures::{
    document, parse_k6_summary, results_table, target_table, targets, Context, Process, Results,
    Run, Scenario,
};

const NAME: &str = "bench";
const SEARCH_BODY: &str = r#"{"query":"","page":{"size":6}}"#;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds of each measured run (1-600).
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Connection counts, separated by spaces.
    #[arg(long, env = "BENCH_CONNS", default_value = "16 64", value_parser = parse_conns)]
    pub conns: Conns,
    /// Unmeasured warm-up before each scenario, seconds (0-60).
    #[arg(long, env = "WARMUP_SECONDS", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup: u64,
    /// wrk threads (1-64).
    #[arg(long, env = "WRK_THREADS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    #[command(flatten)]
    pub stores: stores::StoreUrls,
    /// The topology's first port (default: the first free block from 8080).
    #[arg(long, env = "BASE_PORT")]
    pub base_port: Option<u16>,
    /// The report (default: BENCHMARKS.md in the repository).
    #[arg(long, env = "BENCH_OUT")]
    pub out: Option<PathBuf>,
}

/// Connection counts, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conns(pub Vec<u32>);

pub fn parse_conns(text: &str) -> Result<Conns, String> {
    let conns = text
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<u32>() {
            Ok(n) if (1..=1024).contains(&n) => Ok(n),
            _ => Err(format!("'{s}' is not a connection count (1-1024)")),
        })
        .collect::<Result<Vec<u32>, String>>()?;
    if conns.is_empty() {
        return Err("no connection count".into());
    }
    Ok(Conns(conns))
}

impl std::fmt::Display for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let texts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&texts.join(" "))
    }
}

impl Args {
    /// How to run it again: the settings that differ from the defaults, then the command.
    pub fn command_line(&self) -> String {
        report::command_line(
            &[
                ("BENCH_SECONDS", self.seconds.to_string(), "10".into()),
                ("BENCH_CONNS", self.conns.to_string(), "16 64".into()),
                ("WARMUP_SECONDS", self.warmup.to_string(), "1".into()),
                ("WRK_THREADS", self.threads.to_string(), "2".into()),
            ],
            "cargo xtask bench",
        )
    }
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    procs::stop_everything_on_signal(NAME);
    procs::unless_interrupted(actix_web::rt::System::new().block_on(bench(args)))
}

fn say(text: impl std::fmt::Display) {
    println!("{NAME}: {text}");
}

/// Appends one row to results.jsonl and remembers the run.
struct Recorder {
    file: std::fs::File,
    results: Results,
}

impl Recorder {
    fn run(&mut self, run: Run, extra: serde_json::Value) -> std::io::Result<()> {
        let mut row = json!({
            "scenario": run.scenario.key(), "conns": run.conns, "rps": run.rps,
            "p50_ms": run.p50_ms, "p99_ms": run.p99_ms, "errors": run.errors,
            "non2xx": run.non2xx, "socket_errors": run.socket_errors,
            "rss_kb": run.rss_kb, "requests": run.requests,
        });
        if let (Some(row), Some(extra)) = (row.as_object_mut(), extra.as_object()) {
            row.extend(extra.clone());
        }
        writeln!(self.file, "{row}")?;
        self.results.runs.push(run);
        Ok(())
    }

    fn memory(&mut self, process: Process, idle_kb: Option<u64>, peak_kb: Option<u64>) {
        let role = match process {
            Process::Role(r) => r.as_str(),
            Process::All => "all",
        };
        let _ = writeln!(
            self.file,
            "{}",
            json!({"kind": "memory", "role": role, "idle_kb": idle_kb, "peak_kb": peak_kb})
        );
        let m = self.results.memory.entry(process).or_default();
        m.idle_kb = idle_kb.or(m.idle_kb);
        m.peak_kb = peak_kb.or(m.peak_kb);
    }
}

/// Everything the measured runs share.
struct Load<'a> {
    args: &'a Args,
    work: &'a Path,
}

impl Load<'_> {
    fn wrk<'a>(&self, conns: u32, url: &'a str, script: &'a Path) -> wrk::Run<'a> {
        wrk::Run {
            threads: self.args.threads,
            conns,
            seconds: self.args.seconds,
            url,
            script,
            latency: true,
        }
    }

    fn warm_up(&self, url: &str, script: &Path) {
        wrk::Run {
            threads: 1,
            conns: 8,
            seconds: self.args.warmup,
            url,
            script,
            latency: false,
        }
        .warm_up();
    }

    /// A measured run, printed and recorded; `rss` reads the memory it reports.
    fn measure(
        &self,
        recorder: &mut Recorder,
        scenario: Scenario,
        conns: u32,
        url: &str,
        script: &Path,
        rss: &dyn Fn() -> u64,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let slug: String = scenario
            .key()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let out = self.work.join(format!("wrk-{slug}-{conns}.txt"));
        let result = self.wrk(conns, url, script).measure(&out)?;
        let run = Run::of_wrk(scenario, conns, &result, rss());
        println!(
            "{NAME}:   {:<28} c={:<3} {:>10.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
            scenario.key(),
            conns,
            run.rps,
            run.p50_ms,
            run.p99_ms,
            run.errors
        );
        recorder.run(run, json!({}))?;
        Ok(())
    }
}

async fn bench(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let root = tools::root();
    let work = root.join("target/bench");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("BENCHMARKS.md"));
    let command = args.command_line();

    let nginx = tools::ensure_wrk_and_nginx(NAME)?;
    let k6 = tools::ensure_k6()?;
    std::fs::create_dir_all(work.join("topology"))?;
    let mut recorder = Recorder {
        file: std::fs::File::create(work.join("results.jsonl"))?,
        results: Results::default(),
    };
    let base = match args.base_port {
        Some(port) => port,
        None => shop::free_block(8080, 7)?,
    };

    say("building the release binary");
    let binary = tools::build_release(false)?;

    let load_before = procs::load_average();
    say(format!(
        "starting the topology on real stores (Redis {}, PostgreSQL {}), payment delay 0",
        args.stores.redis_url, args.stores.postgres_url
    ));
    stores::prepare(
        &binary,
        (&args.stores.redis_url, &args.stores.postgres_url),
        &work.join("topology"),
        NAME,
    )
    .await?;
    let http = Http::new();
    let settings = shop::production(base, &args.stores.redis_url, &args.stores.postgres_url)?;
    let roles = Roles::start(&binary, settings, &[], &work.join("topology"), "", &http).await?;

    tokio::time::sleep(Duration::from_secs(1)).await;
    say("idle resident memory");
    for role in Role::ALL {
        recorder.memory(
            Process::Role(role),
            Some(procs::rss_kb(roles.pid(role))),
            None,
        );
    }

    let web = roles.url(Role::WebGateway, "");
    let api = roles.url(Role::ApiGateway, "");
    let session = http.session(&web).await?;
    let session_body = format!(r#"{{"session_id":"{session}"}}"#);
    let script = |name: &str, method: &str, body: &str| -> Result<PathBuf, wrk::Error> {
        let path = work.join(name);
        wrk::write_script(&path, method, body)?;
        Ok(path)
    };
    let search_lua = script("search.lua", "POST", SEARCH_BODY)?;
    let cart_read_lua = script("cart-read.lua", "POST", &session_body)?;
    let cart_update_lua = script("cart-update.lua", "PUT", &session_body)?;
    let get_lua = script("get.lua", "GET", "")?;

    // Each scenario's request answers as expected before it is measured.
    let search_url = format!("{web}/api/v1/product/search");
    let cart_url = format!("{web}/api/v1/cart");
    let update_url = format!("{web}/api/v1/cart/{SWEET_TEA}/1");
    let hop_url = format!("{api}/api/v1/product/products/{SWEET_TEA}");
    http.expect(
        "search via web-gateway does not answer",
        "POST",
        &search_url,
        Some(SEARCH_BODY),
        "\"results\"",
    )
    .await?;
    http.expect(
        "cart update via web-gateway does not answer",
        "PUT",
        &update_url,
        Some(&session_body),
        "",
    )
    .await?;
    http.expect(
        "cart read via web-gateway does not show the cart",
        "POST",
        &cart_url,
        Some(&session_body),
        SWEET_TEA,
    )
    .await?;
    http.expect(
        "api-gateway hop does not answer",
        "GET",
        &hop_url,
        None,
        SWEET_TEA,
    )
    .await?;

    let load = Load {
        args: &args,
        work: &work,
    };
    let shop_rss = || roles.pids().into_iter().map(procs::rss_kb).sum::<u64>();
    say(format!(
        "load: each run {}s at {} connections (wrk -t{})",
        args.seconds,
        args.conns
            .0
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        args.threads
    ));
    for (scenario, url, lua) in [
        (Scenario::Search, &search_url, &search_lua),
        (Scenario::CartRead, &cart_url, &cart_read_lua),
        (Scenario::CartUpdate, &update_url, &cart_update_lua),
    ] {
        load.warm_up(url, lua);
        for c in &args.conns.0 {
            load.measure(&mut recorder, scenario, *c, url, lua, &shop_rss)?;
        }
    }

    say("k6 journey without pauses");
    for c in &args.conns.0 {
        k6_run(&load, &mut recorder, &k6, *c, &web, &shop_rss)?;
    }

    say("one proxy hop: api-gateway against nginx (1 worker, keep-alive) to the same product role");
    let nginx_port = shop::free_block(base.saturating_add(100), 7)?;
    let product = roles.address(Role::Product);
    let proxy = start_nginx(&nginx, &work.join("nginx"), nginx_port, &product)?;
    let nginx_url = format!("http://127.0.0.1:{nginx_port}/api/v1/product/products/{SWEET_TEA}");
    if let Err(e) = http
        .expect(
            "nginx does not proxy to the product role",
            "GET",
            &nginx_url,
            None,
            SWEET_TEA,
        )
        .await
    {
        eprintln!("{}", procs::tail(&work.join("nginx/error.log"), 20));
        return Err(e.into());
    }
    let nginx_pid = proxy.pid();
    let nginx_rss = || {
        procs::rss_kb(nginx_pid)
            + procs::children(nginx_pid)
                .into_iter()
                .map(procs::rss_kb)
                .sum::<u64>()
    };
    let api_pid = roles.pid(Role::ApiGateway);
    let api_rss = || procs::rss_kb(api_pid);
    // The same hop to an upstream that costs next to nothing (product's /healthz): what
    // the proxy itself costs, where the product lookup may be what limits both.
    let gw_cheap = format!("{api}/api/v1/product/healthz");
    let nginx_cheap = format!("http://127.0.0.1:{nginx_port}/api/v1/product/healthz");
    for (gateway, via_nginx, gw_url, ng_url) in [
        (
            Scenario::HopGateway,
            Scenario::HopNginx,
            &hop_url,
            &nginx_url,
        ),
        (
            Scenario::HopGatewayHealthz,
            Scenario::HopNginxHealthz,
            &gw_cheap,
            &nginx_cheap,
        ),
    ] {
        if gateway == Scenario::HopGatewayHealthz {
            http.expect("the /healthz hop does not answer", "GET", gw_url, None, "")
                .await?;
            http.expect("the /healthz hop does not answer", "GET", ng_url, None, "")
                .await?;
        }
        load.warm_up(gw_url, &get_lua);
        load.warm_up(ng_url, &get_lua);
        for c in &args.conns.0 {
            load.measure(&mut recorder, gateway, *c, gw_url, &get_lua, &api_rss)?;
            load.measure(&mut recorder, via_nginx, *c, ng_url, &get_lua, &nginx_rss)?;
        }
    }
    proxy.stop(Duration::from_secs(15))?;

    say("peak resident memory");
    for role in Role::ALL {
        recorder.memory(
            Process::Role(role),
            None,
            Some(procs::hwm_kb(roles.pid(role))),
        );
    }
    roles.stop().await?;

    say("the whole shop in one process (--role all): idle, then under the search load");
    let all_port = shop::free_block(base.saturating_add(200), 7)?;
    let settings = shop::one_process(all_port, &args.stores.redis_url, &args.stores.postgres_url)?;
    let all = OneProcess::start(&binary, settings, &work.join("role-all.log"), &http).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all_pid = all.pid();
    recorder.memory(Process::All, Some(procs::rss_kb(all_pid)), None);
    let all_search = all.url(Role::WebGateway, "/api/v1/product/search");
    load.warm_up(&all_search, &search_lua);
    for c in &args.conns.0 {
        load.measure(
            &mut recorder,
            Scenario::SearchOneProcess,
            *c,
            &all_search,
            &search_lua,
            &|| procs::rss_kb(all_pid),
        )?;
    }
    recorder.memory(Process::All, None, Some(procs::hwm_kb(all_pid)));
    all.stop()?;

    let context = Context {
        machine: report::Machine::read(),
        date: report::utc_now(),
        load_before,
        load_after: procs::load_average(),
        threads: args.threads,
        k6: tools::k6_version(&k6),
        nginx: tools::nginx_version(&nginx),
        redis: tools::redis_version(&args.stores.redis_url),
        postgres: tools::postgres_version(&args.stores.postgres_url),
    };
    say(format!("writing {}", out.display()));
    let results = &recorder.results;
    let doc = document(results, args.seconds, &command, &context);
    report::write_keeping_analysis(&out, &doc)?;
    println!();
    println!("{}", results_table(results));
    println!();
    println!("{}", target_table(&targets(results).0));
    say(format!("wrote {}", out.display()));
    Ok(())
}

/// The k6 journey without pauses at `conns` virtual users, recorded as a run.
fn k6_run(
    load: &Load,
    recorder: &mut Recorder,
    k6: &Path,
    conns: u32,
    web: &str,
    rss: &dyn Fn() -> u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let summary_path = load.work.join(format!("k6-{conns}.json"));
    let _ = std::fs::remove_file(&summary_path);
    let log = load.work.join(format!("k6-{conns}.txt"));
    let mut command = Command::new(k6);
    command
        .current_dir(tools::root())
        .args(["run", "--quiet", "--no-color", "--summary-export"])
        .arg(&summary_path)
        .arg("scripts/k6/journey.js")
        .env("BASE_URL", web)
        .env("VUS", conns.to_string())
        .env("DURATION", format!("{}s", load.args.seconds))
        .env("PAUSE_MIN", "0")
        .env("PAUSE_MAX", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = procs::output_within(command, Duration::from_secs(load.args.seconds + 60))?;
    std::fs::write(&log, format!("{}{}", out.stdout, out.stderr))?;
    let text = std::fs::read_to_string(&summary_path).map_err(|_| {
        eprintln!("{}", procs::tail(&log, 30));
        format!("k6 wrote no summary (see {})", log.display())
    })?;
    let s = parse_k6_summary(&text)?;
    let exit = out.status.code().unwrap_or(-1);
    let mut errors = s.failed_requests + s.failed_checks;
    if exit != 0 && errors == 0 {
        errors = 1; // k6 failed for a reason of its own
    }
    let run = Run {
        scenario: Scenario::K6Journey,
        conns,
        rps: s.rate,
        p50_ms: s.p50_ms,
        p99_ms: s.p99_ms,
        errors,
        non2xx: s.failed_requests,
        socket_errors: 0,
        rss_kb: rss(),
        requests: s.iterations,
    };
    println!(
        "{NAME}:   {:<28} c={:<3} {:>10.1} jrn/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {} (k6 exit {exit})",
        "k6 journey", conns, s.rate, s.p50_ms, s.p99_ms, errors
    );
    recorder.run(run, json!({ "k6_exit": exit }))?;
    Ok(())
}

/// nginx, one worker, proxying `/api/v1/product/` to the product role at `product` over
/// keep-alive connections, ready on `port`.
fn start_nginx(
    nginx: &Path,
    dir: &Path,
    port: u16,
    product: &str,
) -> Result<Owned, Box<dyn std::error::Error>> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("tmp"))?;
    std::fs::write(dir.join("nginx.conf"), nginx_conf(dir, port, product))?;
    let log = std::fs::File::create(dir.join("stdout.log"))?;
    let mut command = Command::new(nginx);
    command
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut proxy = Owned::spawn("nginx", command)?;
    for _ in 0..50 {
        if stores::answers_blocking(("127.0.0.1", port)) || !proxy.running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(proxy)
}

pub fn nginx_conf(dir: &Path, port: u16, product: &str) -> String {
    let d = dir.display();
    format!(
        "# Generated by cargo xtask bench: one keep-alive proxy hop to the product role.
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  upstream product {{
    server {product};
    keepalive 128;
  }}
  server {{
    listen 127.0.0.1:{port};
    location /api/v1/product/ {{
      proxy_pass http://product/;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }}
  }}
}}
"
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    type Cli = crate::testing::Cli<Args>;

    #[test]
    fn settings_come_from_arguments_with_bounds() {
        let cli = Cli::try_parse_from(["bench", "--seconds", "5", "--conns", "8 32"]).unwrap();
        assert_eq!(cli.args.seconds, 5);
        assert_eq!(cli.args.conns, Conns(vec![8, 32]));
        assert_eq!(
            cli.args.command_line(),
            "BENCH_SECONDS=5 BENCH_CONNS='8 32' cargo xtask bench"
        );
        for bad in [
            &["bench", "--seconds", "0"][..],
            &["bench", "--seconds", "601"],
            &["bench", "--conns", "16 x"],
            &["bench", "--conns", " "],
            &["bench", "--threads", "0"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_conns("16,64"), Ok(Conns(vec![16, 64])));
    }

    #[test]
    fn nginx_proxies_the_product_prefix_over_keep_alive() {
        let conf = nginx_conf(Path::new("/w/nginx"), 8180, "127.0.0.1:8086");
        assert!(conf.contains("server 127.0.0.1:8086;\n    keepalive 128;"));
        assert!(conf.contains("listen 127.0.0.1:8180;"));
        assert!(conf.contains("proxy_pass http://product/;"));
        assert!(conf.contains("worker_processes 1;\ndaemon off;"));
    }
}
