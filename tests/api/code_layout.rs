//! Where code lives: SQL only in `src/models/` and `src/graphql/loaders.rs`.

use std::path::{Path, PathBuf};

/// The Rust files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read a source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn sql_runs_only_from_models_and_loaders() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    // Running any statement needs `RunQueryDsl`; `sql_query` is SQL text.
    let markers = ["RunQueryDsl", "sql_query("];
    let mut outside: Vec<String> = rust_files(&src)
        .into_iter()
        .filter(|path| {
            !path.starts_with(src.join("models")) && *path != src.join("graphql/loaders.rs")
        })
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("read a source file");
            markers.iter().any(|marker| text.contains(marker))
        })
        .map(|path| path.strip_prefix(root).unwrap_or(&path).display().to_string())
        .collect();
    outside.sort();
    assert!(outside.is_empty(), "SQL outside src/models and src/graphql/loaders.rs: {outside:?}");
}
