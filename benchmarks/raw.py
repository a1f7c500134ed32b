"""The raw engine's side of every figure: the same work as ours done straight through the
docker SDK (or the docker CLI), with nothing of ours in the way. Each benchmark's raw
baseline comes from here, so a change to how "raw" is measured reaches all of them.

Every container runs `true` in the bench image, labelled `orchestrator.bench=<benchmark>`
so that `remove_ours` can clear what a failed run left.
"""

from __future__ import annotations

import heapq
import os
import subprocess
import threading
import time
from typing import Any

from benchmarks.harness import IMAGE, LABEL, next_due


def client() -> Any:
    import docker

    return docker.from_env(timeout=120, max_pool_size=64)


def engine_version() -> str:
    return str(client().version()["Version"])


def remove_ours(engine: Any) -> None:
    for container in engine.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)


def create_start(engine: Any, label: str) -> str:
    """The raw launch: create and start `true`; the container's id."""
    created = engine.api.create_container(IMAGE, ["true"], labels={LABEL: label})
    engine.api.start(created["Id"])
    return str(created["Id"])


def finish(engine: Any, container_id: str, *, timestamps: bool = False) -> None:
    """What follows a run to its end: wait for it, read its logs, remove it."""
    engine.api.wait(container_id)
    engine.api.logs(container_id, stdout=True, stderr=True, timestamps=timestamps)
    engine.api.remove_container(container_id, force=True)


def launch(engine: Any, label: str) -> float:
    """Seconds of one create+start (then waited for and removed, untimed)."""
    started = time.perf_counter()
    container_id = create_start(engine, label)
    elapsed = time.perf_counter() - started
    engine.api.wait(container_id)
    engine.api.remove_container(container_id, force=True)
    return elapsed


def burst(engine: Any, size: int, label: str = "burst") -> float:
    """Seconds until the last of `size` containers runs, created+started by as many
    threads as the service launches with (ORCHESTRATOR_MAX_PARALLEL_LAUNCHES)."""
    from orchestrator.settings import DEFAULT_MAX_PARALLEL_LAUNCHES

    workers = DEFAULT_MAX_PARALLEL_LAUNCHES
    barrier = threading.Barrier(workers + 1)
    ids: list[str] = []
    lock = threading.Lock()
    left = list(range(size))

    def one() -> None:
        barrier.wait()
        while True:
            with lock:
                if not left:
                    return
                left.pop()
            container_id = create_start(engine, label)
            with lock:
                ids.append(container_id)

    threads = [threading.Thread(target=one) for _ in range(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for container_id in ids:
        engine.api.remove_container(container_id, force=True)
    return elapsed


def sustained(engine: Any, jobs: int, every: float, seconds: float, workers: int) -> list[float]:
    """Lateness (seconds) of every fire due in `seconds`, in a scheduler with nothing else
    to do: at each due time it queues the `jobs` fires, `workers` threads take them
    earliest first and create and start each container, and one thread per started
    container follows it to its end (what the service's launch pool and followers do,
    without the database, the image check or the live log stream)."""
    queue: list[tuple[float, int]] = []
    ready = threading.Condition()
    lateness: list[float] = []
    followers: list[threading.Thread] = []
    first = next_due(every, time.time())
    dues = [first + every * k for k in range(int(seconds // every) + 1) if k * every < seconds]
    closed = False

    def work() -> None:
        while True:
            with ready:
                while not queue and not closed:
                    ready.wait()
                if not queue:
                    return
                due, _ = heapq.heappop(queue)
            container_id = create_start(engine, "sustained")
            started = time.time()
            with ready:
                lateness.append(started - due)
            thread = threading.Thread(
                target=finish, args=(engine, container_id), kwargs={"timestamps": True}
            )
            thread.start()
            followers.append(thread)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for due in dues:
        time.sleep(max(due - time.time(), 0))
        with ready:
            for index in range(jobs):
                heapq.heappush(queue, (due, index))
            ready.notify_all()
    with ready:
        closed = True
        ready.notify_all()
    for thread in threads:
        thread.join()
    for thread in followers:
        thread.join()
    return lateness


def saturated(engine: Any, concurrency: int, seconds: float) -> tuple[float, float]:
    """(runs per second, this process's CPU milliseconds per run) of `concurrency` threads
    each launching and finishing runs back to back for `seconds`."""
    done = 0
    cpu = time.process_time()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop() -> None:
        nonlocal done
        while time.monotonic() < stop:
            finish(engine, create_start(engine, "saturation"))
            with lock:
                done += 1

    began = time.monotonic()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done / (time.monotonic() - began), (time.process_time() - cpu) * 1000 / max(done, 1)


def followed_logs(command: str, label: str = "output") -> float:
    """Seconds from the start of `sh -c command` in a container of its own to the end of
    its output followed live by `docker logs --follow` (what our capture does)."""
    created = subprocess.run(
        ["docker", "create", "--label", f"{LABEL}={label}", IMAGE, "sh", "-c", command],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    started = time.perf_counter()
    subprocess.run(["docker", "start", created], capture_output=True, check=True)
    with open(os.devnull, "wb") as sink:
        subprocess.run(
            ["docker", "logs", "--follow", created], stdout=sink, stderr=sink, check=True
        )
    return time.perf_counter() - started
