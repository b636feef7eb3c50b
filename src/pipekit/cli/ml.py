"""`pipekit ml`: download the Iris dataset, train and version a model, predict with it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from pipekit.cli._common import emit_json, escape, out_console, user_errors

ml_app = typer.Typer(
    help="Download Iris from Kaggle (checksummed, cached), train/evaluate/version a model, predict.",
    no_args_is_help=True,
)


@ml_app.command("download")
def download_cmd(
    data_dir: Path = typer.Option(
        Path("data"), "--data-dir", "-d", help="Folder for the dataset and manifest."
    ),
    slug: str = typer.Option("saurabh00007/iriscsv", help="Kaggle dataset owner/name."),
    offline_fallback: bool = typer.Option(
        False, "--offline-fallback", help="Without credentials or network, use scikit-learn's bundled Iris."
    ),
    force: bool = typer.Option(False, "--force", help="Download even if the checksummed copy is present."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Download a Kaggle dataset with the official client (KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json)."""
    from pipekit.ml import download_dataset, validate_iris_csv

    with user_errors():
        manifest = download_dataset(data_dir, slug, offline_fallback=offline_fallback, force=force)
        csvs = [f.name for f in manifest.files if f.name.lower().endswith(".csv")]
        report = validate_iris_csv(data_dir / csvs[0]) if csvs and slug == "saurabh00007/iriscsv" else None
    if as_json:
        emit_json({**asdict(manifest), "validated": report is not None})
        return
    state = "already present (checksums match), nothing downloaded" if manifest.cached else "downloaded"
    out_console.print(f"{manifest.slug}: {state} -> {data_dir}", highlight=False)
    out_console.print(f"  source: {manifest.source}", highlight=False)
    if manifest.fallback:
        out_console.print(
            f"  [yellow]offline fallback used:[/yellow] {escape(str(manifest.fallback_reason))}", markup=True,
            highlight=False,
        )
    for entry in manifest.files:
        out_console.print(f"  {entry.name}  {entry.size} bytes  sha256 {entry.sha256}", highlight=False)
    if report is not None:
        out_console.print(
            f"  validated: {report.rows} rows, columns {', '.join(report.columns)}", highlight=False
        )


@ml_app.command("train")
def train_cmd(
    csv: Path = typer.Argument(..., help="Iris CSV (Kaggle layout: Id, SepalLengthCm, ..., Species)."),
    models_dir: Path = typer.Option(Path("models"), "--models-dir", "-m", help="Where model versions go."),
    seed: int = typer.Option(42, help="Seed for the split, CV folds and models."),
    test_size: float = typer.Option(0.2, help="Hold-out fraction (0.05-0.5)."),
    promote: bool = typer.Option(True, "--promote/--no-promote", help="Make the model current if not worse."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Validate CSV, compare candidates with stratified CV, evaluate on a hold-out split, version and promote."""
    from pipekit.ml import run_training
    from pipekit.ml.settings import settings_from_params

    with user_errors():
        settings = settings_from_params(
            {"seed": seed, "test_size": test_size, "models_dir": str(models_dir)}, "."
        )
        result = run_training(csv, settings.models_dir, settings.training, promote=promote)
    summary = result.to_dict()
    if as_json:
        emit_json(summary)
        return
    m = result.metrics
    out_console.print("cross-validation (" + result.metadata["config"]["scoring"] + "):", highlight=False)
    for cand in result.metadata["cv"]:
        out_console.print(f"  {cand['name']:<20} {cand['mean']:.4f} ± {cand['std']:.4f}", highlight=False)
    out_console.print(f"chosen: {result.metadata['chosen']['name']}", highlight=False)
    out_console.print(
        f"hold-out ({m.test_rows} rows): accuracy {m.accuracy:.4f}, macro F1 {m.f1_macro:.4f}",
        highlight=False,
    )
    out_console.print("confusion matrix (rows = true, columns = predicted):", highlight=False)
    out_console.print(" " * 19 + " ".join(f"{label.removeprefix('Iris-')[:4]:>4}" for label in m.labels), highlight=False)
    for label, row in zip(m.labels, m.confusion_matrix, strict=True):
        out_console.print(f"  {label:<16} " + " ".join(f"{v:>4}" for v in row), highlight=False)
    out_console.print(f"model:   {summary['model']}", highlight=False)
    out_console.print(f"metrics: {summary['metrics_file']}", highlight=False)
    out_console.print(f"plot:    {summary['plot']}", highlight=False)
    if result.decision is not None:
        verdict = "promoted to current" if result.decision.promoted else "NOT promoted"
        out_console.print(f"{verdict}: {result.decision.reason}", highlight=False)


@ml_app.command("predict")
def predict_cmd(
    model: Path = typer.Argument(
        ..., help="A model version folder, or a models folder (uses its current model)."
    ),
    csv: Path = typer.Argument(
        ..., help="CSV with SepalLengthCm, SepalWidthCm, PetalLengthCm, PetalWidthCm."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write rows + prediction here (CSV) instead of stdout."
    ),
    allow_version_mismatch: bool = typer.Option(
        False,
        "--allow-version-mismatch",
        help="Load even if library versions differ from the model's sidecar.",
    ),
) -> None:
    """Predict the species of each row with a saved model (its sidecar's library versions are checked)."""
    from pipekit.io.atomic import atomic_write_text
    from pipekit.ml.pipeline import predict_csv

    with user_errors():
        if out is not None and out.resolve() == csv.resolve():
            from pipekit.errors import ConfigError

            raise ConfigError(f"--out {out} would overwrite the input.", hint="Choose another output path.")
        frame = predict_csv(model, csv, allow_version_mismatch=allow_version_mismatch)
    text = frame.to_csv(index=False, lineterminator="\n")
    if out is None:
        typer.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        out_console.print(f"{len(frame)} predictions -> {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the `ml` group to the root app."""
    app.add_typer(ml_app, name="ml")
