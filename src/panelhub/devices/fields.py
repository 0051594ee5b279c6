"""Typed reads of one TOML table of a template, each problem reported with its line.

A read that fails records a problem and returns None, so one pass over a file reports every
fault at once instead of one per upload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

from panelhub.devices.tomllines import LineIndex, Section

E = TypeVar("E", bound=Enum)


class Problems:
    """The faults found in one template text, as ``source:LINE: message``."""

    def __init__(self, source: str, lines: LineIndex) -> None:
        self.source = source
        self.lines = lines
        self.items: list[str] = []

    def add(self, section: Section, key: str | None, message: str) -> None:
        self.items.append(f"{self.source}:{self.lines.line(section, key)}: {message}")


def describe(section: Section) -> str:
    """How the author wrote the table: ``[limits]``, ``[[measurements]]`` or the top level."""
    name = section[0]
    if not name:
        return "the top level"
    return f"[[{name}]]" if name in ARRAY_TABLES else f"[{name}]"


ARRAY_TABLES = frozenset({"measurements", "alarms", "identification.probe"})


class Table:
    """One table of the document, with the keys it allows."""

    def __init__(
        self,
        problems: Problems,
        section: Section,
        data: Mapping[str, object],
        *,
        allowed: frozenset[str],
    ) -> None:
        self.problems = problems
        self.section = section
        self.data = data
        for key in data:
            if key not in allowed:
                self.fail(key, f"unknown key {key!r} in {describe(section)}")

    def fail(self, key: str | None, message: str) -> None:
        self.problems.add(self.section, key, message)

    def _get(self, key: str, *, is_required: bool) -> object | None:
        if key not in self.data:
            if is_required:
                self.fail(None, f"{describe(self.section)} needs {key!r}")
            return None
        return self.data[key]

    def text(self, key: str, *, is_required: bool = False, pattern: str = "") -> str | None:
        value = self._get(key, is_required=is_required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, f"{key} must be a string")
            return None
        if pattern and not re.fullmatch(pattern, value):
            self.fail(key, f"{key} {value!r} must match {pattern}")
            return None
        return value

    def integer(self, key: str, low: int, high: int, *, is_required: bool = False) -> int | None:
        value = self._get(key, is_required=is_required)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, f"{key} must be an integer")
            return None
        if not low <= value <= high:
            self.fail(key, f"{key} {value} is outside {low}..{high}")
            return None
        return value

    def number(self, key: str) -> float | None:
        value = self._get(key, is_required=False)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(key, f"{key} must be a number")
            return None
        return value

    def choice(self, key: str, enum: type[E], default: E | None) -> E | None:
        """``default`` when absent; None (and a problem) for a value not in ``enum``."""
        value = self._get(key, is_required=default is None)
        if value is None:
            return default
        try:
            return enum(value)
        except ValueError:
            choices = ", ".join(str(member.value) for member in enum)
            self.fail(key, f"unknown {key} {value!r}: use one of {choices}")
            return None

    def numbers(self, key: str) -> list[float] | None:
        value = self._get(key, is_required=False)
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(item, int | float) and not isinstance(item, bool) for item in value
        ):
            self.fail(key, f"{key} must be a list of numbers")
            return None
        return value

    def regex(self, key: str) -> re.Pattern[str] | None:
        text = self.text(key)
        if text is None:
            return None
        try:
            return re.compile(text)
        except re.error as exc:
            self.fail(key, f"{key} {text!r} is not a valid regular expression: {exc}")
            return None

    def tables(self, key: str) -> list[Mapping[str, object]]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.fail(key, f"{key} must be written as [[{key}]] tables")
            return []
        return value

    def table(self, key: str) -> Mapping[str, object]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            self.fail(key, f"{key} must be written as a [{key}] table")
            return {}
        return value
