//! Shared helpers for Gatewise's cross-crate tests: the fixture corpus location and a
//! scripted in-memory [`Transport`] with a virtual clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fake;
pub mod log_lines;
pub mod mock;
pub mod raw_upstream;
pub mod realtime_mock;
pub mod transforms;

use std::path::PathBuf;

/// `tests/fixtures/<rel>`.
pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// Parse a JSON fixture.
pub fn read_json(rel: &str) -> serde_json::Value {
    let path = fixture_path(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `*.json` file in `tests/fixtures/<dir>`, sorted, with its file stem.
pub fn json_files(dir: &str) -> Vec<(String, serde_json::Value)> {
    let mut entries: Vec<_> = std::fs::read_dir(fixture_path(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let rel = format!("{dir}/{}", p.file_name().unwrap().to_string_lossy());
            (stem, read_json(&rel))
        })
        .collect()
}
