//! Tetragon's example corpus: each file is accepted or rejected only with precise
//! `unsupported: <feature> at <path>` messages, and the committed table is current.

use std::path::{Path, PathBuf};
use tetra_crds::conformance::{evaluate_dir, markdown_table, Outcome};

const BEGIN: &str = "<!-- conformance-table:begin -->";
const END: &str = "<!-- conformance-table:end -->";

fn corpus(test: &str) -> Option<PathBuf> {
    tetra_corpus::dir_for(test, tetra_corpus::Part::Policies)
}

#[test]
fn every_corpus_file_is_accepted_or_precisely_unsupported() {
    let Some(corpus) = corpus("every_corpus_file_is_accepted_or_precisely_unsupported") else { return };
    let rows = evaluate_dir(&corpus).expect("read corpus");
    assert!(
        rows.len() >= 50,
        "expected the whole corpus, found {}",
        rows.len()
    );
    let failed: Vec<String> = rows
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed(m) => Some(format!("{}: {}", r.file, m.join(" | "))),
            Outcome::Unsupported(m)
                if !m
                    .iter()
                    .all(|l| l.starts_with("unsupported: ") && l.contains(" at spec.")) =>
            {
                Some(format!("{}: {}", r.file, m.join(" | ")))
            }
            _ => None,
        })
        .collect();
    assert!(
        failed.is_empty(),
        "corpus files with non-conformant errors:\n{}",
        failed.join("\n")
    );
    let accepted = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Accepted { .. }))
        .count();
    eprintln!(
        "{} files: {accepted} accepted, {} unsupported",
        rows.len(),
        rows.len() - accepted
    );
    assert!(
        accepted * 4 >= rows.len() * 3,
        "fewer than 3/4 of the corpus accepted ({accepted}/{})",
        rows.len()
    );
}

#[test]
fn unsupported_messages_name_feature_and_path() {
    let Some(corpus) = corpus("unsupported_messages_name_feature_and_path") else { return };
    let rows = evaluate_dir(&corpus).expect("read corpus");
    let get = |file: &str| {
        rows.iter()
            .find(|r| r.file == file)
            .map(|r| r.outcome.clone())
    };
    assert_eq!(
        get("usdt-set.yaml"),
        Some(Outcome::Unsupported(vec![
            "unsupported: Set action at spec.usdts[0].selectors[0].matchActions[0].action".into()
        ]))
    );
    assert!(matches!(get("usdt.yaml"), Some(Outcome::Accepted { .. })));
    assert_eq!(
        get("list-generated-ftrace.yaml"),
        Some(Outcome::Unsupported(vec![
            "unsupported: generated_ftrace list at spec.lists[0].type".into()
        ]))
    );
    assert!(matches!(
        get("tcp-connect.yaml"),
        Some(Outcome::Accepted { .. })
    ));
}

/// The table is committed in crds/CONFORMANCE.md and, when the README has the markers,
/// in the README's section between them too.
fn table_files() -> Vec<PathBuf> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![crate_dir.join("CONFORMANCE.md")];
    let readme = crate_dir.join("../README.md");
    if std::fs::read_to_string(&readme).is_ok_and(|t| t.contains(BEGIN) && t.contains(END)) {
        files.push(readme);
    }
    files
}

fn committed_table(text: &str) -> Option<String> {
    let (_, rest) = text.split_once(BEGIN)?;
    let (table, _) = rest.split_once(END)?;
    Some(table.trim().to_string())
}

fn with_table(text: &str, table: &str) -> Option<String> {
    let (head, rest) = text.split_once(BEGIN)?;
    let (_, tail) = rest.split_once(END)?;
    Some(format!("{head}{BEGIN}\n{table}{END}{tail}"))
}

#[test]
fn committed_conformance_tables_are_current() {
    let Some(corpus) = corpus("committed_conformance_tables_are_current") else { return };
    let expected = markdown_table(&evaluate_dir(&corpus).expect("read corpus"));
    let update = std::env::var_os("UPDATE_CONFORMANCE").is_some();
    for path in table_files() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if update {
            if let Some(new) = with_table(&text, &expected) {
                std::fs::write(&path, new).expect("write table");
            }
            continue;
        }
        assert_eq!(
            committed_table(&text).as_deref(),
            Some(expected.trim()),
            "{} is stale; run UPDATE_CONFORMANCE=1 cargo test -p tetra-crds --test conformance",
            path.display()
        );
    }
}
