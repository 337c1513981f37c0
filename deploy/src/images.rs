//! The images of deploy/images/build.sh: building them once per test process and reading
//! an OCI archive's manifest, config and files.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::{deploy_dir, run};

/// The archives build.sh wrote.
#[derive(Clone, Debug)]
pub struct Built {
    pub agent: PathBuf,
    pub operator: PathBuf,
    /// The chart's appVersion, the images' tag.
    pub version: String,
}

/// Why the image tests cannot run here, if they cannot.
pub fn missing_tools() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (buildah's storage, BPF)".into());
    }
    if !on_path("buildah") && !on_path("podman") {
        return Some("neither buildah nor podman found (deploy/host/deps.sh --tests installs them)".into());
    }
    (!on_path("tar")).then(|| "tar not found (deploy/host/deps.sh --tests installs it)".into())
}

/// Is `tool` an executable file in a directory of $PATH?
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Runs build.sh once per test process (into `$CARGO_TARGET_DIR/images`, else
/// `target/images`) and returns its archives; later calls get the same result.
pub fn build() -> Result<Built, String> {
    static BUILT: OnceLock<Mutex<Option<Result<Built, String>>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(|e| e.into_inner());
    built.get_or_insert_with(build_now).clone()
}

fn build_now() -> Result<Built, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| deploy_dir().join("../target"));
    let out = target.join("images");
    run_build_sh(&out, None)?;
    let chart = std::fs::read_to_string(deploy_dir().join("helm/tetra/Chart.yaml"))
        .map_err(|e| format!("Chart.yaml: {e}"))?;
    let chart: Value = serde_yaml_ng::from_str(&chart).map_err(|e| format!("Chart.yaml: {e}"))?;
    Ok(Built {
        agent: out.join("tetrad.tar"),
        operator: out.join("tetra-operator.tar"),
        version: chart["appVersion"].as_str().unwrap_or_default().to_string(),
    })
}

/// Runs build.sh writing into `out`, with `$PATH` replaced by `path` when given (to hide
/// a tool from it).
pub fn run_build_sh(out: &Path, path: Option<&std::ffi::OsStr>) -> Result<(), String> {
    let mut cmd = Command::new(deploy_dir().join("images/build.sh"));
    cmd.arg(out);
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let status = cmd.status().map_err(|e| format!("running build.sh: {e}"))?;
    if !status.success() {
        return Err(format!("deploy/images/build.sh failed: {status}"));
    }
    Ok(())
}

/// One image of an OCI archive, unpacked.
pub struct Unpacked {
    /// `org.opencontainers.image.ref.name` of the archive's index.
    pub name: String,
    /// The image configuration's `config` (Entrypoint, Cmd, Env, User, ...).
    pub config: Value,
    /// The layers applied in order.
    pub rootfs: PathBuf,
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn blob(layout: &Path, digest: &Value) -> Result<PathBuf, String> {
    let d = digest.as_str().ok_or("a descriptor without digest")?;
    let hex = d.strip_prefix("sha256:").ok_or_else(|| format!("digest {d}: not sha256"))?;
    Ok(layout.join("blobs/sha256").join(hex))
}

/// Unpacks the single image of the OCI archive `archive` into `dir` (`dir/layout`: the
/// archive, `dir/rootfs`: its files), with the system's tar.
pub fn unpack(archive: &Path, dir: &Path) -> Result<Unpacked, String> {
    let layout = dir.join("layout");
    let rootfs = dir.join("rootfs");
    for d in [&layout, &rootfs] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    run(Command::new("tar").arg("-xf").arg(archive).arg("-C").arg(&layout))?;
    let index = read_json(&layout.join("index.json"))?;
    let [manifest] = index["manifests"].as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err(format!("{}: not exactly one image in index.json", archive.display()));
    };
    let name = manifest["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let manifest = read_json(&blob(&layout, &manifest["digest"])?)?;
    let config = read_json(&blob(&layout, &manifest["config"]["digest"])?)?["config"].clone();
    for layer in manifest["layers"].as_array().ok_or("a manifest without layers")? {
        // GNU tar recognizes the layer's compression itself.
        run(Command::new("tar").arg("-xf").arg(blob(&layout, &layer["digest"])?).arg("-C").arg(&rootfs))?;
    }
    Ok(Unpacked { name, config, rootfs })
}
