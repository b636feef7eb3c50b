#!/usr/bin/env bash
# placeholder: filled in by its issue
set -euo pipefail
echo "demo/02_airflow.sh: not built yet"
