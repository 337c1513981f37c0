//! The gRPC server in-process (no BPF, no root): bus -> server -> client over TCP and a
//! unix socket, per-client filters, the policy RPCs, and drop reporting to a slow client.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tetra_agent::bus::Bus;
use tetra_agent::grpc::{Listen, Server, Service};
use tetra_agent::policies::PolicyRegistry;
use tetra_agent::stats::Stats;
use tetra_proto::tetragon::fine_guidance_sensors_client::FineGuidanceSensorsClient;
use tetra_proto::tetragon::get_events_response::Event;
use tetra_proto::tetragon::*;

fn exec(binary: &str) -> GetEventsResponse {
    GetEventsResponse {
        event: Some(Event::ProcessExec(ProcessExec {
            process: Some(Process {
                binary: binary.into(),
                arguments: "x".repeat(1000),
                ..Default::default()
            }),
            ..Default::default()
        })),
        node_name: "n".into(),
        ..Default::default()
    }
}

async fn start(listen: Listen, client_queue: usize) -> (Arc<Bus>, Arc<Stats>, Server) {
    let stats = Arc::new(Stats::default());
    let bus = Bus::new(stats.clone());
    let service = Service {
        bus: bus.clone(),
        policies: Arc::new(Mutex::new(PolicyRegistry::default())),
        stats: stats.clone(),
        node: "n".into(),
        client_queue,

        probes: Default::default(),
    };
    let server = Server::start(listen, service).await.unwrap();
    (bus, stats, server)
}

async fn wait_subscribers(bus: &Bus, n: usize) {
    for _ in 0..200 {
        if bus.subscribers().len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} subscribers expected, have {}", bus.subscribers().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_filters_policies_and_drop_reports() {
    let (bus, stats, server) = start(Listen::Tcp("127.0.0.1:0".into()), 8).await;
    let mut client =
        FineGuidanceSensorsClient::connect(format!("http://{}", server.address)).await.unwrap();

    let only_true = GetEventsRequest {
        allow_list: vec![Filter { binary_regex: vec!["true$".into()], ..Default::default() }],
        ..Default::default()
    };
    let mut filtered = client.get_events(only_true).await.unwrap().into_inner();
    // Never read until the burst is over: its 8-event queue overflows. Its own connection
    // has the smallest HTTP/2 windows, so little can hide in transit (~60 events).
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", server.address))
        .unwrap()
        .initial_stream_window_size(65535)
        .initial_connection_window_size(65535);
    let mut slow_client = FineGuidanceSensorsClient::new(endpoint.connect().await.unwrap());
    let mut slow = slow_client.get_events(GetEventsRequest::default()).await.unwrap().into_inner();
    wait_subscribers(&bus, 2).await;
    bus.publish(exec("/bin/false"));
    bus.publish(exec("/bin/true"));
    let first = filtered.message().await.unwrap().unwrap();
    assert_eq!(first.process().unwrap().binary, "/bin/true");

    let burst = 5000u64;
    for _ in 0..burst {
        bus.publish(exec("/bin/x"));
    }
    bus.close();
    let (mut got, mut told) = (0u64, 0u64);
    while let Some(ev) = slow.message().await.unwrap() {
        match ev.event {
            Some(Event::RateLimitInfo(r)) => told += r.number_of_dropped_process_events,
            _ => got += 1,
        }
    }
    let dropped = stats.grpc_client_drops.load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped > burst / 2, "an 8-event queue must overflow: {dropped} dropped");
    assert_eq!(told, dropped, "drops reported to the client");
    assert_eq!(got + told, burst + 2, "everything delivered or reported");
    assert!(filtered.message().await.unwrap().is_none(), "the filtered client saw nothing else");

    // Policy RPCs.
    let yaml = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: p\nspec:\n  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_openat\n";
    let add = |y: &str| AddTracingPolicyRequest { yaml: y.into(), domain: String::new() };
    // No kernel sensors in this process: refused with the reason, but kept and listed.
    let e = client.add_tracing_policy(add(yaml)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
    assert!(e.message().contains(tetra_agent::policies::NO_SENSORS), "{e}");
    let e = client.add_tracing_policy(add(yaml)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists, "{e}");
    let e = client.add_tracing_policy(add("kind: Nope")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    let list = client
        .list_tracing_policies(ListTracingPoliciesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.policies.len(), 1);
    assert_eq!(list.policies[0].state, TracingPolicyState::TpStateLoadError as i32);
    let configure = ConfigureTracingPolicyRequest {
        name: "p".into(),
        enable: Some(true),
        ..Default::default()
    };
    let e = client.configure_tracing_policy(configure).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
    let mode =
        ConfigureTracingPolicyRequest { name: "p".into(), mode: Some(7), ..Default::default() };
    assert_eq!(
        client.configure_tracing_policy(mode).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let delete = DeleteTracingPolicyRequest { name: "p".into(), ..Default::default() };
    client.delete_tracing_policy(delete.clone()).await.unwrap();
    assert_eq!(
        client.delete_tracing_policy(delete).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_is_private_and_removed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/t.sock");
    let (_bus, _stats, server) = start(Listen::Unix(path.clone()), 8).await;
    assert_eq!(server.address, format!("unix://{}", path.display()));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let p = path.clone();
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let p = p.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(p).await?,
                ))
            }
        }))
        .await
        .unwrap();
    let mut client = FineGuidanceSensorsClient::new(channel);
    let health = client.get_health(GetHealthStatusRequest::default()).await.unwrap().into_inner();
    assert_eq!(health.health_status[0].status, HealthStatusResult::HealthStatusRunning as i32);
    server.stop().await;
    assert!(!path.exists());
}
