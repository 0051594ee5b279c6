"""The raw-data CSV of one device in the reference layout, written as a stream of lines.

Layout (reference-device.md §1.6, inherited from the Com'X 510)::

    1  Gateway Name,Gateway SN,Gateway IP Address,Gateway MAC Address,Device Name,...
    2  the gateway's and the device's identity, logging interval (minutes), data row count
    3  (empty)
    4  ,,,Topic ID1,Topic ID2           three leading commas align topics over the values
    5  ,,,"modbus:1_mb_VAB",...         topic ids, quoted
    6  (empty)
    7  Error,UTC Offset (minutes),Local Time Stamp,RmsVoltagePhsAB (V),...
    8+ 0,60,2026-01-15 10:05:00,"231.2",...

Rules:

* **UTC offset** is local time minus UTC, in minutes: the reference's example row
  ``0,-300,2008-10-09 14:15:00`` is a site five hours west of Greenwich. Paris writes 60 in
  winter and 120 in summer, and each row carries its own offset, so the hour repeated when
  summer time ends is two distinct sets of rows (120 then 60) and ``local - offset`` is
  always the UTC time of the row.
* **Error** is 0 when every value of the row is valid and 19 when at least one is invalid or
  not available (its cell is then empty).
* **Historical Intervals** (the data row count) is in row 2, before any data row: the caller
  counts the rows first (a cheap ``COUNT(*)`` over the same range) and passes the count. The
  count and the rows must come from one snapshot (one read transaction): if the rows turn out
  to be more or fewer, the stream raises instead of writing a header that lies.
* Measurement values are quoted (the reference: "quotation marks used around data fields"),
  as are topic ids; user text cannot become a spreadsheet formula (see :mod:`.cells`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final

from panelhub.errors import PanelHubError
from panelhub.export.cells import number_cell, text_cell

#: Row 1 of the reference layout, word for word.
IDENTITY_HEADER: Final = (
    "Gateway Name",
    "Gateway SN",
    "Gateway IP Address",
    "Gateway MAC Address",
    "Device Name",
    "Device Local ID",
    "Device Type ID",
    "Device Type Name",
    "Logging Interval",
    "Historical Intervals",
)
#: The first three titles of row 7; the measurements' "name (unit)" follow.
DATA_HEADER: Final = ("Error", "UTC Offset (minutes)", "Local Time Stamp")
#: The three empty cells that put topics over their values in a spreadsheet (rows 4 and 5).
ALIGNMENT: Final = ("", "", "")
#: Error column values (reference-device.md §1.6).
ERROR_NONE: Final = 0
ERROR_INVALID: Final = 19
#: The reference's local time format.
LOCAL_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
#: RFC 4180 line ending; Python's csv module and spreadsheets read it everywhere.
LINE_END: Final = "\r\n"


class RowCountMismatchError(PanelHubError):
    """The rows streamed were not as many as the header said: the file is incomplete.

    The count and the rows were not read from one snapshot of the store (one read
    transaction), so retention or polling changed the range in between. ``returned`` is None
    when there were more rows than promised.
    """

    def __init__(self, *, promised: int, returned: int | None) -> None:
        got = "more" if returned is None else str(returned)
        super().__init__(f"the export promised {promised} rows but the store returned {got}")
        self.promised = promised
        self.returned = returned


@dataclass(frozen=True, slots=True)
class GatewayIdentity:
    name: str
    serial_number: str
    ip_address: str
    mac_address: str


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    name: str
    local_id: str  # e.g. "modbus:1_mb_81"
    type_id: str
    type_name: str


@dataclass(frozen=True, slots=True)
class Measurement:
    topic_id: str  # language-independent, unique in the gateway, e.g. "modbus:1_mb_VAB"
    name: str
    unit: str


@dataclass(frozen=True, slots=True)
class RawHeader:
    """Everything rows 1-7 say; ``row_count`` is the number of rows the caller will stream."""

    gateway: GatewayIdentity
    device: DeviceIdentity
    logging_interval_min: int
    measurements: Sequence[Measurement]
    row_count: int


@dataclass(frozen=True, slots=True)
class RawRow:
    """One logging slot: UTC seconds and one value per measurement (None: invalid)."""

    ts: int
    values: Sequence[float | None]


def raw_csv_lines(header: RawHeader, rows: Iterable[RawRow], *, tz: tzinfo) -> Iterator[str]:
    """Yield the file line by line (each ends with CRLF), rows in the order given.

    Args:
        header: the identity block; ``row_count`` must be the number of ``rows``.
        rows: the data rows, oldest first, each with one value per measurement.
        tz: the installation's time zone, for the local time stamps and offsets.

    Raises:
        RowCountMismatchError: ``rows`` held more or fewer rows than ``header.row_count`` (the
            count and the rows were not read from one snapshot); the lines already yielded
            are an incomplete file.
        ValueError: a row has not one value per measurement.
    """
    line = _LineWriter()
    yield from _header_lines(header, line)
    width = len(header.measurements)
    written = 0
    for row in rows:
        if written == header.row_count:
            raise RowCountMismatchError(promised=header.row_count, returned=None)
        if len(row.values) != width:
            raise ValueError(f"a row has {len(row.values)} values for {width} measurements")
        yield line.data_row(row, tz)
        written += 1
    if written != header.row_count:
        raise RowCountMismatchError(promised=header.row_count, returned=written)


def _header_lines(header: RawHeader, line: _LineWriter) -> Iterator[str]:
    gateway, device = header.gateway, header.device
    yield line.plain(IDENTITY_HEADER)
    identity = (
        *(gateway.name, gateway.serial_number, gateway.ip_address, gateway.mac_address),
        *(device.name, device.local_id, device.type_id, device.type_name),
    )
    yield line.plain(
        [text_cell(text) for text in identity]
        + [str(header.logging_interval_min), str(header.row_count)]
    )
    yield LINE_END
    count = len(header.measurements)
    yield line.plain([*ALIGNMENT, *(f"Topic ID{index}" for index in range(1, count + 1))])
    yield line.quoted_after(
        ALIGNMENT, [text_cell(measurement.topic_id) for measurement in header.measurements]
    )
    yield LINE_END
    titles = [text_cell(f"{item.name} ({item.unit})") for item in header.measurements]
    yield line.plain([*DATA_HEADER, *titles])


class _LineWriter:
    """Formats one CSV record at a time with the csv module's quoting, reusing one buffer."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._minimal = csv.writer(self._buffer, lineterminator=LINE_END)
        self._all = csv.writer(self._buffer, quoting=csv.QUOTE_ALL, lineterminator=LINE_END)

    def plain(self, cells: Sequence[str]) -> str:
        self._minimal.writerow(cells)
        return self._take()

    def quoted_after(self, lead: Sequence[str], cells: Sequence[str]) -> str:
        """Write ``lead`` as plain cells, then ``cells`` each in quotes (topics, values)."""
        self._minimal.writerow(lead)
        head = self._take()[: -len(LINE_END)]
        self._all.writerow(cells)
        tail = self._take()
        return f"{head},{tail}" if cells else head + LINE_END

    def data_row(self, row: RawRow, tz: tzinfo) -> str:
        local = datetime.fromtimestamp(row.ts, tz)
        offset = local.utcoffset()
        offset_min = 0 if offset is None else int(offset.total_seconds()) // 60
        cells = [number_cell(value) for value in row.values]
        error = ERROR_NONE if all(cells) else ERROR_INVALID
        # Every cell here is a number, a time or empty: none holds a comma or a quote, so the
        # record is joined directly (three times faster than the csv module on a 1M-row file).
        values = "".join(f',"{cell}"' for cell in cells)
        stamp = local.strftime(LOCAL_TIME_FORMAT)
        return f"{error},{offset_min},{stamp}{values}{LINE_END}"

    def _take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
