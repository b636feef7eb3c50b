#!/usr/bin/env bash
# placeholder: filled in by its issue
set -euo pipefail
echo "demo/01_clean.sh: not built yet"
