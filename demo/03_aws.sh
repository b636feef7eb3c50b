#!/usr/bin/env bash
# The AWS ETL on the offline twin: local up -> etl deploy -> etl run (two daily drops, the second read
# incrementally through job bookmarks) -> etl verify -> what landed where.
# The same commands run against a real account once the stack is deployed (see docs/aws.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PIPEKIT=${PIPEKIT:-.venv/bin/pipekit}
PY=${PY:-.venv/bin/python}
AWS=${AWS:-.venv/bin/aws}
DEMO=.demo/aws
export PIPEKIT_TWIN_DIR=${PIPEKIT_TWIN_DIR:-$PWD/.twin}
mkdir -p "$DEMO"

cleanup() { "$PIPEKIT" local down || true; }
trap cleanup EXIT

echo "== 1. start the offline AWS twin and provision infra/cloudformation/etl.yaml"
eval "$("$PIPEKIT" local up)"
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"

echo "== 2. sample AdventureWorks customers (1,000 rows)"
"$PY" -c "from pipekit.sample import write_adventureworks_csv; write_adventureworks_csv('$DEMO/customers.csv', 1000, seed=7)"
head -c 300 "$DEMO/customers.csv"; echo " ..."

echo "== 3. the unchanged AWS CLI sees the stack"
"$AWS" cloudformation describe-stacks --stack-name pipekit-etl \
  --query 'Stacks[0].Outputs[?OutputKey==`BucketName` || OutputKey==`JobName`].[OutputKey,OutputValue]' --output text

echo "== 4. pipekit etl deploy (script + pipekit.zip into scripts/, visual Glue job)"
"$PIPEKIT" etl deploy

DAY1=$(date -u -d yesterday +%F 2>/dev/null || date -u -v-1d +%F)
echo "== 5. pipekit etl run (ingest -> crawl -> Athena -> Glue job on local Spark -> partition -> Athena)"
"$PIPEKIT" etl run "$DEMO/customers.csv" --poll 1 --ingest-date "$DAY1"

echo "== 5b. the next day's drop: job bookmarks make the second run read only the new file"
"$PY" -c "from pipekit.sample import write_adventureworks_csv; write_adventureworks_csv('$DEMO/customers_day2.csv', 250, seed=8)"
"$PIPEKIT" etl run "$DEMO/customers_day2.csv" --poll 1
"$AWS" glue get-partitions --database-name customers_database --table-name customers_parquet \
  --query 'Partitions[].[Values[0],StorageDescriptor.Location]' --output text | sed -e 's/^/  partition /'
"$AWS" glue get-job-bookmark --job-name customers-etl \
  --query 'JobBookmarkEntry.[Run,RunId,JobBookmark]' --output text | cut -c1-220 | sed -e 's/^/  bookmark /'
"$PIPEKIT" aws query "SELECT ingest_date, count(*) AS n FROM customers_parquet GROUP BY ingest_date ORDER BY ingest_date"

echo "== 6. ingest again: same checksum, nothing uploaded"
"$PIPEKIT" aws ingest "$DEMO/customers.csv"

echo "== 7. pipekit etl verify"
"$PIPEKIT" etl verify

echo "== 8. a query: CSV result + Parquet copy under athena_results/"
"$PIPEKIT" aws query "SELECT firstname, emailaddress, phone FROM customers_parquet ORDER BY customerid LIMIT 5"

echo "== 9. what landed under each prefix"
"$PIPEKIT" etl layout
BUCKET=$("$AWS" cloudformation describe-stacks --stack-name pipekit-etl \
  --query 'Stacks[0].Outputs[?OutputKey==`BucketName`].OutputValue' --output text)
"$AWS" s3 ls "s3://$BUCKET/" --recursive | awk '{print $3, $4}' | sed -e 's/^/  /' | head -40
