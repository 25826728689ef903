#!/usr/bin/env bash
# The module layers of docs/ARCHITECTURE.md: every `crate::` import points to a lower layer
# (scripts/check-layers), and there is no import cycle between files (the shared
# module-cycles tool, when the checkout has the shared/ folder beside it, as CI does).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/check-layers src
cycles=../shared/tools/module-cycles
if [ -x "$cycles" ]; then
  "$cycles" src
else
  echo "module-cycles: $cycles not found beside the checkout; scripts/check-layers covers cycles between modules"
fi
