//! The vocabulary of policy values, shared by validation and compilation (which both
//! import it; it imports neither, so the data flows one way: parse -> validate -> compile).
//!
//! Here: parsing of filter values (integers in decimal, hex or octal, ports and ranges,
//! protocol/family/state/capability names, addresses and CIDRs, rate limits, durations;
//! every function returns a message describing what is allowed on failure), syscall names
//! per architecture ([`arch`]), which operators apply to which argument types and how values
//! become map contents ([`filters`], [`maps`]), and the API's [`limits`].

pub mod arch;
pub mod filters;
pub mod limits;
pub mod maps;
mod syscalls_x86_64;

use std::net::IpAddr;

/// Parses a decimal, `0x` hex or leading-`0` octal integer, optionally negative.
pub fn parse_int(s: &str) -> Result<i128, String> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let parsed = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else if body.len() > 1 && body.starts_with('0') {
        u64::from_str_radix(&body[1..], 8)
    } else {
        body.parse::<u64>()
    };
    match parsed {
        Ok(v) if neg => Ok(-i128::from(v)),
        Ok(v) => Ok(i128::from(v)),
        Err(_) => Err(format!(
            "{s:?} is not an integer (decimal, 0x hex or 0 octal)"
        )),
    }
}

/// Parses an integer that must fit `lo..=hi`.
pub fn parse_int_in(s: &str, lo: i128, hi: i128) -> Result<i128, String> {
    let v = parse_int(s)?;
    if v < lo || v > hi {
        return Err(format!("{s:?} is out of range {lo}..={hi}"));
    }
    Ok(v)
}

/// Parses `N` or `lo:hi` within `0..=max`.
pub fn parse_range(s: &str, max: u64) -> Result<(u64, u64), String> {
    let one = |p: &str| parse_int_in(p, 0, i128::from(max)).map(|v| v as u64);
    match s.split_once(':') {
        Some((a, b)) => {
            let (lo, hi) = (one(a)?, one(b)?);
            if lo > hi {
                return Err(format!("{s:?}: range start is greater than its end"));
            }
            Ok((lo, hi))
        }
        None => one(s).map(|v| (v, v)),
    }
}

/// A symbolic constant table entry.
type Names = &'static [(&'static str, u64)];

const PROTOCOLS: Names = &[
    ("IPPROTO_IP", 0),
    ("IPPROTO_ICMP", 1),
    ("IPPROTO_IGMP", 2),
    ("IPPROTO_TCP", 6),
    ("IPPROTO_UDP", 17),
    ("IPPROTO_IPV6", 41),
    ("IPPROTO_GRE", 47),
    ("IPPROTO_ESP", 50),
    ("IPPROTO_AH", 51),
    ("IPPROTO_ICMPV6", 58),
    ("IPPROTO_SCTP", 132),
    ("IPPROTO_UDPLITE", 136),
    ("IPPROTO_RAW", 255),
    ("IPPROTO_MPTCP", 262),
];
const FAMILIES: Names = &[
    ("AF_UNSPEC", 0),
    ("AF_UNIX", 1),
    ("AF_LOCAL", 1),
    ("AF_INET", 2),
    ("AF_INET6", 10),
    ("AF_NETLINK", 16),
    ("AF_PACKET", 17),
    ("AF_BLUETOOTH", 31),
    ("AF_VSOCK", 40),
    ("AF_XDP", 44),
];
const TCP_STATES: Names = &[
    ("TCP_ESTABLISHED", 1),
    ("TCP_SYN_SENT", 2),
    ("TCP_SYN_RECV", 3),
    ("TCP_FIN_WAIT1", 4),
    ("TCP_FIN_WAIT2", 5),
    ("TCP_TIME_WAIT", 6),
    ("TCP_CLOSE", 7),
    ("TCP_CLOSE_WAIT", 8),
    ("TCP_LAST_ACK", 9),
    ("TCP_LISTEN", 10),
    ("TCP_CLOSING", 11),
    ("TCP_NEW_SYN_RECV", 12),
];

/// Capability names in bit order (`CAP_CHOWN` = bit 0).
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn named(s: &str, table: Names, what: &str, max: u64) -> Result<(u64, u64), String> {
    if let Some((_, v)) = table.iter().find(|(n, _)| n.eq_ignore_ascii_case(s.trim())) {
        return Ok((*v, *v));
    }
    parse_range(s, max).map_err(|_| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        format!(
            "{s:?} is not a {what} (a number 0..={max}, a range lo:hi, or one of {})",
            names.join(", ")
        )
    })
}

/// `IPPROTO_*` name, number or range.
pub fn parse_protocol(s: &str) -> Result<(u64, u64), String> {
    named(s, PROTOCOLS, "protocol", 65535)
}

/// `AF_*` name, number or range.
pub fn parse_family(s: &str) -> Result<(u64, u64), String> {
    named(s, FAMILIES, "address family", 65535)
}

/// `TCP_*` state name, number or range.
pub fn parse_tcp_state(s: &str) -> Result<(u64, u64), String> {
    named(s, TCP_STATES, "TCP state", 255)
}

/// A port number or `lo:hi` range.
pub fn parse_port(s: &str) -> Result<(u64, u64), String> {
    parse_range(s, 65535)
        .map_err(|_| format!("{s:?} is not a port (0..=65535) or a port range lo:hi"))
}

/// A capability name to its bit number.
pub fn parse_capability(s: &str) -> Result<u32, String> {
    CAPABILITIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(s.trim()))
        .map(|p| p as u32)
        .ok_or_else(|| {
            format!(
                "{s:?} is not a capability name{}",
                crate::error::did_you_mean(s, CAPABILITIES)
            )
        })
}

/// An address or CIDR: returns (address bytes, prefix length in bits).
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u32), String> {
    let bad = || format!("{s:?} is not an IPv4/IPv6 address or CIDR (e.g. 10.0.0.0/8, fd00::/8)");
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s.trim(), None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(bad)?,
        None => max,
    };
    Ok((ip, len))
}

/// A rate limit "N", "Ns", "Nm" or "Nh" into milliseconds (at least 1 s, at most a day).
pub fn parse_rate_limit(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1_000),
        Some((i, 'm')) => (&t[..i], 60_000),
        Some((i, 'h')) => (&t[..i], 3_600_000),
        _ => (t, 1_000),
    };
    match num.parse::<u64>() {
        Ok(n) if n >= 1 && n.saturating_mul(mult) <= 86_400_000 => Ok(n * mult),
        _ => Err(format!("{s:?} is not a rate limit (a number of seconds 1..=86400, or N followed by s, m or h, up to 24h)")),
    }
}

/// A duration of a command-line flag: a non-negative number with unit ms, s, m or h
/// (`500ms`, `1.5s`, `2m`). One parser for every binary of the project.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a duration like 500ms, 15s or 2m");
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let seconds = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    match number.parse::<f64>() {
        Ok(v) if (v * seconds).is_finite() => {
            std::time::Duration::try_from_secs_f64(v * seconds).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// Value range of an integer argument type.
pub fn int_range(ty: crate::types::ArgType) -> (i128, i128) {
    use crate::types::ArgType::*;
    match ty {
        Sint8 | Int8 => (i128::from(i8::MIN), i128::from(i8::MAX)),
        Uint8 => (0, i128::from(u8::MAX)),
        Sint16 | Int16 => (i128::from(i16::MIN), i128::from(i16::MAX)),
        Uint16 => (0, i128::from(u16::MAX)),
        Uint32 => (0, i128::from(u32::MAX)),
        Int | Sint32 | Int32 | BpfCmd => (i128::from(i32::MIN), i128::from(i32::MAX)),
        Ulong | Uint64 | SizeT | Syscall64 | KernelCapT | CapInheritable | CapPermitted
        | CapEffective => (0, i128::from(u64::MAX)),
        _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
    }
}

/// The encoding's number of a namespace named as matchNamespaceChanges names it (`Mnt`).
pub fn namespace_index(name: &str) -> Result<u32, String> {
    const NAMES: [&str; 10] =
        ["Uts", "Ipc", "Mnt", "Pid", "PidForChildren", "Net", "Time", "TimeForChildren", "Cgroup", "User"];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name.trim()))
        .map(|i| i as u32)
        .ok_or_else(|| format!("{name:?}, but a namespace is one of {}", NAMES.join(", ")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_need_a_unit() {
        use super::parse_duration;
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["15", "-1s", "s", "1d", "1e3s", ""] {
            assert_eq!(parse_duration(bad), Err(format!("{bad:?} is not a duration like 500ms, 15s or 2m")));
        }
    }

    use super::*;

    #[test]
    fn integers_in_three_bases() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int("0x1f"), Ok(31));
        assert_eq!(parse_int("010"), Ok(8));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert!(parse_int("1e3").is_err());
        assert!(parse_int_in("256", 0, 255).is_err());
    }

    #[test]
    fn names_and_ranges() {
        assert_eq!(parse_protocol("IPPROTO_TCP"), Ok((6, 6)));
        assert_eq!(parse_family("AF_INET6"), Ok((10, 10)));
        assert_eq!(parse_tcp_state("TCP_SYN_RECV"), Ok((3, 3)));
        assert_eq!(parse_port("1000:2000"), Ok((1000, 2000)));
        assert!(parse_port("70000").is_err());
        assert!(parse_port("9:1").is_err());
        assert_eq!(parse_capability("CAP_SYS_ADMIN"), Ok(21));
        assert_eq!(parse_capability("CAP_CHECKPOINT_RESTORE"), Ok(40));
        assert!(parse_capability("CAP_SYS_ADMN")
            .unwrap_err()
            .contains("CAP_SYS_ADMIN"));
    }

    #[test]
    fn cidrs_and_rate_limits() {
        assert_eq!(parse_cidr("10.0.0.0/8").map(|(_, l)| l), Ok(8));
        assert_eq!(parse_cidr("::1").map(|(_, l)| l), Ok(128));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert_eq!(parse_rate_limit("5"), Ok(5_000));
        assert_eq!(parse_rate_limit("1m"), Ok(60_000));
        assert_eq!(parse_rate_limit("2h"), Ok(7_200_000));
        assert!(parse_rate_limit("0").is_err());
        assert!(parse_rate_limit("25h").is_err());
    }
}

