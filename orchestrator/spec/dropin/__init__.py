"""Drop-in readers for Ofelia and deck-chores configurations. Pure: no I/O.

Each translator turns the other tool's labels or file into OUR job mappings (the keys of
docs/jobs.md) with that tool's meanings, and names every option it cannot carry over.
"""

from orchestrator.spec.dropin.common import Translated, Translation
from orchestrator.spec.dropin.deck_chores import translate_compose, translate_deck_chores_labels
from orchestrator.spec.dropin.ofelia import translate_ofelia_ini, translate_ofelia_labels

__all__ = [
    "Translated",
    "Translation",
    "translate_compose",
    "translate_deck_chores_labels",
    "translate_ofelia_ini",
    "translate_ofelia_labels",
]
