//! gRPC delivery throughput: events per second the real server (bus -> per-client queue
//! -> tonic stream over TCP on 127.0.0.1) delivers to 1 and to 8 concurrent GetEvents
//! clients.
//!
//! The bus is fed with prebuilt events (a Tetragon process_exec of ~1.6 KB JSON, from the
//! conformance data when present) by a publisher thread going as fast as it can: an exec
//! storm on this machine makes a few thousand events/s, far below what the server moves.
//! Two runs per client count:
//! - paced: the publisher stays within 5000 events of the slowest client (as if the
//!   kernel produced at exactly the rate the clients absorb): sustained lossless delivery;
//! - flood: the publisher never waits, as in the agent; a client that falls behind loses
//!   events, which are counted and reported to it (checked at the end).
//!
//! `cargo run --release -p tetra-agent --example bench_grpc` (BENCH_EVENTS to change the count).
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tetra_agent::bus::Bus;
use tetra_agent::grpc::{Listen, Server, Service};
use tetra_agent::policies::PolicyRegistry;
use tetra_agent::stats::Stats;
use tetra_proto::tetragon::fine_guidance_sensors_client::FineGuidanceSensorsClient;
use tetra_proto::tetragon::get_events_response::Event;
use tetra_proto::tetragon::{GetEventsRequest, GetEventsResponse, Process, ProcessExec};

fn sample_event() -> GetEventsResponse {
    let path = tetra_corpus::dir(tetra_corpus::Part::Events).map(|d| d.join("all-events.jsonl"));
    let from_file = path.and_then(|p| std::fs::read_to_string(p).ok()).and_then(|text| {
        text.lines()
            .find(|l| l.contains("\"process_exec\""))
            .and_then(|l| tetra_proto::json::from_line(l).ok())
    });
    from_file.unwrap_or_else(|| GetEventsResponse {
        event: Some(Event::ProcessExec(ProcessExec {
            process: Some(Process {
                binary: "/usr/bin/curl".into(),
                arguments: "https://example.com --silent --output /dev/null".into(),
                cwd: "/home/user".into(),
                flags: "execve clone".into(),
                pid: Some(4242),
                ..Default::default()
            }),
            parent: Some(Process {
                binary: "/bin/bash".into(),
                pid: Some(4000),
                ..Default::default()
            }),
            ..Default::default()
        })),
        node_name: "bench-node".into(),
        ..Default::default()
    })
}

struct ClientResult {
    received: u64,
    told_dropped: u64,
    elapsed: Duration,
}

async fn client(
    address: String,
) -> (FineGuidanceSensorsClient<tonic::transport::Channel>, tonic::Streaming<GetEventsResponse>) {
    let mut c =
        FineGuidanceSensorsClient::connect(format!("http://{address}")).await.expect("connect");
    let stream = c.get_events(GetEventsRequest::default()).await.expect("GetEvents").into_inner();
    (c, stream)
}

async fn drain(
    mut stream: tonic::Streaming<GetEventsResponse>,
    progress: Arc<AtomicU64>,
) -> ClientResult {
    let mut received = 0;
    let mut told_dropped = 0;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while let Ok(Some(ev)) = stream.message().await {
        last = Instant::now();
        first.get_or_insert(last);
        match ev.event {
            Some(Event::RateLimitInfo(r)) => told_dropped += r.number_of_dropped_process_events,
            _ => received += 1,
        }
        progress.store(received, Relaxed);
    }
    ClientResult { received, told_dropped, elapsed: last - first.unwrap_or(last) }
}

fn run(clients: usize, events: u64, event: &GetEventsResponse, paced: bool) {
    let server_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let stats = Arc::new(Stats::default());
    let bus = Bus::new(stats.clone());
    let service = Service {
        bus: bus.clone(),
        policies: Arc::new(Mutex::new(PolicyRegistry::default())),
        stats: stats.clone(),
        node: "bench-node".into(),
        client_queue: 10000,

        probes: Default::default(),
    };
    let server = server_rt
        .block_on(Server::start(Listen::Tcp("127.0.0.1:0".into()), service))
        .expect("server");
    let address = server.address.clone();
    let streams = client_rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..clients {
            v.push(client(address.clone()).await);
        }
        v
    });
    // Every client is subscribed once its GetEvents call returned.
    while bus.subscribers().len() < clients {
        std::thread::sleep(Duration::from_millis(10));
    }
    let progress: Vec<Arc<AtomicU64>> = (0..clients).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let tasks: Vec<_> = streams
        .into_iter()
        .zip(&progress)
        .map(|((_c, s), p)| client_rt.spawn(drain(s, p.clone())))
        .collect();
    let start = Instant::now();
    for n in 0..events {
        if paced {
            while n - progress.iter().map(|p| p.load(Relaxed)).min().unwrap_or(n) > 5000 {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        bus.publish(event.clone());
    }
    let publish_time = start.elapsed();
    bus.close();
    let results: Vec<ClientResult> = client_rt.block_on(async {
        let mut v = Vec::new();
        for t in tasks {
            v.push(t.await.expect("client task"));
        }
        v
    });
    let total_elapsed = start.elapsed();
    server_rt.block_on(server.stop());

    let received: u64 = results.iter().map(|r| r.received).sum();
    let dropped = stats.grpc_client_drops.load(Relaxed);
    let told: u64 = results.iter().map(|r| r.told_dropped).sum();
    let per_client: Vec<String> = results
        .iter()
        .map(|r| format!("{:.0}", r.received as f64 / r.elapsed.as_secs_f64().max(1e-9)))
        .collect();
    let mode = if paced { "paced" } else { "flood" };
    println!(
        "{mode} {clients} client(s): published {events} events in {:.2}s ({:.0}/s); delivered {received} in {:.2}s = {:.0} events/s total, per client [{}] events/s; dropped {dropped} ({:.1}%), reported to clients {told}",
        publish_time.as_secs_f64(),
        events as f64 / publish_time.as_secs_f64(),
        total_elapsed.as_secs_f64(),
        received as f64 / total_elapsed.as_secs_f64(),
        per_client.join(", "),
        100.0 * dropped as f64 / (events * clients as u64) as f64,
    );
    assert_eq!(
        received + dropped,
        events * clients as u64,
        "every event delivered or counted as dropped"
    );
    assert_eq!(told, dropped, "every drop reported to its client");
}

fn main() {
    let events: u64 =
        std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let event = sample_event();
    let bytes = tetra_proto::json::to_line(&event).len();
    println!("bench_grpc: prebuilt process_exec events ({bytes} bytes as JSON), TCP 127.0.0.1, per-client queue 10000");
    for clients in [1, 8] {
        for paced in [true, false] {
            run(clients, events, &event, paced);
        }
    }
}
