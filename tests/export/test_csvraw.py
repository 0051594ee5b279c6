"""The raw-data CSV as a spreadsheet or a script reads it: header block, rows, offsets, memory."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panelhub.export.csvraw import (
    DeviceIdentity,
    GatewayIdentity,
    Measurement,
    RawHeader,
    RawRow,
    RowCountMismatchError,
    raw_csv_lines,
)

PARIS = ZoneInfo("Europe/Paris")
GATEWAY = GatewayIdentity("PanelHub", "542206310926", "10.195.253.81", "00:00:54:E5:8A:36")
DEVICE = DeviceIdentity("F160 3P 3P+N", "modbus:1_mb_81", "F160 3P 3P+N", "F160 3P 3P+N")
MEASUREMENTS = (
    Measurement("modbus:1_mb_VAB", "RmsVoltagePhsAB", "V"),
    Measurement("modbus:1_mb_VAN", "RmsVoltagePhsAN", "V"),
)


def export(rows: list[RawRow], *, device: DeviceIdentity = DEVICE, tz: ZoneInfo = PARIS):
    header = RawHeader(GATEWAY, device, 5, MEASUREMENTS, row_count=len(rows))
    text = "".join(raw_csv_lines(header, rows, tz=tz))
    return text, list(csv.reader(io.StringIO(text, newline="")))


def utc(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


def test_header_block_is_the_reference_layout() -> None:
    rows = [
        RawRow(utc(2026, 1, 15, 9, 5), (400.5, 231.25)),
        RawRow(utc(2026, 1, 15, 9, 10), (1, 2)),
    ]
    text, records = export(rows)

    assert records[:7] == [
        [
            "Gateway Name", "Gateway SN", "Gateway IP Address", "Gateway MAC Address",
            "Device Name", "Device Local ID", "Device Type ID", "Device Type Name",
            "Logging Interval", "Historical Intervals",
        ],
        [
            "PanelHub", "542206310926", "10.195.253.81", "00:00:54:E5:8A:36", "F160 3P 3P+N",
            "modbus:1_mb_81", "F160 3P 3P+N", "F160 3P 3P+N", "5", "2",
        ],
        [],
        ["", "", "", "Topic ID1", "Topic ID2"],
        ["", "", "", "modbus:1_mb_VAB", "modbus:1_mb_VAN"],
        [],
        [
            "Error", "UTC Offset (minutes)", "Local Time Stamp",
            "RmsVoltagePhsAB (V)", "RmsVoltagePhsAN (V)",
        ],
    ]  # fmt: skip
    assert records[7:] == [
        ["0", "60", "2026-01-15 10:05:00", "400.5", "231.25"],
        ["0", "60", "2026-01-15 10:10:00", "1", "2"],
    ]
    lines = text.split("\r\n")
    # Topic ids and values in quotes, as the reference writes them.
    assert lines[4] == ',,,"modbus:1_mb_VAB","modbus:1_mb_VAN"'
    assert lines[7] == '0,60,2026-01-15 10:05:00,"400.5","231.25"'


def test_a_row_with_an_invalid_value_has_error_19_and_an_empty_cell() -> None:
    _, records = export([RawRow(utc(2026, 6, 1, 0, 0), (None, 230.0))])

    assert records[7] == ["19", "120", "2026-06-01 02:00:00", "", "230"]


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        # Summer time starts 2026-03-29 at 01:00 UTC: 01:30 local is followed by 03:00.
        (
            utc(2026, 3, 29, 0, 0),
            [("60", "01:00"), ("60", "01:30"), ("120", "03:00"), ("120", "03:30")],
        ),
        # Summer time ends 2026-10-25 at 01:00 UTC: local 02:00-02:59 happens twice.
        (
            utc(2026, 10, 25, 0, 0),
            [("120", "02:00"), ("120", "02:30"), ("60", "02:00"), ("60", "02:30")],
        ),
    ],
)
def test_each_row_carries_its_own_offset_across_a_dst_change(first, expected) -> None:
    rows = [RawRow(first + step * 1800, (1.0, 2.0)) for step in range(4)]
    _, records = export(rows)

    assert [(record[1], record[2][-8:-3]) for record in records[7:]] == expected


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_local_time_minus_the_offset_is_the_rows_utc_time(ts: int) -> None:
    _, records = export([RawRow(ts, (1.0, 2.0))])
    _, offset_min, local = records[7][:3]

    local_naive = datetime.strptime(local, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - local by design
    as_utc = local_naive - timedelta(minutes=int(offset_min))
    assert as_utc == datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)"])
def test_a_device_name_cannot_become_a_spreadsheet_formula(name: str) -> None:
    device = DeviceIdentity(name, "modbus:1_mb_81", "t", "t")
    _, records = export([RawRow(utc(2026, 1, 1, 0, 0), (-5.5, 1.0))], device=device)

    assert records[1][4] == "'" + name
    # Numbers are not text: a negative value stays a number.
    assert records[7][3] == "-5.5"


def test_more_or_fewer_rows_than_counted_fail_loudly() -> None:
    rows = [RawRow(utc(2026, 1, 1, 0, minute), (1.0, 2.0)) for minute in (0, 5, 10)]
    for count in (2, 4):
        header = RawHeader(GATEWAY, DEVICE, 5, MEASUREMENTS, row_count=count)
        with pytest.raises(RowCountMismatchError, match=f"promised {count} rows"):
            "".join(raw_csv_lines(header, rows, tz=PARIS))


def rows_every_minute(count: int) -> Iterator[RawRow]:
    start = utc(2020, 1, 1, 0, 0)
    for index in range(count):
        yield RawRow(start + index * 60, (230.0 + index % 7, None if index % 1000 == 0 else 1.5))


def test_memory_does_not_grow_with_the_number_of_rows() -> None:
    count = 50_000  # about 2 MB of text; tracemalloc makes each row ten times slower
    header = RawHeader(GATEWAY, DEVICE, 1, MEASUREMENTS, row_count=count)
    tracemalloc.start()
    try:
        total_chars = sum(map(len, raw_csv_lines(header, rows_every_minute(count), tz=PARIS)))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert total_chars > 38 * count  # the whole file went through
    # About 270 KiB whatever the row count (the csv and time modules' own buffers); the file
    # itself is 2 MB, so a list of its lines or a joined string would break the bound.
    assert peak_bytes < 1024 * 1024


MILLION_ROWS_SCRIPT = """
import resource
from zoneinfo import ZoneInfo
from tests.export.test_csvraw import DEVICE, GATEWAY, MEASUREMENTS, rows_every_minute
from panelhub.export.csvraw import RawHeader, raw_csv_lines

count = 1_000_000
header = RawHeader(GATEWAY, DEVICE, 1, MEASUREMENTS, row_count=count)
warm_header = RawHeader(GATEWAY, DEVICE, 1, MEASUREMENTS, row_count=1000)
sum(map(len, raw_csv_lines(warm_header, rows_every_minute(1000), tz=ZoneInfo("Europe/Paris"))))
before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
chars = sum(map(len, raw_csv_lines(header, rows_every_minute(count), tz=ZoneInfo("Europe/Paris"))))
after_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(chars, after_kib - before_kib)
"""


def test_a_million_rows_stream_in_bounded_memory() -> None:
    # In a fresh process: the peak resident size of the test run would hide any growth.
    result = subprocess.run(
        [sys.executable, "-c", MILLION_ROWS_SCRIPT], capture_output=True, text=True, check=True
    )
    chars, growth_kib = map(int, result.stdout.split())

    assert chars > 38_000_000  # a 38 MB file went through
    assert growth_kib < 4 * 1024
