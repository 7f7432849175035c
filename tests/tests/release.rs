//! What ships: one version everywhere (the workspace's, in Cargo.toml), the license, the
//! changelog entry, and crate metadata crates.io needs. The packages themselves are
//! built and installed without Rust by scripts/test.sh (the wheel) and
//! bindings/node/scripts/test.sh (the npm tarballs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The version every package ships with.
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn every_package_has_the_workspace_version() {
    let node: Value = serde_json::from_str(&read("bindings/node/package.json")).unwrap();
    assert_eq!(node["version"], VERSION, "bindings/node/package.json");
    for entry in std::fs::read_dir(root().join("bindings/node/npm")).unwrap() {
        let path = entry.unwrap().path().join("package.json");
        let platform: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(platform["version"], VERSION, "{}", path.display());
        assert!(platform["name"].as_str().unwrap().starts_with("gatewise-"), "{}", path.display());
    }
    // The wheel's version is the binding crate's, which is the workspace's.
    let pyproject = read("bindings/python/pyproject.toml");
    assert!(pyproject.contains(r#"dynamic = ["version"]"#), "pyproject.toml takes its version from Cargo");
    assert!(!pyproject.lines().any(|l| l.starts_with("version")), "pyproject.toml sets no version of its own");
    for manifest in ["crates/gateway-core", "crates/gateway-http", "bindings/python", "bindings/node"] {
        assert!(read(&format!("{manifest}/Cargo.toml")).contains("version.workspace = true"), "{manifest}");
    }
    let workspace = read("Cargo.toml");
    for dependency in ["gateway-core", "gateway-http"] {
        let line = workspace.lines().find(|l| l.starts_with(&format!("{dependency} ="))).unwrap();
        assert!(line.contains(&format!(r#"version = "{VERSION}""#)), "{line}");
    }
    assert!(read("CHANGELOG.md").contains(&format!("## [{VERSION}]")), "CHANGELOG.md has no entry for {VERSION}");
}

#[test]
fn the_napi_targets_each_have_a_platform_package() {
    let node: Value = serde_json::from_str(&read("bindings/node/package.json")).unwrap();
    let targets = node["napi"]["targets"].as_array().unwrap();
    let dirs = std::fs::read_dir(root().join("bindings/node/npm")).unwrap().count();
    assert_eq!(targets.len(), dirs, "one npm/<platform> package per napi target");
    assert!(targets.iter().any(|t| t == "x86_64-unknown-linux-gnu"));
    assert_eq!(node["scripts"]["prepublishOnly"], "node scripts/prepublish.mjs");
}

#[test]
fn the_license_and_the_crates_metadata_are_there() {
    assert!(read("LICENSE").contains("Apache License") && read("LICENSE").contains("Version 2.0"));
    let workspace = read("Cargo.toml");
    assert!(workspace.contains(r#"license = "Apache-2.0""#));
    assert!(!workspace.contains("example.invalid"), "a placeholder repository URL");
    for krate in ["crates/gateway-core", "crates/gateway-http"] {
        let manifest = read(&format!("{krate}/Cargo.toml"));
        for field in ["description", "license", "repository", "readme", "keywords", "categories"] {
            assert!(manifest.lines().any(|l| l.starts_with(field)), "{krate}: no `{field}`");
        }
        assert!(root().join(krate).join("README.md").exists(), "{krate}/README.md");
        assert!(!manifest.contains("publish = false"), "{krate} is published");
    }
}
