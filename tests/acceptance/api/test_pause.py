"""Pause and resume over the real HTTP API (`serve --http`): by glob and by name, who and
when recorded, shown on the job, in the metrics and on the dashboard; a read token may
not pause, a name is never a glob, a glob matching nothing is a JSON 404."""

from __future__ import annotations

import uuid

from tests.acceptance.api.conftest import READ_TOKEN, ApiService, sign_in


def _jobs(prefix: str, *names: str) -> str:
    return "".join(
        f"---\nname: {prefix}-{name}\nschedule: '0 0 1 1 *'\nimage: IMAGE\ncommand: ['true']\n"
        for name in names
    )


def test_pause_by_glob_shows_who_on_the_job_the_metrics_and_the_dashboard(
    api: ApiService,
) -> None:
    prefix = f"pz{uuid.uuid4().hex[:6]}"
    assert api.apply(_jobs(prefix, "a1", "a2", "b1")).status_code == 200
    refused = api.post("/api/jobs/pause", params={"glob": f"{prefix}-a*"}, token=READ_TOKEN)
    assert refused.status_code == 403
    assert api.get(f"/api/jobs/{prefix}-a1").json()["paused_at"] is None  # nothing paused

    paused = api.post("/api/jobs/pause", params={"glob": f"{prefix}-a*"})
    assert paused.status_code == 200, paused.text
    assert sorted(paused.json()["paused"]) == [f"{prefix}-a1", f"{prefix}-a2"]
    job = api.get(f"/api/jobs/{prefix}-a1").json()
    assert (job["state"], job["paused_by"]) == ("paused", "api:alice")
    assert job["paused_at"] is not None
    assert api.get(f"/api/jobs/{prefix}-b1").json()["state"] != "paused"
    metrics = api.metrics_with(f'orchestrator_job_paused{{job_name="{prefix}-a1"}} 1.0')
    assert f'orchestrator_job_paused{{job_name="{prefix}-b1"}} 0.0' in metrics
    session, _ = sign_in(api.url, READ_TOKEN)
    page = session.get(api.url + "/jobs", params={"q": prefix}, timeout=30).text
    rows = {row.split('"')[1]: row for row in page.split("<tr data-job=")[1:]}
    assert rows, page[:3000]
    assert 'class="tag paused" title="paused by api:alice' in rows[f"{prefix}-a1"], page
    assert "tag paused" not in rows[f"{prefix}-b1"]

    # A name is taken literally: `<prefix>-a*` names no job, whatever it would match.
    literal = api.post(f"/api/jobs/{prefix}-a*/resume")
    assert literal.status_code == 404, literal.text
    assert api.get(f"/api/jobs/{prefix}-a2").json()["state"] == "paused"
    resumed = api.post(f"/api/jobs/{prefix}-a2/resume")
    assert resumed.json() == {"name": f"{prefix}-a2", "paused": False, "changed": True}
    assert api.get(f"/api/jobs/{prefix}-a2").json()["paused_at"] is None
    assert api.get(f"/api/jobs/{prefix}-a1").json()["state"] == "paused"

    none = api.post("/api/jobs/pause", params={"glob": f"{prefix}-zz*"})
    assert none.status_code == 404
    assert "error" in none.json() and "\n" not in none.json()["error"]
    audit = api.get("/api/audit", params={"limit": 20}).json()
    actions = [entry["action"] for entry in audit]
    assert "jobs.pause" in actions and "jobs.resume" in actions
