//! The part of an event JSON line that the compact line prints, decoded straight from the
//! line: strings without escapes are borrowed, numbers are read where they stand, and every
//! other field (parents, pods' containers and labels, namespaces, bytes arguments, ...) is
//! skipped without being built. Accepts what protojson accepts for these fields: proto or
//! lowerCamel names, 64-bit integers as strings or numbers, enums by name or number.
//!
//! String fields are spelled `Cow<'a, str>`: serde borrows a field marked `borrow` only
//! when its type is written so (through an alias it would allocate every string).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use smallvec::SmallVec;

/// One `GetEventsResponse` line.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EventLine<'a> {
    #[serde(borrow, alias = "nodeName")]
    pub node_name: Cow<'a, str>,
    /// RFC 3339, parsed only when printed.
    #[serde(borrow)]
    pub time: Cow<'a, str>,
    #[serde(borrow, alias = "processExec")]
    pub process_exec: Option<Exec<'a>>,
    #[serde(borrow, alias = "processExit")]
    pub process_exit: Option<Exit<'a>>,
    #[serde(borrow, alias = "processKprobe")]
    pub process_kprobe: Option<Kprobe<'a>>,
    #[serde(borrow, alias = "processTracepoint")]
    pub process_tracepoint: Option<Tracepoint<'a>>,
    #[serde(borrow, alias = "processLoader")]
    pub process_loader: Option<Loader<'a>>,
    #[serde(borrow, alias = "processUprobe")]
    pub process_uprobe: Option<Uprobe<'a>>,
    #[serde(borrow, alias = "processUsdt")]
    pub process_usdt: Option<Usdt<'a>>,
    #[serde(borrow, alias = "processLsm")]
    pub process_lsm: Option<Lsm<'a>>,
    #[serde(borrow, alias = "processThrottle")]
    pub process_throttle: Option<Throttle<'a>>,
    #[serde(alias = "rateLimitInfo")]
    pub rate_limit_info: Option<RateLimitInfo>,
    pub test: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Process<'a> {
    #[serde(borrow)]
    pub binary: Cow<'a, str>,
    #[serde(borrow)]
    pub arguments: Cow<'a, str>,
    #[serde(borrow)]
    pub pod: Option<Pod<'a>>,
    pub cap: Option<Caps>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Pod<'a> {
    #[serde(borrow)]
    pub namespace: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

/// Only how many effective capabilities there are matters to the compact line.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Caps {
    #[serde(deserialize_with = "count")]
    pub effective: usize,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Exec<'a> {
    #[serde(borrow)]
    pub process: Option<Process<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Exit<'a> {
    #[serde(borrow)]
    pub process: Option<Process<'a>>,
    #[serde(borrow)]
    pub signal: Cow<'a, str>,
    pub status: Num,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Kprobe<'a> {
    #[serde(borrow)]
    pub process: Option<Process<'a>>,
    #[serde(borrow, alias = "functionName")]
    pub function_name: Cow<'a, str>,
    #[serde(borrow)]
    pub args: Args<'a>,
    #[serde(borrow, alias = "kernelStackTrace")]
    pub kernel_stack_trace: Vec<StackEntry<'a>>,
    #[serde(borrow, alias = "userStackTrace")]
    pub user_stack_trace: Vec<StackEntry<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StackEntry<'a> {
    pub address: Num,
    pub offset: Num,
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
    #[serde(borrow)]
    pub module: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Tracepoint<'a> {
    #[serde(borrow)]
    pub process: Option<Process<'a>>,
    #[serde(borrow)]
    pub subsys: Cow<'a, str>,
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    #[serde(borrow)]
    pub args: Args<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Loader<'a> {
    #[serde(borrow)]
    pub process: Option<Process<'a>>,
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    /// base64, as protojson writes bytes.
    #[serde(borrow)]
    pub buildid: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Uprobe<'a> {
    #[serde(borrow)]
    pub process: Option<Process<'a>>,
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Usdt<'a> {
    #[serde(borrow)]
    pub process: Option<Process<'a>>,
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    #[serde(borrow)]
    pub provider: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Lsm<'a> {
    #[serde(borrow)]
    pub process: Option<Process<'a>>,
    #[serde(borrow, alias = "functionName")]
    pub function_name: Cow<'a, str>,
    #[serde(borrow)]
    pub args: Args<'a>,
    #[serde(borrow, alias = "imaHash")]
    pub ima_hash: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Throttle<'a> {
    pub r#type: ThrottleType,
    #[serde(borrow)]
    pub cgroup: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RateLimitInfo {
    #[serde(alias = "numberOfDroppedProcessEvents")]
    pub number_of_dropped_process_events: Num,
}

/// An integer as protojson writes it: a number, or a string for 64-bit types.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Num(pub i128);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                v.parse().map(Num).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// `ThrottleType`, by name or number.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleType {
    #[default]
    Unknown,
    Start,
    Stop,
}

impl<'de> Deserialize<'de> for ThrottleType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ThrottleType;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a ThrottleType name or number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ThrottleType, E> {
                Ok(match v {
                    1 => ThrottleType::Start,
                    2 => ThrottleType::Stop,
                    _ => ThrottleType::Unknown,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ThrottleType, E> {
                self.visit_u64(u64::try_from(v).unwrap_or(0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ThrottleType, E> {
                Ok(match v {
                    "THROTTLE_START" => ThrottleType::Start,
                    "THROTTLE_STOP" => ThrottleType::Stop,
                    _ => ThrottleType::Unknown,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The length of a JSON array, its elements skipped.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
        fn visit_unit<E: de::Error>(self) -> Result<usize, E> {
            Ok(0)
        }
    }
    d.deserialize_any(V)
}

/// A hook's arguments; kept inline for the usual few, so reading them allocates nothing.
pub type Args<'a> = SmallVec<[Arg<'a>; 6]>;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PathArg<'a> {
    #[serde(borrow)]
    pub path: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SockArg<'a> {
    #[serde(borrow)]
    pub saddr: Cow<'a, str>,
    pub sport: Num,
    #[serde(borrow)]
    pub daddr: Cow<'a, str>,
    pub dport: Num,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BpfAttrArg<'a> {
    #[serde(borrow, rename = "ProgType")]
    pub prog_type: Cow<'a, str>,
    #[serde(rename = "InsnCnt")]
    pub insn_cnt: Num,
    #[serde(borrow, rename = "ProgName")]
    pub prog_name: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PerfEventArg<'a> {
    #[serde(borrow, rename = "KprobeFunc")]
    pub kprobe_func: Cow<'a, str>,
    #[serde(borrow, rename = "Type")]
    pub r#type: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BpfMapArg<'a> {
    #[serde(borrow, rename = "MapType")]
    pub map_type: Cow<'a, str>,
    #[serde(rename = "KeySize")]
    pub key_size: Num,
    #[serde(rename = "ValueSize")]
    pub value_size: Num,
    #[serde(rename = "MaxEntries")]
    pub max_entries: Num,
    #[serde(borrow, rename = "MapName")]
    pub map_name: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SyscallIdArg<'a> {
    pub id: Num,
    #[serde(borrow)]
    pub abi: Cow<'a, str>,
}

/// One `KprobeArgument`: the kinds the compact line prints, `Other` for any other kind,
/// `None` for an argument without a value (only a `label`, or nothing).
#[derive(Default)]
pub enum Arg<'a> {
    #[default]
    None,
    String(Cow<'a, str>),
    Int(Num),
    Uint(Num),
    Long(Num),
    Size(Num),
    File(PathArg<'a>),
    Path(PathArg<'a>),
    LinuxBinprm(PathArg<'a>),
    Sock(SockArg<'a>),
    BpfAttr(BpfAttrArg<'a>),
    PerfEvent(PerfEventArg<'a>),
    BpfMap(BpfMapArg<'a>),
    SyscallId(SyscallIdArg<'a>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Arg<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Arg<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a KprobeArgument object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Arg<'a>, M::Error> {
                let mut arg = Arg::None;
                while let Some(Borrowed(key)) = map.next_key()? {
                    let value = match key.as_ref() {
                        "label" => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                        "string_arg" | "stringArg" => Arg::String(map.next_value::<Borrowed>()?.0),
                        "int_arg" | "intArg" => Arg::Int(map.next_value()?),
                        "uint_arg" | "uintArg" => Arg::Uint(map.next_value()?),
                        "long_arg" | "longArg" => Arg::Long(map.next_value()?),
                        "size_arg" | "sizeArg" => Arg::Size(map.next_value()?),
                        "file_arg" | "fileArg" => Arg::File(map.next_value()?),
                        "path_arg" | "pathArg" => Arg::Path(map.next_value()?),
                        "linux_binprm_arg" | "linuxBinprmArg" => Arg::LinuxBinprm(map.next_value()?),
                        "sock_arg" | "sockArg" => Arg::Sock(map.next_value()?),
                        "bpf_attr_arg" | "bpfAttrArg" => Arg::BpfAttr(map.next_value()?),
                        "perf_event_arg" | "perfEventArg" => Arg::PerfEvent(map.next_value()?),
                        "bpf_map_arg" | "bpfMapArg" => Arg::BpfMap(map.next_value()?),
                        "syscall_id" | "syscallId" => Arg::SyscallId(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            Arg::Other
                        }
                    };
                    arg = value;
                }
                Ok(arg)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A string borrowed from the line unless it has escapes (what `#[serde(borrow)]` does for
/// `Cow` fields, for the places where a visitor reads values itself).
struct Borrowed<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowed<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Borrowed<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Borrowed<'a>, E> {
                Ok(Borrowed(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Borrowed<'a>, E> {
                Ok(Borrowed(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}
