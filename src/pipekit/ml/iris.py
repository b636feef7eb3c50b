"""The Iris dataset's shape: the Kaggle ``saurabh00007/iriscsv`` layout, built from scikit-learn's bundled copy."""

from __future__ import annotations

import io
import zipfile

import pandas as pd

#: The Kaggle dataset the DAG downloads by default.
IRIS_SLUG = "saurabh00007/iriscsv"
#: The one file in that dataset.
IRIS_FILE = "Iris.csv"
#: Feature columns, in the Kaggle CSV's names and order.
FEATURES: tuple[str, ...] = ("SepalLengthCm", "SepalWidthCm", "PetalLengthCm", "PetalWidthCm")
#: Label column and its allowed values (the Kaggle CSV keeps the UCI "Iris-" prefix).
TARGET = "Species"
ID_COLUMN = "Id"
SPECIES: tuple[str, ...] = ("Iris-setosa", "Iris-versicolor", "Iris-virginica")
#: Columns of ``Iris.csv``, in order.
COLUMNS: tuple[str, ...] = (ID_COLUMN, *FEATURES, TARGET)
#: Rows in the published dataset: 50 per species.
ROWS = 150

# A fixed timestamp keeps the stand-in's zip byte-for-byte reproducible, so its sha256 is stable.
_ZIP_DATE = (2018, 1, 1, 0, 0, 0)


def iris_frame() -> pd.DataFrame:
    """Iris as the Kaggle ``Iris.csv`` lays it out (Id, four *Cm columns, Species), from scikit-learn's copy."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    frame = pd.DataFrame(bunch.data, columns=list(FEATURES)).round(1)
    frame.insert(0, ID_COLUMN, range(1, len(frame) + 1))
    frame[TARGET] = [SPECIES[i] for i in bunch.target]
    return frame


def iris_csv_bytes() -> bytes:
    """``Iris.csv`` as bytes, in the Kaggle file's format."""
    return iris_frame().to_csv(index=False, lineterminator="\n").encode("utf-8")


def iris_zip_bytes() -> bytes:
    """A zip holding ``Iris.csv``, as the Kaggle API serves a dataset archive."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(IRIS_FILE, date_time=_ZIP_DATE), iris_csv_bytes())
    return buf.getvalue()
