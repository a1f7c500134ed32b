"""The store facade's own behaviour beyond the repositories it calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConflictError
from orchestrator.spec import LoadedJob, parse_job
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from orchestrator.store.jobs import JobRepository
from orchestrator.store.models import JobRow


def test_applying_jobs_while_another_scheduler_inserts_them_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several schedulers starting at once apply the same --jobs folder: the loser of the
    insert race must not die (it did: `duplicate key ... uq_jobs_name`, exit 1)."""
    database = Database(f"sqlite:///{tmp_path / 's.db'}")
    migrations.upgrade(database)
    job = LoadedJob(parse_job({"name": "a", "schedule": "@daily", "image": "busybox"}), "f")
    apply = JobRepository.apply
    raced = []

    def racing(self: JobRepository, loaded: list[LoadedJob], prune: bool = False) -> object:
        if not raced:
            raced.append(True)
            with database.session() as session:  # the other scheduler commits first ...
                apply(JobRepository(session), loaded)
            self.session.add(JobRow(name="a", definition="{}", enabled=True, revision=1))
            self.session.flush()  # ... so our insert of the same job loses
        return apply(self, loaded, prune=prune)

    monkeypatch.setattr(JobRepository, "apply", racing)
    result = Store(database).apply_jobs([job])
    assert raced and result.unchanged == ["a"]  # the retry found the winner's job
    database.dispose()


def test_a_conflict_that_persists_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(f"sqlite:///{tmp_path / 's.db'}")
    migrations.upgrade(database)

    def always(self: JobRepository, loaded: object, prune: bool = False) -> object:
        raise ConflictError("still racing")

    monkeypatch.setattr(JobRepository, "apply", always)
    with pytest.raises(ConflictError):
        Store(database).apply_jobs([])
    database.dispose()
