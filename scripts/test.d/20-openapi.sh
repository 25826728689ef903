#!/usr/bin/env bash
# Validates openapi/openapi.json (the committed snapshot of the document generated from the code
# by utoipa; tests/api/http/openapi.rs keeps it equal to the generated one) against the OpenAPI
# 3.1 specification with
# openapi-spec-validator (pinned, in a virtualenv under $HOME/.cache; built once, then reused
# without touching the network). Fails loudly when the document is invalid.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${STUDY_MODE_OPENAPI_VENV:-$HOME/.cache/study-mode-openapi-venv}"
PIN="openapi-spec-validator==0.9.0"

if ! "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("openapi-spec-validator") != "0.9.0")' 2>/dev/null; then
  PYTHON="${PYTHON:-python3}"
  command -v "$PYTHON" >/dev/null || { echo "python3 is required to validate the OpenAPI document" >&2; exit 1; }
  echo "building $VENV with $PIN"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PIN"
fi

"$VENV/bin/python" - openapi/openapi.json <<'PY'
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    doc = json.load(f)
try:
    validate(doc)
except OpenAPIValidationError as e:
    sys.exit(f"{path} is not a valid OpenAPI {doc.get('openapi')} document: {e}")
print(f"{path}: valid OpenAPI {doc['openapi']} ({len(doc['paths'])} paths, {len(doc['components']['schemas'])} schemas)")
PY
