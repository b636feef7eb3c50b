#!/usr/bin/env bash
# ML demo, fully offline: download Iris with the official kaggle client from the local Kaggle API
# stand-in, validate it, train/compare/evaluate a scikit-learn model, version and promote it, then predict.
# The stand-in listens on a free port and the client reaches it through HTTP_PROXY, so nothing needs port
# 7777 to be free. Re-running it shows the cache: nothing is downloaded twice.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PIPEKIT=.venv/bin/pipekit
OUT=.demo/ml
mkdir -p "$OUT/kaggle-config"

# The kaggle client reads these; TEST makes it address http://localhost:7777 (the stand-in).
export KAGGLE_API_ENVIRONMENT=TEST
export KAGGLE_CONFIG_DIR="$PWD/$OUT/kaggle-config"
export KAGGLE_USERNAME=pipekit-standin
export KAGGLE_KEY=standin-0123456789abcdef

echo "== starting the Kaggle API stand-in on a free loopback port (serves saurabh00007/iriscsv built from scikit-learn's Iris)"
READY="$OUT/standin.proxy"
rm -f "$READY"
"$PY" -m pipekit.ml._standin --port 0 --ready-file "$READY" > "$OUT/standin.log" 2>&1 &
STANDIN_PID=$!
trap 'kill "$STANDIN_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [[ -s "$READY" ]] && break; sleep 0.1; done
if [[ ! -s "$READY" ]]; then
  echo "the stand-in did not start; its log:" >&2
  cat "$OUT/standin.log" >&2
  exit 1
fi
# Every HTTP client honours these: the client's http://localhost:7777 requests go to the stand-in.
export HTTP_PROXY="$(cat "$READY")" http_proxy="$(cat "$READY")"
unset NO_PROXY no_proxy

echo "== pipekit ml download (real kaggle client; a second run finds the checksummed copy and downloads nothing)"
"$PIPEKIT" ml download --data-dir "$OUT/data"
"$PIPEKIT" ml download --data-dir "$OUT/data"

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
