"""What the user wrote is what runs: YAML 1.2 core scalars, text kept as written, merge
keys, and alias expansion bounded (no memory blow-up, short messages)."""

from __future__ import annotations

import pytest

from orchestrator.errors import InvalidSpecError
from orchestrator.spec import JobSpec, parse_jobs_text

HEAD = 'name: j\nschedule: "@daily"\nimage: busybox\n'


def one(body: str) -> JobSpec:
    (spec,) = parse_jobs_text(HEAD + body, "j.yaml")
    return spec


def error_of(text: str) -> str:
    with pytest.raises(InvalidSpecError) as caught:
        parse_jobs_text(text, "j.yaml")
    return str(caught.value)


def test_command_items_are_the_text_as_written() -> None:
    spec = one("command: [chmod, 0755, /x, 1e3, 0x1F, 12:30, on, +1, 007]\n")
    assert spec.command == ("chmod", "0755", "/x", "1e3", "0x1F", "12:30", "on", "+1", "007")


def test_environment_values_and_keys_are_the_text_as_written() -> None:
    spec = one("environment: {MODE: 0644, TIME: 12:30, FLAG: on, ON: yes, DAY: 2024-01-02}\n")
    assert dict(spec.environment) == {
        "MODE": "0644",
        "TIME": "12:30",
        "FLAG": "on",
        "ON": "yes",
        "DAY": "2024-01-02",
    }


def test_a_boolean_value_is_refused_with_the_fix() -> None:
    message = error_of(HEAD + "environment: {DEBUG: true}\n")
    assert message == (
        "j.yaml: job 'j': environment.DEBUG: true is read as a boolean: quote it (\"true\") "
        "to pass text"
    )


def test_numbers_still_work_where_numbers_are_meant() -> None:
    spec = one("retries: {count: 3}\nresources: {cpus: 0.5}\nports: [8080]\n")
    assert spec.retries.count == 3 and spec.resources.cpus == 0.5
    assert spec.ports[0].container_port == 8080
    assert type(spec.retries.count) is int  # a plain int: the definition dumps as YAML


def test_a_merge_key_may_be_overridden() -> None:
    text = """
- &base {name: a, schedule: "@daily", image: busybox, command: [echo, base]}
- <<: *base
  name: b
"""
    first, second = parse_jobs_text(text, "j.yaml")
    assert (first.name, second.name) == ("a", "b")
    assert second.command == ("echo", "base")


def test_a_key_given_twice_in_one_mapping_is_still_refused() -> None:
    assert "duplicate key 'image'" in error_of(HEAD + "image: other\n")


def test_an_alias_bomb_is_refused_quickly_with_a_short_message() -> None:
    levels = ['a0: &a0 ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        levels.append(f"a{level}: &a{level} [{refs}]")
    bomb = "\n".join(levels)
    message = error_of(f"{bomb}\nname: j\nschedule: '@daily'\nimage: busybox\n")
    assert "expands to more than 100,000 values through its aliases" in message
    assert len(message) < 300


def test_an_expanded_value_in_a_message_is_cut_short() -> None:
    """Under the bound, an alias still multiplies a value: the message quotes a prefix."""
    text = HEAD + 'x-big: &s "' + "z" * 5000 + '"\n'
    big = "[" + ", ".join(["*s"] * 9000) + "]"
    message = error_of(text.replace("x-big", "description") + f"resources: {{memory: {big}}}\n")
    assert "resources.memory" in message
    assert len(message) < 300, message[:400]


def test_a_document_that_contains_itself_is_refused() -> None:
    assert "refers to a node that holds it" in error_of(HEAD + "command: &c [a, *c]\n")
