"""Viewers: `/healthz` and `/api/jobs` latency while 200 clients follow the live logs
(SSE) of running runs, beside the same requests with no viewer, in the same run.

`orchestrator serve --http` (SQLite, the default caps: 20 streams a token) is started
with 10 tokens and 4 running runs that print a line a second. The raw figure: --samples
requests of each kind, one at a time over a keep-alive connection, with no viewer. Then
200 viewers (50 a run, 20 a token) are opened from one asyncio loop in a thread of this
process (raw sockets, reading and dropping what comes), and once every one is being
served, the same requests are timed again. Each figure is p50, p99 and max in ms.

    .venv/bin/python -m benchmarks.viewers [--viewers 200] [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks import raw
from benchmarks.harness import IMAGE, scratch_env

TOKENS = 10
RUNS = 4
PER_TOKEN = 20  # ORCHESTRATOR_HTTP_STREAMS_PER_CLIENT's default
TICKER = "while true; do echo tick; sleep 1; done"
PACE_S = 0.02
SERVE = [sys.executable, "-m", "orchestrator", "serve"]


def token(index: int) -> str:
    return f"viewer{index:02d}-" + "0" * 24


def summary(taken: list[float]) -> dict[str, float]:
    taken = sorted(taken)
    return {
        "p50_ms": round(taken[len(taken) // 2], 2),
        "p99_ms": round(taken[min(len(taken) - 1, int(len(taken) * 0.99))], 2),
        "max_ms": round(taken[-1], 2),
    }


def latencies(session: requests.Session, urls: dict[str, str], samples: int) -> dict[str, Any]:
    """p50, p99 and max of `samples` requests to each of `urls`, interleaved and paced
    (PACE_S apart) so that they span a few of the runs' lines."""
    taken: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(samples):
        for name, url in urls.items():
            started = time.perf_counter()
            response = session.get(url, timeout=30)
            taken[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code, response.text[:200])
        time.sleep(PACE_S)
    return {name: summary(values) for name, values in taken.items()}


class Viewers:
    """`count` SSE clients in one event loop of a thread: opened, read, closed."""

    def __init__(self, host: str, port: int, runs: list[int], count: int) -> None:
        self.host, self.port, self.runs, self.count = host, port, runs, count
        self.served = 0  # answered 200 and sent a first event
        self.refused = 0  # answered anything else, or closed
        self.events = 0
        self._loop = asyncio.new_event_loop()
        self._tasks: list[asyncio.Task[None]] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def open(self, timeout: float = 60) -> float:
        """Seconds until every viewer was served (or refused)."""
        self._thread.start()
        started = time.perf_counter()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout)
        deadline = time.monotonic() + timeout
        while self.served + self.refused < self.count and time.monotonic() < deadline:
            time.sleep(0.05)
        return time.perf_counter() - started

    async def _start(self) -> None:
        self._tasks = [
            self._loop.create_task(self._view(self.runs[i % len(self.runs)], token(i % TOKENS)))
            for i in range(self.count)
        ]

    async def _view(self, run_id: int, secret: str) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(
            f"GET /api/runs/{run_id}/logs HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {secret}\r\n\r\n".encode()
        )
        try:
            chunk = await reader.read(65536)
            if not chunk.startswith(b"HTTP/1.1 200"):
                self.refused += 1
                return
            self.served += 1
            while chunk:
                self.events += chunk.count(b"event: output")
                chunk = await reader.read(65536)
        finally:
            writer.close()

    def close(self) -> None:
        async def stop() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def viewers(count: int, samples: int) -> dict[str, Any]:
    engine = raw.client()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        tokens = folder / "tokens"
        tokens.write_text("".join(f"v{i}:{token(i)}:read\n" for i in range(TOKENS)) + "\n")
        env = scratch_env(scratch, "viewers", api_tokens_file=str(tokens), api_token="w" * 32)
        env["ORCHESTRATOR_HEALTH_FILE"] = str(folder / "health.json")
        (folder / "jobs.yaml").write_text(
            "".join(
                f'- {{name: ticker-{i}, schedule: "@yearly", image: "{IMAGE}", '
                f'command: ["sh", "-c", "{TICKER}"]}}\n'
                for i in range(RUNS)
            )
        )
        (folder / "jobs").mkdir()
        (folder / "jobs.yaml").rename(folder / "jobs" / "tickers.yaml")
        log = folder / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*SERVE, "--http", "127.0.0.1:0", "--jobs", str(folder / "jobs")],
                env=env,
                cwd=scratch,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            return _measure(folder, log, process, count, samples)
        finally:
            process.terminate()
            process.wait(30)
            raw.remove_ours(engine)


def _measure(
    folder: Path, log: Path, process: subprocess.Popen[bytes], count: int, samples: int
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while not (found := re.search(r"listening on http://([\d.]+):(\d+)", log.read_text())):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(log.read_text())
        time.sleep(0.1)
    host, port = found[1], int(found[2])
    base = f"http://{host}:{port}"
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + "w" * 32
    runs = []
    for i in range(RUNS):
        queued = session.post(f"{base}/api/jobs/ticker-{i}/run", timeout=30)
        assert queued.status_code == 202, queued.text
        runs.append(queued.json()["id"])
    while any(session.get(f"{base}/api/runs/{r}").json()["status"] != "running" for r in runs):
        assert time.monotonic() < deadline, "the runs did not start"
        time.sleep(0.2)
    urls = {"healthz": f"{base}/healthz", "jobs": f"{base}/api/jobs"}
    latencies(session, urls, 10)  # warm
    baseline = latencies(session, urls, samples)
    watching = Viewers(host, port, runs, count)
    opened_s = watching.open()
    try:
        loaded = latencies(session, urls, samples)
        served, refused, events = watching.served, watching.refused, watching.events
    finally:
        watching.close()
    return {
        "viewers": count,
        "runs": RUNS,
        "served": served,
        "refused": refused + (count - served - refused),
        "output_events": events,
        "open_s": round(opened_s, 2),
        "raw_healthz": baseline["healthz"],
        "raw_jobs": baseline["jobs"],
        "healthz": loaded["healthz"],
        "jobs": loaded["jobs"],
    }


def run(quick: bool) -> dict[str, Any]:
    return viewers(200, 50 if quick else 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--viewers", type=int, default=TOKENS * PER_TOKEN)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(viewers(args.viewers, args.samples), indent=2))


if __name__ == "__main__":
    main()
