"""The API's settings: reads opened, metrics behind a token, per-job histograms."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.api.conftest import (
    READ_TOKEN,
    ApiService,
    start_api_service,
    stop_api_service,
)


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[ApiService]:
    folder: Path = tmp_path_factory.mktemp("api-open")
    service = start_api_service(
        folder,
        f"sqlite:///{folder / 'orchestrator.db'}",
        uuid.uuid4().hex,
        env={
            "ORCHESTRATOR_HTTP_READ_OPEN": "true",
            "ORCHESTRATOR_METRICS_NEED_TOKEN": "true",
            "ORCHESTRATOR_METRICS_PER_JOB_HISTOGRAMS": "true",
        },
    )
    yield service
    stop_api_service(service, docker_client)


def test_opened_reads_need_no_token_but_writes_still_do(opened: ApiService) -> None:
    assert opened.get("/api/jobs", token=None).status_code == 200
    assert opened.get("/api/runs", token=None).status_code == 200
    assert opened.get("/api/jobs", token="z" * 40).status_code == 401  # a wrong one is wrong
    assert opened.post("/api/jobs/x/enable", token=None).status_code == 401
    assert opened.post("/api/jobs/x/enable", token=READ_TOKEN).status_code == 403


def test_metrics_behind_a_token_and_histograms_by_job(opened: ApiService) -> None:
    assert opened.get("/metrics", token=None).status_code == 401
    assert opened.get("/healthz", token=None).status_code == 200
    name = f"hist-{uuid.uuid4().hex[:6]}"
    opened.apply(f"name: {name}\nschedule: '@yearly'\nimage: IMAGE\ncommand: ['true']\n")
    run = opened.post(f"/api/jobs/{name}/run").json()
    opened.wait_run(run["id"], ("succeeded",))
    line = f'orchestrator_run_duration_seconds_count{{job_name="{name}"}} 1.0'
    opened.metrics_with(line, token=READ_TOKEN)


def test_opened_pages_render_without_signing_in_and_buttons_ask_for_a_token(
    opened: ApiService,
) -> None:
    name = f"page-{uuid.uuid4().hex[:6]}"
    opened.apply(f"name: {name}\nschedule: '@yearly'\nimage: IMAGE\ncommand: ['true']\n")
    page = opened.get("/jobs", token=None)
    assert page.status_code == 200 and f'data-job="{name}"' in page.text
    assert '<a class="button run-now" href="/signin?next=/jobs"' in page.text
    assert 'name="csrf"' not in page.text  # nothing here can write
    assert opened.get("/runs", token=None).status_code == 200
    assert opened.get("/timeline", token=None).status_code == 200
    refused = opened.post(f"/jobs/{name}/run", token=None, allow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/signin")
