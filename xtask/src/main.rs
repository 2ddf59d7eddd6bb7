//! `cargo xtask`: the shop's tools, in Rust so that they can be tested and can share the
//! tests' way of starting roles (`support::processes`, `ecommerce::cli::serve_command`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_ab;
mod bench_tracing;
mod otlp_sink;
mod procs;
mod report;
mod shop;
mod stores;
mod tools;
mod topology;
mod watch;
mod wrk;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "The shop's tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The production topology on one machine: every role its own process.
    Topology(topology::Args),
    /// An OTLP/HTTP traces endpoint that counts what it receives.
    OtlpSink(otlp_sink::Args),
    /// The benchmark: search, cart, the k6 journey, one hop against nginx, memory.
    Bench(bench::Args),
    /// What tracing costs: the same roles with and without span export, in turn.
    BenchTracing(bench_tracing::Args),
    /// Two builds of the shop in turn, medians of each.
    BenchAb(bench_ab::Args),
    /// The topology with a local Prometheus on the chart's rules; --check tests them.
    Watch(watch::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topology(args) => topology::run(args),
        Command::OtlpSink(args) => otlp_sink::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchTracing(args) => bench_tracing::run(args),
        Command::BenchAb(args) => bench_ab::run(args),
        Command::Watch(args) => watch::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the commands' tests share.
#[cfg(test)]
mod testing {
    /// One command's arguments as a command line of their own, to parse in a test.
    #[derive(Debug, clap::Parser)]
    pub struct Cli<A: clap::Args> {
        #[command(flatten)]
        pub args: A,
    }
}
