"""`pipekit glue plan|apply|validate` against the twin, and the Lambda zip on a boto3-only interpreter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
from cicd_helpers import BUCKET, GlueRepo, job_config, job_record
from typer.testing import CliRunner

from pipekit.cli import app
from pipekit.deploy.package import build_lambda_zip

EXAMPLE = Path(__file__).parents[2] / "examples" / "glue-repo"
runner = CliRunner()


def test_validate_example_repo_and_bad_config(tmp_path: Path) -> None:
    res = runner.invoke(app, ["glue", "validate", str(EXAMPLE)])
    assert res.exit_code == 0, res.output
    assert "job 'customers_etl'" in res.output and "job 'customers_report'" in res.output
    bad = tmp_path / "repo"
    shutil.copytree(EXAMPLE, bad)
    doc = json.loads((bad / "glue/jobs/customers_etl.json").read_text())
    doc["number_of_workers"] = 1
    (bad / "glue/jobs/customers_etl.json").write_text(json.dumps(doc))
    res = runner.invoke(app, ["glue", "validate", str(bad)])
    assert res.exit_code == 2
    flat = " ".join(res.output.split())  # the error console wraps long lines
    assert "glue/jobs/customers_etl.json: field 'number_of_workers': 1 is less than the minimum of 2" in flat
    assert "Traceback" not in res.output


def test_plan_apply_plan_is_idempotent(reset_twin, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    repo = tmp_path / "glue-etl"
    shutil.copytree(EXAMPLE, repo)
    res = runner.invoke(app, ["glue", "plan", str(repo), "--bucket", BUCKET, "--json"])
    assert res.exit_code == 0, res.output
    assert {c["job"]: c["kind"] for c in json.loads(res.output)} == {"customers_etl": "create",
                                                                   "customers_report": "create"}
    res = runner.invoke(app, ["glue", "apply", str(repo), "--bucket", BUCKET])
    assert res.exit_code == 0, res.output
    assert f"uploaded  s3://{BUCKET}/scripts/customers_etl.py" in res.output
    res = runner.invoke(app, ["glue", "plan", str(repo), "--bucket", BUCKET, "--json"])
    assert {c["kind"] for c in json.loads(res.output)} == {"unchanged"}
    doc = json.loads((repo / "glue/jobs/customers_etl.json").read_text())
    doc["timeout_minutes"] = 45
    (repo / "glue/jobs/customers_etl.json").write_text(json.dumps(doc))
    res = runner.invoke(app, ["glue", "plan", str(repo), "--bucket", BUCKET])
    assert "update    customers_etl" in res.output and "~ Timeout: 30 -> 45" in res.output
    res = runner.invoke(app, ["glue", "apply", str(repo), "--bucket", BUCKET, "--json"])
    out = json.loads(res.output)
    assert out["applied"]["updated"] == ["customers_etl"] and out["uploaded"] == []
    assert boto3.client("glue").get_job(JobName="customers_etl")["Job"]["Timeout"] == 45


def test_apply_refuses_jobs_owned_by_others(reset_twin, tmp_path: Path) -> None:
    repo = tmp_path / "glue-etl"
    shutil.copytree(EXAMPLE, repo)
    boto3.client("glue").create_job(Name="customers_etl", Role="r", Command={"Name": "glueetl",
                                                                             "ScriptLocation": "s3://x/y.py"})
    res = runner.invoke(app, ["glue", "apply", str(repo), "--bucket", BUCKET])
    assert res.exit_code == 2
    assert "not owned by this repository; nothing was changed" in " ".join(res.output.split())
    assert boto3.client("glue").get_job(JobName="customers_etl")["Job"]["Role"] == "r"


def _boto3_only_path(tmp_path: Path) -> Path:
    """A directory holding only boto3 and its dependencies: what the Lambda Python runtime provides."""
    import boto3 as b
    import botocore
    import dateutil
    import jmespath
    import s3transfer
    import urllib3

    deps = tmp_path / "runtime"
    deps.mkdir()
    for mod in (b, botocore, dateutil, jmespath, s3transfer, urllib3):
        src = Path(mod.__file__).parent
        (deps / src.name).symlink_to(src)
    import six

    (deps / "six.py").symlink_to(Path(six.__file__))
    return deps


def test_lambda_zip_is_small_and_imports_with_boto3_only(tmp_path: Path) -> None:
    pkg = build_lambda_zip(tmp_path / "fn.zip")
    assert pkg.size_bytes < 100_000
    names = set(zipfile.ZipFile(pkg.path).namelist())
    assert "handler.py" in names and "pipekit/deploy/schema.json" in names
    assert "pipekit/deploy/user_parameters.schema.json" in names
    assert not any(n.startswith(("pandas", "pyarrow", "yaml", "aws_lambda_powertools")) for n in names)
    again = build_lambda_zip(tmp_path / "fn2.zip")
    assert again.sha256 == pkg.sha256  # reproducible bytes
    code = ("import sys; import handler, pipekit, pipekit.deploy; "
            "bad = [m for m in ('pandas', 'pyarrow', 'numpy', 'yaml', 'typer', 'jsonschema') if m in sys.modules]; "
            "assert not bad, bad; assert pipekit.__file__.startswith(sys.argv[1]), pipekit.__file__; print('ok')")
    env = {"PYTHONPATH": f"{pkg.path}{os.pathsep}{_boto3_only_path(tmp_path)}", "PATH": os.environ["PATH"]}
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(pkg.path)], env=env, capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_handler_from_the_zip_deploys_on_the_twin(glue_repo: GlueRepo, tmp_path: Path) -> None:
    pkg = build_lambda_zip(tmp_path / "fn.zip")
    commit = glue_repo.commit({"glue/jobs/zipped.json": job_config(run_after_deploy=False),
                               "glue/scripts/etl.py": "print('hi')\n"})
    event = glue_repo.event("invoke.json", commit=commit)
    code = ("import json, sys\nimport handler\n"
            "class Ctx:\n    def get_remaining_time_in_millis(self): return 600000\n"
            "print(json.dumps(handler.handler(json.load(sys.stdin), Ctx())))")
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    env.update(PYTHONPATH=f"{pkg.path}{os.pathsep}{_boto3_only_path(tmp_path)}", PATH=os.environ["PATH"])
    proc = subprocess.run([sys.executable, "-S", "-c", code], input=json.dumps(event), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "succeeded" and "created zipped" in out["summary"]
    assert job_record(event["CodePipeline.job"]["id"])["status"] == "Succeeded"
    assert boto3.client("glue").get_job(JobName="zipped")["Job"]["GlueVersion"] == "5.0"


def test_apply_run_starts_and_waits_for_changed_jobs(reset_twin, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    repo = tmp_path / "glue-etl"
    (repo / "glue/jobs").mkdir(parents=True)
    (repo / "glue/scripts").mkdir(parents=True)
    (repo / "glue/scripts/etl.py").write_text("import sys\nprint(sys.argv)\n")
    (repo / "glue/scripts/bad.py").write_text("raise RuntimeError('boom from the script')\n")
    (repo / "glue/jobs/good.json").write_text(job_config())
    (repo / "glue/jobs/bad.json").write_text(job_config(script="bad.py"))
    res = runner.invoke(app, ["glue", "apply", str(repo), "--bucket", BUCKET, "--run", "--poll", "0.3", "--json"])
    assert res.exit_code == 1, res.output  # one run failed
    runs = {r["job"]: r for r in json.loads(res.output)["runs"]}
    assert runs["good"]["state"] == "SUCCEEDED"
    assert runs["bad"]["state"] == "FAILED" and "RuntimeError: boom from the script" in runs["bad"]["error"]
    # nothing changed: a second apply --run starts nothing
    res = runner.invoke(app, ["glue", "apply", str(repo), "--bucket", BUCKET, "--run", "--poll", "0.3", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["runs"] == []


def test_with_yaml_zip_reads_yaml_configs_on_boto3_only_runtime(tmp_path: Path) -> None:
    pkg = build_lambda_zip(tmp_path / "fn.zip", with_yaml=True)
    code = ("from pipekit.deploy.config import parse_config\n"
            "c = parse_config('glue/jobs/y.yaml', b'script: etl.py\\nrole: r\\nnumber_of_workers: 3\\n')\n"
            "import yaml; assert yaml.__file__.startswith(__import__('sys').argv[1])\n"
            "print(c.name, c.number_of_workers)")
    env = {"PYTHONPATH": f"{pkg.path}{os.pathsep}{_boto3_only_path(tmp_path)}", "PATH": os.environ["PATH"]}
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(pkg.path)], env=env, capture_output=True, text=True)
    assert proc.stdout.strip() == "y 3", proc.stderr


def test_yaml_config_without_pyyaml_names_the_fix(tmp_path: Path) -> None:
    pkg = build_lambda_zip(tmp_path / "fn.zip")
    code = ("from pipekit.deploy.config import parse_config, JobConfigError\n"
            "try:\n    parse_config('glue/jobs/y.yaml', b'script: etl.py')\n"
            "except JobConfigError as e:\n    print(e.problems[0])")
    env = {"PYTHONPATH": f"{pkg.path}{os.pathsep}{_boto3_only_path(tmp_path)}", "PATH": os.environ["PATH"]}
    proc = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True)
    assert "glue/jobs/y.yaml: file: YAML configs need PyYAML" in proc.stdout and "--with-yaml" in proc.stdout, \
        proc.stdout + proc.stderr
