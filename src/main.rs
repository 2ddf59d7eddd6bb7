//! `ecommerce`: parse the command line, set up logging, run, map failures to exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use ecommerce::cli::{Cli, Command};
use ecommerce::startup::Application;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Serve(args) => {
            let settings = match args.into_settings(|var| std::env::var(var).ok()) {
                Ok(settings) => settings,
                Err(e) => return fail(&e.to_string()),
            };
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
    }
}

/// One clear line on stderr and a non-zero exit.
fn fail(message: &str) -> ExitCode {
    eprintln!("ecommerce: error: {message}");
    ExitCode::from(2)
}

/// logfmt lines: `ts=... level=... msg=... key=value ...`, level from RUST_LOG (info by
/// default).
fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let ts = buf.timestamp_millis();
            let level = record.level().as_str().to_lowercase();
            let args = record.args().to_string();
            if args.starts_with("msg=") {
                writeln!(buf, "ts={ts} level={level} {args}")
            } else {
                writeln!(
                    buf,
                    "ts={ts} level={level} msg={args:?} target={}",
                    record.target()
                )
            }
        })
        .init();
}
