#!/usr/bin/env bash
# Installs PyPI torch==2.11.0 into .venv/ (git-ignored) so that tch 0.24.0 can build against its
# libtorch with LIBTORCH_USE_PYTORCH=1. Idempotent: a second run only checks the version.
# Afterwards `source scripts/env.sh` sets PATH, LIBTORCH_USE_PYTORCH and LD_LIBRARY_PATH.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
want="2.11.0"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
have="$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "torch==$want"
fi
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "at", torch.__file__)'
