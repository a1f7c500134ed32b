"""Docker's multiplexed stdout/stderr stream, split into entries whatever the block sizes."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.engine.docker.logstream import demultiplex


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def blocks_of(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def test_entries_come_out_whole_and_in_order() -> None:
    data = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"") + frame(1, b"x" * 70000)
    assert list(demultiplex([data])) == [b"out\n", b"err\n", b"", b"x" * 70000]


@given(
    st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=300)), max_size=20),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_any_split_into_blocks_gives_the_same_entries(
    entries: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    data = b"".join(frame(stream, payload) for stream, payload in entries)
    assert list(demultiplex(blocks_of(data, cuts))) == [payload for _, payload in entries]


def test_a_cut_off_frame_at_the_end_is_not_invented() -> None:
    assert list(demultiplex([frame(1, b"whole"), frame(1, b"partial")[:-3]])) == [b"whole"]
