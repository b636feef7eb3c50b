#!/usr/bin/env bash
# placeholder: filled in by its issue
set -euo pipefail
echo "demo/03_aws.sh: not built yet"
