//! The compact one-line-per-event format of `tetra getevents -o compact`,
//! byte-compatible with upstream Tetragon's encoder (including its quirks:
//! the CAP_SYS_ADMIN trailer fires when the effective set has at least 22
//! entries, and padding counts characters like Go's `%-*s`).
//!
//! The printer works on an event's JSON line ([`view`] decodes only the fields it prints)
//! and appends to a caller's buffer, so printing a line allocates nothing.

mod view;

use std::fmt::Write as _;

use base64::Engine as _;
use tetra_proto::Timestamp;

use view::{Arg, EventLine, Num, Process, ThrottleType};

#[derive(Clone, Copy)]
enum Color {
    Red = 31,
    Green = 32,
    Blue = 34,
    Magenta = 35,
    Cyan = 36,
}

/// Bytes that painting adds around a text (`\x1b[NNm` and `\x1b[0m`).
const PAINT_BYTES: usize = 9;

/// Options of the compact printer.
#[derive(Debug, Clone, Copy)]
pub struct CompactOptions {
    pub color: bool,
    pub timestamps: bool,
    pub stack_traces: bool,
    pub ima_hash: bool,
}

/// An event the compact format cannot show.
#[derive(Debug)]
pub enum CompactError {
    Json(serde_json::Error),
    Utf8(std::str::Utf8Error),
    BadValue { field: &'static str, value: String },
    MissingProcess(&'static str),
    EmptyEvent,
}

impl std::fmt::Display for CompactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompactError::Json(e) => write!(f, "invalid event JSON: {e}"),
            CompactError::Utf8(e) => write!(f, "event line is not UTF-8: {e}"),
            CompactError::BadValue { field, value } => write!(f, "invalid event JSON: {field}: {value:?}"),
            CompactError::MissingProcess(kind) => write!(f, "{kind} event without process information"),
            CompactError::EmptyEvent => f.write_str("event without payload"),
        }
    }
}

/// Appends `s`, quoted like Go's `strconv.Quote` when it has a space or a non-printable
/// character.
fn write_quoted(out: &mut String, s: &str) {
    // Most text is printable ASCII, told by a byte test (in blocks, which vectorize);
    // only the rest is decoded to look for Unicode spaces and controls.
    let plain_ascii = s.as_bytes().chunks(16).all(|c| c.iter().fold(true, |ok, &b| ok & (b > b' ') & (b < 0x7f)));
    if plain_ascii || !s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        out.push_str(s);
        return;
    }
    out.push('"');
    // Runs of characters printed as they are go in with one copy each.
    let mut run = 0;
    for (i, c) in s.char_indices() {
        if c == ' ' || (c != '"' && c != '\\' && !c.is_control() && !c.is_whitespace()) {
            continue;
        }
        out.push_str(&s[run..i]);
        run = i + c.len_utf8();
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
    out.push_str(&s[run..]);
    out.push('"');
}

fn arg<'v, 'a>(args: &'v [Arg<'a>], i: usize) -> &'v Arg<'a> {
    args.get(i).unwrap_or(&Arg::None)
}

fn file_path<'v>(args: &'v [Arg<'_>], i: usize) -> &'v str {
    match arg(args, i) {
        Arg::File(f) | Arg::Path(f) => &f.path,
        _ => "",
    }
}

fn string_arg<'v>(args: &'v [Arg<'_>], i: usize) -> &'v str {
    match arg(args, i) {
        Arg::String(s) => s,
        _ => "",
    }
}

fn int_arg(args: &[Arg<'_>], i: usize) -> Option<i64> {
    match arg(args, i) {
        Arg::Int(v) | Arg::Uint(v) | Arg::Long(v) | Arg::Size(v) => i64::try_from(v.0).ok(),
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

/// The word of a `security_mmap_file` line for each `prot & 7`.
const MMAP_WORDS: [&str; 8] = ["mmap----", "mmap-r--", "mmap--w-", "mmap-rw-", "mmap---x", "mmap-r-x", "mmap--wx", "mmap-rwx"];

/// The emoji and word of a kprobe line.
fn kprobe_word(name: &str, a: &[Arg<'_>]) -> (&'static str, &'static str) {
    match name {
        "sys_write" => ("📝", "write"),
        "sys_read" => ("📚", "read"),
        "fd_install" => ("📬", "open"),
        "sys_openat" => ("📬️", "openat"),
        "sys_open" => ("📬️", "open"),
        "sys_close" => ("📪", "close"),
        "sys_mount" => ("💾", "mount"),
        "sys_setuid" => ("🔑", "setuid"),
        "sys_clock_settime" => ("⏰", "clock_settime"),
        "sys_pivot_root" => ("💾", "pivot_root"),
        "proc_exec_connector" => ("🔧", "proc_exec_connector"),
        "sys_setns" => ("🔧", "setns"),
        "tcp_connect" => ("🔌", "connect"),
        "tcp_close" => ("🧹", "close"),
        "tcp_sendmsg" => ("📤", "sendmsg"),
        "bpf_check" => ("🐝", "bpf_load"),
        "security_perf_event_alloc" => ("🐝", "perf_event_alloc"),
        "security_bpf_map_alloc" | "security_bpf_map_create" => ("🗺", "bpf_map_create"),
        "security_file_permission" => match int_arg(a, 1) {
            Some(0x02) => ("📝", "write"),
            Some(0x04) => ("📚", "read"),
            _ => ("❓", "security_file_permission"),
        },
        "security_mmap_file" => ("📝", MMAP_WORDS[(int_arg(a, 1).unwrap_or(0) & 7) as usize]),
        "security_path_truncate" | "security_file_truncate" => ("📝", "truncate"),
        _ => ("❓", "syscall"),
    }
}

fn write_sock(out: &mut String, a: &[Arg<'_>]) {
    if let Arg::Sock(s) = arg(a, 0) {
        let _ = write!(out, "tcp {}:{} -> {}:{}", s.saddr, s.sport.0, s.daddr, s.dport.0);
    }
}

/// Prints events in compact form.
pub struct CompactPrinter {
    opts: CompactOptions,
}

impl CompactPrinter {
    pub fn new(opts: CompactOptions) -> Self {
        CompactPrinter { opts }
    }

    /// Appends `text()`'s output to `out`, in colour `c` when colours are on.
    fn paint(&self, out: &mut String, c: Color, text: impl FnOnce(&mut String)) {
        if self.opts.color {
            let _ = write!(out, "\x1b[{}m", c as u8);
            text(out);
            out.push_str("\x1b[0m");
        } else {
            text(out);
        }
    }

    fn paint_str(&self, out: &mut String, c: Color, s: &str) {
        self.paint(out, c, |out| out.push_str(s));
    }

    /// `"<emoji> " + %-7s word`, in blue.
    fn word(&self, out: &mut String, emoji: &str, w: &str) {
        self.paint(out, Color::Blue, |out| {
            let _ = write!(out, "{emoji} {w:<7}");
        });
    }

    /// `<source> <binary>`.
    fn process_info(&self, out: &mut String, node: &str, p: &Process<'_>) {
        match &p.pod {
            Some(pod) => self.paint(out, Color::Green, |out| {
                let _ = write!(out, "{}/{}", pod.namespace, pod.name);
            }),
            None => self.paint(out, Color::Green, |out| write_quoted(out, node)),
        }
        out.push(' ');
        self.paint(out, Color::Magenta, |out| write_quoted(out, &p.binary));
    }

    /// `<word> <source> <binary> `: how every process line starts.
    fn process_head(&self, out: &mut String, emoji: &str, w: &str, node: &str, p: &Process<'_>) {
        self.word(out, emoji, w);
        out.push(' ');
        self.process_info(out, node, p);
        out.push(' ');
    }

    /// Pads the line that starts at `start` to column 120 and adds the CAP_SYS_ADMIN
    /// trailer when the process has it. Upstream iterates the *indices* of the effective
    /// set, so the trailer appears when index 21 (CAP_SYS_ADMIN's number) exists, and it
    /// pads to 120 minus the painted trailer's bytes.
    fn caps_trailer(&self, out: &mut String, start: usize, p: &Process<'_>) {
        if !p.cap.as_ref().is_some_and(|c| c.effective > 21) {
            return;
        }
        const CAPS: &str = "🛑 CAP_SYS_ADMIN";
        let painted = CAPS.len() + if self.opts.color { PAINT_BYTES } else { 0 };
        let pad = 120usize.saturating_sub(painted).saturating_sub(out[start..].chars().count());
        let _ = write!(out, "{:pad$} ", "");
        self.paint_str(out, Color::Magenta, CAPS);
    }

    /// Appends one event, given as its JSON line, in compact form (possibly several lines
    /// for stack traces; no trailing newline). On error `out` is left as it was. The line
    /// is checked for UTF-8 once, in one pass (cheaper than the decoder checking each string).
    pub fn write(&self, out: &mut String, line: &[u8]) -> Result<(), CompactError> {
        let start = out.len();
        let result = std::str::from_utf8(line)
            .map_err(CompactError::Utf8)
            .and_then(|line| serde_json::from_str::<EventLine<'_>>(line).map_err(CompactError::Json))
            .and_then(|ev| self.write_event(out, &ev));
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn write_event(&self, out: &mut String, ev: &EventLine<'_>) -> Result<(), CompactError> {
        if self.opts.timestamps {
            let ts = match ev.time.as_ref() {
                "" => Timestamp::default(),
                t => t.parse().map_err(|_| CompactError::BadValue { field: "time", value: t.to_string() })?,
            };
            write_timestamp(out, &ts);
            out.push(' ');
        }
        let start = out.len();
        let node = ev.node_name.as_ref();
        if let Some(e) = &ev.process_exec {
            let p = e.process.as_ref().ok_or(CompactError::MissingProcess("process_exec"))?;
            self.process_head(out, "🚀", "process", node, p);
            self.paint(out, Color::Cyan, |out| write_quoted(out, &p.arguments));
            self.caps_trailer(out, start, p);
        } else if let Some(e) = &ev.process_exit {
            let p = e.process.as_ref().ok_or(CompactError::MissingProcess("process_exit"))?;
            self.process_head(out, "💥", "exit", node, p);
            self.paint(out, Color::Cyan, |out| write_quoted(out, &p.arguments));
            out.push(' ');
            self.paint(out, Color::Red, |out| {
                if e.signal.is_empty() {
                    let _ = write!(out, "{}", e.status.0);
                } else {
                    out.push_str(&e.signal);
                }
            });
            self.caps_trailer(out, start, p);
        } else if let Some(k) = &ev.process_kprobe {
            let p = k.process.as_ref().ok_or(CompactError::MissingProcess("process_kprobe"))?;
            self.kprobe(out, start, node, p, k);
        } else if let Some(t) = &ev.process_tracepoint {
            let p = t.process.as_ref().ok_or(CompactError::MissingProcess("process_tracepoint"))?;
            if t.subsys == "raw_syscalls" && t.event == "sys_enter" {
                self.process_head(out, "☎ ", "syscall", node, p);
                self.paint(out, Color::Cyan, |out| write_raw_syscall(out, &t.args));
            } else {
                self.process_head(out, "⁉️", "tracepoint", node, p);
                self.paint(out, Color::Cyan, |out| {
                    let _ = write!(out, "{} {}", t.subsys, t.event);
                });
            }
            self.caps_trailer(out, start, p);
        } else if let Some(l) = &ev.process_loader {
            let p = l.process.as_ref().ok_or(CompactError::MissingProcess("process_loader"))?;
            let buildid = base64::engine::general_purpose::STANDARD
                .decode(l.buildid.as_bytes())
                .map_err(|_| CompactError::BadValue { field: "process_loader.buildid", value: l.buildid.to_string() })?;
            self.process_head(out, "🧬", "loader", node, p);
            self.paint(out, Color::Cyan, |out| {
                if !buildid.is_empty() {
                    for b in &buildid {
                        let _ = write!(out, "{b:02x}");
                    }
                    out.push(' ');
                }
                out.push_str(&l.path);
            });
            self.caps_trailer(out, start, p);
        } else if let Some(u) = &ev.process_uprobe {
            let p = u.process.as_ref().ok_or(CompactError::MissingProcess("process_uprobe"))?;
            self.process_head(out, "🕵️", "uprobe", node, p);
            self.paint(out, Color::Cyan, |out| {
                let _ = write!(out, "{} {}", u.path, u.symbol);
            });
            self.caps_trailer(out, start, p);
        } else if let Some(u) = &ev.process_usdt {
            let p = u.process.as_ref().ok_or(CompactError::MissingProcess("process_usdt"))?;
            self.process_head(out, "🕵️", "usdt", node, p);
            self.paint(out, Color::Cyan, |out| {
                let _ = write!(out, "{} {} {}", u.path, u.provider, u.name);
            });
            self.caps_trailer(out, start, p);
        } else if let Some(l) = &ev.process_lsm {
            let p = l.process.as_ref().ok_or(CompactError::MissingProcess("process_lsm"))?;
            self.process_head(out, "🔒", "LSM", node, p);
            self.paint_str(out, Color::Cyan, &l.function_name);
            self.caps_trailer(out, start, p);
            if self.opts.ima_hash && !l.ima_hash.is_empty() {
                let path = match arg(&l.args, 0) {
                    Arg::LinuxBinprm(b) | Arg::File(b) => b.path.as_ref(),
                    _ => "",
                };
                let _ = write!(out, "\n   {path} {}", l.ima_hash);
            }
        } else if let Some(t) = &ev.process_throttle {
            self.paint_str(out, Color::Red, "🧬 throttle");
            out.push(' ');
            match t.r#type {
                ThrottleType::Start => self.paint_str(out, Color::Red, "START"),
                ThrottleType::Stop => self.paint_str(out, Color::Green, "STOP "),
                ThrottleType::Unknown => out.push_str("UNKNOWN"),
            }
            out.push(' ');
            out.push_str(&t.cgroup);
        } else if let Some(r) = &ev.rate_limit_info {
            self.paint_str(out, Color::Blue, "🧬 rate_limit_info");
            out.push(' ');
            self.paint(out, Color::Green, |out| write_quoted(out, node));
            out.push_str(" dropped ");
            self.paint(out, Color::Red, |out| {
                let _ = write!(out, "{}", r.number_of_dropped_process_events.0);
            });
            out.push_str(" events");
        } else if ev.test.is_some() {
            out.push_str("TEST EVENT");
        } else {
            return Err(CompactError::EmptyEvent);
        }
        Ok(())
    }

    fn kprobe(&self, out: &mut String, start: usize, node: &str, p: &Process<'_>, k: &view::Kprobe<'_>) {
        let a = &k.args[..];
        let name = strip_syscall_prefix(&k.function_name);
        let (emoji, w) = kprobe_word(name, a);
        self.word(out, emoji, w);
        out.push(' ');
        self.process_info(out, node, p);
        let cyan = |out: &mut String, text: &dyn Fn(&mut String)| {
            out.push(' ');
            self.paint(out, Color::Cyan, text);
        };
        match name {
            "sys_write" | "sys_read" => {
                cyan(out, &|out| out.push_str(file_path(a, 0)));
                cyan(out, &|out| match arg(a, 2) {
                    Arg::Size(n) => {
                        let _ = write!(out, "{} bytes", n.0);
                    }
                    Arg::None => {}
                    _ => out.push_str("0 bytes"),
                });
            }
            "fd_install" => cyan(out, &|out| out.push_str(file_path(a, 1))),
            "sys_openat" | "sys_open" => cyan(out, &|out| out.push_str(string_arg(a, 1))),
            "sys_mount" | "sys_pivot_root" => cyan(out, &|out| {
                let _ = write!(out, "{} {}", string_arg(a, 0), string_arg(a, 1));
            }),
            "sys_setuid" => cyan(out, &|out| {
                if let Some(v) = int_arg(a, 0) {
                    let _ = write!(out, "{v}");
                }
            }),
            "sys_clock_settime" | "proc_exec_connector" => {}
            "sys_setns" => cyan(out, &|out| out.push_str(setns_name(int_arg(a, 1).unwrap_or(-1)))),
            "tcp_connect" | "tcp_close" => cyan(out, &|out| write_sock(out, a)),
            "tcp_sendmsg" => cyan(out, &|out| {
                write_sock(out, a);
                out.push_str(" bytes ");
                if let Some(v) = int_arg(a, 1) {
                    let _ = write!(out, "{v}");
                }
            }),
            "bpf_check" => cyan(out, &|out| {
                if let Arg::BpfAttr(b) = arg(a, 0) {
                    let _ = write!(out, "{} {} instruction count {}", b.prog_type, b.prog_name, b.insn_cnt.0);
                }
            }),
            "security_perf_event_alloc" => cyan(out, &|out| {
                if let Arg::PerfEvent(e) = arg(a, 0) {
                    let _ = write!(out, "{} {}", e.r#type, e.kprobe_func);
                }
            }),
            "security_bpf_map_alloc" | "security_bpf_map_create" => cyan(out, &|out| {
                if let Arg::BpfMap(m) = arg(a, 0) {
                    let _ = write!(
                        out,
                        "{} {} key size {} value size {} max entries {}",
                        m.map_type, m.map_name, m.key_size.0, m.value_size.0, m.max_entries.0
                    );
                }
            }),
            "sys_close" | "security_file_permission" | "security_mmap_file" | "security_path_truncate"
            | "security_file_truncate" => {
                cyan(out, &|out| out.push_str(file_path(a, 0)))
            }
            _ => cyan(out, &|out| out.push_str(&k.function_name)),
        }
        self.caps_trailer(out, start, p);
        if self.opts.stack_traces {
            if !k.kernel_stack_trace.is_empty() {
                out.push_str("\nKernel:");
                for s in &k.kernel_stack_trace {
                    let _ = write!(out, "\n   0x{:x}: {}+0x{:x}", s.address.0, s.symbol, s.offset.0);
                }
            }
            if !k.user_stack_trace.is_empty() {
                out.push_str("\nUser:");
                for s in &k.user_stack_trace {
                    let _ = write!(out, "\n   0x{:x}: {} ({}+0x{:x})", s.address.0, s.symbol, s.module, s.offset.0);
                }
            }
        }
    }
}

/// `raw_syscalls/sys_enter`: `<abi/>id(args...)`. Without a syscall-name
/// table we print the number; pointer-sized args are shown in hex.
fn write_raw_syscall(out: &mut String, args: &[Arg<'_>]) {
    let _ = match arg(args, 0) {
        Arg::SyscallId(s) if !s.abi.is_empty() => write!(out, "{}/{}", s.abi, s.id.0),
        Arg::SyscallId(s) => write!(out, "{}", s.id.0),
        Arg::Long(v) => write!(out, "{}", v.0),
        _ => write!(out, "?"),
    };
    out.push('(');
    for (i, a) in args.iter().skip(1).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = match a {
            // As the 64-bit types they are: a negative long prints in two's complement.
            Arg::Long(Num(v)) => write!(out, "0x{:x}", *v as i64),
            Arg::Size(Num(v)) => write!(out, "0x{:x}", *v as u64),
            Arg::Int(Num(v)) => write!(out, "{v}"),
            _ => write!(out, "?"),
        };
    }
    out.push(')');
}

/// Go's `2006-01-02T15:04:05.000000000Z07:00` in UTC (always 9 digits).
fn write_timestamp(out: &mut String, ts: &Timestamp) {
    let base = Timestamp { seconds: ts.seconds, nanos: 0 }.to_string();
    let stem = base.strip_suffix('Z').unwrap_or(&base);
    let _ = write!(out, "{stem}.{:09}Z", ts.nanos.clamp(0, 999_999_999));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(p: &CompactPrinter, line: &str) -> Result<String, CompactError> {
        let mut out = String::new();
        p.write(&mut out, line.as_bytes()).map(|()| out)
    }

    fn fmt(line: &str) -> String {
        let p = CompactPrinter::new(CompactOptions { color: false, timestamps: false, stack_traces: true, ima_hash: true });
        format(&p, line).unwrap()
    }

    #[test]
    fn quoting_like_go() {
        let quote = |s: &str| {
            let mut out = String::new();
            write_quoted(&mut out, s);
            out
        };
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("-g \"x\""), "\"-g \\\"x\\\"\"");
        assert_eq!(quote("a\tb\u{1}"), "\"a\\tb\\x01\"");
        assert_eq!(quote("é"), "é");
        assert_eq!(quote("é b\u{a0}c\\"), "\"é b\\u00a0c\\\\\"");
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
        // A close names the fd's file when the hook reads one, never the function (seed 002).
        assert_eq!(k("__x64_sys_close", r#"{"int_arg":3}"#), "📪 close   default/xwing /usr/bin/curl ");
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
        assert!(matches!(format(&p, r#"{"process_exec":{}}"#), Err(CompactError::MissingProcess("process_exec"))));
        assert!(matches!(format(&p, "{}"), Err(CompactError::EmptyEvent)));
        assert!(matches!(format(&p, r#"{"process_exec":5}"#), Err(CompactError::Json(_))));
    }

    #[test]
    fn colors_and_timestamps() {
        let p = CompactPrinter::new(CompactOptions { color: true, timestamps: true, stack_traces: true, ima_hash: true });
        let ev = r#"{"process_exit":{"process":{"binary":"/b","arguments":"a"},"status":1},"node_name":"n","time":"2022-01-19T16:29:02.515Z"}"#;
        assert_eq!(
            format(&p, ev).unwrap(),
            "2022-01-19T16:29:02.515000000Z \x1b[34m💥 exit   \x1b[0m \x1b[32mn\x1b[0m \x1b[35m/b\x1b[0m \x1b[36ma\x1b[0m \x1b[31m1\x1b[0m"
        );
    }
}
