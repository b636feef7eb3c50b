"""pipekit's typed errors: one root, one subclass per domain, a retryable marker.

Every message names the file, row, column or job involved and says what to do next.
Third-party errors are wrapped at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class PipekitError(Exception):
    """Root of every error pipekit raises on purpose."""

    #: True when trying the same call again later may succeed (throttling, a busy resource).
    retryable: bool = False
    #: Process exit code the CLI uses for this error (2 = bad usage or unreadable input).
    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  -> {hint}" if hint else message)


class ConfigError(PipekitError):
    """A configuration, policy, argument or job config is invalid."""


class InputError(PipekitError):
    """An input file cannot be read as asked (empty, wrong encoding, malformed rows)."""


class ValidationError(PipekitError):
    """Data failed validation; ``report`` holds every problem found."""

    exit_code = 1

    def __init__(self, message: str, *, report: object | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class StorageError(PipekitError):
    """Reading or writing files or objects failed."""


class AwsError(PipekitError):
    """An AWS API call failed; wraps botocore errors with the resource involved."""

    #: The AWS error code, set by pipekit.aws._calls.call on the errors it raises (unset otherwise).
    code: str


class ThrottledError(AwsError):
    """AWS throttled the call; retry later."""

    retryable = True


class JobRunError(AwsError):
    """A Glue job run, crawl or Athena query ended in failure; the message carries the service's reason."""

    exit_code = 1


class DeployError(PipekitError):
    """Planning or applying Glue job deployments failed."""


class MissingExtraError(PipekitError):
    """An optional dependency is not installed; the message gives the exact pip command."""


class DatasetError(PipekitError):
    """A dataset download or check failed (credentials, network, checksum, schema)."""


class ModelError(PipekitError):
    """A model cannot be trained, loaded or promoted."""
