"""Property tests: whatever YAML comes in, the loader returns valid records or raises
our own InvalidSpecError; nothing else escapes."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import InvalidSpecError
from orchestrator.spec import FIELDS, JobSpec, parse_job, parse_jobs_text

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "@daily",
            "@every 5s",
            "*/5 * * * *",
            "0 3 * * *",
            "61 * * * *",
            "UTC",
            "Europe/Berlin",
            "15m",
            "1h30m",
            "/srv:/out",
            "cache:/c:ro",
            "8080",
            "9000:9000",
            "forbid",
            "latest",
            "256m",
            "busybox",
            "a",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), children, max_size=5
        ),
    ),
    max_leaves=12,
)
VALID = {"name": "job", "schedule": "*/5 * * * *", "image": "busybox"}


def check(result: list[JobSpec]) -> None:
    for spec in result:
        assert isinstance(spec, JobSpec)
        assert parse_job(spec.to_dict()) == spec  # what we accept, we can store and reload


@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    try:
        check(parse_jobs_text(text, "fuzz.yaml"))
    except InvalidSpecError as error:
        assert str(error).startswith("fuzz.yaml:")


@given(values)
def test_arbitrary_structures(document: Any) -> None:
    text = yaml.safe_dump(document)
    try:
        check(parse_jobs_text(text, "fuzz.yaml"))
    except InvalidSpecError as error:
        assert str(error).startswith("fuzz.yaml:")


@given(st.dictionaries(st.sampled_from(FIELDS), values, max_size=6))
def test_valid_jobs_with_arbitrary_fields_changed(changes: dict[str, Any]) -> None:
    document = {**VALID, **changes}
    try:
        check(parse_jobs_text(yaml.safe_dump(document), "fuzz.yaml"))
    except InvalidSpecError as error:
        message = str(error)
        assert message.startswith("fuzz.yaml: job")
        # the problem is named by one of the fields we changed
        assert any(f"{key}" in message for key in changes), message
