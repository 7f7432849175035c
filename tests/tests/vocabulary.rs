//! Every error code is declared once, in `ErrorCode`; the README's table and the Node
//! type stubs are checked against it here (the Python classes are built from it).
#![allow(clippy::unwrap_used)]

use gateway_core::ErrorCode;

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn every_error_code_is_documented_and_typed_and_nothing_else_is() {
    let readme = read("README.md");
    let stubs = read("bindings/node/index.d.ts");
    let union = stubs.split("export type ErrorCode =").nth(1).unwrap().split("\n\n").next().unwrap();
    let typed: Vec<&str> = union.split('|').map(|s| s.trim().trim_matches('\'')).filter(|s| !s.is_empty()).collect();
    let declared: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(typed, declared, "index.d.ts's ErrorCode union follows ErrorCode::ALL");
    for code in ErrorCode::ALL {
        let status = match code {
            ErrorCode::UpstreamError => "upstream's".to_owned(),
            ErrorCode::StreamError => "502".to_owned(),
            _ => code.default_status().to_string(),
        };
        let row = format!("| `{code}` | {status} |");
        assert!(readme.contains(&row), "the README's error table has `{row}`");
    }
}
