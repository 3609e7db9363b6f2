# Source this file (`source scripts/env.sh`) after scripts/setup-libtorch.sh: it puts the repo's
# venv first on PATH and makes its libtorch visible to tch's build script and to binaries at run time.
_kdsr_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$_kdsr_root/.venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export LIBTORCH_BYPASS_VERSION_CHECK=${LIBTORCH_BYPASS_VERSION_CHECK:-0}
_kdsr_torch_lib="$(python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)"
if [ -n "$_kdsr_torch_lib" ]; then
  export LD_LIBRARY_PATH="$_kdsr_torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
unset _kdsr_root _kdsr_torch_lib
