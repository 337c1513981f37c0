//! The compact one-line-per-event format of `tetra getevents -o compact`,
//! byte-compatible with upstream Tetragon's encoder (including its quirks:
//! the CAP_SYS_ADMIN trailer fires when the effective set has at least 22
//! entries, and padding counts characters like Go's `%-*s`).

use std::fmt::Write as _;

use tetra_proto::tetragon::{
    get_events_response::Event, kprobe_argument::Arg, GetEventsResponse, KprobeArgument,
    Process, ProcessKprobe, ThrottleType,
};
use tetra_proto::Timestamp;

/// ANSI colours, or nothing.
#[derive(Debug, Clone, Copy)]
pub struct Colorer {
    enabled: bool,
}

#[derive(Clone, Copy)]
enum Color {
    Red = 31,
    Green = 32,
    Blue = 34,
    Magenta = 35,
    Cyan = 36,
}

impl Colorer {
    pub fn new(enabled: bool) -> Self {
        Colorer { enabled }
    }

    fn paint(&self, c: Color, s: &str) -> String {
        if self.enabled {
            format!("\x1b[{}m{s}\x1b[0m", c as u8)
        } else {
            s.to_string()
        }
    }
}

/// Options of the compact printer.
#[derive(Debug, Clone, Copy)]
pub struct CompactOptions {
    pub color: bool,
    pub timestamps: bool,
    pub stack_traces: bool,
    pub ima_hash: bool,
}

/// An event the compact format cannot show.
#[derive(Debug, PartialEq, Eq)]
pub enum CompactError {
    MissingProcess(&'static str),
    EmptyEvent,
}

impl std::fmt::Display for CompactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompactError::MissingProcess(kind) => write!(f, "{kind} event without process information"),
            CompactError::EmptyEvent => f.write_str("event without payload"),
        }
    }
}

/// Go's `strconv.Quote` when `s` has a space or a non-printable character.
pub fn maybe_quote(s: &str) -> String {
    let needs = s.chars().any(|c| c.is_whitespace() || c.is_control());
    if !needs {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            ' ' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || c.is_whitespace() => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `"<emoji> " + %-7s word`.
fn word(emoji: &str, w: &str) -> String {
    format!("{emoji} {w:<7}")
}

/// Upstream iterates the *indices* of the effective set, so the trailer
/// appears when index 21 (CAP_SYS_ADMIN's number) exists.
fn caps_trailer(p: &Process) -> &'static str {
    match &p.cap {
        Some(c) if c.effective.len() > 21 => "🛑 CAP_SYS_ADMIN",
        _ => "",
    }
}

fn with_caps(line: String, caps: &str, col: &Colorer) -> String {
    if caps.is_empty() {
        return line;
    }
    let caps = col.paint(Color::Magenta, caps);
    let width = 120usize.saturating_sub(caps.len());
    let chars = line.chars().count();
    let pad = width.saturating_sub(chars);
    format!("{line}{:pad$} {caps}", "")
}

fn arg(args: &[KprobeArgument], i: usize) -> Option<&Arg> {
    args.get(i).and_then(|a| a.arg.as_ref())
}

fn file_path(args: &[KprobeArgument], i: usize) -> String {
    match arg(args, i) {
        Some(Arg::FileArg(f)) => f.path.clone(),
        Some(Arg::PathArg(p)) => p.path.clone(),
        _ => String::new(),
    }
}

fn string_arg(args: &[KprobeArgument], i: usize) -> String {
    match arg(args, i) {
        Some(Arg::StringArg(s)) => s.clone(),
        _ => String::new(),
    }
}

fn int_arg(args: &[KprobeArgument], i: usize) -> Option<i64> {
    match arg(args, i)? {
        Arg::IntArg(v) => Some(i64::from(*v)),
        Arg::UintArg(v) => Some(i64::from(*v)),
        Arg::LongArg(v) => Some(*v),
        Arg::SizeArg(v) => i64::try_from(*v).ok(),
        _ => None,
    }
}

fn setns_name(flags: i64) -> &'static str {
    match flags {
        0 => "any",
        0x0200_0000 => "cgroup",
        0x0800_0000 => "ipc",
        0x4000_0000 => "net",
        0x0002_0000 => "mnt",
        0x2000_0000 => "pid",
        0x0000_0080 => "time",
        0x1000_0000 => "user",
        0x0400_0000 => "uts",
        _ => "",
    }
}

fn strip_syscall_prefix(name: &str) -> &str {
    for prefix in ["__x64_", "__arm64_", "__ia32_"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return rest;
        }
    }
    name
}

/// Prints events in compact form.
pub struct CompactPrinter {
    opts: CompactOptions,
    col: Colorer,
}

impl CompactPrinter {
    pub fn new(opts: CompactOptions) -> Self {
        CompactPrinter { opts, col: Colorer::new(opts.color) }
    }

    /// `<source> <binary>` and the caps trailer of a process.
    fn process_info(&self, node: &str, p: &Process) -> (String, &'static str) {
        let source = match &p.pod {
            Some(pod) => self.col.paint(Color::Green, &format!("{}/{}", pod.namespace, pod.name)),
            None => self.col.paint(Color::Green, &maybe_quote(node)),
        };
        let bin = self.col.paint(Color::Magenta, &maybe_quote(&p.binary));
        (format!("{source} {bin}"), caps_trailer(p))
    }

    fn cyan(&self, s: &str) -> String {
        self.col.paint(Color::Cyan, s)
    }

    fn blue(&self, s: &str) -> String {
        self.col.paint(Color::Blue, s)
    }

    /// One event as text (possibly several lines for stack traces); no
    /// trailing newline.
    pub fn format(&self, ev: &GetEventsResponse) -> Result<String, CompactError> {
        let body = self.body(ev)?;
        if self.opts.timestamps {
            let ts = ev.time.unwrap_or_default();
            return Ok(format!("{} {body}", timestamp_nanos(&ts)));
        }
        Ok(body)
    }

    fn body(&self, ev: &GetEventsResponse) -> Result<String, CompactError> {
        let node = ev.node_name.as_str();
        let need = |p: &Option<Process>, kind| p.clone().ok_or(CompactError::MissingProcess(kind));
        match ev.event.as_ref().ok_or(CompactError::EmptyEvent)? {
            Event::ProcessExec(e) => {
                let p = need(&e.process, "process_exec")?;
                let (info, caps) = self.process_info(node, &p);
                let line = format!("{} {info} {}", self.blue(&word("🚀", "process")), self.cyan(&maybe_quote(&p.arguments)));
                Ok(with_caps(line, caps, &self.col))
            }
            Event::ProcessExit(e) => {
                let p = need(&e.process, "process_exit")?;
                let (info, caps) = self.process_info(node, &p);
                let status = if e.signal.is_empty() { e.status.to_string() } else { e.signal.clone() };
                let line = format!(
                    "{} {info} {} {}",
                    self.blue(&word("💥", "exit")),
                    self.cyan(&maybe_quote(&p.arguments)),
                    self.col.paint(Color::Red, &status)
                );
                Ok(with_caps(line, caps, &self.col))
            }
            Event::ProcessKprobe(k) => {
                let p = need(&k.process, "process_kprobe")?;
                Ok(self.kprobe(node, &p, k))
            }
            Event::ProcessTracepoint(t) => {
                let p = need(&t.process, "process_tracepoint")?;
                let (info, caps) = self.process_info(node, &p);
                let line = if t.subsys == "raw_syscalls" && t.event == "sys_enter" {
                    format!("{} {info} {}", self.blue(&word("☎ ", "syscall")), self.cyan(&raw_syscall(&t.args)))
                } else {
                    format!("{} {info} {}", self.blue(&word("⁉️", "tracepoint")), self.cyan(&format!("{} {}", t.subsys, t.event)))
                };
                Ok(with_caps(line, caps, &self.col))
            }
            Event::ProcessLoader(l) => {
                let p = need(&l.process, "process_loader")?;
                let (info, caps) = self.process_info(node, &p);
                let mut detail = String::new();
                if !l.buildid.is_empty() {
                    for b in &l.buildid {
                        let _ = write!(detail, "{b:02x}");
                    }
                    detail.push(' ');
                }
                detail.push_str(&l.path);
                let line = format!("{} {info} {}", self.blue(&word("🧬", "loader")), self.cyan(&detail));
                Ok(with_caps(line, caps, &self.col))
            }
            Event::ProcessUprobe(u) => {
                let p = need(&u.process, "process_uprobe")?;
                let (info, caps) = self.process_info(node, &p);
                let line = format!("{} {info} {}", self.blue(&word("🕵️", "uprobe")), self.cyan(&format!("{} {}", u.path, u.symbol)));
                Ok(with_caps(line, caps, &self.col))
            }
            Event::ProcessUsdt(u) => {
                let p = need(&u.process, "process_usdt")?;
                let (info, caps) = self.process_info(node, &p);
                let detail = format!("{} {} {}", u.path, u.provider, u.name);
                let line = format!("{} {info} {}", self.blue(&word("🕵️", "usdt")), self.cyan(&detail));
                Ok(with_caps(line, caps, &self.col))
            }
            Event::ProcessLsm(l) => {
                let p = need(&l.process, "process_lsm")?;
                let (info, caps) = self.process_info(node, &p);
                let mut line = with_caps(
                    format!("{} {info} {}", self.blue(&word("🔒", "LSM")), self.cyan(&l.function_name)),
                    caps,
                    &self.col,
                );
                if self.opts.ima_hash && !l.ima_hash.is_empty() {
                    let path = match arg(&l.args, 0) {
                        Some(Arg::LinuxBinprmArg(b)) => b.path.clone(),
                        Some(Arg::FileArg(f)) => f.path.clone(),
                        _ => String::new(),
                    };
                    let _ = write!(line, "\n   {path} {}", l.ima_hash);
                }
                Ok(line)
            }
            Event::ProcessThrottle(t) => {
                let (kind, rest) = match ThrottleType::try_from(t.r#type) {
                    Ok(ThrottleType::ThrottleStart) => (self.col.paint(Color::Red, "START"), t.cgroup.as_str()),
                    Ok(ThrottleType::ThrottleStop) => (self.col.paint(Color::Green, "STOP "), t.cgroup.as_str()),
                    _ => ("UNKNOWN".to_string(), t.cgroup.as_str()),
                };
                Ok(format!("{} {kind} {rest}", self.col.paint(Color::Red, "🧬 throttle")))
            }
            Event::RateLimitInfo(r) => Ok(format!(
                "{} {} dropped {} events",
                self.blue("🧬 rate_limit_info"),
                self.col.paint(Color::Green, &maybe_quote(node)),
                self.col.paint(Color::Red, &r.number_of_dropped_process_events.to_string())
            )),
            Event::Test(_) => Ok("TEST EVENT".to_string()),
        }
    }

    fn kprobe(&self, node: &str, p: &Process, k: &ProcessKprobe) -> String {
        let (info, caps) = self.process_info(node, p);
        let a = &k.args;
        let name = strip_syscall_prefix(&k.function_name);
        let sock = || match arg(a, 0) {
            Some(Arg::SockArg(s)) => format!("tcp {}:{} -> {}:{}", s.saddr, s.sport, s.daddr, s.dport),
            _ => String::new(),
        };
        let size = |i| match arg(a, i) {
            Some(Arg::SizeArg(n)) => format!("{n} bytes"),
            Some(_) => "0 bytes".to_string(),
            None => String::new(),
        };
        let (w, detail): (String, Option<String>) = match name {
            "sys_write" => (word("📝", "write"), Some(format!("{} {}", self.cyan(&file_path(a, 0)), self.cyan(&size(2))))),
            "sys_read" => (word("📚", "read"), Some(format!("{} {}", self.cyan(&file_path(a, 0)), self.cyan(&size(2))))),
            "fd_install" => (word("📬", "open"), Some(self.cyan(&file_path(a, 1)))),
            "sys_openat" => (word("📬️", "openat"), Some(self.cyan(&string_arg(a, 1)))),
            "sys_open" => (word("📬️", "open"), Some(self.cyan(&string_arg(a, 1)))),
            "sys_close" => (word("📪", "close"), Some(self.cyan(&file_path(a, 0)))),
            "sys_mount" => (word("💾", "mount"), Some(self.cyan(&format!("{} {}", string_arg(a, 0), string_arg(a, 1))))),
            "sys_setuid" => (word("🔑", "setuid"), Some(self.cyan(&int_arg(a, 0).map(|v| v.to_string()).unwrap_or_default()))),
            "sys_clock_settime" => (word("⏰", "clock_settime"), None),
            "sys_pivot_root" => (word("💾", "pivot_root"), Some(self.cyan(&format!("{} {}", string_arg(a, 0), string_arg(a, 1))))),
            "proc_exec_connector" => (word("🔧", "proc_exec_connector"), None),
            "sys_setns" => (word("🔧", "setns"), Some(self.cyan(setns_name(int_arg(a, 1).unwrap_or(-1))))),
            "tcp_connect" => (word("🔌", "connect"), Some(self.cyan(&sock()))),
            "tcp_close" => (word("🧹", "close"), Some(self.cyan(&sock()))),
            "tcp_sendmsg" => {
                let n = int_arg(a, 1).map(|v| v.to_string()).unwrap_or_default();
                (word("📤", "sendmsg"), Some(self.cyan(&format!("{} bytes {n}", sock()))))
            }
            "bpf_check" => {
                let d = match arg(a, 0) {
                    Some(Arg::BpfAttrArg(b)) => format!("{} {} instruction count {}", b.prog_type, b.prog_name, b.insn_cnt),
                    _ => String::new(),
                };
                (word("🐝", "bpf_load"), Some(self.cyan(&d)))
            }
            "security_perf_event_alloc" => {
                let d = match arg(a, 0) {
                    Some(Arg::PerfEventArg(e)) => format!("{} {}", e.r#type, e.kprobe_func),
                    _ => String::new(),
                };
                (word("🐝", "perf_event_alloc"), Some(self.cyan(&d)))
            }
            "security_bpf_map_alloc" | "security_bpf_map_create" => {
                let d = match arg(a, 0) {
                    Some(Arg::BpfMapArg(m)) => format!(
                        "{} {} key size {} value size {} max entries {}",
                        m.map_type, m.map_name, m.key_size, m.value_size, m.max_entries
                    ),
                    _ => String::new(),
                };
                (word("🗺", "bpf_map_create"), Some(self.cyan(&d)))
            }
            "security_file_permission" => {
                let w = match int_arg(a, 1) {
                    Some(0x02) => word("📝", "write"),
                    Some(0x04) => word("📚", "read"),
                    _ => word("❓", "security_file_permission"),
                };
                (w, Some(self.cyan(&file_path(a, 0))))
            }
            "security_mmap_file" => {
                let prot = int_arg(a, 1).unwrap_or(0);
                let bit = |m: i64, c: char| if prot & m != 0 { c } else { '-' };
                let w = format!("mmap-{}{}{}", bit(1, 'r'), bit(2, 'w'), bit(4, 'x'));
                (word("📝", &w), Some(self.cyan(&file_path(a, 0))))
            }
            "security_path_truncate" | "security_file_truncate" => (word("📝", "truncate"), Some(self.cyan(&file_path(a, 0)))),
            _ => (word("❓", "syscall"), Some(self.cyan(&k.function_name))),
        };
        let line = match detail {
            Some(d) => format!("{} {info} {d}", self.blue(&w)),
            None => format!("{} {info}", self.blue(&w)),
        };
        let mut out = with_caps(line, caps, &self.col);
        if self.opts.stack_traces {
            if !k.kernel_stack_trace.is_empty() {
                out.push_str("\nKernel:");
                for s in &k.kernel_stack_trace {
                    let _ = write!(out, "\n   0x{:x}: {}+0x{:x}", s.address, s.symbol, s.offset);
                }
            }
            if !k.user_stack_trace.is_empty() {
                out.push_str("\nUser:");
                for s in &k.user_stack_trace {
                    let _ = write!(out, "\n   0x{:x}: {} ({}+0x{:x})", s.address, s.symbol, s.module, s.offset);
                }
            }
        }
        out
    }
}

/// `raw_syscalls/sys_enter`: `<abi/>id(args...)`. Without a syscall-name
/// table we print the number; pointer-sized args are shown in hex.
fn raw_syscall(args: &[KprobeArgument]) -> String {
    let id = match arg(args, 0) {
        Some(Arg::SyscallId(s)) if !s.abi.is_empty() => format!("{}/{}", s.abi, s.id),
        Some(Arg::SyscallId(s)) => s.id.to_string(),
        Some(Arg::LongArg(v)) => v.to_string(),
        _ => "?".to_string(),
    };
    let rest: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| match &a.arg {
            Some(Arg::LongArg(v)) => format!("0x{v:x}"),
            Some(Arg::SizeArg(v)) => format!("0x{v:x}"),
            Some(Arg::IntArg(v)) => v.to_string(),
            _ => "?".to_string(),
        })
        .collect();
    format!("{id}({})", rest.join(", "))
}

/// Go's `2006-01-02T15:04:05.000000000Z07:00` in UTC (always 9 digits).
fn timestamp_nanos(ts: &Timestamp) -> String {
    let base = Timestamp { seconds: ts.seconds, nanos: 0 }.to_string();
    let stem = base.strip_suffix('Z').unwrap_or(&base);
    format!("{stem}.{:09}Z", ts.nanos.clamp(0, 999_999_999))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tetra_proto::json::from_line;

    fn fmt(line: &str) -> String {
        let p = CompactPrinter::new(CompactOptions { color: false, timestamps: false, stack_traces: true, ima_hash: true });
        p.format(&from_line(line).unwrap()).unwrap()
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(maybe_quote("abc"), "abc");
        assert_eq!(maybe_quote("a b"), "\"a b\"");
        assert_eq!(maybe_quote("-g \"x\""), "\"-g \\\"x\\\"\"");
        assert_eq!(maybe_quote("a\tb\u{1}"), "\"a\\tb\\x01\"");
        assert_eq!(maybe_quote("é"), "é");
    }

    #[test]
    fn kprobe_lines() {
        let pod = r#""pod":{"namespace":"default","name":"xwing"}"#;
        let k = |func: &str, args: &str| {
            fmt(&format!(r#"{{"process_kprobe":{{"process":{{"binary":"/usr/bin/curl",{pod}}},"function_name":"{func}","args":[{args}]}}}}"#))
        };
        assert_eq!(
            k("tcp_connect", r#"{"sock_arg":{"saddr":"10.244.0.6","sport":34965,"daddr":"104.198.14.52","dport":80}}"#),
            "🔌 connect default/xwing /usr/bin/curl tcp 10.244.0.6:34965 -> 104.198.14.52:80"
        );
        assert_eq!(
            k("tcp_sendmsg", r#"{"sock_arg":{"saddr":"1.1.1.1","sport":1,"daddr":"2.2.2.2","dport":80}},{"int_arg":73}"#),
            "📤 sendmsg default/xwing /usr/bin/curl tcp 1.1.1.1:1 -> 2.2.2.2:80 bytes 73"
        );
        assert_eq!(k("security_file_permission", r#"{"file_arg":{"path":"/etc/shadow"}},{"int_arg":4}"#), "📚 read    default/xwing /usr/bin/curl /etc/shadow");
        assert_eq!(k("__x64_sys_write", ""), "📝 write   default/xwing /usr/bin/curl  ");
        assert_eq!(k("unhandled_function", ""), "❓ syscall default/xwing /usr/bin/curl unhandled_function");
        assert_eq!(k("sys_setns", r#"{"int_arg":3},{"int_arg":1073741824}"#), "🔧 setns   default/xwing /usr/bin/curl net");
        assert_eq!(k("security_mmap_file", r#"{"file_arg":{"path":"/lib/x.so"}},{"uint_arg":5}"#), "📝 mmap-r-x default/xwing /usr/bin/curl /lib/x.so");
        assert_eq!(k("sys_clock_settime", ""), "⏰ clock_settime default/xwing /usr/bin/curl");
    }

    /// maxData buffers (up to 327,360 bytes) are never printed: one short line per event.
    #[test]
    fn large_bytes_args_stay_off_the_line() {
        // base64 of 327,360 newlines (three per "CgoK").
        let b64 = "CgoK".repeat(327_360 / 3);
        let write = fmt(&format!(
            r#"{{"process_kprobe":{{"process":{{"binary":"/bin/w"}},"function_name":"__x64_sys_write","args":[{{"file_arg":{{"path":"/dev/null"}}}},{{"truncated_bytes_arg":{{"bytes_arg":"{b64}","orig_size":"400000"}}}},{{"size_arg":"400000"}}]}},"node_name":"n"}}"#
        ));
        assert_eq!(write, "📝 write   n /bin/w /dev/null 400000 bytes");
        let uprobe = fmt(&format!(
            r#"{{"process_uprobe":{{"process":{{"binary":"/x"}},"path":"/x","symbol":"sink","args":[{{"bytes_arg":"{b64}"}}]}},"node_name":"n"}}"#
        ));
        assert_eq!(uprobe, "🕵️ uprobe  n /x /x sink");
    }

    #[test]
    fn other_event_kinds() {
        assert_eq!(fmt(r#"{"process_exit":{"process":{"binary":"/bin/cat","arguments":"/etc/shadow"},"signal":"SIGKILL"},"node_name":"n"}"#), "💥 exit    n /bin/cat /etc/shadow SIGKILL");
        assert_eq!(fmt(r#"{"process_lsm":{"process":{"binary":"/usr/bin/zsh"},"function_name":"bprm_check_security"},"node_name":"user-nix"}"#), "🔒 LSM     user-nix /usr/bin/zsh bprm_check_security");
        assert_eq!(fmt(r#"{"process_throttle":{"type":"THROTTLE_START","cgroup":"/kubepods"}}"#), "🧬 throttle START /kubepods");
        assert_eq!(fmt(r#"{"process_throttle":{"type":"THROTTLE_STOP","cgroup":"/kubepods"}}"#), "🧬 throttle STOP  /kubepods");
        assert_eq!(fmt(r#"{"rate_limit_info":{"number_of_dropped_process_events":"12"},"node_name":"n"}"#), "🧬 rate_limit_info n dropped 12 events");
        assert_eq!(fmt(r#"{"process_tracepoint":{"process":{"binary":"/x"},"subsys":"sched","event":"sched_switch"},"node_name":"n"}"#), "⁉️ tracepoint n /x sched sched_switch");
        assert_eq!(fmt(r#"{"process_loader":{"process":{"binary":"/x"},"path":"/lib/a.so","buildid":"AQI="},"node_name":"n"}"#), "🧬 loader  n /x 0102 /lib/a.so");
        assert_eq!(fmt(r#"{"process_uprobe":{"process":{"binary":"/x"},"path":"/x","symbol":"main"},"node_name":"n"}"#), "🕵️ uprobe  n /x /x main");
        assert_eq!(fmt(r#"{"process_usdt":{"process":{"binary":"/usr/bin/python3.11"},"path":"/usr/bin/python3","provider":"python","name":"import__find__load__start"},"node_name":"n"}"#), "🕵️ usdt    n /usr/bin/python3.11 /usr/bin/python3 python import__find__load__start");
        assert_eq!(fmt(r#"{"process_exec":{"process":{"binary":"/x y"}},"node_name":"my node"}"#), "🚀 process \"my node\" \"/x y\" ");
        let p = CompactPrinter::new(CompactOptions { color: false, timestamps: false, stack_traces: true, ima_hash: true });
        assert_eq!(p.format(&from_line(r#"{"process_exec":{}}"#).unwrap()), Err(CompactError::MissingProcess("process_exec")));
        assert_eq!(p.format(&from_line("{}").unwrap()), Err(CompactError::EmptyEvent));
    }

    #[test]
    fn colors_and_timestamps() {
        let p = CompactPrinter::new(CompactOptions { color: true, timestamps: true, stack_traces: true, ima_hash: true });
        let ev = from_line(r#"{"process_exit":{"process":{"binary":"/b","arguments":"a"},"status":1},"node_name":"n","time":"2022-01-19T16:29:02.515Z"}"#).unwrap();
        assert_eq!(
            p.format(&ev).unwrap(),
            "2022-01-19T16:29:02.515000000Z \x1b[34m💥 exit   \x1b[0m \x1b[32mn\x1b[0m \x1b[35m/b\x1b[0m \x1b[36ma\x1b[0m \x1b[31m1\x1b[0m"
        );
    }
}
