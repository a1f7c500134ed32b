"""Health covers every loop of the service: wedge one, and `orchestrator health` fails
naming it; let it go, and health comes back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from orchestrator.cli.main import cli
from tests.component.conftest import Service, wedge


def health(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["health", "--health-file", str(path), "--max-age", "2s"])
    return result.exit_code, (result.stdout + result.stderr).strip()


def healthy_within(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        code, _ = health(path)
        if code == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"not healthy within {seconds}s: {health(path)[1]}")


def stale_within(path: Path, loop: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        code, text = health(path)
        if code == 1 and f"the {loop} loop" in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"the {loop} loop never showed stale: {health(path)[1]}")


def test_a_wedged_maintenance_loop_fails_health(
    serve: Callable[..., Service], tmp_path: Path, released: threading.Event
) -> None:
    running = serve(health_file=tmp_path / "health.json")
    healthy_within(tmp_path / "health.json", 10)
    # Queued runs are read when a change is told; adoption is still polled (5 s).
    running.service.store.adoption_candidates = wedge(released)  # type: ignore[method-assign]
    text = stale_within(tmp_path / "health.json", "maintenance", 15)
    assert "fires" not in text and "claims" not in text
    released.set()
    healthy_within(tmp_path / "health.json", 10)


def test_a_wedged_claim_worker_fails_health(
    serve: Callable[..., Service], tmp_path: Path, released: threading.Event
) -> None:
    running = serve(health_file=tmp_path / "health.json")
    healthy_within(tmp_path / "health.json", 10)
    claim = running.service.claims.claim_and_start
    wedged = threading.Lock()

    def one_worker_stuck(*args: Any) -> None:
        if wedged.acquire(blocking=False):  # the first claim wedges its worker; the
            released.wait(60)  # other workers go on claiming and beating
        claim(*args)

    running.service.claims.claim_and_start = one_worker_stuck  # type: ignore[method-assign]
    running.apply({"name": "tick", "schedule": "@every 1s", "concurrency": "allow"})
    stale_within(tmp_path / "health.json", "claims", 10)
    running.wait_for(  # the others kept working (the stale line may come before their run)
        lambda: [r for r in running.runs("tick") if r.container_id], 10, "a run by another worker"
    )
    released.set()
    healthy_within(tmp_path / "health.json", 10)


def test_a_wedged_fires_loop_fails_health(
    serve: Callable[..., Service], tmp_path: Path, released: threading.Event
) -> None:
    running = serve(health_file=tmp_path / "health.json")
    healthy_within(tmp_path / "health.json", 10)
    hand_over = running.service.claims.fires.put

    def stuck(item: Any, *args: Any, **kwargs: Any) -> None:
        if item is not None:  # fires from APScheduler's thread wait; shutdown does not
            released.wait(60)
        hand_over(item, *args, **kwargs)

    running.service.claims.fires.put = stuck  # type: ignore[method-assign]
    running.apply({"name": "tick", "schedule": "@every 1s", "concurrency": "allow"})
    stale_within(tmp_path / "health.json", "fires", 10)
    released.set()
    healthy_within(tmp_path / "health.json", 10)
