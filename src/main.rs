//! `ecommerce`: parse the command line, set up logging, run, map failures to exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use ecommerce::catalog::generated::{self, Conflict};
use ecommerce::cli::{Cli, Command, FaultsCommand, FaultsSetArgs, MigrateArgs};
use ecommerce::startup::Application;
use ecommerce::stores::StoreUrl;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print as clap formats them.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // clap's first paragraph, on one line (it names the option).
            let text = e.to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            return fail(first.join(" ").trim_start_matches("error: "));
        }
    };
    init_logging();
    match cli.command {
        Command::Serve(args) => {
            let settings = match args.into_settings(|var| std::env::var(var).ok()) {
                Ok(settings) => settings,
                Err(e) => return fail(&e.to_string()),
            };
            raise_open_files_limit();
            let system = actix_web::rt::System::new();
            let result = system.block_on(async {
                let app = Application::build(settings)
                    .await
                    .map_err(|e| e.to_string())?;
                app.run_until_stopped().await.map_err(|e| e.to_string())
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Migrate(args) => match migrate(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Faults(FaultsCommand::Set(args)) => match set_faults(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
    }
}

/// Writes the shop's desired fault state, trying for `--wait` seconds while it does not
/// answer (a Helm hook may run before Redis is ready).
fn set_faults(args: FaultsSetArgs) -> Result<(), String> {
    use ecommerce::faults::shared::{self, Control, TRAFFIC_LEVELS};
    use ecommerce::faults::{FaultSwitch, Faults};
    use std::time::{Duration, Instant};

    let url = ecommerce::cli::parse_fault_state(&args.fault_state)
        .map_err(|e| format!("--fault-state: {e}"))?;
    let faults: Vec<String> = args
        .faults
        .iter()
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    shared::check_faults(&faults).map_err(|e| format!("FAULT: {e}"))?;
    let for_ = args
        .for_
        .as_deref()
        .map(shared::parse_duration)
        .transpose()
        .map_err(|e| format!("--for: {e}"))?;
    if !TRAFFIC_LEVELS.contains(&args.traffic_level) {
        return Err(format!(
            "--traffic-level: {} is not from 0 to 10",
            args.traffic_level
        ));
    }
    let switch = std::sync::Arc::new(FaultSwitch::new(Faults::default()));
    let trust = trust(args.ca_file.as_deref())?;
    let control = Control::shared(&url, switch, Faults::default(), "faults-set".into())
        .map_err(|e| format!("--fault-state: {e}"))?
        .trusting(trust.redis());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    runtime.block_on(async {
        loop {
            let written = control
                .change(|state| {
                    state.faults = faults.clone();
                    state.until_ms = for_.map(|d| shared::now_ms() + d.as_millis() as u64);
                    state.scenario = None;
                    state.traffic_level = args.traffic_level;
                })
                .await;
            match written {
                Ok((version, _)) => {
                    log::info!(
                        "msg=\"fault state written\" version={version} faults={:?} traffic_level={}",
                        faults.join(","),
                        args.traffic_level
                    );
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("--fault-state: {e} (tried for {} s)", args.wait))
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    })
}

/// Loads the catalog (built in, or `--catalog`), and `--generate`'s products, into
/// product-data.
fn migrate(args: MigrateArgs) -> Result<(), String> {
    let StoreUrl::Postgres(url) = &args.product_data else {
        return Err("--product-data: migrate needs a postgres://... URL".into());
    };
    let csv = match &args.catalog {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("--catalog: cannot read {}: {e}", path.display()))?,
        None => ecommerce::catalog::BUILTIN_CSV.to_string(),
    };
    let products = ecommerce::catalog::parse_csv(&csv).map_err(|e| format!("--catalog: {e}"))?;
    generated::check(&products, args.generate).map_err(|e| match e {
        Conflict::TooMany(_) => format!("--generate: {e}"),
        Conflict::GeneratedId(_) => format!("--catalog: {e}"),
    })?;
    let trust = trust(args.ca_file.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let done = runtime
        .block_on(ecommerce::stores::postgres::migrate_generating(
            url,
            &products,
            args.generate,
            &trust,
        ))
        .map_err(|e| format!("--product-data: {e}"))?;
    log::info!(
        "msg=\"catalog migrated\" products={} changed={}",
        done.products,
        done.changed
    );
    Ok(())
}

/// What this command's TLS connections trust, as `serve`'s do: the system's roots,
/// `SSL_CERT_FILE`'s and `--ca-file`'s.
fn trust(ca_file: Option<&std::path::Path>) -> Result<ecommerce::tls::Trust, String> {
    let ssl_cert_file = std::env::var_os("SSL_CERT_FILE")
        .filter(|path| !path.is_empty())
        .map(std::path::PathBuf::from);
    let ca_file = ca_file.filter(|path| !path.as_os_str().is_empty());
    ecommerce::startup::trust(ca_file, ssl_cert_file.as_deref()).map_err(|e| e.to_string())
}

/// Every connection is a file: many systems start processes with a soft limit of 1024
/// open files, which a busy gateway reaches. The hard limit is ours to take.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => log::debug!("msg=\"open files limit\" limit={limit}"),
        Err(e) => log::warn!(
            "msg=\"could not raise the open files limit\" error={}",
            ecommerce::telemetry::logfmt::value(&e.to_string())
        ),
    }
}

/// One clear line on stderr and a non-zero exit.
fn fail(message: &str) -> ExitCode {
    eprintln!("ecommerce: error: {message}");
    ExitCode::from(2)
}

/// logfmt lines on stderr: `ts=... level=... msg=... key=value ...`, level from RUST_LOG
/// (info by default); lines logged while serving a request end with its trace and span
/// ids. Each line is also handed to log export (`OTEL_LOGS_EXPORTER=otlp`), which queues
/// it as a log record once the shop has started it.
fn init_logging() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,tokio_postgres=warn"),
    )
    .format(|buf, record| {
        let ts = buf.timestamp_millis();
        let level = record.level().as_str().to_lowercase();
        let args = record.args().to_string();
        // A line logged while serving a request names its trace (the request line
        // already does).
        let ids = match ecommerce::telemetry::span::log_ids() {
            Some(ids) if !args.contains("trace_id=") => format!(" {ids}"),
            _ => String::new(),
        };
        let line = if args.starts_with("msg=") {
            format!("ts={ts} level={level} {args}{ids}")
        } else {
            format!(
                "ts={ts} level={level} msg={args:?} target={}{ids}",
                record.target()
            )
        };
        ecommerce::telemetry::logs::export(record.level(), &line);
        writeln!(buf, "{line}")
    })
    .init();
}
