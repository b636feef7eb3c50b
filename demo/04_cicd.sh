#!/usr/bin/env bash
# placeholder: filled in by its issue
set -euo pipefail
echo "demo/04_cicd.sh: not built yet"
