"""Deploy Lambda footprint: zip size, and cold import time on a boto3-only interpreter (the Lambda runtime).

    .venv/bin/python benchmarks/bench_lambda.py [--runs 15] [--json]

Cold import = a fresh ``python -S`` process whose path holds only the zip and boto3 + its dependencies,
timing ``import handler`` (pipekit's deploy code; boto3 itself is imported lazily on the first call)
and then the first boto3 client, which is what a cold start pays before the first API call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

_PROBE = """
import sys, time
t0 = time.perf_counter()
import handler
t1 = time.perf_counter()
import boto3
boto3.client("codepipeline", region_name="us-east-1")
t2 = time.perf_counter()
heavy = sorted(m for m in ("pandas", "pyarrow", "numpy", "yaml", "typer", "jsonschema") if m in sys.modules)
print(f"{t1 - t0:.6f} {t2 - t1:.6f} {','.join(heavy) or '-'}")
"""


def _runtime_dir(tmp: Path) -> Path:
    import boto3
    import botocore
    import dateutil
    import jmespath
    import s3transfer
    import six
    import urllib3

    deps = tmp / "runtime"
    deps.mkdir()
    for mod in (boto3, botocore, dateutil, jmespath, s3transfer, urllib3):
        (deps / Path(mod.__file__).parent.name).symlink_to(Path(mod.__file__).parent)
    (deps / "six.py").symlink_to(Path(six.__file__))
    return deps


def main() -> None:
    from pipekit.deploy.package import build_lambda_zip

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        pkg = build_lambda_zip(tmp / "fn.zip")
        yaml_pkg = build_lambda_zip(tmp / "fn-yaml.zip", with_yaml=True)
        uncompressed = sum(i.file_size for i in zipfile.ZipFile(pkg.path).infolist())
        env = {"PYTHONPATH": f"{pkg.path}{os.pathsep}{_runtime_dir(tmp)}", "PATH": os.environ["PATH"],
               "PYTHONDONTWRITEBYTECODE": "1"}
        imports, clients, heavy = [], [], set()
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, "-S", "-c", _PROBE], env=env, capture_output=True, text=True,
                                 check=True).stdout.split()
            imports.append(float(out[0]) * 1000)
            clients.append(float(out[1]) * 1000)
            heavy.add(out[2])
    result = {
        "zip_bytes": pkg.size_bytes,
        "zip_files": len(pkg.files),
        "uncompressed_bytes": uncompressed,
        "zip_with_yaml_bytes": yaml_pkg.size_bytes,
        "runs": args.runs,
        "import_handler_ms_median": round(statistics.median(imports), 1),
        "import_handler_ms_p90": round(sorted(imports)[int(0.9 * (len(imports) - 1))], 1),
        "first_boto3_client_ms_median": round(statistics.median(clients), 1),
        "heavy_modules_loaded": sorted(heavy),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("| metric | value |\n|---|---|")
    print(f"| zip size | {result['zip_bytes'] / 1024:.1f} KiB ({result['zip_files']} files, "
          f"{uncompressed / 1024:.0f} KiB uncompressed) |")
    print(f"| zip size with `--with-yaml` | {result['zip_with_yaml_bytes'] / 1024:.1f} KiB |")
    print(f"| cold `import handler` (median of {args.runs}) | {result['import_handler_ms_median']} ms "
          f"(p90 {result['import_handler_ms_p90']} ms) |")
    print(f"| first boto3 client after that (median) | {result['first_boto3_client_ms_median']} ms |")
    print(f"| heavy modules loaded | {', '.join(result['heavy_modules_loaded'])} |")
    print(f"\nPython {result['python']}, {result['machine']}")


if __name__ == "__main__":
    main()
