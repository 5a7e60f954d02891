#!/usr/bin/env bash
# What `make bench` needs beyond .venv (scripts/bootstrap-python.sh, which runs first):
# - requirements-bench.lock (matplotlib for the plot) installed into .venv;
# - .venv-quix, Quix Streams' own environment from requirements-quix.lock (it pins pydantic
#   below the project's version, so it cannot live in .venv; benchmarks/peer_quix.py runs there).
# The test environment (make test) never needs either. Idempotent: each step is skipped while
# its lock file is unchanged since it last ran.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip_install() { "$1" -m pip install --quiet --disable-pip-version-check "${@:2}"; }

stamp=.venv/.bench-installed
want=$(cat requirements.lock requirements-bench.lock | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    pip_install .venv/bin/python -c requirements.lock -r requirements-bench.lock
    echo "$want" > "$stamp"
fi

stamp=.venv-quix/.installed
want=$(sha256sum requirements-quix.lock | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x .venv-quix/bin/python ]; then
    [ -x .venv-quix/bin/python ] || "$PY" -m venv .venv-quix
    pip_install .venv-quix/bin/python --upgrade "pip>=24"
    pip_install .venv-quix/bin/python -r requirements-quix.lock
    echo "$want" > "$stamp"
fi
