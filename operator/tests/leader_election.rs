//! Leader election against a scripted fake API server: the exact Lease requests for
//! acquire, renew, takeover of an expired lease, conflicts, step-down and release.
mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tetra_operator::lease::{self, Elector, LeaseConfig};
use tetra_operator::metrics::Metrics;
use tokio::sync::watch;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/tetra-operator";

fn config() -> LeaseConfig {
    LeaseConfig {
        name: "tetra-operator".into(),
        namespace: "kube-system".into(),
        identity: "operator-a".into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    }
}

fn lease_object(rv: &str, holder: Option<&str>, transitions: i32) -> Value {
    let mut spec = json!({
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-01-01T00:00:00.000000Z",
        "renewTime": "2026-01-01T00:00:10.000000Z",
        "leaseTransitions": transitions,
    });
    if let Some(h) = holder {
        spec["holderIdentity"] = json!(h);
    }
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "metadata": {"name": "tetra-operator", "namespace": "kube-system", "resourceVersion": rv},
           "spec": spec})
}

/// The server's answer to a write: the body with a new resourceVersion.
fn written(body: &Value, rv: &str) -> Value {
    let mut v = body.clone();
    v["metadata"]["resourceVersion"] = json!(rv);
    v
}

fn micro_time(v: &Value) -> &str {
    let s = v.as_str().unwrap_or_else(|| panic!("{v} is not a time"));
    // RFC 3339 with microseconds, as MicroTime is written.
    assert!(s.len() >= 20 && s.ends_with('Z'), "{s}");
    s
}

#[tokio::test]
async fn validate_names_the_flags() {
    let mut c = config();
    c.renew_deadline = Duration::from_secs(15);
    assert_eq!(
        c.validate().unwrap_err(),
        "--leader-election-renew-deadline 15s must be shorter than --leader-election-lease-duration 15s"
    );
    let mut c = config();
    c.retry_period = Duration::from_secs(10);
    assert_eq!(
        c.validate().unwrap_err(),
        "--leader-election-retry-period 10s must be above zero and shorter than --leader-election-renew-deadline 10s"
    );
    let mut c = config();
    c.identity.clear();
    assert_eq!(
        c.validate().unwrap_err(),
        "the leader election identity is empty (set POD_NAME or --identity)"
    );
    assert_eq!(config().validate(), Ok(()));
}

#[tokio::test]
async fn acquires_a_missing_lease_by_creating_it() {
    let (client, mut api) = common::client();
    let mut elector = Elector::new(client, config());
    let task = tokio::spawn(async move { (elector.try_acquire_or_renew().await, elector) });
    api.expect("GET", LEASE)
        .await
        .fail(404, "NotFound", "leases \"tetra-operator\" not found");
    let req = api.expect("POST", LEASES).await;
    let spec = &req.body["spec"];
    assert_eq!(req.body["metadata"]["name"], "tetra-operator");
    assert_eq!(req.body["metadata"]["namespace"], "kube-system");
    assert_eq!(spec["holderIdentity"], "operator-a");
    assert_eq!(spec["leaseDurationSeconds"], 15);
    assert_eq!(spec["leaseTransitions"], 0);
    assert_eq!(
        micro_time(&spec["acquireTime"]),
        micro_time(&spec["renewTime"])
    );
    let body = req.body.clone();
    req.reply(201, written(&body, "1"));
    let (won, mut elector) = task.await.expect("task");
    assert!(won.expect("acquire"));

    // Renewal: same holder, same acquireTime and transitions, a new renewTime, and the
    // resourceVersion just read.
    let task = tokio::spawn(async move { elector.try_acquire_or_renew().await });
    let mut current = written(&body, "1");
    current["spec"]["renewTime"] = json!("2026-01-01T00:00:00.000000Z");
    api.expect("GET", LEASE).await.reply(200, current.clone());
    let req = api.expect("PUT", LEASE).await;
    assert_eq!(req.body["metadata"]["resourceVersion"], "1");
    assert_eq!(req.body["spec"]["holderIdentity"], "operator-a");
    assert_eq!(
        req.body["spec"]["acquireTime"],
        current["spec"]["acquireTime"]
    );
    assert_eq!(req.body["spec"]["leaseTransitions"], 0);
    assert_ne!(req.body["spec"]["renewTime"], current["spec"]["renewTime"]);
    let renewed = req.body.clone();
    req.reply(200, written(&renewed, "2"));
    assert!(task.await.expect("task").expect("renew"));
}

#[tokio::test]
async fn losing_the_create_race_is_not_an_error() {
    let (client, mut api) = common::client();
    let mut elector = Elector::new(client, config());
    let task = tokio::spawn(async move { elector.try_acquire_or_renew().await });
    api.expect("GET", LEASE)
        .await
        .fail(404, "NotFound", "not found");
    api.expect("POST", LEASES).await.fail(
        409,
        "AlreadyExists",
        "leases \"tetra-operator\" already exists",
    );
    assert!(!task.await.expect("task").expect("a lost race is Ok(false)"));
}

#[tokio::test(start_paused = true)]
async fn takes_over_only_after_a_whole_lease_duration_without_change() {
    let (client, mut api) = common::client();
    let mut elector = Elector::new(client, config());
    // The other holder's lease, unchanged (resourceVersion 7) at every read.
    let other = lease_object("7", Some("operator-b"), 4);
    let reads_before_expiry = [0u64, 5, 14]; // seconds since the first read
    let mut now = 0;
    for at in reads_before_expiry {
        tokio::time::advance(Duration::from_secs(at - now)).await;
        now = at;
        let task = tokio::spawn(async move { (elector.try_acquire_or_renew().await, elector) });
        // Only a read: no write while the lease is valid.
        api.expect("GET", LEASE).await.reply(200, other.clone());
        let (won, back) = task.await.expect("task");
        assert!(!won.expect("read"), "took over at {at}s");
        elector = back;
    }
    tokio::time::advance(Duration::from_secs(15 - now)).await;
    let task = tokio::spawn(async move { elector.try_acquire_or_renew().await });
    api.expect("GET", LEASE).await.reply(200, other.clone());
    let req = api.expect("PUT", LEASE).await;
    assert_eq!(
        req.body["metadata"]["resourceVersion"], "7",
        "optimistic concurrency"
    );
    assert_eq!(req.body["spec"]["holderIdentity"], "operator-a");
    assert_eq!(req.body["spec"]["leaseTransitions"], 5);
    assert_eq!(
        micro_time(&req.body["spec"]["acquireTime"]),
        micro_time(&req.body["spec"]["renewTime"])
    );
    let body = req.body.clone();
    req.reply(200, written(&body, "8"));
    assert!(task.await.expect("task").expect("takeover"));
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_keeps_renewing_is_never_displaced_and_a_conflict_loses() {
    let (client, mut api) = common::client();
    let mut elector = Elector::new(client, config());
    // Each read shows a new resourceVersion: the holder renews.
    for rv in 10..20 {
        let task = tokio::spawn(async move { (elector.try_acquire_or_renew().await, elector) });
        api.expect("GET", LEASE)
            .await
            .reply(200, lease_object(&rv.to_string(), Some("operator-b"), 1));
        let (won, back) = task.await.expect("task");
        assert!(!won.expect("read"));
        elector = back;
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    // A released lease (no holder) is taken at once, but another replica writes first.
    let task = tokio::spawn(async move { elector.try_acquire_or_renew().await });
    api.expect("GET", LEASE)
        .await
        .reply(200, lease_object("30", None, 2));
    let req = api.expect("PUT", LEASE).await;
    assert_eq!(req.body["spec"]["leaseTransitions"], 3);
    req.fail(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again");
    assert!(!task.await.expect("task").expect("a conflict is Ok(false)"));
}

#[tokio::test]
async fn forbidden_names_the_lease_and_the_permission() {
    let (client, mut api) = common::client();
    let mut elector = Elector::new(client, config());
    let task = tokio::spawn(async move { elector.try_acquire_or_renew().await });
    api.expect("GET", LEASE).await.fail(
        403,
        "Forbidden",
        "leases.coordination.k8s.io \"tetra-operator\" is forbidden",
    );
    let err = task.await.expect("task").expect_err("403");
    assert_eq!(
        err.to_string(),
        "lease kube-system/tetra-operator: reading: 403 Forbidden: leases.coordination.k8s.io \
         \"tetra-operator\" is forbidden (the operator's ServiceAccount needs get, create and \
         update on leases.coordination.k8s.io in this namespace)"
    );
}

/// Starts the election loop against a fresh fake API.
fn start_election() -> (
    common::FakeApi,
    Arc<Metrics>,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (client, api) = common::client();
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(lease::run(
        Elector::new(client, config()),
        metrics.clone(),
        stop_rx,
    ));
    (api, metrics, stop_tx, task)
}

/// Answers the first attempt: no Lease yet, so it is created; returns what was written.
async fn acquire_by_create(api: &mut common::FakeApi) -> Value {
    api.expect("GET", LEASE)
        .await
        .fail(404, "NotFound", "not found");
    let req = api.expect("POST", LEASES).await;
    let body = req.body.clone();
    req.reply(201, written(&body, "1"));
    body
}

/// The election loop: acquire, renew, lose to another holder, win again, then release on
/// shutdown; the leader metric follows each step.
#[tokio::test(start_paused = true)]
async fn run_loop_steps_down_on_loss_and_releases_on_shutdown() {
    let (mut api, metrics, stop_tx, task) = start_election();
    let body = acquire_by_create(&mut api).await;
    // Renew once.
    api.expect("GET", LEASE)
        .await
        .reply(200, written(&body, "1"));
    let req = api.expect("PUT", LEASE).await;
    let body = req.body.clone();
    req.reply(200, written(&body, "2"));
    assert!(metrics.is_leader());
    // Another replica took it (e.g. after a long pause of ours): step down.
    api.expect("GET", LEASE)
        .await
        .reply(200, lease_object("3", Some("operator-b"), 1));
    // The next read happens a retry period later; by then we are a follower.
    let req = api.expect("GET", LEASE).await;
    assert!(!metrics.is_leader());
    assert!(metrics
        .render()
        .contains("tetra_operator_leader_losses_total 1\n"));
    // It released the lease meanwhile: we take it at once.
    req.reply(200, lease_object("4", None, 1));
    let req = api.expect("PUT", LEASE).await;
    assert_eq!(req.body["spec"]["leaseTransitions"], 2);
    let body = req.body.clone();
    req.reply(200, written(&body, "5"));
    // Wait for the next read so the loop has recorded the win, then shut down.
    let req = api.expect("GET", LEASE).await;
    assert!(metrics.is_leader());
    assert!(metrics
        .render()
        .contains("tetra_operator_leader_acquisitions_total 2\n"));
    stop_tx.send(true).expect("stop");
    req.reply(200, written(&body, "5"));
    let req = api.expect("PUT", LEASE).await; // the renewal in flight
    req.reply(200, written(&body, "6"));
    // Release: read, then write with no holder and a one-second duration.
    api.expect("GET", LEASE)
        .await
        .reply(200, written(&body, "6"));
    let req = api.expect("PUT", LEASE).await;
    assert_eq!(req.body["metadata"]["resourceVersion"], "6");
    assert_eq!(req.body["spec"].get("holderIdentity"), None);
    assert_eq!(req.body["spec"]["leaseDurationSeconds"], 1);
    assert_eq!(req.body["spec"]["leaseTransitions"], 2);
    let released = req.body.clone();
    req.reply(200, written(&released, "7"));
    task.await.expect("election task");
    assert!(!metrics.is_leader());
}

/// A leader whose renewals fail keeps leading until the renew deadline, then steps down.
#[tokio::test(start_paused = true)]
async fn run_loop_steps_down_after_the_renew_deadline_of_failures() {
    let (mut api, metrics, stop_tx, task) = start_election();
    acquire_by_create(&mut api).await;
    let start = tokio::time::Instant::now();
    // Failures every retry period (2s): at 2, 4, 6, 8 s still leader; at 10 s it steps down.
    let mut stepped_down_at = None;
    for _ in 0..6 {
        let req = api.expect("GET", LEASE).await;
        if !metrics.is_leader() && stepped_down_at.is_none() {
            stepped_down_at = Some(start.elapsed());
        }
        req.fail(500, "InternalError", "etcdserver: request timed out");
    }
    assert_eq!(stepped_down_at, Some(Duration::from_secs(12)));
    let req = api.expect("GET", LEASE).await;
    assert!(metrics
        .render()
        .contains("tetra_operator_lease_errors_total 6\n"));
    assert!(metrics
        .render()
        .contains("tetra_operator_leader_losses_total 1\n"));
    stop_tx.send(true).expect("stop");
    req.fail(500, "InternalError", "etcdserver: request timed out");
    // A follower does not touch the lease on shutdown: the task ends with no more requests.
    assert!(api.try_next().await.is_none());
    task.await.expect("election task");
}
