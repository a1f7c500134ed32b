from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import InvalidQuantityError
from orchestrator.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("1d2h3m4s", 93784),
        (" 1H ", 3600),
        (30, 30),
    ],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "0s", "1.5h", "15", "m", "1m1h", "-5s", "1y", True, None, 0, -3]
)
def test_bad_durations(text: object) -> None:
    with pytest.raises(InvalidQuantityError):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**9))
def test_duration_format_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256m", 256 * 2**20),
        ("1MiB", 2**20),
        ("512k", 512 * 1024),
        ("1g", 2**30),
        ("1.5g", 3 * 2**29),
        ("100", 100),
        (4096, 4096),
        ("2mb", 2 * 2**20),
    ],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "12q", "m", "-1m", True, 1.5])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(InvalidQuantityError):
        parse_size(text)


@given(st.integers(min_value=1, max_value=2**40))
def test_size_format_round_trips(size: int) -> None:
    assert parse_size(format_size(size)) == size
