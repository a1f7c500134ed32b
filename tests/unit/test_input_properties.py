"""Property tests over generated bad input, one per class the hostile tester found:
whatever comes in, our own error or a faithful value, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.cli.main import cli
from orchestrator.errors import QUOTE_LIMIT, InvalidInputError, InvalidSpecError, quote
from orchestrator.spec import parse_job, parse_jobs_text
from orchestrator.units import MAX_SIZE, parse_duration, parse_size

# Plain scalars that YAML 1.1 would have turned into something else.
AMBIGUOUS = st.from_regex(
    r"\A(?:0[0-7]{1,5}|[0-9]{1,3}:[0-5][0-9](?::[0-5][0-9])?|[0-9]{1,8}|0x[0-9a-f]{1,4}"
    r"|[0-9]+\.[0-9]*(?:e[0-9]{1,2})?|on|off|yes|no|On|Off|Yes|No|ON|OFF|YES|NO|y|n"
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}|\+[0-9]{1,4})\Z"
)


@given(AMBIGUOUS)
def test_a_plain_scalar_in_a_command_is_the_text_as_written(token: str) -> None:
    text = f'name: j\nschedule: "@daily"\nimage: busybox\ncommand: [echo, {token}]\n'
    (spec,) = parse_jobs_text(text, "j.yaml")
    assert spec.command == ("echo", token)


@given(AMBIGUOUS)
def test_a_plain_scalar_as_a_variable_is_the_text_as_written(token: str) -> None:
    text = f'name: j\nschedule: "@daily"\nimage: busybox\nenvironment: {{V: {token}}}\n'
    (spec,) = parse_jobs_text(text, "j.yaml")
    assert spec.environment == (("V", token),)


@given(st.integers(min_value=-(2**200), max_value=2**200))
def test_any_number_typed_as_a_run_id_gets_one_line(number: int) -> None:
    result = CliRunner().invoke(
        cli, ["runs", "show", str(number)], env={"ORCHESTRATOR_DATABASE_URL": "sqlite:///x.db"}
    )
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert result.exit_code in (1, 2)
    assert len(result.stderr.strip().splitlines()) == 1


@given(st.text(max_size=40) | st.integers() | st.floats())
def test_sizes_parse_to_a_bounded_number_or_our_error(value: object) -> None:
    try:
        size = parse_size(value)
    except InvalidInputError:
        return
    assert 0 < size <= MAX_SIZE


@given(st.text(max_size=40) | st.integers(min_value=-(2**100), max_value=2**100))
def test_durations_parse_to_a_bounded_duration_or_our_error(value: object) -> None:
    try:
        duration = parse_duration(value)
    except InvalidInputError:
        return
    assert 0 < duration.total_seconds() <= 101 * 366 * 86400


@given(st.text(max_size=80))
def test_an_accepted_image_reference_cannot_walk_the_engines_url(image: str) -> None:
    try:
        spec = parse_job({"name": "j", "schedule": "@daily", "image": image})
    except InvalidSpecError:
        return
    for bad in ("..", "?", "#", "%", " ", "\\", "//"):
        assert bad not in spec.image


nested = st.recursive(
    st.text(max_size=200) | st.integers() | st.binary(max_size=200),
    lambda inner: st.lists(inner, max_size=50) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=200,
)


@given(nested)
def test_a_quoted_value_is_always_short(value: object) -> None:
    assert len(quote(value)) <= QUOTE_LIMIT


@pytest.fixture(autouse=True)
def _in_a_scratch_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the run-id property names a relative SQLite file


class _Tripwire:
    def __repr__(self) -> str:
        raise AssertionError("quote() walked deeper than it shows")


def test_quoting_does_bounded_work_whatever_the_value() -> None:
    """The alias bomb's lesson: naming a value must not walk all of it."""
    deep = [[[_Tripwire()]]]
    wide = ["x" * 10_000_000, *range(10)]
    assert quote(deep).startswith("[[")
    assert len(quote(wide)) <= QUOTE_LIMIT
