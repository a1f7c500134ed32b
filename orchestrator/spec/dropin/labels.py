"""The drop-in readers in the shape of the label-job reader registry.

`read_labels(prefix, labels, container)` gives, per job, (name, job mapping, original
name, problem): problem is the line saying why a job cannot be carried over (then the
mapping is empty); options dropped from a job that is carried over are named in its
description, where `jobs show` and the dashboard show them. Registering them is one line
per prefix, e.g. `register_reader("ofelia", lambda labels, facts: [LabelJob(*job) for job
in read_labels("ofelia", labels, facts.name)])`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orchestrator.spec.dropin.common import Translation, normalise_name
from orchestrator.spec.dropin.deck_chores import translate_deck_chores_labels
from orchestrator.spec.dropin.ofelia import translate_ofelia_labels

PREFIXES = ("ofelia", "deck-chores")
_QUOTED = re.compile(r'"([^"]*)"')
_DESCRIPTION_MAX = 500

LabelJobTuple = tuple[str, dict[str, Any], str, str | None]


def _about(line: str) -> str | None:
    """The job a translator's line is about (its first quoted name)."""
    match = _QUOTED.search(line)
    return match[1] if match else None


def read_labels(prefix: str, labels: Mapping[str, str], container: str) -> list[LabelJobTuple]:
    """The jobs one container's labels give under `prefix` (ofelia or deck-chores)."""
    translation: Translation
    if prefix == "ofelia":
        translation = translate_ofelia_labels(container, labels)
    elif prefix == "deck-chores":
        translation = translate_deck_chores_labels(container, labels)
    else:
        raise ValueError(f"no drop-in reader for prefix {prefix!r} (known: {PREFIXES})")
    result: list[LabelJobTuple] = []
    carried = {job.original for job in translation.jobs}
    for job in translation.jobs:
        notes = [line for line in translation.dropped if _about(line) == job.original]
        mapping = dict(job.mapping)
        if notes:
            text = f"{mapping.get('description', '')}; " + "; ".join(notes)
            mapping["description"] = text[:_DESCRIPTION_MAX]
        result.append((job.name, mapping, job.original, None))
    for line in translation.dropped:
        original = _about(line)
        if original is not None and original not in carried and "refused" in line:
            result.append((normalise_name(f"{container}.{original}"), {}, original, line))
    return result
