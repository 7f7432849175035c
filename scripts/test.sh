#!/usr/bin/env bash
# Every test of the project: Rust (unit, fixtures, engine, server), then the Python
# binding (the real wheel, built by pip through maturin) and the Node binding (the real
# native module). Installs what it needs; safe to run on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

echo "== redis-server for the replica tests (Debian's package)"
bash "$root/scripts/redis.sh"

echo "== Rust: unit, fixture, engine and server tests"
# --all-targets also runs the criterion benches once each in test mode, so they cannot rot.
cargo test --workspace --all-targets

echo "== Bedrock SigV4: the fixtures' signatures recomputed by an independent Python signer"
python3 "$root/tests/fixtures/transforms/bedrock/sign_check.py"

# The binding suites also drive the real server, built by `cargo test` above.
export GATEWISE_BIN="$root/target/debug/gatewise"

echo "== Python binding: pip install ./bindings/python, then pytest"
venv="$root/target/py-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "$root/bindings/python[test]"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/bindings/python/tests"

echo "== Node binding: npm ci, build the native module, node --test"
# The Node suite compares its surface with the Python binding's, through this interpreter.
GATEWISE_PYTHON="$venv/bin/python" bash "$root/bindings/node/scripts/test.sh"
