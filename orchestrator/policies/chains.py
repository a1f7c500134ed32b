"""Job chains (`on_success: [b]`, `on_failure: [cleanup]`): which jobs a run's end
starts, and the refusals at apply (a chain to a job that does not exist, a cycle) and at
delete (a job others chain to). Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from orchestrator.errors import InvalidSpecError
from orchestrator.policies.notify_events import FAILURES, end_events
from orchestrator.records import RunRecord
from orchestrator.spec import JobSpec

ChainHook = Callable[[RunRecord], tuple[str, ...]]


def chained_jobs(spec: JobSpec, run: RunRecord) -> tuple[str, ...]:
    """The jobs a finished run starts: `on_success` after a success, `on_failure` after
    a final failure (a run that will be retried has not failed yet)."""
    ended = end_events(spec, run, None)
    if "succeeded" in ended:
        return spec.on_success
    if any(status.value in ended for status in FAILURES):
        return spec.on_failure
    return ()


def on_end(spec: JobSpec) -> ChainHook | None:
    """What `Store.finish_run` calls in its transaction; None when the job chains nothing."""
    if not spec.on_success and not spec.on_failure:
        return None
    return lambda run: chained_jobs(spec, run)


def check_chains(chains: Mapping[str, Sequence[str]], checked: Iterable[str]) -> None:
    """The chain targets of the `checked` jobs (those being applied) name jobs that exist
    in `chains` (job -> the jobs it may start), and no chain comes back to where it
    began. A job already stored that chains to one deleted with --force is left alone:
    its chain gives a skipped run saying why."""
    for name in sorted(checked):
        for target in chains[name]:
            if target not in chains:
                raise InvalidSpecError(
                    f"job {name!r}: chains to job {target!r}, which does not exist"
                )
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise InvalidSpecError(f"jobs chain in a cycle: {' -> '.join(cycle)}")
        if name in done or name not in chains:
            return
        for target in chains[name]:
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(chains):
        visit(name, [])


def chaining_to(name: str, chains: Mapping[str, Sequence[str]]) -> list[str]:
    """The jobs whose chains start `name`."""
    return sorted(other for other, targets in chains.items() if name in targets and other != name)
