"""Secret values masked in a stream, wherever the chunks are cut."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from orchestrator.masking import OutputMasker


def masked(values: list[bytes], chunks: list[bytes]) -> bytes:
    masker = OutputMasker(values)
    return b"".join(masker.feed(chunk) for chunk in chunks) + masker.flush()


def test_a_value_split_across_chunks_is_masked() -> None:
    assert masked([b"hunter2"], [b"pass=hun", b"ter2 ok\n"]) == b"pass=*** ok\n"


def test_a_held_prefix_that_was_not_a_secret_comes_out_unchanged() -> None:
    assert masked([b"hunter2"], [b"hun", b"dred\n"]) == b"hundred\n"
    assert masked([b"hunter2"], [b"the end: hunt"]) == b"the end: hunt"


def test_the_longer_of_two_overlapping_secrets_is_masked_whole() -> None:
    assert masked([b"abc", b"abcdef"], [b"xabcdefy abc"]) == b"x***y ***"


def test_no_secrets_passes_chunks_through() -> None:
    masker = OutputMasker([])
    assert not masker and masker.feed(b"a") == b"a" and masker.flush() == b""


@given(
    secret=st.binary(min_size=1, max_size=12),
    before=st.binary(max_size=40),
    after=st.binary(max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=100), max_size=6),
)
def test_wherever_the_stream_is_cut_the_secret_never_comes_out(
    secret: bytes, before: bytes, after: bytes, cuts: list[int]
) -> None:
    assume(secret not in b"***")  # the mask itself cannot hide such a "secret"
    stream = before + secret + after
    points = sorted({min(cut, len(stream)) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    out = masked([secret], chunks)
    assert secret not in out
    assert out == masked([secret], [stream])  # the cuts do not change the result
