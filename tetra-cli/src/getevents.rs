//! `tetra getevents`: stream events from the agent, or filter JSON lines
//! from stdin, and print them as JSON or compact lines.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use tetra_proto::filter::{EventFilters, FieldFilters};
use tetra_proto::tetragon::{EventType, FieldFilter, FieldFilterAction, Filter, GetEventsRequest};
use tetra_crds::values::parse_duration;
use tetra_proto::FieldMask;

use crate::compact::{CompactError, CompactOptions, CompactPrinter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Compact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorMode {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct GetEventsArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value = "json")]
    pub output: Output,
    /// Colors in compact output
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorMode,
    /// Only these fields of each event (comma separated dot paths)
    #[arg(short = 'f', long = "include-fields", value_delimiter = ',')]
    pub include_fields: Vec<String>,
    /// Drop these fields of each event (comma separated dot paths)
    #[arg(short = 'F', long = "exclude-fields", value_delimiter = ',')]
    pub exclude_fields: Vec<String>,
    /// Event types (e.g. PROCESS_EXEC,PROCESS_KPROBE)
    #[arg(short = 'e', long = "event-types", value_delimiter = ',')]
    pub event_types: Vec<String>,
    /// Kubernetes namespaces
    #[arg(short = 'n', long = "namespace", visible_alias = "namespaces", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Process binaries (regular expressions)
    #[arg(long = "process", visible_alias = "processes", value_delimiter = ',')]
    pub processes: Vec<String>,
    /// Pod names (regular expressions)
    #[arg(long = "pod", visible_alias = "pods", value_delimiter = ',')]
    pub pods: Vec<String>,
    /// Container names (regular expressions)
    #[arg(long = "containers", value_delimiter = ',')]
    pub containers: Vec<String>,
    /// Kubernetes namespaces (regular expressions)
    #[arg(long = "namespace-regex", value_delimiter = ',')]
    pub namespace_regex: Vec<String>,
    /// Tracing policy names
    #[arg(long = "policy-names", value_delimiter = ',')]
    pub policy_names: Vec<String>,
    /// Keep reconnecting to the agent when the connection fails or the stream ends
    #[arg(long)]
    pub reconnect: bool,
    /// Pause between reconnection attempts (e.g. 2s, 500ms)
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub reconnect_wait: std::time::Duration,
    /// Include host (non-pod) events in the namespace filter
    #[arg(long)]
    pub host: bool,
    /// Prefix compact lines with the event time
    #[arg(long)]
    pub timestamps: bool,
    /// Print kernel/user stack traces in compact output
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub stack_traces: bool,
    /// Print IMA hashes of LSM events in compact output
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub ima_hash: bool,
}

impl GetEventsArgs {
    /// The request the flags describe (also used client side on stdin).
    pub fn request(&self) -> Result<GetEventsRequest> {
        let mut f = Filter::default();
        for name in &self.event_types {
            let t = EventType::from_str_name(name.trim())
                .with_context(|| format!("unknown event type {name:?}"))?;
            f.event_set.push(t as i32);
        }
        f.namespace = self.namespaces.clone();
        if self.host {
            f.namespace.push(String::new());
        }
        f.binary_regex = self.processes.clone();
        f.pod_regex = self.pods.clone();
        f.container_name_regex = self.containers.clone();
        f.namespace_regex = self.namespace_regex.clone();
        f.policy_names = self.policy_names.clone();
        let mut req = GetEventsRequest::default();
        if f != Filter::default() {
            req.allow_list.push(f);
        }
        for (fields, action) in [(&self.include_fields, FieldFilterAction::Include), (&self.exclude_fields, FieldFilterAction::Exclude)] {
            if !fields.is_empty() {
                req.field_filters.push(FieldFilter {
                    fields: Some(FieldMask::new(fields.iter().map(|s| s.trim().to_string()))),
                    action: action as i32,
                    ..Default::default()
                });
            }
        }
        Ok(req)
    }

    fn printer(&self) -> Printer {
        let color = match self.color {
            ColorMode::Always => true,
            ColorMode::Never => false,
            ColorMode::Auto => std::io::stdout().is_terminal(),
        };
        match self.output {
            Output::Json => Printer::Json,
            Output::Compact => Printer::Compact(CompactPrinter::new(CompactOptions {
                color,
                timestamps: self.timestamps,
                stack_traces: self.stack_traces,
                ima_hash: self.ima_hash,
            })),
        }
    }
}

enum Printer {
    Json,
    Compact(CompactPrinter),
}

impl Printer {
    /// Writes one event given as its JSON line, using `buf` for the compact text. The inner
    /// error is an event the compact format cannot show (nothing was written; the caller
    /// reports it and goes on), the outer one a failed write.
    fn print_line(&self, out: &mut impl Write, buf: &mut String, line: &[u8]) -> std::io::Result<Result<(), CompactError>> {
        match self {
            Printer::Json => {
                out.write_all(line)?;
                out.write_all(b"\n")?;
            }
            Printer::Compact(p) => {
                buf.clear();
                if let Err(e) = p.write(buf, line) {
                    return Ok(Err(e));
                }
                buf.push('\n');
                out.write_all(buf.as_bytes())?;
            }
        }
        Ok(Ok(()))
    }
}

/// True when stdin is a pipe or file (then events are read from it), as upstream:
/// anything but a character device. A terminal or `/dev/null` (how services and test
/// harnesses start us) means "stream from the agent".
pub fn stdin_has_events() -> bool {
    use std::os::unix::fs::FileTypeExt;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return false;
    }
    // fstat(0) through /proc would need a path; duplicate the handle as a File instead.
    match stdin.as_fd().try_clone_to_owned() {
        Ok(fd) => match std::fs::File::from(fd).metadata() {
            Ok(m) => !m.file_type().is_char_device(),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

/// Reads JSON lines from `input`, filters and prints them. Bad lines are
/// reported on stderr with their line number and skipped. Output is buffered,
/// but flushed whenever the input has nothing more ready, so a followed stream
/// (`kubectl logs -f ... | tetra getevents`) shows each event as it comes.
pub fn run_stdin<R: Read>(args: &GetEventsArgs, input: R, out: impl Write) -> Result<()> {
    let req = args.request()?;
    let filters = EventFilters::new(&req.allow_list, &req.deny_list).context("invalid filter")?;
    let fields = FieldFilters::new(&req.field_filters).context("invalid field filter")?;
    let printer = args.printer();
    let mut input = Lines::new(input);
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let compact_as_is = matches!(printer, Printer::Compact(_)) && filters.is_empty() && fields.is_empty();
    let mut buf = String::new();
    let mut number = 0u64;
    loop {
        let Some(line) = input.buffered() else {
            // The next read may block: show what we have first.
            if let Err(e) = out.flush() {
                return broken_pipe_is_ok(e);
            }
            if input.fill().context("reading stdin")? {
                continue;
            }
            break;
        };
        number += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        // Compact output without filters reads only the fields it prints from the line;
        // JSON output and filters need the whole event.
        let decoded;
        let text = if compact_as_is {
            text
        } else {
            let parsed = std::str::from_utf8(text)
                .map_err(|e| format!("not UTF-8: {e}"))
                .and_then(|t| tetra_proto::json::from_line(t).map_err(|e| e.to_string()));
            let mut ev = match parsed {
                Ok(ev) => ev,
                Err(e) => {
                    eprintln!("tetra: stdin line {number}: {e}");
                    continue;
                }
            };
            if !filters.matches(&ev) {
                continue;
            }
            fields.apply(&mut ev);
            decoded = tetra_proto::json::to_line(&ev);
            decoded.as_bytes()
        };
        match printer.print_line(&mut out, &mut buf, text) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("tetra: stdin line {number}: {e}"),
            Err(e) => return broken_pipe_is_ok(e),
        }
    }
    out.flush().or_else(broken_pipe_is_ok)
}

/// The lines of a reader, read in large chunks and handed out where they lie in the chunk:
/// no copy per line.
struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    /// First byte not handed out yet.
    start: usize,
    /// Bytes from `start` to here hold no `\n`.
    searched: usize,
    /// End of the bytes read.
    end: usize,
    eof: bool,
}

/// Bytes asked of the reader at a time (more when a line is longer).
const CHUNK: usize = 256 * 1024;

impl<R: Read> Lines<R> {
    fn new(input: R) -> Self {
        Lines { input, buf: vec![0; CHUNK], start: 0, searched: 0, end: 0, eof: false }
    }

    /// The next line already read, without its `\n`; at the end of the input, the last line
    /// even without one. None: read more first ([`Lines::fill`]).
    fn buffered(&mut self) -> Option<&[u8]> {
        let end = match memchr::memchr(b'\n', &self.buf[self.searched..self.end]) {
            Some(i) => self.searched + i,
            None if self.eof && self.start < self.end => self.end,
            None => {
                self.searched = self.end;
                return None;
            }
        };
        let line = self.start..end;
        self.start = (end + 1).min(self.end);
        self.searched = self.start;
        Some(&self.buf[line])
    }

    /// Reads more of the input (may block); false at its end.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            // Lines were handed out: move the start of the next one to the front.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.searched -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // One line fills the buffer: make room for the rest of it.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            return Ok(true);
        }
    }
}

/// A reader that went away (`| head`) ends the output quietly; other errors do not.
fn broken_pipe_is_ok(e: std::io::Error) -> Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e).context("writing output")
    }
}

/// Streams events from the agent (server-side filtering). With `--reconnect`, a failed
/// connection or an ended stream is retried after `--reconnect-wait`, forever.
pub async fn run_grpc<C, F>(args: &GetEventsArgs, connect: C) -> Result<()>
where
    C: Fn() -> F,
    F: std::future::Future<Output = Result<crate::client::Client>>,
{
    let req = args.request()?;
    let printer = args.printer();
    loop {
        let end = match connect().await {
            Ok(client) => stream_events(client, req.clone(), &printer).await,
            Err(e) => StreamEnd::Failed(e),
        };
        match end {
            StreamEnd::ReaderGone => return Ok(()),
            StreamEnd::OutputError(e) => return Err(e),
            StreamEnd::Closed if !args.reconnect => return Ok(()),
            StreamEnd::Failed(e) if !args.reconnect => return Err(e),
            StreamEnd::Closed => eprintln!("tetra: event stream ended; reconnecting in {:?}", args.reconnect_wait),
            StreamEnd::Failed(e) => eprintln!("tetra: {e:#}; reconnecting in {:?}", args.reconnect_wait),
        }
        tokio::time::sleep(args.reconnect_wait).await;
    }
}

/// How one event stream ended.
enum StreamEnd {
    /// The agent closed it.
    Closed,
    /// Connecting or streaming failed (what `--reconnect` retries).
    Failed(anyhow::Error),
    /// Our reader went away (`| head`): stop quietly.
    ReaderGone,
    /// Writing the output failed otherwise.
    OutputError(anyhow::Error),
}

async fn stream_events(mut client: crate::client::Client, req: GetEventsRequest, printer: &Printer) -> StreamEnd {
    let mut stream = match client.get_events(req).await {
        Ok(s) => s.into_inner(),
        Err(status) => return StreamEnd::Failed(anyhow::anyhow!("GetEvents: {}", status.message())),
    };
    let stdout = std::io::stdout();
    let mut buf = String::new();
    loop {
        let ev = match stream.message().await {
            Ok(Some(ev)) => ev,
            Ok(None) => return StreamEnd::Closed,
            Err(status) => return StreamEnd::Failed(anyhow::anyhow!("event stream ended: {}", status.message())),
        };
        let mut lock = stdout.lock();
        let line = tetra_proto::json::to_line(&ev);
        let printed = printer.print_line(&mut lock, &mut buf, line.as_bytes());
        if let Ok(Err(e)) = &printed {
            eprintln!("tetra: skipping event: {e}");
        }
        match printed.and_then(|_| lock.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return StreamEnd::ReaderGone,
            Err(e) => return StreamEnd::OutputError(anyhow::Error::new(e).context("writing output")),
            Ok(()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GetEventsArgs,
    }

    #[test]
    fn flags_become_one_allow_filter() {
        let cli = Cli::parse_from(["t", "--containers", "ship,^db", "--namespace-regex", "^team-", "-n", "default"]);
        let req = cli.args.request().unwrap();
        assert_eq!(req.allow_list.len(), 1);
        let f = &req.allow_list[0];
        assert_eq!(f.container_name_regex, ["ship", "^db"]);
        assert_eq!(f.namespace_regex, ["^team-"]);
        assert_eq!(f.namespace, ["default"]);
    }

    /// Lines are found however the reads fall: a few bytes at a time, a line longer than the
    /// read buffer, blank lines, a bad line (reported and skipped), a last line without `\n`.
    #[test]
    fn stdin_lines_in_any_chunking() {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let exec = |binary: &str| format!(r#"{{"process_exec":{{"process":{{"binary":"{binary}"}}}},"node_name":"n"}}"#);
        let long = "/x".repeat(CHUNK);
        let input = format!("{}\n\n  \r\n{}\nnot json\n{}", exec("/a"), exec(&long), exec("/b"));
        let cli = Cli::parse_from(["t", "-o", "compact", "--color", "never"]);
        for step in [1, 7, 4096, usize::MAX] {
            let mut out = Vec::new();
            run_stdin(&cli.args, Trickle(input.as_bytes(), step), &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), format!("🚀 process n /a \n🚀 process n {long} \n🚀 process n /b \n"), "reads of {step}");
        }
    }

    #[test]
    fn reconnect_wait_needs_a_unit() {
        assert!(Cli::try_parse_from(["t", "--reconnect-wait", "soon"]).is_err());
    }
}
