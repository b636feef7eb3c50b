"""Suite-wide test options (every tests/ directory; the per-directory conftests add their own fixtures).

Shifted clock, opt-in: ``PIPEKIT_TEST_NOW=<ISO-8601 instant>`` runs the whole session with this process's
clock moved there (time-machine, ``tick=True``: time still passes from that instant on). It proves that no
test depends on today's date: the sample data has sign-ups in 2015-2025 and "future" rows in 2031-2035,
so a test that counts future rows without a fixed ``now`` breaks once the real clock reaches 2031, and one
that reads the clock may break on a month end, a year end or a leap day. For example::

    PIPEKIT_TEST_NOW=2031-07-01T00:00:00Z .venv/bin/python -m pytest -q tests/core tests/io tests/cli
    PIPEKIT_TEST_NOW=2028-02-29T23:59:30Z .venv/bin/python -m pytest -q tests/core tests/io tests/cli

Limits: only this Python process travels. Subprocesses (the shell script, Airflow, the moto/twin server,
Spark's JVM) keep the real clock, and botocore signs requests with the shifted one, so AWS-twin tests are
expected to fail under a shifted clock for reasons that are not bugs. The time zone is left as it is (a
plain timestamp is passed to time-machine, which would otherwise set TZ for named zones). Naive values are
taken as UTC. Unset (the normal run), nothing is patched and time-machine is not even imported, so the
light core venv (``make test-core``), which does not install it, is unaffected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

TEST_NOW_ENV = "PIPEKIT_TEST_NOW"


def _test_now() -> datetime | None:
    raw = os.environ.get(TEST_NOW_ENV, "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise pytest.UsageError(f"{TEST_NOW_ENV}={raw!r} is not an ISO-8601 instant, e.g. 2031-07-01T00:00:00Z") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def pytest_configure(config: pytest.Config) -> None:
    # A bad value or a missing time-machine stops the run at once, with one message.
    if _test_now() is not None:
        try:
            import time_machine  # noqa: F401
        except ImportError as exc:
            raise pytest.UsageError(f"{TEST_NOW_ENV} needs time-machine (the dev extra): pip install time-machine") from exc


def pytest_report_header() -> str | None:
    moment = _test_now()
    return f"{TEST_NOW_ENV}: in-process clock starts at {moment.isoformat()} (time-machine, ticking)" if moment else None


@pytest.fixture(scope="session", autouse=True)
def _shifted_clock() -> Iterator[None]:
    """Travel this process's clock to ``$PIPEKIT_TEST_NOW`` for the whole session; a no-op when it is unset."""
    moment = _test_now()
    if moment is None:
        yield
        return
    import time_machine

    with time_machine.travel(moment.timestamp(), tick=True):
        yield


@pytest.fixture(autouse=True)
def private_state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh XDG_STATE_HOME for every test (subprocesses inherit it through the environment):
    `--bad-rows quarantine` keeps raw rows in a private folder under it by default, and a test must never
    write to the real home directory."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state
