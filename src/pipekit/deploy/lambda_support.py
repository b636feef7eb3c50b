"""What the deploy Lambda needs besides the pipeline: the source from the event, one-shot reporting,
a watchdog that reports failure before the Lambda is killed, and failure messages per error kind."""

from __future__ import annotations

import hashlib
import io
import logging
import random
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipekit.aws import codecommit, codepipeline
from pipekit.aws._calls import code_of
from pipekit.aws._client import client
from pipekit.deploy import _s3
from pipekit.deploy.config import JobConfigError
from pipekit.deploy.event import DeploySettings, PipelineJob
from pipekit.deploy.pipeline import FAILED, IN_PROGRESS, DeployTimeout, GlueRunFailed, Outcome
from pipekit.deploy.sources import CodeCommitSource, GitSource, S3ManifestStore, Source, ZipSource
from pipekit.errors import AwsError, DeployError, PipekitError, ThrottledError

log = logging.getLogger("pipekit.deploy")

#: Stop starting new steps when less than this is left; the watchdog fires at half of it.
SAFETY_MARGIN_MS = 20_000
#: PutJob*Result attempts and backoff (full jitter, capped): reporting is worth retrying longer than other calls.
RESULT_ATTEMPTS = 8
RESULT_BASE_DELAY_S = 0.5
RESULT_MAX_DELAY_S = 8.0
#: Stop retrying a success while this much time is left, to report failure instead before the Lambda ends.
RESULT_RESERVE_MS = 5_000


def _artifact_bytes(job: PipelineJob, *, session: Any | None) -> bytes:
    art = job.artifacts[0] if job.artifacts else None
    if art is None or not art.bucket or not art.key:
        raise DeployError(f"CodePipeline job {job.job_id} has no input artifact in S3 to read the source from.",
                          hint="Give the Invoke action the Source stage's output artifact as input.")
    creds = job.artifact_credentials
    s3 = None
    if creds.get("accessKeyId"):
        import boto3

        # The pipeline hands the action short-lived credentials scoped to its artifact bucket.
        s3 = client("s3", boto3.Session(aws_access_key_id=creds["accessKeyId"],
                                        aws_secret_access_key=creds.get("secretAccessKey"),
                                        aws_session_token=creds.get("sessionToken"),
                                        region_name=client("s3", session).meta.region_name))
    data = _s3.get_bytes(art.bucket, art.key, session=session, s3=s3)
    if data is None:
        raise DeployError(f"input artifact s3://{art.bucket}/{art.key} does not exist")
    return data


def make_source(job: PipelineJob, settings: DeploySettings, *, session: Any | None = None) -> Source:
    """The Source for ``settings.source``: CodeCommit API, the artifact zip, or a full clone in the zip."""
    if settings.source == "codecommit":
        assert settings.repository is not None
        revision = job.revision or codecommit.get_branch_head(settings.repository, settings.branch,
                                                              session=session)
        return CodeCommitSource(settings.repository, revision, session=session)
    data = _artifact_bytes(job, session=session)
    revision = job.revision or hashlib.sha256(data).hexdigest()[:40]
    if settings.source == "zip":
        store = S3ManifestStore(settings.bucket, f"deploy-state/{settings.owner}/manifests/", session=session)
        return ZipSource(data, revision, store)
    workdir = Path(tempfile.mkdtemp(prefix="pipekit-clone-"))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(workdir)
    if not (workdir / ".git").exists():
        raise DeployError("the git source needs a full-clone artifact (a zip containing .git), but the "
                          "artifact has no .git directory",
                          hint="Set the source action's OutputArtifactFormat to CODEBUILD_CLONE_REF and "
                               "package the clone, or use source 'codecommit' or 'zip'.")
    return GitSource(workdir, job.revision)


class ResultNotSent(DeployError):
    """Neither the result nor a failure could be reported to CodePipeline."""


class Reporter:
    """Reports a CodePipeline job's result exactly once, from whichever thread gets there first.

    The thread that claims the job sends its result, retrying throttling with capped backoff for as
    long as the invocation has time: an unreported job hangs the pipeline until the action times out.
    If a success (or progress report) cannot be sent, the same thread reports failure saying what was
    done. No thread sends a result after another one's was sent, and ``InvalidJobStateException``
    (the job already has a result, e.g. a retried Lambda) counts as sent.
    """

    def __init__(self, job_id: str, *, session: Any | None = None,
                 remaining_ms: Callable[[], int] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.job_id = job_id
        self.session = session
        self.remaining_ms = remaining_ms
        self.sleep = sleep
        self._lock = threading.Lock()
        #: The result this job has or is being given: succeeded, in_progress or failed (None: not yet).
        self.reported: str | None = None

    def _claim(self, what: str) -> bool:
        with self._lock:
            if self.reported is not None:
                log.warning("job %s already reported %s; not reporting %s", self.job_id, self.reported, what)
                return False
            self.reported = what
            return True

    def outcome(self, outcome: Outcome) -> None:
        """Report ``outcome`` (success, success with continuation token, or failure)."""
        if outcome.status == FAILED:
            self.failure(outcome.summary)
            return
        if not self._claim(outcome.status):
            return
        try:
            self._send("PutJobSuccessResult", lambda: codepipeline.put_job_success(
                self.job_id, outcome.summary, continuation_token=outcome.continuation_token,
                percent_complete=50 if outcome.status == IN_PROGRESS else 100, attempts=1, session=self.session),
                reserve_ms=RESULT_RESERVE_MS)
        except Exception as exc:
            # CodePipeline does not have the success: the claim is still ours, so report failure instead.
            log.error("job %s: could not report %s: %s", self.job_id, outcome.status, exc)
            self.reported = FAILED
            self._send_failure(_unsent(outcome, exc))
            return
        log.info("job %s: %s: %s", self.job_id, outcome.status, outcome.summary)

    def failure(self, message: str) -> None:
        """Report failure with ``message``."""
        if self._claim(FAILED):
            log.error("job %s failed: %s", self.job_id, message)
            self._send_failure(message)

    def _send_failure(self, message: str) -> None:
        try:
            self._send("PutJobFailureResult", lambda: codepipeline.put_job_failure(
                self.job_id, message, attempts=1, session=self.session), reserve_ms=0)
        except Exception as exc:
            self.reported = None  # nothing reached CodePipeline: leave the job to whoever can still report
            raise ResultNotSent(f"CodePipeline job {self.job_id}: no result could be reported ({exc}); "
                                f"the failure was: {message}",
                                hint="The Lambda fails so that its retry (or the action timeout) ends the job.") \
                from exc

    def _send(self, what: str, send: Callable[[], None], *, reserve_ms: int) -> None:
        """Call ``send`` until it goes through; retry throttling while more than ``reserve_ms`` would be left."""
        started = time.monotonic()
        for attempt in range(1, RESULT_ATTEMPTS + 1):
            try:
                send()
                return
            except AwsError as err:
                if code_of(err) == "InvalidJobStateException":
                    log.warning("job %s already has a result; %s not sent: %s", self.job_id, what, err)
                    return
                if not err.retryable:
                    raise
                delay = random.uniform(0, min(RESULT_MAX_DELAY_S, RESULT_BASE_DELAY_S * 2 ** (attempt - 1)))
                out_of_time = (self.remaining_ms is not None
                               and self.remaining_ms() - delay * 1000 < reserve_ms)
                if attempt == RESULT_ATTEMPTS or out_of_time:
                    raise ThrottledError(
                        f"CodePipeline job {self.job_id} ({what}): still throttled after {attempt} attempt(s) "
                        f"over {time.monotonic() - started:.0f}s.",
                        hint="Raise the CodePipeline API quota, or retry the stage later.") from err
                log.warning("job %s: %s throttled (attempt %d of %d); retrying in %.1fs", self.job_id, what,
                            attempt, RESULT_ATTEMPTS, delay)
                self.sleep(delay)


def _unsent(outcome: Outcome, exc: BaseException) -> str:
    """The failure to report when CodePipeline did not accept ``outcome``: what was done, and what to do."""
    reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, PipekitError) else str(exc)
    if outcome.status == IN_PROGRESS:
        return (f"Glue runs are going, but CodePipeline did not accept the progress report ({reason}). "
                f"{outcome.summary}. Retry the stage: the new job resumes the recorded runs and starts none "
                "twice.")
    return (f"The deployment finished and is recorded, but CodePipeline did not accept the success result "
            f"({reason}). {outcome.summary} Retry the stage: it finds the revision deployed and succeeds at once.")


def failure_message(exc: BaseException) -> str:
    """The message CodePipeline shows for ``exc``: what kind of failure, and the details."""
    if isinstance(exc, JobConfigError):
        return f"Bad Glue job config. {exc}"
    if isinstance(exc, GlueRunFailed):
        return f"Glue job run failed. {exc}"
    if isinstance(exc, DeployTimeout):
        return f"Lambda about to time out. {exc}"
    if isinstance(exc, AwsError):
        retry = " (throttled; retried and gave up - re-run the stage later)" if exc.retryable else ""
        return f"AWS API error{retry}. {exc}"
    if isinstance(exc, PipekitError):
        return f"Deployment failed. {exc}"
    return (f"Unexpected error: {type(exc).__name__}: {exc}. This is a bug in the deployment; "
            "the Lambda's CloudWatch log has the traceback.")


class Deadline:
    """Time left in this invocation, from the Lambda context, and the watchdog that reports before the end."""

    def __init__(self, remaining_ms: Callable[[], int], margin_ms: int | None = None) -> None:
        self.remaining_ms = remaining_ms
        self.margin_ms = SAFETY_MARGIN_MS if margin_ms is None else margin_ms
        self.step = "starting"
        self._timer: threading.Timer | None = None
        #: Set when the watchdog has fired: the job is reported failed, so no further step may start.
        self.fired = threading.Event()

    def check(self, step: str) -> None:
        """Raise DeployTimeout instead of starting ``step`` when too little time is left or the watchdog fired."""
        if self.fired.is_set():
            raise DeployTimeout(f"the watchdog already reported this job as failed; '{step}' not started.",
                                hint="Raise the Lambda timeout; the next run resumes idempotently.")
        self.step = step
        left = self.remaining_ms()
        if left < self.margin_ms:
            raise DeployTimeout(f"only {left / 1000:.1f}s left before '{step}'; stopped cleanly.",
                                hint="Raise the Lambda timeout; the next run resumes idempotently.")

    def arm(self, on_expiry: Callable[[str], None]) -> None:
        """Call ``on_expiry(message)`` from a timer thread if the invocation is still going near its end."""
        delay = max(0.0, (self.remaining_ms() - self.margin_ms / 2) / 1000)
        started = time.monotonic()

        def fire() -> None:
            self.fired.set()  # first, so the main thread starts nothing more while the failure is sent
            on_expiry(f"Lambda about to time out: still in step '{self.step}' after "
                      f"{time.monotonic() - started:.0f}s; reported failure instead of hanging. "
                      "Re-run the stage; deployment is idempotent.")

        self._timer = threading.Timer(delay, fire)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        """Cancel the watchdog."""
        if self._timer is not None:
            self._timer.cancel()
