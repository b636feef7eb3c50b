#!/usr/bin/env bash
# Glue CI/CD through the stack users deploy: infra/cloudformation/cicd.yaml on the offline twin, driven only
# by the unchanged AWS CLI and git. `git push` to the stack's CloneUrlHttp -> EventBridge rule -> filter
# Lambda (diffs the push) -> CodePipeline V2 (Source -> deploy Lambda from its zip) -> Glue.
#   (a) job config + script     -> job created, run on local Spark, execution Succeeded
#   (b) config changed          -> job updated (field-level diff), run again, Succeeded
#   (c) README only             -> the filter skips it: no execution at all
#   (d) broken config           -> execution Failed, naming the file and the field
#   (e) a failing job + a slow sibling -> execution Failed, the sibling's run stopped
# The same commands work against a real account (docs/cicd.md, "Deploy to a real account").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PIPEKIT=${PIPEKIT:-$ROOT/.venv/bin/pipekit}
PY=${PY:-$ROOT/.venv/bin/python}
AWS=${AWS:-$ROOT/.venv/bin/aws}
DEMO=$ROOT/.demo/cicd
export PIPEKIT_TWIN_DIR=$DEMO/twin
STACK=pipekit-glue-cicd
REPO=glue-etl
CODE=pipekit-cicd-code
SCRIPTS=pipekit-cicd-scripts
RAW=pipekit-demo-raw
CURATED=pipekit-demo-curated
export GIT_AUTHOR_NAME="Data Dev" GIT_AUTHOR_EMAIL=dev@example.com GIT_COMMITTER_NAME="Data Dev" \
  GIT_COMMITTER_EMAIL=dev@example.com GIT_TERMINAL_PROMPT=0
rm -rf "$DEMO"; mkdir -p "$DEMO"
STARTED=$SECONDS

cleanup() { "$PIPEKIT" local down >/dev/null 2>&1 || true; }
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
out() {  # a stack output
  "$AWS" cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

say "1. start the offline AWS twin (empty: the stack comes next, from the template)"
eval "$("$PIPEKIT" local up --no-provision)"
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"

say "2. build the Lambda zip (both handlers + pipekit's deploy code; boto3 comes from the runtime) and upload it"
"$PIPEKIT" lambda package --out "$DEMO/pipekit-glue-deploy.zip"
for b in "$CODE" "$SCRIPTS" "$RAW" "$CURATED"; do "$AWS" s3 mb "s3://$b" >/dev/null; done
"$AWS" s3 cp "$DEMO/pipekit-glue-deploy.zip" "s3://$CODE/lambda/pipekit-glue-deploy.zip" >/dev/null
ROLE_ARN=$("$AWS" iam create-role --role-name pipekit-glue-job --query Role.Arn --output text \
  --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"glue.amazonaws.com"},"Action":"sts:AssumeRole"}]}')
"$PY" -c "from pipekit.sample import write_adventureworks_csv; write_adventureworks_csv('$DEMO/customers.csv', 200, seed=7)"
"$AWS" s3 cp "$DEMO/customers.csv" "s3://$RAW/customers/customers.csv" >/dev/null
echo "s3://$CODE/lambda/pipekit-glue-deploy.zip, Glue job role $ROLE_ARN, 200 sample customers in s3://$RAW/"

say "3. aws cloudformation deploy infra/cloudformation/cicd.yaml"
"$AWS" cloudformation deploy --stack-name "$STACK" --template-file infra/cloudformation/cicd.yaml \
  --capabilities CAPABILITY_IAM --parameter-overrides RepositoryName="$REPO" ScriptsBucketName="$SCRIPTS" \
  GlueJobRoleArn="$ROLE_ARN" LambdaCodeBucket="$CODE"
"$AWS" cloudformation describe-stack-resources --stack-name "$STACK" \
  --query 'StackResources[].[LogicalResourceId,ResourceType,ResourceStatus]' --output text | awk '{printf "  %-24s %-29s %s\n", $1, $2, $3}'
CLONE_URL=$(out RepositoryCloneUrlHttp); PIPELINE=$(out PipelineName); FILTER=$(out FilterFunctionName)
echo "clone URL: $CLONE_URL"
echo "pipeline:  $PIPELINE    filter Lambda: $FILTER"

git clone -q "$CLONE_URL" "$DEMO/clone" 2>/dev/null
cd "$DEMO/clone"
git checkout -q -B main

SUMMARY=()
push() {  # commit everything and push to the stack's repository
  git add -A; git commit -q -m "$1"
  COMMIT=$(git rev-parse HEAD)
  echo "git push: ${COMMIT:0:7} $1"
  git push -q origin HEAD:main
}
filter_said() {  # the filter Lambda's structured log line for $COMMIT (on AWS: aws logs tail /aws/lambda/$FILTER)
  for _ in $(seq 1 120); do
    line=$(grep -h "\"pipekit\": \"trigger\"" "$PIPEKIT_TWIN_DIR/lambda/logs/$FILTER/"*.log 2>/dev/null \
      | grep "$COMMIT" | head -1 || true)
    if [ -n "$line" ]; then echo "  filter: {${line#*\{}"; return; fi
    sleep 0.5
  done
  echo "the filter logged nothing for $COMMIT"; exit 1
}
execution() {  # wait for the execution of $COMMIT, print its status from aws codepipeline; expect $1
  local want=$1 id="" status=""
  for _ in $(seq 1 240); do
    read -r id status < <("$AWS" codepipeline list-pipeline-executions --pipeline-name "$PIPELINE" --output text \
      --query "pipelineExecutionSummaries[?sourceRevisions[0].revisionId=='$COMMIT'] | [0].[pipelineExecutionId,status]")
    if [ "$status" != "InProgress" ] && [ "$status" != "None" ] && [ -n "$status" ]; then break; fi
    sleep 1
  done
  "$AWS" codepipeline get-pipeline-execution --pipeline-name "$PIPELINE" --pipeline-execution-id "$id" \
    --query 'pipelineExecution.{execution:pipelineExecutionId,status:status,commit:artifactRevisions[0].revisionId,trigger:trigger.triggerType}' \
    --output table | sed 's/^/  /'
  "$AWS" codepipeline list-action-executions --pipeline-name "$PIPELINE" --filter "pipelineExecutionId=$id" \
    --query "actionExecutionDetails[?actionName=='ReconcileAndRun'] | [0].output.executionResult.externalExecutionSummary" \
    --output text | sed 's/^/  deploy: /' | cut -c1-400
  SUMMARY+=("$(printf '%s  %-18s -> execution %s %s' "${COMMIT:0:7}" "$2" "${id:0:8}" "$status")")
  [ "$status" = "$want" ] || { echo "expected $want, got $status"; exit 1; }
}

say "4. (a) glue/jobs/customers_etl.json + glue/scripts/customers_etl.py: create the job and run it"
mkdir -p glue/jobs glue/scripts
cp "$ROOT/examples/glue-repo/glue/scripts/customers_etl.py" glue/scripts/
"$PY" - <<PYEOF
import json
doc = json.load(open("$ROOT/examples/glue-repo/glue/jobs/customers_etl.json"))
doc.pop("\$schema")
json.dump(doc, open("glue/jobs/customers_etl.json", "w"), indent=2)
PYEOF
push "Add customers_etl Glue job"
filter_said
execution Succeeded "(a) create + run"
"$AWS" glue get-job --job-name customers_etl \
  --query 'Job.{Script:Command.ScriptLocation,Workers:NumberOfWorkers,Type:WorkerType,Timeout:Timeout}' --output table
echo "-- what the run wrote (local Spark, masked Parquet):"
"$AWS" s3 ls "s3://$CURATED/customers_parquet/" --recursive | awk '{print "  "$4, $3" bytes"}' | head -3

say "5. (b) more workers, a longer timeout, a new tag: update (field-level diff), run again"
"$PY" - <<'PYEOF'
import json
doc = json.load(open("glue/jobs/customers_etl.json"))
doc.update(number_of_workers=4, timeout_minutes=45)
doc["tags"]["cost-center"] = "cc-42"
json.dump(doc, open("glue/jobs/customers_etl.json", "w"), indent=2)
PYEOF
cp glue/jobs/customers_etl.json "$DEMO/customers_etl.good.json"
push "customers_etl: 4 workers, 45 min timeout"
execution Succeeded "(b) update + run"
"$AWS" glue get-job --job-name customers_etl --query 'Job.[NumberOfWorkers,Timeout]' --output text | sed 's/^/  workers, timeout: /'

say "6. (c) README only: the filter skips the push, no execution starts"
BEFORE=$("$AWS" codepipeline list-pipeline-executions --pipeline-name "$PIPELINE" \
  --query 'length(pipelineExecutionSummaries)' --output text)
echo "# Glue jobs" > README.md
push "Docs"
filter_said
AFTER=$("$AWS" codepipeline list-pipeline-executions --pipeline-name "$PIPELINE" \
  --query 'length(pipelineExecutionSummaries)' --output text)
echo "  executions before: $BEFORE, after: $AFTER"
[ "$BEFORE" = "$AFTER" ] || { echo "a docs-only push started an execution"; exit 1; }
SUMMARY+=("$(printf '%s  %-18s -> no execution (the filter skipped it)' "${COMMIT:0:7}" "(c) docs only")")

say "7. (d) a broken config: the execution fails, naming the file and the field; the job is untouched"
"$PY" - <<'PYEOF'
import json
doc = json.load(open("glue/jobs/customers_etl.json"))
doc.update(number_of_workers="four", worker_type="G.3X")
json.dump(doc, open("glue/jobs/customers_etl.json", "w"), indent=2)
PYEOF
push "customers_etl: oops"
execution Failed "(d) bad config"
"$AWS" codepipeline get-pipeline-state --name "$PIPELINE" \
  --query 'stageStates[1].actionStates[0].latestExecution.errorDetails.message' --output text | head -4 | sed 's/^/  error: /'
"$AWS" glue get-job --job-name customers_etl --query 'Job.[NumberOfWorkers,WorkerType]' --output text | sed 's/^/  still: /'

say "8. (e) fix the config, add a job that fails and a slow one: the failure stops its sibling"
cp "$DEMO/customers_etl.good.json" glue/jobs/customers_etl.json
printf 'import time\ntime.sleep(2)\nraise ValueError("bad input row 17")\n' > glue/scripts/fails.py
printf 'import time\ntime.sleep(120)\nprint("done")\n' > glue/scripts/slow.py
for job in fails slow; do
  "$PY" - "$job" "$ROLE_ARN" <<'PYEOF'
import json, sys
job, role = sys.argv[1:]
doc = {"script": f"{job}.py", "role": role, "glue_version": "5.0", "worker_type": "G.1X", "number_of_workers": 2,
       "timeout_minutes": 10, "max_retries": 0, "tags": {"team": "data-platform"}, "run_after_deploy": True}
json.dump(doc, open(f"glue/jobs/{job}.json", "w"), indent=2)
PYEOF
done
push "Add the fails and slow jobs"
execution Failed "(e) failing run"
for job in fails slow; do
  "$AWS" glue get-job-runs --job-name "$job" --query 'JobRuns[0].[JobName,JobRunState,ErrorMessage]' --output text \
    | sed 's/^/  run: /' | cut -c1-160
done
[ "$("$AWS" glue get-job-runs --job-name slow --query 'JobRuns[0].JobRunState' --output text)" = STOPPED ] \
  || { echo "the sibling was not stopped"; exit 1; }

say "9. every push and what it did (aws codepipeline list-pipeline-executions)"
"$AWS" codepipeline list-pipeline-executions --pipeline-name "$PIPELINE" \
  --query 'reverse(pipelineExecutionSummaries)[].[pipelineExecutionId,status,sourceRevisions[0].revisionId,trigger.triggerType]' \
  --output text | awk '{printf "  %s  %-9s %s  %s\n", substr($1,1,8), $2, substr($3,1,7), $4}'
echo
printf '  %s\n' "${SUMMARY[@]}"
echo "last deployed: $("$AWS" ssm get-parameter --name "/pipekit/glue-deploy/$REPO/last-deployed" \
  --query Parameter.Value --output text | cut -c1-7)   (the last successful deploy: push (b))"
echo "demo-cicd: $((SECONDS - STARTED))s"
