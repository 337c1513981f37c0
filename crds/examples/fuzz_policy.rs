//! Structure-aware fuzzing of parse -> validate -> compile on stable Rust.
//!
//! `cargo run --release -p tetra-crds --example fuzz_policy -- --seconds 600 [--seed N]`
//!
//! Seeds: every file of the Tetragon conformance corpus and of examples/tracingpolicy.
//! Each iteration takes a seed document, applies random structural mutations to its JSON
//! tree (delete/duplicate/swap nodes, boundary numbers, dictionary words, typo'd keys) or
//! byte-level mutations to its text, then runs `check_policy_yaml`. A panic, a multi-line
//! error, or a compiled hook whose selector blob does not decode back to its selectors is
//! a failure: the input is written to `fuzz-failure.yaml` and the process exits 1.

use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tetra_crds::{check_policy_yaml, compile::decode};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "Equal",
    "NotEqual",
    "Prefix",
    "Postfix",
    "Mask",
    "GT",
    "LT",
    "InMap",
    "NotInMap",
    "SPort",
    "DPort",
    "SAddr",
    "DAddr",
    "Protocol",
    "Family",
    "State",
    "CelExpr",
    "In",
    "NotIn",
    "Post",
    "Sigkill",
    "Override",
    "FollowFD",
    "UnfollowFD",
    "CopyFD",
    "Signal",
    "GetUrl",
    "DnsLookup",
    "TrackSock",
    "NoPost",
    "Set",
    "int",
    "fd",
    "file",
    "sock",
    "char_buf",
    "string",
    "auto",
    "syscall64",
    "host_ns",
    "list:dups",
    "127.0.0.1/8",
    "::1/128",
    "10.0.0.0/33",
    "0x7fffffff",
    "-1",
    "65536",
    "1:2",
    "2:1",
    "AF_INET",
    "IPPROTO_TCP",
    "TCP_SYN_RECV",
    "CAP_SYS_ADMIN",
    "/etc/",
    "",
    "sys_write",
    "list:",
    "5m",
    "25h",
    "0:18446744073709551615",
    "0:65535",
    "18446744073709551616",
    "-9223372036854775809",
];
const KEYS: &[&str] = &[
    "kprobes",
    "tracepoints",
    "uprobes",
    "lsmhooks",
    "selectors",
    "matchArgs",
    "matchActions",
    "matchBinaries",
    "matchPIDs",
    "matchNamespaces",
    "matchCapabilities",
    "index",
    "operator",
    "values",
    "action",
    "argFd",
    "argName",
    "argError",
    "argSig",
    "argSock",
    "rateLimit",
    "return",
    "returnArg",
    "syscall",
    "args",
    "type",
    "sizeArgIndex",
    "macros",
    "selectorsMacros",
    "lists",
    "hostSelector",
    "matchArg",
    "selectrs",
    "calll",
];

fn random_leaf(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => json!(rng.pick(&[
            0i64,
            1,
            4,
            5,
            15,
            16,
            -1,
            255,
            65535,
            4294967295,
            i64::MAX,
            i64::MIN
        ])),
        1 => json!(rng.below(2) == 1),
        2 => Value::Null,
        3 => json!("x".repeat(rng.pick(&[1usize, 2, 127, 128, 256, 257, 4097]).to_owned())),
        4 => json!([]),
        5 => json!({}),
        _ => json!(rng.pick(WORDS)),
    }
}

/// Collects JSON pointers of every node.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            pointers(
                c,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
}

fn mutate(doc: &mut Value, donor: &Value, rng: &mut Rng) {
    let mut ptrs = Vec::new();
    pointers(doc, String::new(), &mut ptrs);
    let target = rng.pick(&ptrs).clone();
    let mut donor_ptrs = Vec::new();
    pointers(donor, String::new(), &mut donor_ptrs);
    let graft = donor
        .pointer(rng.pick(donor_ptrs.as_slice()).as_str())
        .cloned()
        .unwrap_or(Value::Null);
    let Some(node) = doc.pointer_mut(&target) else {
        return;
    };
    match rng.below(7) {
        0 => *node = random_leaf(rng),
        1 => *node = graft,
        2 => match node {
            Value::Object(m) if !m.is_empty() => {
                let k = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                let v = m.remove(&k).unwrap_or(Value::Null);
                if rng.below(2) == 0 {
                    m.insert(rng.pick(KEYS).to_string(), v);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                if rng.below(2) == 0 {
                    a.remove(i);
                } else {
                    let c = a[i].clone();
                    a.push(c);
                }
            }
            _ => *node = random_leaf(rng),
        },
        3 => {
            if let Value::Object(m) = node {
                m.insert(rng.pick(KEYS).to_string(), graft);
            }
        }
        4 => {
            if let Value::Array(a) = node {
                for _ in 0..rng.below(8) {
                    a.push(graft.clone());
                }
            }
        }
        5 => {
            if let Value::String(s) = node {
                *s = format!("{}{}", s, rng.pick(WORDS));
            }
        }
        _ => {
            if let Value::Number(_) = node {
                *node = random_leaf(rng);
            }
        }
    }
}

/// A random YAML tree built from policy vocabulary (no seed involved).
fn random_tree(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 2 } else { 5 }) {
        0 | 1 => random_leaf(rng),
        2 | 3 => Value::Object(
            (0..rng.below(5))
                .map(|_| (rng.pick(KEYS).to_string(), random_tree(rng, depth - 1)))
                .collect(),
        ),
        _ => Value::Array(
            (0..rng.below(4))
                .map(|_| random_tree(rng, depth - 1))
                .collect(),
        ),
    }
}

fn byte_mutate(text: &str, rng: &mut Rng) -> String {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            break;
        }
        let i = rng.below(b.len());
        match rng.below(4) {
            0 => {
                b.remove(i);
            }
            1 => b.insert(i, *rng.pick(b": -[]{}\n\t\"'&*!|>#%@`")),
            2 => b[i] = *rng.pick(b" :-\n"),
            _ => {
                let j = rng.below(b.len());
                b.truncate(i.max(j));
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn seeds() -> Vec<(String, Value)> {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/tracingpolicy");
    let dirs = tetra_corpus::dir(tetra_corpus::Part::Policies).into_iter().chain([examples]);
    let mut out = Vec::new();
    for d in dirs.filter(|d| d.is_dir()) {
        for f in tetra_crds::conformance::corpus_files(&d).unwrap_or_default() {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            if let Ok(v) = tetra_crds::validate::parse_yaml(&text) {
                out.push((text, v));
            }
        }
    }
    out
}

/// Runs one input; returns a description of the failure, if any.
fn run_one(text: &str) -> Option<String> {
    match catch_unwind(AssertUnwindSafe(|| check_policy_yaml(text))) {
        Err(_) => Some("panic".into()),
        Ok(Err(errors)) => errors
            .iter()
            .map(|e| e.to_string())
            .find(|l| l.contains('\n'))
            .map(|l| format!("multi-line error: {l}")),
        Ok(Ok(policy)) => policy
            .hooks
            .iter()
            .find_map(|h| match decode(&h.selector_blob) {
                Ok(sels) if sels == h.selectors => None,
                other => Some(format!(
                    "blob of {} does not round-trip: {other:?}",
                    h.source
                )),
            }),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => v.parse::<u64>().ok(),
            })
    };
    let seconds = arg("--seconds").unwrap_or(60);
    let seed = arg("--seed").unwrap_or(0x5eed_1234_abcd_ef01);
    let corpus = seeds();
    assert!(!corpus.is_empty(), "no seed policies found");
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut iterations, mut accepted) = (0u64, 0u64);
    while Instant::now() < deadline {
        for _ in 0..64 {
            let (text, value) = rng.pick(&corpus);
            let input = if rng.below(5) == 0 {
                byte_mutate(text, &mut rng)
            } else if rng.below(10) == 0 {
                let spec = random_tree(&mut rng, 5);
                let doc = json!({"apiVersion": "cilium.io/v1alpha1", "kind": "TracingPolicy", "metadata": {"name": "r"}, "spec": spec});
                serde_yaml_ng::to_string(&doc).unwrap_or_default()
            } else {
                let mut doc = value.clone();
                let donor = &rng.pick(&corpus).1;
                for _ in 0..1 + rng.below(6) {
                    mutate(&mut doc, donor, &mut rng);
                }
                serde_yaml_ng::to_string(&doc).unwrap_or_default()
            };
            if let Some(why) = run_one(&input) {
                let _ = std::fs::write("fuzz-failure.yaml", &input);
                eprintln!("FAILURE after {iterations} iterations: {why}\ninput written to fuzz-failure.yaml");
                std::process::exit(1);
            }
            if check_policy_yaml(&input).is_ok() {
                accepted += 1;
            }
            iterations += 1;
        }
    }
    println!("fuzz_policy: {iterations} iterations in {seconds}s, {accepted} accepted, no failures (seed {seed:#x})");
}
