#!/usr/bin/env bash
# Create ./.venv with Python >= 3.12 (PyMC 6 needs it) and install bayesgain from this checkout.
#   bash scripts/install.sh          # the package and its dependencies
#   bash scripts/install.sh --test   # plus the test extras
# Set PYTHON=/path/to/python3.12 to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

is_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
  local c v
  for c in "${PYTHON:-}" python3.12 python3.13 python3; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && is_ok "$c" && { echo "$c"; return 0; }
  done
  if command -v pyenv >/dev/null 2>&1; then  # pyenv shims answer only for the active version
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | sort -rV) \
             $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[3-9]' | sort -V); do
      c="$(pyenv root)/versions/$v/bin/python"
      is_ok "$c" && { echo "$c"; return 0; }
    done
  fi
  return 1
}

PY=$(find_python) || { echo "install.sh: bayesgain needs Python >= 3.12 and none was found; set PYTHON=/path/to/python3.12" >&2; exit 1; }

# PyTensor links NumPy-compatible BLAS for its C code; without it, it warns and runs slower.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q libopenblas; then
  (apt-get update -qq && apt-get install -y -qq libopenblas-dev >/dev/null) || echo "install.sh: could not install libopenblas-dev (continuing)" >&2
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
# editable: setuptools prints an "Editable installation" BuildBackendWarning here (every editable mode warns
# in its own words; the compat mode's is a deprecation); the wheel build (.ci/wheel-smoke) prints none
.venv/bin/python -m pip install --quiet -e ".${extras}"
echo "install.sh: bayesgain installed in .venv ($(.venv/bin/python --version))"
