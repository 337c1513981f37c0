//! The images deploy/images/build.sh writes, opened as a runtime would: names and tags are
//! the chart's defaults, the entrypoints are what the chart runs, and every executable they
//! ship is fully static (no program interpreter, no DT_NEEDED entry; `ldd` agrees).
use std::path::Path;
use std::process::Command;

use object::elf;
use object::read::elf::{Dyn, ElfFile64, FileHeader, ProgramHeader};
use object::Endianness;
use tetra_deploy::images::{self, Unpacked};

/// Why `path` is not a static executable, or None when it is one.
fn dynamic_parts(path: &Path) -> Option<String> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = ElfFile64::<Endianness>::parse(&*data)
        .unwrap_or_else(|e| panic!("{}: not a 64-bit ELF file: {e}", path.display()));
    let (header, endian) = (file.elf_header(), file.endian());
    let mut found = Vec::new();
    for ph in header.program_headers(endian, &*data).expect("program headers") {
        if ph.p_type(endian) == elf::PT_INTERP {
            let interp = ph.interpreter(endian, &*data).ok().flatten().unwrap_or_default();
            found.push(format!("interpreter {}", String::from_utf8_lossy(interp)));
        }
        if let Ok(Some(dynamic)) = ph.dynamic(endian, &*data) {
            // Names are left to `ldd`, which the test runs too.
            let needed = dynamic
                .iter()
                .filter(|d| i64::from(d.d_tag(endian)) == i64::from(elf::DT_NEEDED))
                .count();
            if needed > 0 {
                found.push(format!("{needed} DT_NEEDED entries"));
            }
        }
    }
    (!found.is_empty()).then(|| found.join(", "))
}

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// Every regular ELF file of a root file system.
fn elf_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let t = entry.file_type().expect("file type");
            if t.is_dir() {
                stack.push(entry.path());
            } else if t.is_file() && is_elf(&entry.path()) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

fn check_static(image: &Unpacked) -> Vec<String> {
    let files = elf_files(&image.rootfs);
    assert!(!files.is_empty(), "{}: no executables", image.name);
    for f in &files {
        if let Some(why) = dynamic_parts(f) {
            panic!("{} in {} is not static: {why}", f.display(), image.name);
        }
        // glibc's ldd: "statically linked" (static-pie) or "not a dynamic executable".
        let out = Command::new("ldd").arg(f).output().expect("running ldd");
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("statically linked") || text.contains("not a dynamic executable"),
            "ldd {}: {text}",
            f.display()
        );
    }
    files
        .iter()
        .map(|f| f.strip_prefix(&image.rootfs).unwrap().display().to_string())
        .collect()
}

fn size_mib(path: &Path) -> f64 {
    std::fs::metadata(path).expect("archive").len() as f64 / (1 << 20) as f64
}

#[test]
#[ignore = "needs root: builds the images with buildah or podman (the README test command runs it)"]
fn images_are_static_and_match_the_chart() {
    if let Some(why) = images::missing_tools() {
        eprintln!("skipped: {why}");
        return;
    }
    let built = images::build().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile_dir("tetra-images-static");

    let agent = images::unpack(&built.agent, &dir.join("agent")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(agent.name, format!("docker.io/tetra/tetrad:{}", built.version));
    assert_eq!(agent.config["Entrypoint"], serde_json::json!(["/usr/bin/tetrad"]));
    assert_eq!(
        check_static(&agent),
        ["bin/busybox", "usr/bin/tetra", "usr/bin/tetrad"],
        "the agent image's executables"
    );
    // The export-stdout container runs `tail` from the agent's image.
    let tail = std::fs::read_link(agent.rootfs.join("bin/tail")).expect("bin/tail");
    assert_eq!(tail, Path::new("busybox"));
    assert!(agent.config["Env"].to_string().contains("PATH=/usr/bin:/bin"));

    let operator =
        images::unpack(&built.operator, &dir.join("operator")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(operator.name, format!("docker.io/tetra/tetra-operator:{}", built.version));
    assert_eq!(operator.config["Entrypoint"], serde_json::json!(["/usr/bin/tetra-operator"]));
    assert_eq!(operator.config["User"], "65532:65532");
    assert_eq!(check_static(&operator), ["usr/bin/tetra-operator"]);

    let (a, o) = (size_mib(&built.agent), size_mib(&built.operator));
    println!("image archives: tetrad {a:.1} MiB, tetra-operator {o:.1} MiB");
    assert!(a < 40.0, "the agent image is {a:.1} MiB, over 40 MiB");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A directory of links to every program on $PATH except `hidden`, to run build.sh as on
/// a machine without them.
fn path_without(dir: &Path, hidden: &[&str]) -> std::ffi::OsString {
    std::fs::create_dir_all(dir).expect("scratch dir");
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]) {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let link = dir.join(&name);
            if hidden.iter().any(|h| name == **h) || link.symlink_metadata().is_ok() {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), link).expect("symlink");
        }
    }
    dir.as_os_str().to_owned()
}

/// Every entry of a root file system: path -> (mode, symlink target or content).
fn tree(root: &Path) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let (path, meta) = (entry.path(), entry.path().symlink_metadata().expect("lstat"));
            let content = if meta.is_dir() {
                stack.push(path.clone());
                Vec::new()
            } else if meta.file_type().is_symlink() {
                std::fs::read_link(&path).expect("readlink").into_os_string().into_encoded_bytes()
            } else {
                std::fs::read(&path).expect("read")
            };
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, (meta.permissions().mode(), content));
        }
    }
    out
}

/// The parts of an image configuration the chart relies on (Cmd: none, however written).
fn runtime_config(c: &serde_json::Value) -> serde_json::Value {
    let labels = &c["Labels"];
    serde_json::json!({
        "Entrypoint": c["Entrypoint"], "User": c["User"], "Env": c["Env"], "WorkingDir": c["WorkingDir"],
        "Cmd": c["Cmd"].as_array().filter(|a| !a.is_empty()),
        "title": labels["org.opencontainers.image.title"], "version": labels["org.opencontainers.image.version"],
    })
}

#[test]
#[ignore = "needs root: builds the images with buildah and with podman (the README test command runs it)"]
fn without_buildah_podman_builds_the_same_images() {
    if let Some(why) = images::missing_tools() {
        eprintln!("skipped: {why}");
        return;
    }
    if !images::on_path("buildah") || !images::on_path("podman") {
        eprintln!("skipped: comparing needs both buildah and podman (deploy/host/deps.sh --tests installs them)");
        return;
    }
    let built = images::build().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile_dir("tetra-images-podman");
    let path = path_without(&dir.join("bin"), &["buildah"]);
    let out = dir.join("out");
    images::run_build_sh(&out, Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    for (name, by_buildah) in [("tetrad", &built.agent), ("tetra-operator", &built.operator)] {
        let a = images::unpack(by_buildah, &dir.join(format!("{name}-buildah"))).unwrap_or_else(|e| panic!("{e}"));
        let b = images::unpack(&out.join(format!("{name}.tar")), &dir.join(format!("{name}-podman")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.name, a.name, "{name}: the archive's image name");
        assert_eq!(runtime_config(&b.config), runtime_config(&a.config), "{name}: configuration");
        let (ta, tb) = (tree(&a.rootfs), tree(&b.rootfs));
        assert_eq!(tb.keys().collect::<Vec<_>>(), ta.keys().collect::<Vec<_>>(), "{name}: files");
        for (path, (mode, content)) in &ta {
            assert!(tb[path] == (*mode, content.clone()), "{name}: {path} differs (mode {mode:o} vs {:o})", tb[path].0);
        }
    }
    // podman's storage keeps nothing of the build.
    let left = Command::new("podman").args(["images", "-q", "--filter", "reference=localhost/tetra-build-*"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "", "build images left in podman");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn build_without_buildah_or_podman_says_what_to_install() {
    // A PATH with bash, id and sed but neither buildah nor podman.
    let dir = tempfile_dir("tetra-images-nobuildah");
    for tool in ["bash", "id", "sed", "dirname"] {
        let real = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} not found"));
        std::os::unix::fs::symlink(real, dir.join(tool)).expect("symlink");
    }
    let out = Command::new(dir.join("bash"))
        .arg(tetra_deploy::deploy_dir().join("images/build.sh"))
        .arg(dir.join("out"))
        .env("PATH", &dir)
        .output()
        .expect("running build.sh");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("neither buildah nor podman found"), "{err}");
    assert!(err.contains("apt-get install buildah") && err.contains("apt-get install podman"), "{err}");
    assert!(!dir.join("out").exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}
