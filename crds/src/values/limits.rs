//! Limits of the API (reference §2.7).

/// Selectors per hook.
pub const MAX_SELECTORS: usize = 5;
/// matchArgs + matchData per selector.
pub const MAX_ARG_FILTERS: usize = 5;
/// Values of a numeric Equal/NotEqual/GT/LT/Mask filter.
pub const MAX_NUMERIC_VALUES: usize = 4;
/// Values of a string filter on a file-like argument (fd, file, path, dentry, linux_binprm).
pub const MAX_FILE_VALUES: usize = 8;
/// Values of a matchPIDs filter.
pub const MAX_PID_VALUES: usize = 4;
/// Actions per matchActions / matchReturnActions.
pub const MAX_ACTIONS: usize = 3;
/// matchNamespaces filters per selector.
pub const MAX_NAMESPACE_FILTERS: usize = 10;
/// Values per matchNamespaces filter.
pub const MAX_NAMESPACE_VALUES: usize = 4;
/// Prefix string length.
pub const MAX_PREFIX_LEN: usize = 256;
/// Postfix string length.
pub const MAX_POSTFIX_LEN: usize = 127;
/// Exact string length (largest hash bucket).
pub const MAX_STRING_LEN: usize = 4096;
/// Binary path length.
pub const MAX_BINARY_PATH_LEN: usize = 255;
/// Tags per hook.
pub const MAX_TAGS: usize = 16;
/// Message length range.
pub const MESSAGE_LEN: std::ops::RangeInclusive<usize> = 2..=256;
/// args + data per hook.
pub const MAX_ARGS: usize = 5;
/// Highest argument index of kprobes, fentries, LSM hooks and uprobes.
pub const MAX_ARG_INDEX: u32 = 4;
/// Highest argument index of a USDT probe (libbpf reads at most 12 USDT arguments).
pub const MAX_USDT_ARG_INDEX: u32 = 11;
/// Highest sizeArgIndex.
pub const MAX_SIZE_ARG_INDEX: u32 = 15;
