#!/usr/bin/env bash
# Glue CI/CD on the offline twin: commits to a CodeCommit repository (a real git repo behind the twin)
# go through a simulated CodePipeline that invokes the REAL Lambda handler with real-shaped events.
#   commit 1: job config + script   -> job created, run on local Spark, pipeline succeeds
#   commit 2: config changed        -> job updated (field-level diff), run again
#   commit 3: README only           -> nothing to deploy, succeeds at once
#   commit 4: broken config         -> pipeline fails, naming the file and the field
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PIPEKIT=${PIPEKIT:-$ROOT/.venv/bin/pipekit}
PY=${PY:-$ROOT/.venv/bin/python}
AWS=${AWS:-$ROOT/.venv/bin/aws}
DEMO=$ROOT/.demo/cicd
export PIPEKIT_TWIN_DIR=$DEMO/twin
REPO=glue-etl
SCRIPTS=pipekit-cicd-scripts
ARTIFACTS=pipekit-cicd-artifacts
RAW=pipekit-demo-raw
CURATED=pipekit-demo-curated
rm -rf "$DEMO"; mkdir -p "$DEMO"

cleanup() { "$PIPEKIT" local down >/dev/null 2>&1 || true; }
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

say "1. start the offline AWS twin (no stack needed: this demo creates what it uses with the AWS CLI)"
eval "$("$PIPEKIT" local up --no-provision)"
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"

say "2. build the Lambda zip (handler + pipekit deploy code; boto3 comes from the Lambda runtime)"
"$PIPEKIT" lambda package --out "$DEMO/pipekit-glue-deploy.zip"

say "3. CodeCommit repository, buckets and 200 sample customers, through the unchanged AWS CLI"
CLONE_URL=$("$AWS" codecommit create-repository --repository-name "$REPO" \
  --query repositoryMetadata.cloneUrlHttp --output text)
echo "repository $REPO: $CLONE_URL"
for b in "$SCRIPTS" "$ARTIFACTS" "$RAW" "$CURATED"; do "$AWS" s3 mb "s3://$b" >/dev/null; done
"$PY" -c "from pipekit.sample import write_adventureworks_csv; write_adventureworks_csv('$DEMO/customers.csv', 200, seed=7)"
"$AWS" s3 cp "$DEMO/customers.csv" "s3://$RAW/customers/customers.csv" >/dev/null
git clone -q "$CLONE_URL" "$DEMO/clone" 2>/dev/null
cd "$DEMO/clone"
git config user.email dev@example.com; git config user.name "Data Dev"; git checkout -q -B main
# The EventBridge rule "commit to main -> start the pipeline", played by a git hook in the twin's repo:
# every push runs the pipeline (Source zip -> real handler, re-invoked with continuation tokens).
"$PIPEKIT" lambda trigger --repository "$REPO" --bucket "$SCRIPTS" --artifact-bucket "$ARTIFACTS" --poll 3
push() {  # commit, push, and show what the pipeline did (git prints the hook's output as remote: lines)
  git add -A; git commit -q -m "$1"; echo "git push: $(git rev-parse --short HEAD) $1"
  git push origin HEAD:main 2>&1 | sed -n 's/^remote: /  /p' | sed 's/ *$//' | tee "$DEMO/last-push.log"
}

say "4. commit 1: glue/jobs/customers_etl.json + glue/scripts/customers_etl.py"
mkdir -p glue/jobs glue/scripts
cp "$ROOT/examples/glue-repo/glue/scripts/customers_etl.py" glue/scripts/
"$PY" - <<PYEOF
import json
doc = json.load(open("$ROOT/examples/glue-repo/glue/jobs/customers_etl.json"))
doc.pop("\$schema")
json.dump(doc, open("glue/jobs/customers_etl.json", "w"), indent=2)
PYEOF
push "Add customers_etl Glue job"
echo "-- the job in Glue:"
"$AWS" glue get-job --job-name customers_etl \
  --query 'Job.{Script:Command.ScriptLocation,Workers:NumberOfWorkers,Type:WorkerType,Timeout:Timeout}' --output table
echo "-- what the run wrote (local Spark, masked Parquet):"
"$AWS" s3 ls "s3://$CURATED/customers_parquet/" --recursive | awk '{print "  "$4, $3" bytes"}' | head -5

say "5. commit 2: more workers and a longer timeout -> update (field-level diff), run again"
"$PY" - <<'PYEOF'
import json
doc = json.load(open("glue/jobs/customers_etl.json"))
doc.update(number_of_workers=4, timeout_minutes=45)
doc["tags"]["cost-center"] = "cc-42"
json.dump(doc, open("glue/jobs/customers_etl.json", "w"), indent=2)
PYEOF
push "customers_etl: 4 workers, 45 min timeout"
"$AWS" glue get-job --job-name customers_etl --query 'Job.[NumberOfWorkers,Timeout]' --output text

say "6. commit 3: README only -> nothing under glue/ changed, the pipeline succeeds at once"
echo "# Glue jobs" > README.md
push "Docs"

say "7. commit 4: a broken config -> the pipeline fails and names the file and the field"
"$PY" - <<'PYEOF'
import json
doc = json.load(open("glue/jobs/customers_etl.json"))
doc.update(number_of_workers="four", worker_type="G.3X")
json.dump(doc, open("glue/jobs/customers_etl.json", "w"), indent=2)
PYEOF
push "customers_etl: oops"
grep -q ": Failed: Bad Glue job config" "$DEMO/last-push.log" || { echo "expected a failure"; exit 1; }
echo "(failed as expected; the job was not touched:)"
"$AWS" glue get-job --job-name customers_etl --query 'Job.[NumberOfWorkers,WorkerType]' --output text

say "8. state: the last successfully deployed commit (SSM) and the CodePipeline job results on the twin"
echo "last deployed: $("$AWS" ssm get-parameter --name /pipekit/glue-deploy/$REPO/last-deployed \
  --query Parameter.Value --output text | cut -c1-7)   (commit 4 failed, so it is still commit 3)"
ls "$PIPEKIT_TWIN_DIR"/codepipeline/jobs | wc -l | xargs echo "CodePipeline jobs recorded:"
