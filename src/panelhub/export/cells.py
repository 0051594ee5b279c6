"""CSV cells safe to open in a spreadsheet: text that cannot become a formula, plain numbers.

Device, measurement and gateway names are typed by users; a name such as ``=HYPERLINK(...)``
or ``@SUM(A1)`` would run as a formula when the file is opened in a spreadsheet (CSV
injection, OWASP). Such text is prefixed with an apostrophe, which spreadsheets show as text.
"""

from __future__ import annotations

import math
from typing import Final

#: Leading characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection":
#: = + - @ and the tab and carriage return that some importers strip before looking).
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
#: Significant digits written for a value: 15 is what a float64 holds exactly in decimal,
#: so a value read back equals the stored one to the meter's resolution and no ``0.30000000004``.
VALUE_DIGITS: Final = 15


def text_cell(text: str) -> str:
    """Return ``text`` so a spreadsheet shows it as written and never evaluates it."""
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def number_cell(value: float | None) -> str:
    """Return a value as a plain decimal number, or an empty cell when it is not a number."""
    if value is None or not math.isfinite(value):
        return ""
    return format(value, f".{VALUE_DIGITS}g")
