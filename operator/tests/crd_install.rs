//! CRD install against a scripted fake API server: the exact server-side apply requests,
//! create / upgrade / unchanged detection, the Established wait and the error texts.
mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tetra_operator::crd_state::Outcome;
use tetra_operator::crds;
use tetra_operator::metrics::Metrics;

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const TP: &str = "tracingpolicies.cilium.io";
const TPN: &str = "tracingpoliciesnamespaced.cilium.io";
const POLL: Duration = Duration::from_millis(500);

/// The committed YAML of a CRD (crds/yaml/), as JSON.
fn committed(file: &str) -> Value {
    let path = format!("{}/../crds/yaml/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What the API server returns for an applied CRD: the object with a generation and,
/// when `established`, an Established condition.
fn stored(body: &Value, generation: i64, established: bool) -> Value {
    let mut crd = body.clone();
    crd["metadata"]["generation"] = json!(generation);
    crd["metadata"]["resourceVersion"] = json!(format!("{}", 100 + generation));
    let status = if established { "True" } else { "False" };
    crd["status"] = json!({"conditions": [
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
        {"type": "Established", "status": status, "reason": "InitialNamesAccepted"}
    ]});
    crd
}

/// Checks one server-side apply request of CRD `name` and returns its body.
fn check_apply(req: &common::Req, name: &str) -> Value {
    assert_eq!(req.method, "PATCH");
    assert_eq!(req.path, format!("{CRDS}/{name}"));
    assert_eq!(
        req.query.get("fieldManager").map(String::as_str),
        Some("tetra-operator")
    );
    assert_eq!(req.query.get("force").map(String::as_str), Some("true"));
    assert_eq!(req.query.len(), 2, "query {:?}", req.query);
    assert_eq!(req.content_type, "application/apply-patch+yaml");
    req.body.clone()
}

#[tokio::test(start_paused = true)]
async fn fresh_cluster_gets_both_crds_created_and_waits_for_established() {
    let (client, mut api) = common::client();
    let metrics = Arc::new(Metrics::default());
    let m = metrics.clone();
    let task =
        tokio::spawn(async move { crds::install(client, &m, POLL, Duration::from_secs(30)).await });

    for (name, file) in [
        (TP, "cilium.io_tracingpolicies.yaml"),
        (TPN, "cilium.io_tracingpoliciesnamespaced.yaml"),
    ] {
        api.expect("GET", &format!("{CRDS}/{name}"))
            .await
            .fail(404, "NotFound", "not found");
        let req = api.next().await;
        let body = check_apply(&req, name);
        // The body is exactly our CRD: the committed YAML, with apiVersion and kind.
        assert_eq!(body, committed(file), "apply body of {name}");
        assert_eq!(body["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(body["kind"], "CustomResourceDefinition");
        req.reply(201, stored(&body, 1, false));
    }
    assert!(!metrics.ready(), "ready before the CRDs are Established");

    // TracingPolicy: not Established at the first read, Established at the second.
    let tp_body = committed("cilium.io_tracingpolicies.yaml");
    api.expect("GET", &format!("{CRDS}/{TP}"))
        .await
        .reply(200, stored(&tp_body, 1, false));
    api.expect("GET", &format!("{CRDS}/{TP}"))
        .await
        .reply(200, stored(&tp_body, 1, true));
    let tpn_body = committed("cilium.io_tracingpoliciesnamespaced.yaml");
    api.expect("GET", &format!("{CRDS}/{TPN}"))
        .await
        .reply(200, stored(&tpn_body, 1, true));

    task.await.expect("install task").expect("install");
    assert!(metrics.ready());
    let text = metrics.render();
    for name in [TP, TPN] {
        assert!(text.contains(&format!(
            "tetra_operator_crd_install_result{{crd=\"{name}\",result=\"created\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "tetra_operator_crd_install_result{{crd=\"{name}\",result=\"upgraded\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "tetra_operator_crd_established{{crd=\"{name}\"}} 1\n"
        )));
    }
}

#[tokio::test]
async fn an_older_crd_is_upgraded_and_an_identical_one_left_unchanged() {
    let (client, mut api) = common::client();
    let crd = tetra_crds::crd::tracing_policy_crd();
    let new_body = committed("cilium.io_tracingpolicies.yaml");
    // An older version of the CRD: a smaller schema, generation 3.
    let mut old = new_body.clone();
    old["spec"]["versions"][0]["schema"]["openAPIV3Schema"] =
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let api_client = kube::Api::all(client);

    let task = {
        let (api_client, crd) = (api_client.clone(), crd.clone());
        tokio::spawn(async move { crds::apply(&api_client, &crd).await })
    };
    api.expect("GET", &format!("{CRDS}/{TP}"))
        .await
        .reply(200, stored(&old, 3, true));
    let req = api.next().await;
    // The upgrade sends the whole current CRD, not a diff against the old one.
    assert_eq!(check_apply(&req, TP), new_body);
    req.reply(200, stored(&new_body, 4, true));
    assert_eq!(task.await.expect("task").expect("apply"), Outcome::Upgraded);

    let task = tokio::spawn(async move { crds::apply(&api_client, &crd).await });
    api.expect("GET", &format!("{CRDS}/{TP}"))
        .await
        .reply(200, stored(&new_body, 4, true));
    let req = api.next().await;
    assert_eq!(check_apply(&req, TP), new_body);
    req.reply(200, stored(&new_body, 4, true));
    assert_eq!(
        task.await.expect("task").expect("apply"),
        Outcome::Unchanged
    );
}

#[tokio::test]
async fn forbidden_apply_names_the_crd_the_api_error_and_the_missing_permission() {
    let (client, mut api) = common::client();
    let metrics = Arc::new(Metrics::default());
    let m = metrics.clone();
    let task =
        tokio::spawn(async move { crds::install(client, &m, POLL, Duration::from_secs(30)).await });
    api.expect("GET", &format!("{CRDS}/{TP}")).await.reply(
        200,
        stored(
            &json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": TP}, "spec": {"group": "cilium.io", "scope": "Cluster",
                "names": {"kind": "TracingPolicy", "plural": "tracingpolicies"}, "versions": []}
            }),
            1,
            true,
        ),
    );
    let message = "customresourcedefinitions.apiextensions.k8s.io \"tracingpolicies.cilium.io\" \
                   is forbidden: User \"system:serviceaccount:kube-system:tetra-operator\" \
                   cannot patch resource \"customresourcedefinitions\" in API group \
                   \"apiextensions.k8s.io\" at the cluster scope";
    api.next().await.fail(403, "Forbidden", message);
    let err = task
        .await
        .expect("task")
        .expect_err("a 403 must fail the install");
    assert_eq!(
        err.to_string(),
        format!(
            "applying CRD tracingpolicies.cilium.io: 403 Forbidden: {message} (the operator's \
             ServiceAccount needs get, create and patch on \
             customresourcedefinitions.apiextensions.k8s.io)"
        )
    );
    // The namespaced CRD was never tried; the failure shows in the metrics.
    let text = metrics.render();
    assert!(text.contains(&format!(
        "tetra_operator_crd_install_result{{crd=\"{TP}\",result=\"failed\"}} 1\n"
    )));
    assert!(!text.contains(TPN));
    assert!(!metrics.ready());
}

#[tokio::test(start_paused = true)]
async fn a_crd_that_never_becomes_established_times_out_with_its_conditions() {
    let (client, mut api) = common::client();
    let api_client = kube::Api::all(client);
    let task = tokio::spawn(async move {
        crds::wait_established(&api_client, TP, POLL, Duration::from_secs(2)).await
    });
    let mut crd = stored(&committed("cilium.io_tracingpolicies.yaml"), 1, false);
    crd["status"]["conditions"][0] = json!({"type": "NamesAccepted", "status": "False",
        "reason": "MultipleNamesNotAllowed", "message": "\"tgtp\" is already in use"});
    // Reads at 0, 0.5, 1, 1.5 and 2 seconds, then the timeout.
    for _ in 0..5 {
        api.expect("GET", &format!("{CRDS}/{TP}"))
            .await
            .reply(200, crd.clone());
    }
    let err = task.await.expect("task").expect_err("must time out");
    assert_eq!(
        err.to_string(),
        "CRD tracingpolicies.cilium.io is not Established after 2s; its conditions: \
         NamesAccepted=False (MultipleNamesNotAllowed: \"tgtp\" is already in use), \
         Established=False (InitialNamesAccepted)"
    );
}
