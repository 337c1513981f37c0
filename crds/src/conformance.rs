//! Conformance against Tetragon's example policies: every file is either accepted
//! (validates and compiles) or rejected only with `unsupported: ...` errors. Also renders
//! the markdown table committed in `crds/CONFORMANCE.md`.

use crate::check_policy_yaml;
use std::path::{Path, PathBuf};

/// What happened to one policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Validated and compiled into this many hooks.
    Accepted { hooks: usize },
    /// Rejected, every error being an unsupported feature (the messages).
    Unsupported(Vec<String>),
    /// Rejected for any other reason (a conformance failure).
    Failed(Vec<String>),
}

/// One row of the conformance report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Path relative to the corpus root, with `/` separators.
    pub file: String,
    pub outcome: Outcome,
}

/// Evaluates one policy text.
pub fn evaluate(text: &str) -> Outcome {
    match check_policy_yaml(text) {
        Ok(p) => Outcome::Accepted {
            hooks: p.hooks.len(),
        },
        Err(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            if errors.iter().all(|e| e.is_unsupported()) {
                Outcome::Unsupported(lines)
            } else {
                Outcome::Failed(lines)
            }
        }
    }
}

/// All regular files under `dir`, recursively, sorted.
pub fn corpus_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Evaluates every file under `dir`.
pub fn evaluate_dir(dir: &Path) -> std::io::Result<Vec<Row>> {
    corpus_files(dir)?
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)?;
            let rel = p.strip_prefix(dir).unwrap_or(&p);
            let file = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            Ok(Row {
                file,
                outcome: evaluate(&text),
            })
        })
        .collect()
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The markdown table `file | supported | why not`.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from("| file | supported | why not |\n|---|---|---|\n");
    for r in rows {
        let (supported, why) = match &r.outcome {
            Outcome::Accepted { hooks } => {
                ("yes".to_string(), format!("compiles to {hooks} hook(s)"))
            }
            Outcome::Unsupported(m) => ("no".to_string(), m.join("; ")),
            Outcome::Failed(m) => ("ERROR".to_string(), m.join("; ")),
        };
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(&r.file),
            supported,
            cell(&why)
        ));
    }
    out
}
