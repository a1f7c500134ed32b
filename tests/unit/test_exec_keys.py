"""The keys of exec jobs and per-job labels, written as the job files that try to mix them:
each refusal is one line naming the job and the key."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import InvalidSpecError
from orchestrator.spec import parse_job
from orchestrator.spec.model import JobKind, Pick


def _refusal(data: dict[str, Any]) -> str:
    with pytest.raises(InvalidSpecError) as caught:
        parse_job({"name": "j", "schedule": "@daily", **data}, "jobs.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_exec_job_needs_no_image_and_keeps_its_target() -> None:
    spec = parse_job(
        {
            "name": "dump",
            "schedule": "@daily",
            "kind": "exec",
            "container": "/shop-db-1",
            "command": "pg_dump shop",
            "user": "postgres",
            "working_dir": "/tmp",
            "environment": {"PGDATABASE": "shop"},
        }
    )
    assert (spec.kind, spec.container, spec.image) == (JobKind.EXEC, "shop-db-1", "")
    assert spec.command == ("pg_dump", "shop")
    spec = parse_job(
        {
            "name": "d",
            "schedule": "@daily",
            "kind": "exec",
            "command": "true",
            "selector": {"com.docker.compose.service": "db"},
            "pick": "all",
        }
    )
    assert spec.selector == (("com.docker.compose.service", "db"),) and spec.pick is Pick.ALL


def test_a_run_job_still_needs_an_image() -> None:
    assert _refusal({"command": "true"}) == "jobs.yaml: job 'j': image: is required"


@pytest.mark.parametrize(
    "key,value", [("container", "db"), ("selector", {"a": "b"}), ("pick", "all")]
)
def test_exec_keys_on_a_run_job_are_refused(key: str, value: object) -> None:
    assert _refusal({"image": "busybox", key: value}) == (
        f"jobs.yaml: job 'j': {key}: is for exec jobs: add `kind: exec`, or remove it"
    )


def test_an_exec_job_with_only_an_image_is_told_it_needs_a_target() -> None:
    assert _refusal({"kind": "exec", "image": "busybox", "command": "true"}) == (
        "jobs.yaml: job 'j': container: or selector is required for kind: exec "
        "(an exec job runs in a running container, not an image)"
    )


def test_an_exec_job_with_both_container_and_selector_is_refused() -> None:
    assert (
        _refusal({"kind": "exec", "container": "db", "selector": {"a": "b"}, "command": "true"})
        == "jobs.yaml: job 'j': container: cannot be combined with selector: give one target"
    )


@pytest.mark.parametrize(
    "key,value",
    [
        ("image", "busybox"),
        ("volumes", ["/srv:/srv"]),
        ("privileged", True),
        ("docker_socket", True),
        ("network", "x"),
        ("labels", {"team": "data"}),
        ("secrets", [{"name": "s", "env": "S"}]),
        ("ports", [80]),
    ],
)
def test_run_only_keys_on_an_exec_job_are_refused(key: str, value: object) -> None:
    message = _refusal({"kind": "exec", "container": "db", "command": "true", key: value})
    assert message == (
        f"jobs.yaml: job 'j': {key}: is for run jobs: "
        "an exec job runs in a container that exists already"
    )


def test_an_exec_job_needs_a_command_and_pick_needs_a_selector() -> None:
    assert _refusal({"kind": "exec", "container": "db"}) == (
        "jobs.yaml: job 'j': command: is required for kind: exec"
    )
    assert _refusal({"kind": "exec", "container": "db", "command": "x", "pick": "all"}) == (
        "jobs.yaml: job 'j': pick: chooses among the containers of a selector: give one"
    )


@pytest.mark.parametrize("bad", ["a b", "-x", "db;rm", "../etc"])
def test_a_container_that_is_no_name_is_refused(bad: str) -> None:
    assert "container: " in _refusal({"kind": "exec", "container": bad, "command": "x"})


@pytest.mark.parametrize(
    "key", ["orchestrator.job", "orchestrator.managed", "orchestrator.run", "orchestrator.x"]
)
def test_a_job_label_cannot_take_our_names(key: str) -> None:
    assert _refusal({"image": "busybox", "labels": {key: "other"}}) == (
        f"jobs.yaml: job 'j': labels.{key}: labels starting orchestrator. are set by us"
    )


def test_per_job_labels_are_kept_as_text() -> None:
    spec = parse_job(
        {
            "name": "j",
            "schedule": "@daily",
            "image": "busybox",
            "labels": {"team": "data", "tier": 2},
        }
    )
    assert spec.labels == (("team", "data"), ("tier", "2"))
    assert "labels: must be a string, not a boolean (true)" in _refusal(
        {"image": "busybox", "labels": {"x": True}}
    ).replace("labels.x", "labels")
