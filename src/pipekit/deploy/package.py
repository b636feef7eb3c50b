"""Build the deploy Lambda's zip: the handler plus pipekit's deploy code, nothing the runtime lacks.

The Lambda Python runtime ships boto3; everything else here is pipekit's own pure-Python code. The
zip gets its own minimal ``pipekit/__init__.py`` and ``pipekit/aws/__init__.py`` so that importing the
deploy code never pulls in pandas. Entries have fixed timestamps, so the same sources give the same
bytes (and the same sha256), which keeps CloudFormation/Lambda updates idempotent.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pipekit
from pipekit.io.atomic import atomic_write_bytes

#: Modules (relative to the pipekit package) the deploy code imports.
MODULES: tuple[str, ...] = (
    "errors.py", "_extras.py", "py.typed",
    "aws/_client.py", "aws/_calls.py", "aws/glue.py", "aws/codecommit.py", "aws/codepipeline.py", "aws/ssm.py",
    "deploy/__init__.py", "deploy/_jsonschema.py", "deploy/_s3.py", "deploy/apply.py", "deploy/config.py",
    "deploy/event.py", "deploy/lambda_support.py", "deploy/local.py", "deploy/pipeline.py", "deploy/plan.py",
    "deploy/runs.py", "deploy/sources.py", "deploy/trigger.py", "deploy/schema.json",
    "deploy/user_parameters.schema.json",
)
_STUBS = {
    "pipekit/__init__.py": '"""pipekit: the Glue deploy subset packaged for the CodePipeline Lambda."""\n\n'
                           '__version__ = "{version}"\n',
    "pipekit/aws/__init__.py": '"""pipekit.aws (deploy subset)."""\n',
}
_EPOCH = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class LambdaPackage:
    """The built zip: where, how big, its sha256 and what is in it."""

    path: Path
    size_bytes: int
    sha256: str
    files: tuple[str, ...]


def default_handler() -> Path:
    """``adapters/lambda/handler.py`` of this checkout."""
    return Path(pipekit.__file__).resolve().parents[2] / "adapters" / "lambda" / "handler.py"


def _add(z: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    z.writestr(info, data, compresslevel=9)


def build_lambda_zip(out: str | Path, *, handler: str | Path | None = None, with_yaml: bool = False) -> LambdaPackage:
    """Write the Lambda zip to ``out`` atomically; ``with_yaml`` adds PyYAML's pure-Python code for .yaml configs."""
    src = Path(pipekit.__file__).resolve().parent
    handler_path = Path(handler) if handler else default_handler()
    if not handler_path.is_file():
        raise FileNotFoundError(handler_path)
    entries: dict[str, bytes] = {"handler.py": handler_path.read_bytes()}
    for name, text in _STUBS.items():
        entries[name] = text.format(version=pipekit.__version__).encode()
    for rel in MODULES:
        entries[f"pipekit/{rel}"] = (src / rel).read_bytes()
    if with_yaml:
        import yaml

        ydir = Path(yaml.__file__).parent
        # Only the .py files: the C accelerator is platform-specific and PyYAML falls back without it.
        for p in sorted(ydir.glob("*.py")):
            entries[f"yaml/{p.name}"] = p.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in sorted(entries):
            _add(z, name, entries[name])
    data = buf.getvalue()
    atomic_write_bytes(out, data)
    return LambdaPackage(Path(out), len(data), hashlib.sha256(data).hexdigest(), tuple(sorted(entries)))
