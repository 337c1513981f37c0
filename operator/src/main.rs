//! `tetra-operator`: installs or upgrades the TracingPolicy CRDs, then runs leader
//! election and serves metrics and health endpoints until SIGTERM.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Parser};
use kube::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;

use tetra_crds::values::parse_duration;
use tetra_logging::LogArgs;
use tetra_operator::crds;
use tetra_operator::http::{self, Endpoints};
use tetra_operator::lease::{self, Elector, LeaseConfig};
use tetra_operator::metrics::Metrics;

/// How often a CRD is read while waiting for it to be Established.
const CRD_POLL: Duration = Duration::from_millis(500);

/// Installs the TracingPolicy CRDs and runs cluster-wide duties.
#[derive(Parser, Debug)]
#[command(name = "tetra-operator", version)]
struct Args {
    /// Kubeconfig file; without it KUBECONFIG, ~/.kube/config or the in-cluster
    /// ServiceAccount is used.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Do not install or upgrade the CRDs (they are managed by other means).
    #[arg(long)]
    skip_crd_creation: bool,
    /// How long to wait for the CRDs to become Established.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    crd_establish_timeout: Duration,
    /// Serve Prometheus metrics on this address.
    #[arg(long, default_value = "0.0.0.0:2113")]
    metrics_bind_address: SocketAddr,
    /// Serve /healthz and /readyz on this address.
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_probe_bind_address: SocketAddr,
    /// Take part in leader election (only the leader does cluster-wide writes).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    leader_election: bool,
    /// Namespace of the leader election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "kube-system")]
    leader_election_namespace: String,
    /// Name of the leader election Lease.
    #[arg(long, default_value = "tetra-operator")]
    leader_election_lease_name: String,
    /// How long a lease is valid after its last renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    leader_election_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    leader_election_renew_deadline: Duration,
    /// Time between two attempts to acquire or renew the lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    leader_election_retry_period: Duration,
    #[command(flatten)]
    log: LogArgs,
    /// Identity in the Lease (default: POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration found: {e}"))?,
    };
    Client::try_from(config).map_err(|e| format!("building the Kubernetes client: {e}"))
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--{what} {addr}: {e}"))
}

async fn run(args: Args) -> Result<(), String> {
    let identity = args
        .identity
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(hostname);
    let lease_cfg = LeaseConfig {
        name: args.leader_election_lease_name.clone(),
        namespace: args.leader_election_namespace.clone(),
        identity,
        lease_duration: args.leader_election_lease_duration,
        renew_deadline: args.leader_election_renew_deadline,
        retry_period: args.leader_election_retry_period,
    };
    if args.leader_election {
        lease_cfg.validate()?;
    }
    let client = client(args.kubeconfig.as_ref()).await?;
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);

    // Probes and metrics are up before the CRD install, so a slow install shows as
    // not-ready rather than as a dead pod.
    let mut servers = Vec::new();
    if args.metrics_bind_address == args.health_probe_bind_address {
        let listener = bind(args.metrics_bind_address, "metrics-bind-address").await?;
        let all = Endpoints {
            metrics: true,
            health: true,
        };
        servers.push(tokio::spawn(http::serve(
            listener,
            all,
            metrics.clone(),
            stop_rx.clone(),
        )));
    } else {
        let m = bind(args.metrics_bind_address, "metrics-bind-address").await?;
        let h = bind(args.health_probe_bind_address, "health-probe-bind-address").await?;
        let only_metrics = Endpoints {
            metrics: true,
            health: false,
        };
        let only_health = Endpoints {
            metrics: false,
            health: true,
        };
        servers.push(tokio::spawn(http::serve(
            m,
            only_metrics,
            metrics.clone(),
            stop_rx.clone(),
        )));
        servers.push(tokio::spawn(http::serve(
            h,
            only_health,
            metrics.clone(),
            stop_rx.clone(),
        )));
    }

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("installing the SIGTERM handler: {e}"))?;
    let signals = async move {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    tokio::pin!(signals);

    if args.skip_crd_creation {
        tracing::info!("--skip-crd-creation: not installing the CRDs");
        for crd in crds::owned_crds() {
            let name = crd.metadata.name.unwrap_or_default();
            metrics.set_crd_established(&name);
        }
    } else {
        tokio::select! {
            res = crds::install(client.clone(), &metrics, CRD_POLL, args.crd_establish_timeout) => {
                res.map_err(|e| e.to_string())?
            }
            _ = &mut signals => return Ok(()),
        }
    }

    let election = args.leader_election.then(|| {
        tokio::spawn(lease::run(
            Elector::new(client, lease_cfg),
            metrics.clone(),
            stop_rx.clone(),
        ))
    });
    signals.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if let Some(task) = election {
        // The election releases the lease before it returns.
        let _ = task.await;
    }
    for server in servers {
        let _ = server.await;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    args.log.init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tetra-operator: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tetra-operator: {e}");
            ExitCode::FAILURE
        }
    }
}
