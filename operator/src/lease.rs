//! Leader election over a `coordination.k8s.io/v1` Lease, with client-go's rules: a
//! holder renews every retry period; a candidate takes the lease over only when it has
//! not seen the Lease change for a whole lease duration (measured on the local clock, so
//! clock skew between nodes does not matter); every write carries the resourceVersion it
//! read, so two candidates never both win; a leader that cannot renew within the renew
//! deadline steps down; on shutdown the leader releases the lease so a successor need
//! not wait for it to expire.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api_error_text;
use crate::metrics::Metrics;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Who we are in `holderIdentity`: the pod name.
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it steps down.
    pub renew_deadline: Duration,
    /// Time between two attempts to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// Checks the relations client-go also requires, naming the flags.
    pub fn validate(&self) -> Result<(), String> {
        if self.identity.is_empty() {
            return Err(
                "the leader election identity is empty (set POD_NAME or --identity)".into(),
            );
        }
        if self.name.is_empty() || self.namespace.is_empty() {
            return Err(
                "--leader-election-lease-name and --leader-election-namespace must not be empty"
                    .into(),
            );
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err(format!(
                "--leader-election-lease-duration {:?} must be at least 1s (the Lease counts whole seconds)",
                self.lease_duration
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "--leader-election-renew-deadline {:?} must be shorter than --leader-election-lease-duration {:?}",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(format!(
                "--leader-election-retry-period {:?} must be above zero and shorter than --leader-election-renew-deadline {:?}",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease {lease}: {action}: {}{}", api_error_text(.source), hint(.source))]
    Api {
        lease: String,
        action: &'static str,
        source: kube::Error,
    },
    #[error("lease {lease}: no answer from the API server within {}ms", .after.as_millis())]
    TimedOut { lease: String, after: Duration },
}

fn hint(err: &kube::Error) -> &'static str {
    match err {
        kube::Error::Api(s) if s.code == 403 => {
            " (the operator's ServiceAccount needs get, create and update on \
             leases.coordination.k8s.io in this namespace)"
        }
        _ => "",
    }
}

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}

pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// resourceVersion of the Lease as last read, and when we first saw that version.
    observed: Option<(String, Instant)>,
}

impl Elector {
    pub fn new(client: Client, cfg: LeaseConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    fn error(&self, action: &'static str, source: kube::Error) -> LeaseError {
        let lease = format!("{}/{}", self.cfg.namespace, self.cfg.name);
        LeaseError::Api {
            lease,
            action,
            source,
        }
    }

    fn observe(&mut self, lease: &Lease, at: Instant) {
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        if self.observed.as_ref().map(|(v, _)| v) != Some(&version) {
            self.observed = Some((version, at));
        }
    }

    /// One attempt to acquire or renew the lease; `Ok(true)` when we hold it afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaseError> {
        let now = Instant::now();
        let wall = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let current = self
            .api
            .get_opt(&self.cfg.name)
            .await
            .map_err(|e| self.error("reading", e))?;
        let Some(current) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.cfg.identity.clone()),
                    lease_duration_seconds: Some(self.cfg.duration_seconds()),
                    acquire_time: Some(wall.clone()),
                    renew_time: Some(wall),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created, now);
                    Ok(true)
                }
                // Another replica created it between our read and our create.
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(self.error("creating", e)),
            };
        };
        self.observe(&current, now);
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let ours = holder == self.cfg.identity;
        if !ours && !holder.is_empty() {
            let valid_for = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.cfg.lease_duration, Duration::from_secs);
            let seen_at = self.observed.as_ref().map_or(now, |(_, t)| *t);
            if now.duration_since(seen_at) < valid_for {
                return Ok(false);
            }
            tracing::info!(
                "lease {}/{}: holder {holder:?} has not renewed for {:?}, taking over",
                self.cfg.namespace,
                self.cfg.name,
                now.duration_since(seen_at)
            );
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let mut next = current;
        // The server keeps the managed fields when an update leaves them out.
        next.metadata.managed_fields = None;
        next.spec = Some(LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.duration_seconds()),
            acquire_time: if ours {
                spec.acquire_time.clone()
            } else {
                Some(wall.clone())
            },
            renew_time: Some(wall),
            lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
            ..spec
        });
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &next)
            .await
        {
            Ok(updated) => {
                self.observe(&updated, now);
                Ok(true)
            }
            // Someone wrote the Lease after we read it; their write wins.
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(self.error("updating", e)),
        }
    }

    /// Gives the lease up if we hold it: no holder, a one-second duration.
    pub async fn release(&mut self) -> Result<(), LeaseError> {
        let current = self
            .api
            .get_opt(&self.cfg.name)
            .await
            .map_err(|e| self.error("reading", e))?;
        let Some(mut next) = current else {
            return Ok(());
        };
        let spec = next.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return Ok(());
        }
        let wall = MicroTime(k8s_openapi::jiff::Timestamp::now());
        next.metadata.managed_fields = None;
        next.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(wall.clone()),
            renew_time: Some(wall),
            ..spec
        });
        self.api
            .replace(&self.cfg.name, &PostParams::default(), &next)
            .await
            .map_err(|e| self.error("releasing", e))?;
        Ok(())
    }
}

/// Runs the election until `shutdown` turns true, keeping the leader status in `metrics`
/// current; on shutdown a leader releases the lease.
pub async fn run(mut elector: Elector, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
    let cfg = elector.config().clone();
    let lease = format!("{}/{}", cfg.namespace, cfg.name);
    let mut last_renewal: Option<Instant> = None;
    loop {
        let attempt = tokio::time::timeout(cfg.renew_deadline, elector.try_acquire_or_renew())
            .await
            .unwrap_or_else(|_| {
                Err(LeaseError::TimedOut {
                    lease: lease.clone(),
                    after: cfg.renew_deadline,
                })
            });
        match attempt {
            Ok(true) => {
                if !metrics.is_leader() {
                    tracing::info!("lease {lease}: {} is now the leader", cfg.identity);
                }
                metrics.set_leader(true);
                last_renewal = Some(Instant::now());
            }
            Ok(false) => {
                if metrics.is_leader() {
                    tracing::warn!("lease {lease}: another replica holds the lease; stepping down");
                }
                metrics.set_leader(false);
                last_renewal = None;
            }
            Err(e) => {
                metrics.count_lease_error();
                tracing::warn!("{e}");
                if last_renewal.is_some_and(|t| t.elapsed() >= cfg.renew_deadline) {
                    tracing::warn!(
                        "lease {lease}: not renewed within the renew deadline {:?}; stepping down",
                        cfg.renew_deadline
                    );
                    metrics.set_leader(false);
                    last_renewal = None;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.retry_period) => {}
            _ = crate::stopped(&mut shutdown) => break,
        }
    }
    if metrics.is_leader() {
        match elector.release().await {
            Ok(()) => tracing::info!("lease {lease}: released"),
            Err(e) => tracing::warn!("{e}"),
        }
        metrics.set_leader(false);
    }
}
