"""The service's policies as pure functions: overlap, retries, exit outcomes, owner
liveness. The service only wires them (tests/component and tests/service see them in action)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.backoff import jittered
from orchestrator.policies.lateness import due_time, missed_start_deadline
from orchestrator.policies.outcomes import classify_exit
from orchestrator.policies.overlap import decide_overlap
from orchestrator.policies.ownership import Here, owner_is_dead
from orchestrator.policies.retries import plan_retry
from orchestrator.records import RunRecord, RunStatus, RunTrigger
from orchestrator.runner.timers import Timers
from orchestrator.spec import Concurrency, parse_job

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def run(run_id: int, **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "id": run_id,
        "job": "j",
        "trigger": RunTrigger.SCHEDULE,
        "attempt": 1,
        "status": RunStatus.RUNNING,
        "scheduled_for": NOW,
        "created_at": NOW,
    }
    values.update(fields)
    return RunRecord(**values)  # type: ignore[arg-type]


# --- overlap ---------------------------------------------------------------------------


def test_allow_starts_whatever_runs() -> None:
    decision = decide_overlap(Concurrency.ALLOW, "j", 9, [run(1), run(2)])
    assert decision.start and decision.cancel == () and decision.skip_reason is None


@pytest.mark.parametrize("concurrency", list(Concurrency))
def test_nothing_else_running_starts(concurrency: Concurrency) -> None:
    decision = decide_overlap(concurrency, "j", 9, [run(9)])  # only itself
    assert decision.start and decision.cancel == ()


def test_forbid_skips_naming_the_runs_still_going() -> None:
    decision = decide_overlap(Concurrency.FORBID, "j", 9, [run(3), run(9), run(5)])
    assert not decision.start and decision.cancel == ()
    assert decision.skip_reason == "skipped: run 3, 5 of j still running (concurrency: forbid)"


def test_replace_cancels_the_others_and_starts() -> None:
    decision = decide_overlap(Concurrency.REPLACE, "j", 9, [run(3), run(9), run(5)])
    assert decision.start and decision.cancel == (3, 5) and decision.skip_reason is None


# --- retries -----------------------------------------------------------------------------

SPEC = parse_job(
    {
        "name": "j",
        "schedule": "@hourly",
        "image": "img",
        "retries": {"count": 2, "backoff": "30s"},
    }
)


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.TIMED_OUT])
def test_a_failed_first_attempt_is_retried_after_the_backoff(status: RunStatus) -> None:
    finished = run(7, status=status, finished_at=NOW)
    retry = plan_retry(finished, SPEC, NOW + timedelta(hours=1))
    assert retry is not None
    assert (retry.attempt, retry.first_run_id, retry.trigger) == (2, 7, RunTrigger.RETRY)
    assert retry.scheduled_for == finished.scheduled_for  # the same fire
    assert retry.due_at == NOW + timedelta(seconds=30)  # from its end, not from now


def test_later_attempts_link_to_the_first_and_stop_at_the_count() -> None:
    second = run(8, status=RunStatus.FAILED, attempt=2, first_run_id=7, finished_at=NOW)
    third = plan_retry(second, SPEC, NOW)
    assert third is not None and (third.attempt, third.first_run_id) == (3, 7)
    last = run(9, status=RunStatus.FAILED, attempt=3, first_run_id=7, finished_at=NOW)
    assert plan_retry(last, SPEC, NOW) is None


@pytest.mark.parametrize(
    "status",
    [RunStatus.SUCCEEDED, RunStatus.CANCELLED, RunStatus.SKIPPED, RunStatus.LOST],
)
def test_other_ends_are_not_retried(status: RunStatus) -> None:
    assert plan_retry(run(7, status=status, finished_at=NOW), SPEC, NOW) is None


def test_manual_runs_are_not_retried() -> None:
    manual = run(7, status=RunStatus.FAILED, trigger=RunTrigger.MANUAL, finished_at=NOW)
    assert plan_retry(manual, SPEC, NOW) is None


# --- exit outcomes ------------------------------------------------------------------------


def test_exit_outcomes() -> None:
    assert classify_exit(0, timed_out=False) == (RunStatus.SUCCEEDED, None)
    assert classify_exit(3, timed_out=False) == (RunStatus.FAILED, "exit status 3")
    assert classify_exit(137, timed_out=False, oom_killed=True, memory_limit=64 * 1024**2) == (
        RunStatus.FAILED,
        "exit status 137 (killed: out of memory, limit 64m)",
    )
    assert classify_exit(137, timed_out=True, timeout=timedelta(seconds=90)) == (
        RunStatus.TIMED_OUT,
        "timed out after 1m30s: killed",
    )
    assert classify_exit(0, timed_out=True)[0] is RunStatus.TIMED_OUT  # the kill decides
    assert classify_exit(None, timed_out=False)[0] is RunStatus.FAILED


# --- owner liveness --------------------------------------------------------------------------

HERE = Here("hostA", 100)
STALE = timedelta(seconds=30)


def dead(owner: str, beat: datetime | None, alive: bool | None = True) -> bool:
    return owner_is_dead(owner, beat, NOW, STALE, HERE, exists=lambda pid: alive)


def test_a_fresh_heartbeat_from_another_host_is_alive() -> None:
    assert not dead("hostB:5:aa", NOW - timedelta(seconds=5))
    assert dead("hostB:5:aa", NOW - timedelta(seconds=31))
    assert dead("hostB:5:aa", None)


def test_on_our_host_the_process_table_decides_before_the_heartbeat() -> None:
    fresh = NOW - timedelta(seconds=1)
    assert dead("hostA:200:aa", fresh, alive=False)  # its process is gone
    assert not dead("hostA:200:aa", fresh, alive=True)
    assert not dead("hostA:200:aa", fresh, alive=None)  # may not tell: the beat decides
    assert dead("hostA:200:aa", NOW - timedelta(minutes=5), alive=None)


def test_our_own_pid_under_another_token_is_an_earlier_life() -> None:
    assert dead("hostA:100:old", NOW)


def test_an_owner_id_of_another_shape_falls_back_to_the_heartbeat() -> None:
    assert not dead("weird", NOW)
    assert dead("", None)


# --- start deadlines, lateness, jitter, the deadline thread ------------------------------


def test_a_scheduled_fire_within_its_start_deadline_may_start() -> None:
    spec = parse_job({"name": "j", "schedule": "@hourly", "image": "i", "start_deadline": "5m"})
    assert missed_start_deadline(run(1), spec, NOW + timedelta(minutes=5)) is None
    late = missed_start_deadline(run(1), spec, NOW + timedelta(minutes=7, seconds=12))
    assert late == "missed its start deadline by 2m12s (start_deadline: 5m)"


def test_only_scheduled_fires_are_held_to_the_start_deadline() -> None:
    spec = parse_job({"name": "j", "schedule": "@hourly", "image": "i", "start_deadline": "1s"})
    later = NOW + timedelta(hours=1)
    for trigger in (RunTrigger.MANUAL, RunTrigger.RETRY, RunTrigger.CATCHUP):
        assert missed_start_deadline(run(1, trigger=trigger), spec, later) is None
    no_deadline = parse_job({"name": "j", "schedule": "@hourly", "image": "i"})
    assert missed_start_deadline(run(1), no_deadline, later) is None


def test_a_retry_is_due_at_its_backoff_not_at_its_fire() -> None:
    retry = run(2, trigger=RunTrigger.RETRY, due_at=NOW + timedelta(seconds=30))
    assert due_time(retry) == NOW + timedelta(seconds=30)
    assert due_time(run(1)) == NOW


def test_backoff_pauses_are_jittered_between_half_and_all() -> None:
    pauses = {round(jittered(8.0), 3) for _ in range(200)}
    assert min(pauses) >= 4.0 and max(pauses) <= 8.0
    assert len(pauses) > 50  # spread, not one value for every run that failed together


def test_the_deadline_thread_runs_due_actions_and_not_cancelled_ones() -> None:
    deadlines = Timers("test-deadlines")
    done = threading.Event()
    kept = deadlines.after(0.05, lambda: done.set() or True, "kept")
    dropped = deadlines.after(0.05, lambda: pytest.fail("a cancelled deadline ran"), "dropped")
    dropped.cancel()
    assert done.wait(5)
    assert _soon(lambda: kept.fired)
    assert not dropped.fired


def test_a_deadline_action_that_raised_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orchestrator.runner.timers.RETRY_SECONDS", 0.05)
    tries: list[int] = []
    done = threading.Event()

    def flaky() -> bool:
        tries.append(1)
        if len(tries) < 3:
            raise OSError("the engine is away")
        done.set()
        return True

    deadline = Timers("test-retry").after(0.01, flaky, "flaky")
    assert done.wait(5)
    assert len(tries) == 3
    assert _soon(lambda: deadline.fired)


def test_an_action_that_hangs_delays_no_other_deadline() -> None:
    deadlines = Timers("test-hang")
    released, done = threading.Event(), threading.Event()
    deadlines.after(0.01, lambda: released.wait(10), "hangs")
    later = deadlines.after(0.1, lambda: done.set() or True, "due after it")
    try:
        assert done.wait(2), "a hung action held up the next deadline"
        assert _soon(lambda: later.fired)
    finally:
        released.set()


def test_a_run_seen_ended_by_its_timeouts_kill_is_told_it_timed_out() -> None:
    """The kill ends the container, and the follower sees the end before the kill call
    returns (as the engine answers a stop after the container is gone): asked then, the
    deadline must still say it fired. It failed as `failed 137` under CI's load."""
    killed, answered = threading.Event(), threading.Event()

    def kill() -> bool:
        killed.set()  # the container is gone now: its wait returns
        answered.wait(5)  # the stop call has not returned yet
        return True

    deadline = Timers("test-settle").after(0.01, kill, "kills")
    assert killed.wait(5)
    threading.Timer(0.3, answered.set).start()
    assert deadline.settled(timeout=5), "the end was classified before the kill returned"


def test_a_deadline_that_did_not_act_settles_at_once() -> None:
    deadline = Timers("test-idle").after(60, lambda: True, "not due")
    started = time.monotonic()
    assert deadline.settled(timeout=5) is False
    assert time.monotonic() - started < 1
    deadline.cancel()


def _soon(condition: Callable[[], bool]) -> bool:
    """The action has returned (its flag is set just after it)."""
    for _ in range(100):
        if condition():
            return True
        time.sleep(0.01)
    return False
