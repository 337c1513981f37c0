//! `tetra`: command-line client of the agent (wiring only).

mod client;
mod compact;
mod getevents;
mod tracingpolicy;

use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tetra", version, about = "Tetragon-compatible CLI")]
struct Cli {
    /// Agent gRPC address (host:port or unix:///path); default from the agent's info file, else localhost:54321
    #[arg(long, global = true)]
    server_address: Option<String>,
    /// Agent info file holding its active address (the agent's --run-dir/tetragon-info.json)
    #[arg(long, global = true, hide = true, env = "TETRA_INFO_FILE", default_value = client::INFO_FILE)]
    info_file: std::path::PathBuf,
    /// Connection timeout in seconds
    #[arg(long, global = true, default_value_t = 30)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print events (from the agent, or JSON lines on stdin)
    Getevents(getevents::GetEventsArgs),
    /// Manage tracing policies
    #[command(subcommand, visible_alias = "tp")]
    Tracingpolicy(tracingpolicy::TracingPolicyCmd),
    /// Agent health
    Status,
    /// Agent version and the kernel features it probed
    Info,
    /// CLI and agent versions
    Version,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tetra: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Getevents(args) = &cli.command {
        if getevents::stdin_has_events() {
            let stdin = std::io::stdin().lock();
            return getevents::run_stdin(args, stdin, std::io::stdout().lock());
        }
    }
    if let Command::Tracingpolicy(tracingpolicy::TracingPolicyCmd::Validate { files }) = &cli.command {
        // Offline: exit 1 without an extra error line when a policy is invalid.
        if !tracingpolicy::validate(files) {
            std::process::exit(1);
        }
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let address = client::resolve_address(cli.server_address.as_deref(), &cli.info_file);
        let connect = || client::connect(&address, Duration::from_secs(cli.timeout));
        match &cli.command {
            Command::Getevents(args) => getevents::run_grpc(args, connect).await,
            Command::Tracingpolicy(cmd) => tracingpolicy::run(cmd, connect().await?).await,
            Command::Status => tracingpolicy::status(connect().await?).await,
            Command::Info => tracingpolicy::info(connect().await?).await,
            Command::Version => {
                println!("CLI version: {}", env!("CARGO_PKG_VERSION"));
                match connect().await {
                    Ok(c) => println!("Server version: {}", tracingpolicy::server_version(c).await?),
                    Err(e) => println!("Server version: unavailable ({e:#})"),
                }
                Ok(())
            }
        }
    })
}
