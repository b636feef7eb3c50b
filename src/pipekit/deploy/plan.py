"""Reconciliation of Glue jobs: a pure ``plan(desired, current)`` and the ``apply`` that executes it."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipekit.deploy.config import CONFIG_TAG, OWNER_TAG, JobConfig


class ChangeKind(enum.Enum):
    """What a plan does to one job."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    #: Owned by this repository but no config names it: reported, deleted only with ``prune``.
    ORPHAN = "orphan"
    #: The repository wants a job that exists but is not owned by it: never touched, the plan fails.
    CONFLICT = "conflict"


#: Job fields a config controls. UpdateJob resets any field it is not given, so all are compared.
MANAGED_FIELDS: tuple[str, ...] = (
    "Description", "Role", "Command", "GlueVersion", "WorkerType", "NumberOfWorkers", "Timeout",
    "MaxRetries", "ExecutionProperty", "ExecutionClass", "DefaultArguments", "Connections",
    "SecurityConfiguration",
)
#: What AWS reports for a field the job never set, so "unset" and "default" compare equal.
_DEFAULTS: dict[str, Any] = {
    "Description": "",
    "DefaultArguments": {},
    "Connections": {"Connections": []},
    "ExecutionClass": "STANDARD",
    "ExecutionProperty": {"MaxConcurrentRuns": 1},
    "MaxRetries": 0,
    "SecurityConfiguration": None,
}
#: Fields whose dict values are diffed key by key (DefaultArguments.--source_path).
_FLATTEN = ("DefaultArguments", "Command", "ExecutionProperty")


@dataclass(frozen=True)
class DesiredJob:
    """A job as the repository wants it."""

    name: str
    definition: Mapping[str, Any]
    tags: Mapping[str, str]
    config_path: str = ""

    @classmethod
    def from_config(cls, config: JobConfig, *, bucket: str, owner: str, prefix: str = "scripts/") -> DesiredJob:
        """Desired state of ``config``'s job; tags gain the ownership and config-path tags."""
        tags = {**config.tags, OWNER_TAG: owner, CONFIG_TAG: config.path}
        return cls(config.name, config.definition(bucket, prefix), tags, config.path)


@dataclass(frozen=True)
class CurrentJob:
    """A job as Glue has it: its GetJob structure and its tags."""

    name: str
    definition: Mapping[str, Any]
    tags: Mapping[str, str]

    @property
    def owner(self) -> str | None:
        """The repository that owns the job, from its ownership tag."""
        return self.tags.get(OWNER_TAG)


@dataclass(frozen=True)
class FieldDiff:
    """One field that differs: ``old`` is Glue's value, ``new`` the config's."""

    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.field}: {self.old!r} -> {self.new!r}"


@dataclass(frozen=True)
class Change:
    """What ``apply`` will do to one job, and why."""

    kind: ChangeKind
    job_name: str
    desired: DesiredJob | None = None
    diffs: tuple[FieldDiff, ...] = ()
    tags_to_add: Mapping[str, str] = field(default_factory=dict)
    tags_to_remove: tuple[str, ...] = ()
    reason: str = ""

    @property
    def needs_update(self) -> bool:
        """True when the job definition itself must be rewritten (not only tags)."""
        return self.kind is ChangeKind.UPDATE and bool(self.diffs)

    def short(self) -> str:
        """One line: ``updated customers (NumberOfWorkers: 2 -> 4, +tag team)``."""
        parts = [f"{d.field}: {d.old!r} -> {d.new!r}" for d in self.diffs]
        parts += [f"+tag {k}" for k in sorted(self.tags_to_add) if self.kind is not ChangeKind.CREATE]
        parts += [f"-tag {k}" for k in self.tags_to_remove]
        if self.reason:
            parts.append(self.reason)
        verb = {"create": "created", "update": "updated", "orphan": "orphaned"}.get(self.kind.value, self.kind.value)
        return f"{verb} {self.job_name}" + (f" ({', '.join(parts)})" if parts else "")

    def describe(self) -> str:
        """A short multi-line description for plans, logs and pipeline summaries."""
        head = f"{self.kind.value:9} {self.job_name}"
        if self.reason:
            head += f"  ({self.reason})"
        lines = [head]
        lines += [f"            ~ {d}" for d in self.diffs]
        lines += [f"            + tag {k}={v!r}" for k, v in sorted(self.tags_to_add.items())]
        lines += [f"            - tag {k}" for k in self.tags_to_remove]
        return "\n".join(lines)


def _norm(name: str, value: Any) -> Any:
    if value is None or value == {} or value == "":
        return _DEFAULTS.get(name, value)
    if name == "Connections" and isinstance(value, Mapping):
        return {"Connections": sorted(value.get("Connections") or [])}
    return value


def diff_definition(desired: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[FieldDiff, ...]:
    """Field-level differences between a desired definition and Glue's, over MANAGED_FIELDS."""
    diffs: list[FieldDiff] = []
    for name in MANAGED_FIELDS:
        new, old = _norm(name, desired.get(name)), _norm(name, current.get(name))
        if new == old:
            continue
        if name in _FLATTEN and isinstance(new, Mapping) and isinstance(old, Mapping | None):
            old = old or {}
            # Command.PythonVersion etc.: only keys the config sets are compared for Command.
            keys = sorted(set(new) | (set() if name == "Command" else set(old)))
            diffs += [FieldDiff(f"{name}.{k}", old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]
        else:
            diffs.append(FieldDiff(name, old, new))
    return tuple(diffs)


def _tag_diff(desired: Mapping[str, str], current: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    add = {k: v for k, v in desired.items() if current.get(k) != v}
    # aws:* tags belong to AWS (CloudFormation etc.) and cannot be removed by callers.
    remove = tuple(sorted(k for k in current if k not in desired and not k.startswith("aws:")))
    return add, remove


def plan(desired: Iterable[DesiredJob], current: Mapping[str, CurrentJob], *, owner: str) -> list[Change]:
    """The changes that make Glue match ``desired``; jobs not owned by ``owner`` are never changed.

    ``current`` holds the Glue jobs that exist among the desired names (and any others the caller
    wants checked for orphans). Pure: no AWS calls; the result is sorted by job name.
    """
    changes: list[Change] = []
    wanted = {d.name: d for d in desired}
    for name, want in wanted.items():
        have = current.get(name)
        if have is None:
            changes.append(Change(ChangeKind.CREATE, name, want, tags_to_add=dict(want.tags)))
            continue
        if have.owner != owner:
            who = f"owned by {have.owner!r}" if have.owner else f"not managed by pipekit (no {OWNER_TAG} tag)"
            changes.append(Change(ChangeKind.CONFLICT, name, want, reason=f"job exists and is {who}; "
                                  "rename the config or tag the job to adopt it"))
            continue
        diffs = diff_definition(want.definition, have.definition)
        add, remove = _tag_diff(want.tags, have.tags)
        kind = ChangeKind.UPDATE if diffs or add or remove else ChangeKind.UNCHANGED
        changes.append(Change(kind, name, want, diffs, add, remove))
    for name, have in current.items():
        if name not in wanted and have.owner == owner:
            changes.append(Change(ChangeKind.ORPHAN, name,
                                  reason="no config for it at this revision; left in place"))
    return sorted(changes, key=lambda c: c.job_name)


def summarize(changes: Iterable[Change]) -> dict[str, int]:
    """Count of changes per kind, e.g. ``{"create": 1, "update": 0, ...}``."""
    counts = {k.value: 0 for k in ChangeKind}
    for c in changes:
        counts[c.kind.value] += 1
    return counts
