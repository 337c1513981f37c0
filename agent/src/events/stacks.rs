//! Stack traces of Post's kernelStackTrace / userStackTrace: the return addresses the
//! kernel recorded become Tetragon's StackTraceEntry. Kernel addresses are named through
//! /proc/kallsyms, user addresses through the process's /proc/PID/maps and the ELF symbol
//! tables of the mapped files (read once per file, through map_files so a container's
//! files are found as well).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
use tetra_proto::tetragon::StackTraceEntry;

/// ELF files whose symbols are kept; beyond this the cache starts over.
const MAX_CACHED_FILES: usize = 64;

/// A function: start address, size (0 when unknown), name.
type Symbol = (u64, u64, String);

#[derive(Default)]
pub struct Symbolizer {
    /// (start, name, module) of each kernel text symbol, by address.
    kernel: OnceLock<Vec<(u64, String, String)>>,
    /// By (device, inode) of the mapped file.
    files: Mutex<HashMap<(String, u64), Arc<ElfSymbols>>>,
}

/// What naming an address in one ELF file needs: its loadable segments and functions.
#[derive(Default)]
struct ElfSymbols {
    /// (file offset, size in the file, virtual address) of each PT_LOAD segment.
    segments: Vec<(u64, u64, u64)>,
    /// Functions by start address.
    functions: Vec<Symbol>,
}

/// One line of /proc/PID/maps that maps a file.
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    device: String,
    inode: u64,
    path: String,
}

impl Symbolizer {
    pub fn kernel_frames(&self, addresses: &[u64]) -> Vec<StackTraceEntry> {
        if addresses.is_empty() {
            return Vec::new();
        }
        let symbols = self.kernel.get_or_init(read_kallsyms);
        addresses
            .iter()
            .map(|&address| {
                let i = symbols.partition_point(|(start, _, _)| *start <= address);
                match i.checked_sub(1).map(|i| &symbols[i]) {
                    Some((start, name, module)) => StackTraceEntry {
                        address,
                        offset: address - start,
                        symbol: name.clone(),
                        module: module.clone(),
                    },
                    None => StackTraceEntry { address, ..Default::default() },
                }
            })
            .collect()
    }

    /// Names user addresses of process `pid`; a process already gone leaves addresses only.
    pub fn user_frames(&self, pid: u32, addresses: &[u64]) -> Vec<StackTraceEntry> {
        if addresses.is_empty() {
            return Vec::new();
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let mappings: Vec<Mapping> = maps.lines().filter_map(parse_maps_line).collect();
        addresses
            .iter()
            .map(|&address| {
                let Some(m) = mappings.iter().find(|m| m.start <= address && address < m.end) else {
                    return StackTraceEntry { address, ..Default::default() };
                };
                let file_offset = address - m.start + m.offset;
                let elf = self.elf(pid, m);
                let vaddr = elf
                    .segments
                    .iter()
                    .find(|(off, size, _)| *off <= file_offset && file_offset < off + size)
                    .map(|(off, _, vaddr)| file_offset - off + vaddr)
                    .unwrap_or(file_offset);
                let symbol = function_at(&elf.functions, vaddr).map(|(_, _, name)| name.clone()).unwrap_or_default();
                StackTraceEntry { address, offset: vaddr, symbol, module: m.path.clone() }
            })
            .collect()
    }

    fn elf(&self, pid: u32, m: &Mapping) -> Arc<ElfSymbols> {
        let key = (m.device.clone(), m.inode);
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = files.get(&key) {
            return found.clone();
        }
        let path = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
        let symbols = Arc::new(std::fs::read(&path).or_else(|_| std::fs::read(&m.path)).map(|b| read_elf(&b)).unwrap_or_default());
        if files.len() >= MAX_CACHED_FILES {
            files.clear();
        }
        files.insert(key, symbols.clone());
        symbols
    }
}

/// The function containing `vaddr`: the last one starting at or before it, when its size
/// (if known) reaches it.
fn function_at(functions: &[Symbol], vaddr: u64) -> Option<&Symbol> {
    let i = functions.partition_point(|(start, _, _)| *start <= vaddr);
    let f = &functions[i.checked_sub(1)?];
    (f.1 == 0 || vaddr < f.0 + f.1).then_some(f)
}

fn read_kallsyms() -> Vec<(u64, String, String)> {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let mut symbols: Vec<(u64, String, String)> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = u64::from_str_radix(fields.next()?, 16).ok().filter(|a| *a != 0)?;
            let kind = fields.next()?;
            let name = fields.next()?;
            let module = fields.next().map(|m| m.trim_matches(|c| c == '[' || c == ']')).unwrap_or_default();
            matches!(kind, "t" | "T" | "w" | "W").then(|| (address, name.to_string(), module.to_string()))
        })
        .collect();
    symbols.sort_unstable_by_key(|(address, _, _)| *address);
    symbols
}

/// `start-end perms offset dev inode path`, for lines that map a file.
fn parse_maps_line(line: &str) -> Option<Mapping> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let _perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let device = fields.next()?.to_string();
    let inode: u64 = fields.next()?.parse().ok()?;
    let path = fields.next()?.trim_start().to_string();
    if inode == 0 || !path.starts_with('/') {
        return None;
    }
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset,
        device,
        inode,
        path,
    })
}

fn read_elf(bytes: &[u8]) -> ElfSymbols {
    let Ok(file) = object::File::parse(bytes) else { return ElfSymbols::default() };
    let segments = file
        .segments()
        .map(|s| {
            let (offset, size) = s.file_range();
            (offset, size, s.address())
        })
        .collect();
    let mut functions: Vec<Symbol> = file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
        .collect();
    functions.sort_unstable_by_key(|(start, _, _)| *start);
    functions.dedup_by_key(|(start, _, _)| *start);
    ElfSymbols { segments, functions }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_of_files_only() {
        let m = parse_maps_line("7f1c2a400000-7f1c2a428000 r-xp 00028000 fe:01 1835090                    /usr/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        assert_eq!((m.start, m.end, m.offset, m.inode), (0x7f1c2a400000, 0x7f1c2a428000, 0x28000, 1835090));
        assert_eq!((m.device.as_str(), m.path.as_str()), ("fe:01", "/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(parse_maps_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]").is_none());
        assert!(parse_maps_line("55d0c000-55d0d000 rw-p 00000000 00:00 0 ").is_none());
    }

    #[test]
    fn this_process_names_its_own_function() {
        // A user frame of this very test: the address of a function of the test binary.
        let address = this_process_names_its_own_function as *const () as u64 + 4;
        let frames = Symbolizer::default().user_frames(std::process::id(), &[address, 8]);
        assert!(frames[0].symbol.contains("this_process_names_its_own_function"), "{:?}", frames[0]);
        assert_eq!(frames[0].module, std::env::current_exe().unwrap().display().to_string());
        assert_eq!(frames[1], StackTraceEntry { address: 8, ..Default::default() }, "unmapped address");
    }

    #[test]
    fn functions_cover_their_size() {
        let f = vec![(0x100, 0x10, "a".to_string()), (0x200, 0, "b".to_string())];
        assert_eq!(function_at(&f, 0x105).map(|s| s.2.as_str()), Some("a"));
        assert_eq!(function_at(&f, 0x110), None, "past a's end");
        assert_eq!(function_at(&f, 0x250).map(|s| s.2.as_str()), Some("b"), "size unknown");
        assert_eq!(function_at(&f, 0x50), None);
    }
}
