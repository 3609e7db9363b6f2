#!/usr/bin/env bash
# The project's test command (README): installs libtorch into .venv if needed, then runs every
# test of the workspace. Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-libtorch.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
cargo test --workspace --locked "$@"
