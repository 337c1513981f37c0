//! A followed stream (`kubectl logs -f ... | tetra getevents -o compact`) shows each event
//! while stdin stays open, not only when a buffer fills or the input ends.
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const EXEC: &str = r#"{"process_exec":{"process":{"exec_id":"eA==","pid":7,"binary":"/usr/bin/curl","arguments":"example.com","flags":"execve"}},"node_name":"node-a","time":"2024-10-26T16:02:01.948430629Z"}"#;

#[test]
fn prints_each_event_while_stdin_is_open() {
    let mut tetra = Command::new(env!("CARGO_BIN_EXE_tetra"))
        .args(["getevents", "-o", "compact", "--color", "never"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = tetra.stdin.take().unwrap();
    let stdout = tetra.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    for _ in 0..2 {
        writeln!(stdin, "{EXEC}").unwrap();
        stdin.flush().unwrap();
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("a line while stdin is open");
        assert_eq!(line, "🚀 process node-a /usr/bin/curl example.com");
    }
    drop(stdin);
    assert!(tetra.wait().unwrap().success());
}
