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

echo "== Rust: the gateway-http examples, run"
for example in route_in_process embed_server custom_transport; do
  cargo run --quiet -p gateway-http --example "$example"
done

echo "== Rust: the crates as crates.io gets them (cargo publish --dry-run), and their docs"
# The packaged crates are verified without the workspace's profile; giving it here lets the
# verification reuse what `cargo test` built (30 s instead of 3 minutes of rebuilding).
# cargo unpacks each packaged crate into its registry cache by name and version, and reuses
# a copy unpacked there before: a machine that ran this for the same (unpublished) version
# would verify gateway-http against an older gateway-core. Those copies go first.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rm -rf "$cargo_home"/registry/src/-*/gateway-core-* "$cargo_home"/registry/src/-*/gateway-http-*
cargo publish --dry-run --quiet -p gateway-core -p gateway-http \
  --config 'profile.dev.debug="line-tables-only"' --config 'profile.dev.package."*".debug=false'
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p gateway-core -p gateway-http

echo "== Bedrock SigV4: the fixtures' signatures recomputed by an independent Python signer"
python3 "$root/tests/fixtures/transforms/bedrock/sign_check.py"

# The binding suites also drive the real server, built by `cargo test` above.
export GATEWISE_BIN="$root/target/debug/gatewise"

echo "== Python binding: the wheel (maturin build), installed, then pytest"
venv="$root/target/py-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip "maturin>=1.9.4,<2"
wheels="$root/target/wheels"
rm -rf "$wheels"
(cd "$root/bindings/python" && "$venv/bin/maturin" build --quiet --out "$wheels")
wheel=$(ls "$wheels"/gatewise-*.whl)
echo "built $(basename "$wheel")"
"$venv/bin/python" -m pip install -q "$wheel[test]"
# The same version may be installed from an earlier build: replace the package itself.
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$wheel"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/bindings/python/tests"

echo "== Python binding: the wheel alone, in a fresh venv with no Rust on PATH"
bare="$root/target/py-bare"
rm -rf "$bare"
python3 -m venv "$bare"
env PATH="$bare/bin:/usr/bin:/bin" CARGO_HOME=/nonexistent RUSTUP_HOME=/nonexistent \
  "$bare/bin/python" -m pip install -q --no-index "$wheel"
env PATH="$bare/bin:/usr/bin:/bin" CARGO_HOME=/nonexistent RUSTUP_HOME=/nonexistent \
  "$bare/bin/python" "$root/bindings/python/scripts/install_check.py"

echo "== Node binding: npm ci, build the native module, node --test"
# The Node suite compares its surface with the Python binding's, through this interpreter.
GATEWISE_PYTHON="$venv/bin/python" bash "$root/bindings/node/scripts/test.sh"
