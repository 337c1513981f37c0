//! Against a real cluster when KUBECONFIG is set (skipped, saying why, otherwise): the
//! CRD install reaches Established, and a Lease of our own is acquired, renewed and
//! released. Needs rights to apply CRDs and to manage Leases in kube-system.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};
use tetra_operator::crds;
use tetra_operator::lease::{Elector, LeaseConfig};
use tetra_operator::metrics::Metrics;

#[tokio::test]
async fn installs_crds_and_elects_a_leader_on_a_real_cluster() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("skipped: KUBECONFIG is not set, so there is no cluster to test against");
        return;
    }
    let client = kube::Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let metrics = Metrics::default();
    crds::install(
        client.clone(),
        &metrics,
        Duration::from_millis(500),
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(metrics.ready());
    // A second install changes nothing.
    crds::install(
        client.clone(),
        &metrics,
        Duration::from_millis(500),
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(metrics
        .render()
        .contains("tetra_operator_crd_install_result{crd=\"tracingpolicies.cilium.io\",result=\"unchanged\"} 1\n"));

    let name = format!("tetra-operator-test-{}", std::process::id());
    let cfg = LeaseConfig {
        name: name.clone(),
        namespace: "kube-system".into(),
        identity: "tetra-operator-test".into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };
    let mut elector = Elector::new(client.clone(), cfg);
    assert!(elector.try_acquire_or_renew().await.expect("acquire"));
    assert!(elector.try_acquire_or_renew().await.expect("renew"));
    let mut other = Elector::new(
        client.clone(),
        LeaseConfig {
            identity: "someone-else".into(),
            ..elector.config().clone()
        },
    );
    assert!(!other
        .try_acquire_or_renew()
        .await
        .expect("a held lease is not taken"));
    elector.release().await.expect("release");
    assert!(other
        .try_acquire_or_renew()
        .await
        .expect("a released lease is taken at once"));
    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    leases
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting the test lease");
}
