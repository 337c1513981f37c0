//! Where a hook's program attaches, what the kernel must have for it, and the errors that
//! say which of those is missing.
use std::path::Path;
use std::sync::Mutex;

use libbpf_rs::{Link, Object, OpenObject, PrintLevel, UprobeOpts};
use tetra_crds::compile::{AttachTarget, CompiledHook, UprobeLocation};

use super::config::parse_tp_format;
use super::SensorError;

/// The entry program of generic.bpf.c for an attach kind.
pub fn program_for(target: &AttachTarget) -> &'static str {
    match target {
        AttachTarget::Kprobe { .. } => "generic_kprobe",
        AttachTarget::Fentry { .. } => "generic_fentry",
        AttachTarget::Tracepoint { raw: true, .. } => "generic_raw_tp",
        AttachTarget::Tracepoint { .. } => "generic_tracepoint",
        AttachTarget::Uprobe { .. } => "generic_uprobe",
        AttachTarget::Lsm { .. } => "generic_lsm",
        AttachTarget::Usdt { .. } => "generic_usdt",
    }
}

/// The return program of generic.bpf.c for an attach kind that has one.
pub fn return_program_for(target: &AttachTarget) -> Option<&'static str> {
    match target {
        AttachTarget::Kprobe { .. } => Some("generic_kretprobe"),
        AttachTarget::Uprobe { .. } => Some("generic_uretprobe"),
        AttachTarget::Fentry { .. } => Some("generic_fexit"),
        _ => None,
    }
}

/// The BTF attach target set before load (LSM hooks, fentries and their fexit).
pub fn btf_target(target: &AttachTarget) -> Option<String> {
    match target {
        AttachTarget::Lsm { hook } => Some(hook.clone()),
        AttachTarget::Fentry { symbol, .. } => Some(symbol.clone()),
        _ => None,
    }
}

fn kallsyms_has(symbol: &str) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/kallsyms") else { return true };
    text.lines().any(|l| l.split_whitespace().nth(2) == Some(symbol))
}

/// Checks the kernel has what the hook needs, so errors say why instead of an errno.
pub fn preflight(hook: &str, target: &AttachTarget) -> Result<(), SensorError> {
    match target {
        AttachTarget::Kprobe { symbol, .. } => {
            if !crate::sys::has_kprobes() {
                return Err(SensorError::NoKprobes { hook: hook.into() });
            }
            if !kallsyms_has(symbol) {
                return Err(SensorError::SymbolNotFound { hook: hook.into(), symbol: symbol.clone() });
            }
        }
        // libbpf says only "failed to attach" (ENOENT) for a binary that is not there.
        AttachTarget::Uprobe { path, .. } | AttachTarget::Usdt { path, .. } if !Path::new(path).exists() => {
            return Err(SensorError::Attach { hook: hook.into(), reason: format!("{path} does not exist") });
        }
        AttachTarget::Fentry { symbol, .. } if !kallsyms_has(symbol) => {
            return Err(SensorError::SymbolNotFound { hook: hook.into(), symbol: symbol.clone() });
        }
        AttachTarget::Lsm { hook: lsm } => {
            if let Some(active) = crate::sys::active_lsms() {
                if !crate::sys::lists_bpf_lsm(&active) {
                    return Err(SensorError::NoBpfLsm { hook: hook.into(), active });
                }
            }
            // BPF LSM programs attach to the kernel's bpf_lsm_<hook> stub, one per LSM hook
            // this kernel defines; hooks come and go between releases.
            if !kallsyms_has(&format!("bpf_lsm_{lsm}")) {
                return Err(SensorError::Unsupported {
                    hook: hook.into(),
                    reason: format!(
                        "LSM hook {lsm} does not exist in kernel {} (no bpf_lsm_{lsm} in /proc/kallsyms)",
                        crate::sys::kernel_release()
                    ),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// Per argument slot: (position or tracepoint offset, field size), and the same for the
/// char_buf size argument when there is one.
pub struct Positions {
    pub args: Vec<(u32, u32)>,
    pub sizes: Vec<Option<(u32, u32)>>,
}

fn tracefs_format(subsystem: &str, event: &str) -> std::io::Result<String> {
    let rel = format!("events/{subsystem}/{event}/format");
    std::fs::read_to_string(Path::new("/sys/kernel/tracing").join(&rel))
        .or_else(|_| std::fs::read_to_string(Path::new("/sys/kernel/debug/tracing").join(&rel)))
}

pub fn arg_positions(hook_name: &str, hook: &CompiledHook) -> Result<Positions, SensorError> {
    let mut out = Positions { args: Vec::new(), sizes: Vec::new() };
    if let AttachTarget::Tracepoint { subsystem, event, raw: false } = &hook.attach {
        let text = tracefs_format(subsystem, event).map_err(|e| SensorError::Attach {
            hook: hook_name.into(),
            reason: format!("reading the tracepoint format of {subsystem}/{event} (is tracefs mounted?): {e}"),
        })?;
        let fields = parse_tp_format(&text);
        let field = |index: u32| {
            fields.get(index as usize).map(|f| (f.offset, f.size)).ok_or_else(|| SensorError::Unsupported {
                hook: hook_name.into(),
                reason: format!("argument index {index}, but {subsystem}/{event} has {} fields", fields.len()),
            })
        };
        for a in &hook.args {
            out.args.push(field(a.index)?);
            out.sizes.push(match a.size_arg_index {
                0 => None,
                n => Some(field(n - 1)?),
            });
        }
        return Ok(out);
    }
    // A USDT note describes up to 12 operands; a call passes 6 in registers.
    let (last, what) = match hook.attach {
        AttachTarget::Usdt { .. } => (11, "the 12 operands libbpf reads from a USDT note"),
        _ => (5, "the 6 register arguments"),
    };
    for a in &hook.args {
        if a.index > last {
            return Err(SensorError::Unsupported { hook: hook_name.into(), reason: format!("argument index {} is past {what}", a.index) });
        }
        out.args.push((a.index, 8));
        out.sizes.push((a.size_arg_index > 0).then(|| (a.size_arg_index - 1, 8)));
    }
    Ok(out)
}

/// libbpf's messages during one load, to quote the verifier's last lines on failure.
static LOAD_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn capture(_level: PrintLevel, msg: String) {
    if let Ok(mut log) = LOAD_LOG.lock() {
        log.push(msg);
    }
}

/// Loads the object; on failure returns the verifier's (or libbpf's) last log lines.
pub fn load_with_log(hook: &str, open: OpenObject) -> Result<Object, SensorError> {
    // One load at a time owns the process-wide libbpf print callback.
    static LOADING: Mutex<()> = Mutex::new(());
    let _guard = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    LOAD_LOG.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let previous = libbpf_rs::set_print(Some((PrintLevel::Warn, capture)));
    let result = open.load();
    libbpf_rs::set_print(previous);
    let lines: Vec<String> = std::mem::take(&mut *LOAD_LOG.lock().unwrap_or_else(|e| e.into_inner()))
        .concat()
        .lines()
        .map(str::to_string)
        .collect();
    result.map_err(|e| {
        let text = e.to_string();
        if text.contains("Operation not permitted") || text.contains("EPERM") {
            if let Some(l) = lines.iter().find(|l| l.contains("lsm") || l.contains("LSM")) {
                tracing::debug!("{l}");
            }
        }
        let tail = lines.len().saturating_sub(15);
        let log = lines[tail..].join("\n");
        match missing_kernel_part(&lines) {
            // The program is fine; this kernel lacks something it uses: say what, not the dump.
            Some(missing) => {
                tracing::debug!("{hook}: load failed: {text}\n{log}");
                SensorError::Unsupported {
                    hook: hook.into(),
                    reason: format!("kernel {} cannot run this hook: {missing}", crate::sys::kernel_release()),
                }
            }
            None => SensorError::Verifier { hook: hook.into(), error: text, log },
        }
    })
}

/// What the kernel lacks, when libbpf's or the verifier's log says a load failed for that
/// reason: a type or field of a CO-RE relocation, a helper, a kfunc, or the BTF of an
/// attach target.
fn missing_kernel_part(lines: &[String]) -> Option<String> {
    // (marker, where the name ends, text before the name, text after it)
    const PATTERNS: [(&str, Option<char>, &str, &str); 5] = [
        // libbpf rewrites the verifier's report of a poisoned instruction into this line.
        ("failed to resolve CO-RE relocation ", None, "its BTF has no ", " (CO-RE relocation)"),
        ("program of this type cannot use helper ", Some('#'), "helper ", " is not available to this program type"),
        ("unknown func ", Some('#'), "it has no helper ", ""),
        ("kfunc '", Some('\''), "it has no kfunc ", ""),
        ("failed to find kernel BTF type ID of '", Some('\''), "its BTF has no function ", " to attach to"),
    ];
    lines.iter().rev().find_map(|line| {
        PATTERNS.iter().find_map(|(marker, end, before, after)| {
            let rest = line[line.find(marker)? + marker.len()..].trim();
            let name = end.and_then(|c| rest.split(c).next()).unwrap_or(rest);
            Some(format!("{before}{name}{after}"))
        })
    })
}

/// Attaches the loaded program where the hook says, at the function's return when
/// `ret`.
pub fn attach(hook: &str, object: &Object, program: &str, target: &AttachTarget, ret: bool) -> Result<Link, SensorError> {
    let prog = object
        .progs_mut()
        .find(|p| p.name().to_str() == Some(program))
        .ok_or_else(|| SensorError::Attach { hook: hook.into(), reason: format!("program {program} missing") })?;
    let result = match target {
        AttachTarget::Kprobe { symbol, .. } => prog.attach_kprobe(ret, symbol),
        AttachTarget::Tracepoint { subsystem, event, raw: false } => {
            prog.attach_tracepoint(libbpf_rs::TracepointCategory::Custom(subsystem.clone()), event)
        }
        AttachTarget::Tracepoint { event, raw: true, .. } => prog.attach_raw_tracepoint(event),
        AttachTarget::Uprobe { path, location, ref_ctr_offset, .. } => match location {
            UprobeLocation::Symbol(sym) => prog.attach_uprobe_with_opts(
                -1,
                path,
                0,
                UprobeOpts {
                    func_name: Some(sym.clone()),
                    ref_ctr_offset: ref_ctr_offset.unwrap_or(0) as usize,
                    retprobe: ret,
                    ..Default::default()
                },
            ),
            UprobeLocation::Offset(off) => prog.attach_uprobe(ret, -1, path, *off as usize),
            UprobeLocation::Address(_) => unreachable!("refused by check_hook"),
        },
        AttachTarget::Lsm { .. } => prog.attach_lsm(),
        AttachTarget::Usdt { path, provider, name } => prog.attach_usdt(-1, path, provider, name).map_err(|e| {
            // libbpf answers ENOENT both for a missing file and for a binary without the probe.
            if Path::new(path).exists() && e.kind() == libbpf_rs::ErrorKind::NotFound {
                libbpf_rs::Error::from(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{path} has no USDT probe {provider}:{name} (its .note.stapsdt lists none by that name)"),
                ))
            } else {
                e
            }
        }),
        AttachTarget::Fentry { .. } => prog.attach_trace(),
    };
    result.map_err(|e| SensorError::Attach { hook: hook.into(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::missing_kernel_part;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn load_logs_name_what_the_kernel_lacks() {
        // libbpf's rewrite of a poisoned CO-RE instruction (fixup_log_failed_core_relo).
        let core = lines(
            "libbpf: prog 'generic_kprobe': BPF program load failed: Invalid argument\n\
             libbpf: prog 'generic_kprobe': -- BEGIN PROG LOAD LOG --\n\
             1234: <invalid CO-RE relocation>\n\
             failed to resolve CO-RE relocation <byte_off> [77] struct file.f_path.dentry (0:1:1 @ offset 16)\n\
             processed 1200 insns (limit 1000000)\n\
             -- END PROG LOAD LOG --",
        );
        assert_eq!(
            missing_kernel_part(&core).unwrap(),
            "its BTF has no <byte_off> [77] struct file.f_path.dentry (0:1:1 @ offset 16) (CO-RE relocation)"
        );
        let helper = lines("55: (85) call bpf_get_func_ip#173\nprogram of this type cannot use helper bpf_get_func_ip#173");
        assert_eq!(missing_kernel_part(&helper).unwrap(), "helper bpf_get_func_ip is not available to this program type");
        assert_eq!(missing_kernel_part(&lines("unknown func bpf_loop#181")).unwrap(), "it has no helper bpf_loop");
        let kfunc = lines("7: <invalid kfunc call>\nkfunc 'bpf_rcu_read_lock' is referenced but wasn't resolved");
        assert_eq!(missing_kernel_part(&kfunc).unwrap(), "it has no kfunc bpf_rcu_read_lock");
        let target = lines("libbpf: prog 'generic_lsm': failed to find kernel BTF type ID of 'bpf_lsm_x': -ESRCH");
        assert_eq!(missing_kernel_part(&target).unwrap(), "its BTF has no function bpf_lsm_x to attach to");
        // A real verifier rejection stays a verifier error, with its log.
        assert_eq!(missing_kernel_part(&lines("R1 invalid mem access 'scalar'\nprocessed 10 insns")), None);
    }
}
