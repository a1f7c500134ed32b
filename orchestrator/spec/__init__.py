"""Job definitions: parse and validate YAML or dicts into frozen records. Pure: no DB, no Docker.

model: JobSpec and its records; fields: the one table of job keys and `parse_job`;
files: YAML texts, files and folders in batches; yaml12: the strict YAML loader.

Every problem is reported as `<file>: job '<name>': <field>: <what is wrong>`, so an
operator can go straight to the line to fix.
"""

from orchestrator.spec.fields import (
    FIELDS,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    REQUIRED,
    RESERVED_ENV_PREFIX,
    TABLE,
    Field,
    parse_job,
)
from orchestrator.spec.files import (
    JOB_FILE_SUFFIXES,
    job_files,
    load_job_texts,
    load_jobs,
    parse_default_notify,
    parse_jobs_text,
)
from orchestrator.spec.model import (
    DEFAULT_NOTIFY_ON,
    MASK,
    NOTIFY_EVENTS,
    NOTIFY_KINDS,
    SECRET_LOOKING_NAME,
    CatchupPolicy,
    CatchupSpec,
    Concurrency,
    HistorySpec,
    JobSpec,
    LoadedJob,
    NotifySpec,
    PortSpec,
    PullPolicy,
    Resources,
    RetryPolicy,
    SecretSpec,
    VolumeSpec,
    masked_definition,
)

__all__ = [
    "DEFAULT_NOTIFY_ON",
    "FIELDS",
    "JOB_FILE_SUFFIXES",
    "MASK",
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "NOTIFY_EVENTS",
    "NOTIFY_KINDS",
    "REQUIRED",
    "RESERVED_ENV_PREFIX",
    "SECRET_LOOKING_NAME",
    "TABLE",
    "CatchupPolicy",
    "CatchupSpec",
    "Concurrency",
    "Field",
    "HistorySpec",
    "JobSpec",
    "LoadedJob",
    "NotifySpec",
    "PortSpec",
    "PullPolicy",
    "Resources",
    "RetryPolicy",
    "SecretSpec",
    "VolumeSpec",
    "job_files",
    "load_job_texts",
    "load_jobs",
    "masked_definition",
    "parse_default_notify",
    "parse_job",
    "parse_jobs_text",
]
