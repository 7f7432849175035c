#!/usr/bin/env bash
# Every test of the project: Rust (unit, fixtures, engine, server). Binding suites join
# here as they land. Installs what it needs; safe to run on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

echo "== Rust: unit, fixture, engine and server tests"
# --all-targets also runs the criterion benches once each in test mode, so they cannot rot.
cargo test --workspace --all-targets
