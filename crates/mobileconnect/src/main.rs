//! `mobileconnect`: the binary. Thin: parse the command line and configuration, wire the
//! crates, start.
//!
//! * `mobileconnect sandbox` — gateway + virtual phones + demo data on an embedded store.
//! * `mobileconnect serve --config FILE` — the production entry.
//! * `mobileconnect admin …` — registry and provisioning on the configured store.
//! * `mobileconnect bench …` — the gateway measured over loopback against the signing floor.
#![forbid(unsafe_code)]

mod admin;
mod admin_keys;
mod allocator;
mod bench;
mod bench_discovery;
mod bench_http;
mod discovery_cli;
mod run;
mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mobileconnect",
    version,
    about = "GSMA Mobile Connect identity gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the sandbox: gateway, virtual phones and demo data on an embedded store.
    Sandbox {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Folder for the database, keys and sandbox.json.
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        /// Issuer URL (default: http://<listen>).
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Start the gateway from a configuration file (TOML, overridden by MC_* variables).
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Registry and provisioning on the configured store.
    Admin {
        /// Configuration file (as for `serve`).
        #[arg(long, short, conflicts_with = "data")]
        config: Option<PathBuf>,
        /// Or: a sandbox data folder.
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Measure the gateway over loopback (throughput, p50/p99, peak RSS) against the RSA-2048
    /// signing floor measured in the same run.
    Bench(bench::BenchArgs),
    /// Discovery data on the configured store: operators, service providers, number ranges
    /// and ported numbers (CSV import), IP ranges.
    Discovery {
        /// Configuration file (as for `serve`).
        #[arg(long, short, conflicts_with = "data")]
        config: Option<PathBuf>,
        /// Or: a sandbox data folder.
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(subcommand)]
        command: discovery_cli::DiscoveryCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    allocator::apply_settings();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Sandbox {
                listen,
                data,
                issuer,
            } => run::sandbox(listen, data, issuer).await,
            Command::Serve { config } => run::serve(&config).await,
            Command::Admin {
                config,
                data,
                command,
            } => admin::run(config, data, command).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Discovery {
                config,
                data,
                command,
            } => discovery_cli::run(config, data, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
