//! The one place that knows how system call names map to kernel symbols per architecture.

/// Target architecture of the compiled policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    /// Symbol prefix of syscall entry points (`__x64_sys_read`).
    pub fn syscall_prefix(self) -> &'static str {
        match self {
            Arch::X86_64 => "__x64_",
            Arch::Arm64 => "__arm64_",
        }
    }
}

/// The architecture we compile for (x86_64, the only one the agent ships for today).
pub const TARGET_ARCH: Arch = Arch::X86_64;

const KNOWN_PREFIXES: [&str; 4] = ["__x64_", "__ia32_", "__arm64_", "__se_"];

/// Kernel symbol of a syscall written as `sys_<name>` (or already arch-prefixed, or in
/// `i386/sys_<name>` ABI form). Errors explain the accepted spellings.
pub fn syscall_symbol(call: &str) -> Result<String, String> {
    syscall_symbol_for(TARGET_ARCH, call)
}

/// [`syscall_symbol`] for a given architecture.
pub fn syscall_symbol_for(arch: Arch, call: &str) -> Result<String, String> {
    let bad = || {
        format!("{call:?}, but a syscall is written sys_<name> (e.g. sys_openat), optionally with an arch prefix such as __x64_ or an ABI such as i386/")
    };
    if let Some(rest) = call.strip_prefix("i386/") {
        return valid_sys(rest)
            .then(|| format!("__ia32_{rest}"))
            .ok_or_else(bad);
    }
    if let Some(p) = KNOWN_PREFIXES.iter().find(|p| call.starts_with(**p)) {
        return valid_sys(&call[p.len()..])
            .then(|| call.to_string())
            .ok_or_else(bad);
    }
    if valid_sys(call) {
        return Ok(format!("{}{call}", arch.syscall_prefix()));
    }
    Err(bad())
}

/// System call number of `sys_<name>` (or `__x64_sys_<name>`) on the target architecture,
/// as seen by the `raw_syscalls` tracepoints. Messages starting with `unsupported: ` name a
/// valid spelling we cannot number (other ABIs).
pub fn syscall_number(call: &str) -> Result<u64, String> {
    let symbol = syscall_symbol(call)?;
    let Some(name) = symbol.strip_prefix("__x64_sys_") else {
        return Err(format!(
            "unsupported: non-x86_64 syscall ABI in an InMap list ({call})"
        ));
    };
    super::syscalls_x86_64::SYSCALLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
        .ok_or_else(|| {
            format!(
                "{call:?} is not an x86_64 system call{}",
                crate::error::did_you_mean(
                    name,
                    super::syscalls_x86_64::SYSCALLS.iter().map(|(n, _)| *n)
                )
            )
        })
}

fn valid_sys(name: &str) -> bool {
    name.strip_prefix("sys_")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_symbols() {
        assert_eq!(syscall_symbol("sys_write").unwrap(), "__x64_sys_write");
        assert_eq!(
            syscall_symbol_for(Arch::Arm64, "sys_write").unwrap(),
            "__arm64_sys_write"
        );
        assert_eq!(syscall_symbol("__ia32_sys_dup").unwrap(), "__ia32_sys_dup");
        assert_eq!(syscall_symbol("i386/sys_dup").unwrap(), "__ia32_sys_dup");
        assert!(syscall_symbol("write").is_err());
        assert!(syscall_symbol("sys_").is_err());
        assert_eq!(syscall_number("sys_dup"), Ok(32));
        assert_eq!(syscall_number("__x64_sys_openat"), Ok(257));
        assert!(syscall_number("sys_dupp")
            .unwrap_err()
            .contains("did you mean `dup`"));
        assert!(syscall_number("__ia32_sys_dup")
            .unwrap_err()
            .starts_with("unsupported: "));
    }
}
