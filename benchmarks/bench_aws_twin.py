"""Time each step of the AWS ETL on the offline twin: provision, ingest, crawl, Athena, Glue job, verify.

    .venv/bin/python benchmarks/bench_aws_twin.py --rows 100000 [--doc docs/perf/aws.md]

The Glue job step is the real entrypoint on local Spark in a subprocess (JVM start included), with
s3:// paths staged through local directories; wall-clock and process CPU seconds are reported.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import warnings
from pathlib import Path


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--doc", type=Path, default=None, help="append the table to this Markdown file")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from pipekit.local.provision import provision_stack
    from pipekit.local.server import TwinServer

    repo = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="bench-aws-"))
    server = TwinServer(work / "twin").start()
    steps: list[tuple[str, float, float]] = []

    def step(name: str, fn):
        t, c = time.perf_counter(), _cpu()
        out = fn()
        steps.append((name, time.perf_counter() - t, _cpu() - c))
        return out

    try:
        step("provision etl.yaml", lambda: provision_stack(server.endpoint_url, repo / "infra/cloudformation/etl.yaml"))
        os.environ.update({"AWS_ENDPOINT_URL": server.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
        from pipekit import etl
        from pipekit.aws import catalog
        from pipekit.sample import write_adventureworks_csv

        data = write_adventureworks_csv(work / "customers.csv", args.rows, seed=3)
        res = etl.resources()
        step("etl deploy (script + pipekit.zip + visual job)", etl.deploy)
        step("ingest (upload with sha256)", lambda: etl.ingest(data))
        step("ingest again (skipped, same sha256)", lambda: etl.ingest(data))
        step("crawl customers_csv", lambda: catalog.run_crawler(res.crawler, res.database, poll_s=0.2))
        step("Athena count(*) on CSV table (+ UNLOAD copy)", lambda: etl.count_rows(res.csv_table, res))
        step("Glue job on local Spark (subprocess, JVM start)", lambda: etl.run_job(res, poll_s=0.5))
        step("Athena count(*) on Parquet table (+ UNLOAD copy)", lambda: etl.count_rows(res.parquet_table, res))
        report = step("etl verify (6 checks)", lambda: etl.verify())
        failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    finally:
        server.stop()

    size_mb = data.stat().st_size / 1e6
    lines = [f"\n### AWS ETL on the twin, {args.rows:,} rows ({size_mb:.1f} MB CSV)\n",
             f"Command: `.venv/bin/python benchmarks/bench_aws_twin.py --rows {args.rows}`\n",
             "| step | wall s | CPU s (incl. children) |", "|---|---|---|"]
    lines += [f"| {name} | {wall:.2f} | {cpu:.2f} |" for name, wall, cpu in steps]
    lines.append("\nverify: " + ("all 6 checks passed" if not failed else "FAILED " + "; ".join(failed)))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.doc:
        with open(args.doc, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
