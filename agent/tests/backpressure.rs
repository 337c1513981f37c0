//! A gRPC client that stops reading while thousands of events flow must cost only itself:
//! the JSON export keeps every event, another client keeps receiving, and the stuck
//! client's drops are counted (metrics) and reported to it once it reads again.
mod common;
mod rpc;

use std::collections::HashSet;

use common::{kind, marker, Agent};
use rpc::{args_contain, read_until};
use tetra_proto::tetragon::{
    get_events_response::Event, AggregationOptions, Filter, GetEventsRequest,
};

const RUNS: usize = 2500;

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn stuck_client_drops_alone() {
    let run_dir = tempfile::tempdir().unwrap();
    let run_arg = format!("--run-dir={}", run_dir.path().display());
    let mut agent =
        Agent::start(&["--server-address=127.0.0.1:0", "--metrics-server=127.0.0.1:0", &run_arg]);
    let address = rpc::info(run_dir.path(), "server_address");
    let metrics = rpc::info(run_dir.path(), "metrics_address");
    let mark = marker("bp");
    let done = marker("bp-done");

    rpc::runtime().block_on(async {
        let mut reader_client = rpc::connect(&address).await;
        // Small HTTP/2 windows: what is stuck in transit stays small next to the storm.
        let mut stuck_client = rpc::connect_with_window(&address, Some(65535)).await;
        let wanted = |m: &str| GetEventsRequest {
            allow_list: vec![Filter { arguments_regex: vec![m.to_string()], ..Default::default() }],
            ..Default::default()
        };
        // Everything on the marker, with a small queue: never read during the storm.
        let stuck_req = GetEventsRequest {
            aggregation_options: Some(AggregationOptions {
                channel_buffer_size: 50,
                ..Default::default()
            }),
            ..wanted(&mark)
        };
        let mut stuck = stuck_client.get_events(stuck_req).await.unwrap().into_inner();
        let mut reader =
            reader_client.get_events(wanted(&format!("{mark}|{done}"))).await.unwrap().into_inner();

        // The storm runs on a thread; this task keeps reading the healthy client meanwhile.
        let storm_mark = mark.clone();
        let storm_done = done.clone();
        let storm = std::thread::spawn(move || {
            for i in 0..RUNS {
                rpc::run("/bin/true", &[&storm_mark, &i.to_string()]);
            }
            rpc::run("/bin/true", &[&storm_done]);
        });
        let seen = read_until(&mut reader, 120, "the end-of-storm marker", |e| {
            matches!(e.event, Some(Event::ProcessExit(_))) && args_contain(e, &done)
        })
        .await;
        storm.join().unwrap();
        let execs: HashSet<String> = seen
            .iter()
            .filter(|e| matches!(e.event, Some(Event::ProcessExec(_))) && args_contain(e, &mark))
            .map(|e| e.process().unwrap().arguments.clone())
            .collect();
        assert_eq!(execs.len(), RUNS, "the reading client got every exec");
        assert!(
            !seen.iter().any(|e| matches!(e.event, Some(Event::RateLimitInfo(_)))),
            "the reader lost nothing"
        );

        // The stuck client's losses are in the metrics...
        let (_, text) = rpc::http_get(&metrics, "/metrics");
        let drops = rpc::sample(&text, "tetragon_grpc_client_events_dropped_total").unwrap();
        let lost =
            rpc::sample(&text, "tetragon_events_lost_total{cause=\"grpc_slow_client\"}").unwrap();
        assert!(
            drops > RUNS as f64,
            "a 50-event queue must overflow with {} events: {text}",
            2 * RUNS
        );
        assert_eq!(drops, lost);
        assert!(text.contains("tetragon_grpc_clients 2\n"), "{text}");

        // ...and reported to it once it catches up: what it got plus what it was told it
        // lost is everything.
        let mut got = 0u64;
        let mut told = 0u64;
        while got + told < 2 * RUNS as u64 {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(20), stuck.message())
                .await
                .expect("the stuck client still receives")
                .unwrap()
                .unwrap();
            match &ev.event {
                Some(Event::RateLimitInfo(r)) => told += r.number_of_dropped_process_events,
                _ if args_contain(&ev, &mark) => got += 1,
                other => panic!("unexpected event {other:?}"),
            }
        }
        assert_eq!(told as f64, drops, "told exactly what was dropped");
        assert!(got >= 50, "its queue was delivered first: {got}");
    });

    let stats = agent.stop();
    assert_eq!(stats["export_queue_full"], 0, "{stats:?}");
    assert_eq!(stats["lost"], 0, "{stats:?}");
    let events = agent.events();
    let exported: HashSet<String> = events
        .iter()
        .filter(|e| kind(e).0 == "process_exec")
        .filter_map(|e| kind(e).1["process"]["arguments"].as_str().map(String::from))
        .filter(|a| a.contains(&mark))
        .collect();
    assert_eq!(exported.len(), RUNS, "the JSON export has every exec");
    let exits = events.iter().filter(|e| common::with_arg(e, "process_exit", &mark)).count();
    assert_eq!(exits, RUNS, "and every exit");
}
