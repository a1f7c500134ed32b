"""The benchmark harness's verdicts: what fails a quick run (CI) and a full one."""

from __future__ import annotations

from benchmarks.harness import failing, verdicts


def test_a_quick_run_fails_only_where_a_floor_is_missed_by_more_than_twice() -> None:
    figures = {
        "dispatch.ratio": 2.4,  # floor 1.15: more than twice over
        "burst.ratio": 2.0,  # within twice
        "burst.missing_fires": 1,  # any missing fire fails
        "output.rate_ratio": 0.41,  # floor 0.8 (min): within half
        "cli.help_ratio": 5.9,  # floor 3: within twice
        "cli.list_1000_s": 1.01,  # floor 0.5 s: more than twice over
    }
    quick = failing(verdicts(figures, 2.0))
    assert quick == ["dispatch.ratio", "burst.missing_fires", "cli.list_1000_s"]
    full = failing(verdicts(figures, 1.0))
    assert full == [
        "dispatch.ratio",
        "burst.ratio",
        "burst.missing_fires",
        "output.rate_ratio",
        "cli.help_ratio",
        "cli.list_1000_s",
    ]


def test_a_prune_that_delays_fires_fails_even_the_quick_run() -> None:
    """A prune holding its lock for seconds (one big DELETE) makes a fire's write wait
    that long: far past the lateness floor, in the quick run too."""
    held = {"retention.sqlite.fire_lateness_ms": 2500.0, "history_db.sqlite.by_job_ms": 9.0}
    assert failing(verdicts(held, 2.0)) == ["retention.sqlite.fire_lateness_ms"]
    batched = {"retention.sqlite.fire_lateness_ms": 60.0}
    assert failing(verdicts(batched, 1.0)) == []
