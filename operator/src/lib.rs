//! `tetra-operator`: the cluster-wide half of tetra. At start it installs or upgrades the
//! TracingPolicy CRDs by server-side apply and waits until they are Established; then it
//! takes part in leader election over a Lease and serves metrics and health endpoints.
//! Policies themselves are loaded by the agents, which watch the CRDs.

pub mod crd_state;
pub mod crds;
pub mod http;
pub mod lease;
pub mod metrics;

/// Renders an API error as `<code> <reason>: <message>`, the part a user acts on.
pub fn api_error_text(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

/// Resolves once `shutdown` holds `true` (or its sender is gone).
pub async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here.
    let _ = shutdown.wait_for(|stop| *stop).await.is_ok();
}
