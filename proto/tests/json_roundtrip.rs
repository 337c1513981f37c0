//! Every Tetragon conformance event parses into our model and serializes back
//! to structurally identical JSON.

use tetra_corpus::Part;
use tetra_proto::json::{from_line, to_line};

/// Checks one JSON value (one event) and returns a description of any mismatch.
fn check(origin: &str, value: &serde_json::Value) -> Result<(), String> {
    let text = value.to_string();
    let event = from_line(&text).map_err(|e| format!("{origin}: parse: {e}"))?;
    let back: serde_json::Value = serde_json::from_str(&to_line(&event))
        .map_err(|e| format!("{origin}: reparse: {e}"))?;
    if &back != value {
        return Err(format!("{origin}: round trip differs\n in: {value}\nout: {back}"));
    }
    Ok(())
}

#[test]
fn conformance_files_round_trip() {
    let Some(dir) = tetra_corpus::dir_for("conformance_files_round_trip", Part::Events) else { return };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("conformance events at {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json" || x == "jsonl")
        })
        .collect();
    entries.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    for path in &entries {
        let text = std::fs::read_to_string(path).expect("read event file");
        // Files are either one pretty-printed object or JSON lines.
        let stream = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
        for (i, value) in stream.enumerate() {
            let value = value.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
            if let Err(e) = check(&format!("{}#{i}", path.display()), &value) {
                failures.push(e);
            }
        }
    }
    assert!(entries.len() >= 30, "expected the conformance files, found {}", entries.len());
    assert!(count >= 60, "expected at least 60 events, parsed {count}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn json_uses_protojson_conventions() {
    use tetra_proto::tetragon::{
        get_events_response::Event, kprobe_argument::Arg, GetEventsResponse, KprobeArgument,
        ProcessKprobe, Process, Capabilities, CapabilitiesType,
    };
    let ev = GetEventsResponse {
        event: Some(Event::ProcessKprobe(ProcessKprobe {
            process: Some(Process {
                pid: Some(0),
                binary: "/bin/x".into(),
                start_time: Some(tetra_proto::Timestamp { seconds: 1_666_062_978, nanos: 273_546_000 }),
                cap: Some(Capabilities {
                    effective: vec![CapabilitiesType::CapSysAdmin as i32],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            args: vec![KprobeArgument { arg: Some(Arg::SizeArg(65536)), label: String::new() }],
            ..Default::default()
        })),
        node_name: "n".into(),
        ..Default::default()
    };
    let line = to_line(&ev);
    // Key order differs from Go (pbjson writes the oneof last); compare values.
    let got: serde_json::Value = serde_json::from_str(&line).unwrap();
    let want: serde_json::Value = serde_json::from_str(
        r#"{"process_kprobe":{"process":{"pid":0,"binary":"/bin/x","start_time":"2022-10-18T03:16:18.273546Z","cap":{"effective":["CAP_SYS_ADMIN"]}},"args":[{"size_arg":"65536"}]},"node_name":"n"}"#,
    )
    .unwrap();
    assert_eq!(got, want, "{line}");
    // Unknown fields are ignored, like protojson's DiscardUnknown.
    let parsed = from_line(r#"{"node_name":"a","process_connect":{"x":1},"unknown":[1,2]}"#).unwrap();
    assert_eq!(parsed.node_name, "a");
    assert!(parsed.event.is_none());
    assert!(from_line("{not json").is_err());
}
