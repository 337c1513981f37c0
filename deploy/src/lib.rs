//! Helpers for the checks of deploy/: reading multi-document manifests and running the
//! chart through helm and deploy/render.sh; [`images`]: the images of deploy/images/.

pub mod images;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

/// The deploy/ directory.
pub fn deploy_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every non-empty document of a multi-document YAML text, as JSON values.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| format!("document {}: {e}", i + 1))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Reads and parses a manifest file.
pub fn read_documents(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    documents(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `kind/name` of a manifest document.
pub fn object_id(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The document of this kind and name.
pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

/// The helm binary: `$HELM`, else `helm` on PATH, else /usr/local/bin/helm, where
/// deploy/host/deps.sh --tests installs it.
pub fn helm() -> Result<PathBuf, String> {
    if let Some(h) = std::env::var_os("HELM") {
        return Ok(PathBuf::from(h));
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("helm"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/local/bin/helm")])
        .find(|p| p.is_file())
        .ok_or_else(|| "helm not found; deploy/host/deps.sh --tests installs it".to_string())
}

/// Runs a command and returns its stdout, or an error with its stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{cmd:?}: output is not UTF-8: {e}"))
}

/// Renders the chart with deploy/render.sh into `out`, passing `helm_args` to
/// `helm template`.
pub fn render(out: &Path, helm_args: &[&str]) -> Result<(), String> {
    let helm = helm()?;
    run(Command::new(deploy_dir().join("render.sh"))
        .arg(out)
        .args(helm_args)
        .env("HELM", helm))
    .map(|_| ())
}
