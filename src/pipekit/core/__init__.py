"""pipekit.core: pure customer-data rules (validate, clean, normalise, mask, flag, scan) on pandas and Arrow.

Pipeline order: validate -> drop rows with null/blank required values -> normalise -> drop duplicates
(on normalised, pre-mask values) -> mask per policy -> flag future timestamps. Nothing here does I/O
except ``MaskingPolicy.from_file``.
"""

from __future__ import annotations

from pipekit.core.masking import (
    CUSTOMER_POLICY,
    DEFAULT_KEY_ENV,
    GLUE_CUSTOMER_POLICY,
    REDACTED,
    ColumnRule,
    MaskingPolicy,
    apply_policy,
    column_key,
    email_kernel,
    hash_kernel,
    mask_column,
    mask_email,
    mask_table,
    partial_kernel,
    resolve_key,
)
from pipekit.core.normalize import (
    DEFAULT_REQUIRED,
    drop_duplicates,
    drop_duplicates_table,
    drop_nulls,
    drop_nulls_table,
    emails_kernel,
    first_occurrence_indices,
    names_kernel,
    normalize_emails,
    normalize_names,
    title_case_name,
    trim_kernel,
)
from pipekit.core.pii import ENTITIES, PiiReport, iban_valid, luhn_valid, scan_column, scan_pii
from pipekit.core.pipeline import (
    CleaningConfig,
    CleanReport,
    clean_dataframe,
    clean_table,
    dedup_batch,
    finalize_batch,
    normalize_batch,
)
from pipekit.core.timestamps import UTC_US, flag_future, future_flags, parse_timestamps, utc_now
from pipekit.core.validation import EMAIL_PATTERN, MAX_SAMPLE_ROWS, Problem, ValidationReport, validate

__all__ = [
    "CUSTOMER_POLICY",
    "DEFAULT_KEY_ENV",
    "DEFAULT_REQUIRED",
    "EMAIL_PATTERN",
    "ENTITIES",
    "GLUE_CUSTOMER_POLICY",
    "MAX_SAMPLE_ROWS",
    "REDACTED",
    "UTC_US",
    "CleanReport",
    "CleaningConfig",
    "ColumnRule",
    "MaskingPolicy",
    "PiiReport",
    "Problem",
    "ValidationReport",
    "apply_policy",
    "clean_dataframe",
    "clean_table",
    "column_key",
    "dedup_batch",
    "drop_duplicates",
    "drop_duplicates_table",
    "drop_nulls",
    "drop_nulls_table",
    "email_kernel",
    "emails_kernel",
    "finalize_batch",
    "first_occurrence_indices",
    "flag_future",
    "future_flags",
    "hash_kernel",
    "iban_valid",
    "luhn_valid",
    "mask_column",
    "mask_email",
    "mask_table",
    "names_kernel",
    "normalize_batch",
    "normalize_emails",
    "normalize_names",
    "parse_timestamps",
    "partial_kernel",
    "resolve_key",
    "scan_column",
    "scan_pii",
    "title_case_name",
    "trim_kernel",
    "utc_now",
    "validate",
]
