//! `--log-level` and `--log-format`, as Tetragon names them, shared by `tetrad` and
//! `tetra-operator`: `tracing` events (and `log` records of libraries) to stderr as text or
//! JSON lines. `RUST_LOG`, when set, overrides the level with its own directives.

use clap::{Args, ValueEnum};
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log level (RUST_LOG, when set, wins).
    #[arg(long, default_value = "info", value_parser = ["trace", "debug", "info", "warn", "error"])]
    pub log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// Installs the global subscriber writing to stderr, and the bridge for `log` records
    /// (once, at start).
    pub fn init(&self) {
        self.subscriber(std::io::stderr).init();
    }

    /// The subscriber the flags describe, writing to `writer`.
    pub fn subscriber<W>(&self, writer: W) -> Box<dyn Subscriber + Send + Sync>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&self.log_level));
        let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
        match self.log_format {
            LogFormat::Text => Box::new(fmt.finish()),
            LogFormat::Json => Box::new(fmt.json().finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    fn parse(args: &[&str]) -> Result<LogArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bin").chain(args.iter().copied())).map(|c| c.log)
    }

    /// What the subscriber of `args` writes for one warning and one debug event.
    fn logged(args: &[&str]) -> String {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let make = move || Sink(sink.clone());
        tracing::subscriber::with_default(parse(args).unwrap().subscriber(make), || {
            tracing::warn!(policy = "p", "not loaded");
            tracing::debug!("details");
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        text
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn flags_defaults_and_refusals() {
        let d = parse(&[]).unwrap();
        assert_eq!((d.log_level.as_str(), d.log_format), ("info", LogFormat::Text));
        let j = parse(&["--log-level", "debug", "--log-format", "json"]).unwrap();
        assert_eq!((j.log_level.as_str(), j.log_format), ("debug", LogFormat::Json));
        let bad = parse(&["--log-level", "loud"]).unwrap_err().to_string();
        assert!(bad.contains("--log-level") && bad.contains("loud"), "{bad}");
        let bad = parse(&["--log-format", "xml"]).unwrap_err().to_string();
        assert!(bad.contains("--log-format") && bad.contains("xml"), "{bad}");
    }

    // RUST_LOG would override the level under test; these tests run without it.
    #[test]
    fn text_and_json_lines_at_the_chosen_level() {
        if std::env::var_os("RUST_LOG").is_some() {
            eprintln!("text_and_json_lines_at_the_chosen_level: skipped: RUST_LOG is set");
            return;
        }
        let text = logged(&[]);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("WARN") && text.contains("not loaded") && text.contains("policy"), "{text}");
        let json = logged(&["--log-format=json", "--log-level=debug"]);
        let lines: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{json}");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["fields"]["message"], "not loaded");
        assert_eq!(lines[0]["fields"]["policy"], "p");
        assert_eq!(lines[1]["level"], "DEBUG");
    }
}
