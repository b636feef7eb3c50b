#!/usr/bin/env bash
# ML demo, fully offline: download Iris with the official kaggle client from the local Kaggle API
# stand-in (127.0.0.1:7777), validate it, train/compare/evaluate a scikit-learn model, version and promote
# it, then predict. If port 7777 is taken, it says so and uses the opt-in offline fallback
# (scikit-learn's bundled Iris) instead. Re-running it shows the cache: nothing is downloaded twice.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PIPEKIT=.venv/bin/pipekit
OUT=.demo/ml
mkdir -p "$OUT/kaggle-config"
export COLUMNS="${COLUMNS:-120}"  # rich wraps at 80 columns when not on a terminal

# The kaggle client reads these; TEST points it at http://localhost:7777 (the stand-in).
export KAGGLE_API_ENVIRONMENT=TEST
export KAGGLE_CONFIG_DIR="$PWD/$OUT/kaggle-config"
export KAGGLE_USERNAME=pipekit-standin
export KAGGLE_KEY=standin-0123456789abcdef

port_open() { "$PY" -c 'import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(("127.0.0.1", 7777)))'; }

FALLBACK=()
STANDIN_PID=""
if port_open; then
  echo "== port 7777 is already in use: not starting the stand-in; using the opt-in offline fallback"
  unset KAGGLE_USERNAME KAGGLE_KEY
  FALLBACK=(--offline-fallback)
else
  echo "== starting the Kaggle API stand-in on 127.0.0.1:7777 (serves saurabh00007/iriscsv built from scikit-learn's Iris)"
  "$PY" -m pipekit.ml._standin > "$OUT/standin.log" 2>&1 &
  STANDIN_PID=$!
  trap 'kill "$STANDIN_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do port_open && break; sleep 0.2; done
fi

echo "== pipekit ml download (real kaggle client; a second run finds the checksummed copy and downloads nothing)"
"$PIPEKIT" ml download --data-dir "$OUT/data" "${FALLBACK[@]}"
"$PIPEKIT" ml download --data-dir "$OUT/data" "${FALLBACK[@]}"

echo
echo "== pipekit ml train (3 candidates, seeded stratified 5-fold CV, 20% hold-out, versioned + promoted)"
"$PIPEKIT" ml train "$OUT/data/Iris.csv" --models-dir "$OUT/models"

echo
echo "== pipekit ml predict (current model; library versions checked against its sidecar)"
"$PY" - "$OUT/new_flowers.csv" <<'EOF'
import sys
rows = "SepalLengthCm,SepalWidthCm,PetalLengthCm,PetalWidthCm\n5.0,3.4,1.5,0.2\n6.4,2.9,4.3,1.3\n7.2,3.0,6.1,2.2\n"
open(sys.argv[1], "w").write(rows)
EOF
"$PIPEKIT" ml predict "$OUT/models" "$OUT/new_flowers.csv"

echo
echo "== where things landed"
echo "dataset + manifest: $OUT/data/ ($(ls "$OUT/data" | tr '\n' ' '))"
echo "current model:      $OUT/models/current.json -> $("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["path"])' "$OUT/models/current.json")"
echo "source used:        $("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["source"] + (" (offline fallback)" if m["fallback"] else " via the stand-in"))' "$OUT/data/manifest.json")"
