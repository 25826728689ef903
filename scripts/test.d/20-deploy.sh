#!/usr/bin/env bash
# The deployment manifests and compose file parse and pass strict Kubernetes schema validation.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/validate
