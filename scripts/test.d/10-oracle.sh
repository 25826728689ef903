#!/usr/bin/env bash
# Conformance oracle: a virtualenv holding the pinned reference ChatKit server
# (openai-chatkit 1.6.5), used by tests/api/chatkit/conformance.rs through
# tests/conformance/oracle.py. Idempotent: when the venv already has the pinned version this
# returns at once without touching the network. Fails loudly when it cannot be built.
set -euo pipefail

VENV="${STUDY_MODE_ORACLE_VENV:-$HOME/.cache/study-mode-oracle-venv}"
PIN="openai-chatkit==1.6.5"

if [ -x "$VENV/bin/python" ] \
  && "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("openai-chatkit") != "1.6.5")' 2>/dev/null \
  && "$VENV/bin/python" -c 'import chatkit.server, chatkit.types' 2>/dev/null; then
  echo "oracle venv ready: $VENV ($PIN)"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "python3 is required for the ChatKit oracle" >&2; exit 1; }
echo "building oracle venv $VENV with $PIN"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "$PIN"
"$VENV/bin/python" -c 'import chatkit.server, chatkit.types; print("oracle venv ready")'
