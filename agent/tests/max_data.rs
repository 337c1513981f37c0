//! maxData on char_buf arguments, through the real tetrad: uprobes on functions of this
//! test binary get buffers far larger than the 1024 bytes a plain char_buf records, and
//! the JSON export must carry them byte for byte (the kernel sends them in data messages
//! before the event; the agent joins them).
mod common;

use base64::Engine;
use common::{kind, Agent};
use serde_json::Value;
use tetra_tests::pattern;

/// Entry-probe target: a buffer and its size, as write(2) takes them.
#[no_mangle]
#[inline(never)]
pub extern "C" fn tetra_maxdata_sink(buf: *const u8, len: u64) -> u64 {
    std::hint::black_box(buf);
    std::hint::black_box(len)
}

/// Same shape, probed without maxData.
#[no_mangle]
#[inline(never)]
pub extern "C" fn tetra_maxdata_plain(buf: *const u8, len: u64) -> u64 {
    std::hint::black_box(buf);
    std::hint::black_box(len.wrapping_add(1))
}

/// Return-probe target: fills `buf` with `n` bytes of `src` and returns `n`, as read(2).
#[no_mangle]
#[inline(never)]
pub extern "C" fn tetra_maxdata_fill(buf: *mut u8, src: *const u8, n: u64) -> i64 {
    // SAFETY: the caller passes a buffer and a source of at least `n` bytes each.
    unsafe { std::ptr::copy_nonoverlapping(src, buf, n as usize) };
    std::hint::black_box(n as i64)
}

fn policy(dir: &std::path::Path) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let yaml = format!(
        "apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {{name: max-data}}
spec:
  uprobes:
  - path: {exe}
    symbols: [tetra_maxdata_sink]
    args: [{{index: 0, type: char_buf, sizeArgIndex: 2, maxData: true}}, {{index: 1, type: uint64}}]
  - path: {exe}
    symbols: [tetra_maxdata_plain]
    args: [{{index: 0, type: char_buf, sizeArgIndex: 2}}, {{index: 1, type: uint64}}]
  - path: {exe}
    symbols: [tetra_maxdata_fill]
    return: true
    args: [{{index: 0, type: char_buf, returnCopy: true, maxData: true}}, {{index: 2, type: uint64}}]
    returnArg: {{index: 0, type: int64}}
",
        exe = exe.display()
    );
    let path = dir.join("max-data.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Our process_uprobe events on `symbol` whose size argument is `len`.
fn find(agent: &Agent, symbol: &str, len: u64) -> Value {
    let pid = std::process::id();
    agent.wait_for(&format!("{symbol}({len})"), |e| {
        let (k, body) = kind(e);
        k == "process_uprobe"
            && body["process"]["pid"] == pid
            && body["symbol"] == symbol
            && body["args"][1]["size_arg"] == len.to_string().as_str()
    })
}

fn decode(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("base64 string")).unwrap()
}

#[test]
#[ignore = "needs root: loads BPF programs (the README test command runs it)"]
fn max_data_char_buf_reaches_the_export_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = policy(dir.path());
    let mut agent = Agent::start(&["--tracing-policy", file.to_str().unwrap()]);
    agent.wait_log("enabled: 3 hook(s) attached");

    let big = pattern(200_000, 1);
    let huge = pattern(400_000, 2);
    let plain = pattern(5000, 3);
    let small = pattern(700, 4);
    tetra_maxdata_sink(big.as_ptr(), big.len() as u64);
    tetra_maxdata_sink(huge.as_ptr(), huge.len() as u64);
    tetra_maxdata_sink(small.as_ptr(), small.len() as u64);
    tetra_maxdata_plain(plain.as_ptr(), plain.len() as u64);
    let read = pattern(150_000, 5);
    let mut buf = vec![0u8; read.len()];
    tetra_maxdata_fill(buf.as_mut_ptr(), read.as_ptr(), read.len() as u64);

    // 200,000 bytes: all of them, not truncated.
    let e = find(&agent, "tetra_maxdata_sink", 200_000);
    let arg = &kind(&e).1["args"][0];
    assert!(arg.get("truncated_bytes_arg").is_none(), "{arg}");
    assert!(decode(&arg["bytes_arg"]) == big, "200,000 bytes differ");

    // Past the 327,360-byte limit: cut there, the real size in orig_size.
    let e = find(&agent, "tetra_maxdata_sink", 400_000);
    let arg = &kind(&e).1["args"][0]["truncated_bytes_arg"];
    assert_eq!(arg["orig_size"], "400000", "{}", &kind(&e).1["args"][1]);
    let got = decode(&arg["bytes_arg"]);
    assert_eq!(got.len(), 327_360);
    assert!(got == huge[..327_360], "the first 327,360 bytes differ");

    // Under 1024 bytes: inline only.
    let e = find(&agent, "tetra_maxdata_sink", 700);
    assert_eq!(decode(&kind(&e).1["args"][0]["bytes_arg"]), small);

    // Without maxData: the old 1024-byte cut.
    let e = find(&agent, "tetra_maxdata_plain", 5000);
    let arg = &kind(&e).1["args"][0]["truncated_bytes_arg"];
    assert_eq!(arg["orig_size"], "5000");
    assert_eq!(decode(&arg["bytes_arg"]), plain[..1024]);

    // returnCopy + maxData: read at return, as many bytes as returned.
    let e = find(&agent, "tetra_maxdata_fill", 150_000);
    let args = &kind(&e).1["args"];
    assert!(args[0].get("truncated_bytes_arg").is_none(), "{}", args[0]);
    assert!(decode(&args[0]["bytes_arg"]) == read, "150,000 bytes read at return differ");
    assert_eq!(args[2]["long_arg"], "150000", "the return value ends the args");

    let stats = agent.stop();
    assert_eq!(stats["lost"], 0, "{stats:?}");
    assert_eq!(stats["lost_ringbuf_data"], 0, "{stats:?}");
    assert_eq!((stats["data_discarded"], stats["data_incomplete"]), (0, 0), "{stats:?}");
    // 200,000 - 1024 inline: 7 messages; 327,360 - 1024: 10; 150,000 - 1024: 5.
    assert_eq!(stats["data_messages"], 22, "{stats:?}");
}
