#!/usr/bin/env bash
# The lint gates: cargo fmt --check, clippy -D warnings, coffre-core for
# wasm32. The same steps as `cargo xtask lint` and the lint part of `cargo xtask test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -f "$HOME/.cargo/env" ]; then
  # shellcheck source=/dev/null
  . "$HOME/.cargo/env"
fi
cargo xtask lint
