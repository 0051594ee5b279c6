"""Where a table or key of a TOML document is: the line numbers ``tomllib`` does not give.

A light scan, not a parser: it follows ``[table]`` and ``[[array]]`` headers and ``key =``
lines, which is how device templates are written, and skips the inside of multi-line strings.
A key not found (written in an inline table, say) falls back to its table's header line.
"""

from __future__ import annotations

import re
from typing import Final

_ARRAY_HEADER: Final = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]")
_TABLE_HEADER: Final = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
_KEY: Final = re.compile(r"""^\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*(?:\.|=)""")

_TRIPLE_QUOTES: Final = ("'''", '"""')

#: A table: ("defaults", 0) for [defaults], ("measurements", 2) for the third [[measurements]];
#: ("", 0) is the root, before any header.
Section = tuple[str, int]
ROOT: Final[Section] = ("", 0)


def _normalise(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


class LineIndex:
    """Line numbers (1-based) of the headers and keys of one TOML text."""

    def __init__(self, text: str) -> None:
        self._headers: dict[Section, int] = {ROOT: 1}
        self._keys: dict[tuple[Section, str], int] = {}
        counts: dict[str, int] = {}
        section = ROOT
        is_in_string = False
        for number, line in enumerate(text.splitlines(), start=1):
            was_in_string = is_in_string
            # An odd count of triple quotes opens or closes a multi-line string on this line.
            is_in_string ^= sum(line.count(quotes) for quotes in _TRIPLE_QUOTES) % 2 == 1
            if was_in_string:
                continue
            if match := _ARRAY_HEADER.match(line):
                name = _normalise(match[1])
                section = (name, counts.get(name, 0))
                counts[name] = section[1] + 1
                self._headers[section] = number
            elif match := _TABLE_HEADER.match(line):
                section = (_normalise(match[1]), 0)
                self._headers.setdefault(section, number)
            elif match := _KEY.match(line):
                self._keys.setdefault((section, match[1].strip("\"'")), number)

    def line(self, section: Section, key: str | None = None) -> int:
        """The line of ``key`` in ``section``, else of the section's header, else 1."""
        if key is not None and (section, key) in self._keys:
            return self._keys[(section, key)]
        return self._headers.get(section, 1)
