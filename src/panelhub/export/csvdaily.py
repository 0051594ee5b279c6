"""Daily totals of a set of devices over a period, as a CSV stream: one row per local day.

Columns: ``Date`` (the local day, ``YYYY-MM-DD``), one ``Device (unit)`` column per device
with the day's consumption, and ``Quality``: ``OK`` when every total of the row is a clean
meter difference, else which device's total is flagged and why (``Meter A: gap, estimated``),
so a spreadsheet user sees which figures to trust without another file. A day with no data
for a device leaves its cell empty (never a zero that looks measured).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from panelhub.export.cells import number_cell, text_cell
from panelhub.storage.series import Quality

#: The quality cell of a row whose every total is good.
QUALITY_OK: Final = "OK"
#: RFC 4180 line ending, as the raw export.
LINE_END: Final = "\r\n"


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One local day: one total per device (None: no data) and each total's quality."""

    day: date
    totals: Sequence[float | None]
    qualities: Sequence[Quality]


def daily_csv_lines(
    devices: Sequence[str], days: Iterable[DayTotals], *, unit: str, factor: float = 1.0
) -> Iterator[str]:
    """Yield the file line by line (each ends with CRLF).

    Args:
        devices: the device names, in column order.
        days: one entry per day, oldest first, totals in the devices' order.
        unit: the unit written in the column titles (``kWh``, ``m³``).
        factor: what each total is multiplied by to be in ``unit`` (0.001 for Wh to kWh).

    Raises:
        ValueError: a day has not one total and one quality per device.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=LINE_END)
    titles = [text_cell(f"{device} ({unit})") for device in devices]
    writer.writerow(["Date", *titles, "Quality"])
    yield _take(buffer)
    for day in days:
        if not len(day.totals) == len(day.qualities) == len(devices):
            raise ValueError(f"{day.day}: not one total and one quality per device")
        cells = [number_cell(None if total is None else total * factor) for total in day.totals]
        writer.writerow([day.day.isoformat(), *cells, quality_text(devices, day.qualities)])
        yield _take(buffer)


def quality_text(devices: Sequence[str], qualities: Sequence[Quality]) -> str:
    """Return ``OK`` or the flagged devices with their flags, e.g. ``Meter A: gap, reset``."""
    flagged = [
        f"{device}: {', '.join(_flag_names(quality))}"
        for device, quality in zip(devices, qualities, strict=True)
        if quality != Quality.GOOD
    ]
    return text_cell("; ".join(flagged)) if flagged else QUALITY_OK


def _flag_names(quality: Quality) -> list[str]:
    return [
        str(flag.name).lower().replace("_", " ") for flag in Quality if flag and flag in quality
    ]


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
