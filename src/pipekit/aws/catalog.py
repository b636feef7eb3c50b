"""Glue Data Catalog: databases, tables, and crawls that report what they created or changed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipekit.aws._calls import call, code_of
from pipekit.aws._client import client
from pipekit.errors import AwsError, JobRunError


def get_tables(database: str, *, session: Any | None = None) -> dict[str, dict[str, Any]]:
    """Every table of ``database`` by name (all pages)."""
    glue = client("glue", session)
    out: dict[str, dict[str, Any]] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"DatabaseName": database}
        if token:
            kwargs["NextToken"] = token
        page = call(glue.get_tables, f"Glue database {database!r} (GetTables)", **kwargs)
        out.update({t["Name"]: t for t in page.get("TableList", [])})
        token = page.get("NextToken")
        if not token:
            return out


def get_table(database: str, name: str, *, session: Any | None = None) -> dict[str, Any] | None:
    """One table, or None when it does not exist."""
    try:
        return call(client("glue", session).get_table, f"Glue table {database}.{name} (GetTable)",
                    DatabaseName=database, Name=name)["Table"]
    except AwsError as err:
        if code_of(err) == "EntityNotFoundException":
            return None
        raise


def table_columns(table: dict[str, Any]) -> list[tuple[str, str]]:
    """``[(name, type)]`` of a table, partition keys last."""
    sd = table.get("StorageDescriptor", {})
    cols = sd.get("Columns", []) + table.get("PartitionKeys", [])
    return [(c["Name"], c.get("Type", "")) for c in cols]


def table_serde(table: dict[str, Any]) -> str:
    """The table's SerDe class name."""
    return table.get("StorageDescriptor", {}).get("SerdeInfo", {}).get("SerializationLibrary", "")


def _shape(table: dict[str, Any]) -> tuple[Any, ...]:
    sd = table.get("StorageDescriptor", {})
    return (tuple(table_columns(table)), table_serde(table), sd.get("Location"),
            tuple(sorted((sd.get("SerdeInfo", {}).get("Parameters") or {}).items())))


@dataclass
class CrawlReport:
    """What one crawl did to the catalog."""

    crawler: str
    database: str
    status: str
    seconds: float
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def start_crawler(name: str, *, session: Any | None = None) -> None:
    """Start crawler ``name``."""
    call(client("glue", session).start_crawler, f"Glue crawler {name!r} (StartCrawler)", Name=name)


def get_crawler(name: str, *, session: Any | None = None) -> dict[str, Any]:
    """GetCrawler's ``Crawler`` structure."""
    return call(client("glue", session).get_crawler, f"Glue crawler {name!r} (GetCrawler)", Name=name)["Crawler"]


def wait_for_crawler(
    name: str,
    started_at: datetime,
    *,
    poll_s: float = 5.0,
    timeout_s: float = 1800.0,
    on_poll: Callable[[str], None] | None = None,
    session: Any | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the crawl started at ``started_at`` is over; JobRunError with Glue's message if it failed."""
    deadline = time.monotonic() + timeout_s
    seen_busy = False
    while True:
        crawler = get_crawler(name, session=session)
        state = crawler.get("State", "")
        last = crawler.get("LastCrawl") or {}
        if on_poll is not None:
            on_poll(state)
        seen_busy = seen_busy or state in {"RUNNING", "STOPPING"}
        started = last.get("StartTime")
        ours = seen_busy or (isinstance(started, datetime) and started.astimezone(UTC) >= started_at)
        if state == "READY" and ours:
            status = last.get("Status", "")
            if status in {"FAILED", "CANCELLED"}:
                raise JobRunError(
                    f"Glue crawler {name!r} crawl {status}: {last.get('ErrorMessage') or 'no reason given'}",
                    hint=f"see CloudWatch log group {last.get('LogGroup', '/aws-glue/crawlers')}",
                )
            return crawler
        if time.monotonic() > deadline:
            raise JobRunError(f"Glue crawler {name!r} still {state} after {timeout_s:.0f}s")
        sleep(poll_s)


def run_crawler(
    name: str,
    database: str,
    *,
    poll_s: float = 5.0,
    timeout_s: float = 1800.0,
    on_poll: Callable[[str], None] | None = None,
    session: Any | None = None,
) -> CrawlReport:
    """Start crawler ``name``, wait for it, and report which tables of ``database`` it created or changed."""
    before = {n: _shape(t) for n, t in get_tables(database, session=session).items()}
    began = time.monotonic()
    started_at = datetime.now(UTC).replace(microsecond=0)
    start_crawler(name, session=session)
    crawler = wait_for_crawler(name, started_at, poll_s=poll_s, timeout_s=timeout_s, on_poll=on_poll,
                               session=session)
    after = {n: _shape(t) for n, t in get_tables(database, session=session).items()}
    report = CrawlReport(name, database, (crawler.get("LastCrawl") or {}).get("Status", "SUCCEEDED"),
                         round(time.monotonic() - began, 2))
    for table, shape in sorted(after.items()):
        if table not in before:
            report.created.append(table)
        elif before[table] != shape:
            report.changed.append(table)
        else:
            report.unchanged.append(table)
    return report
