from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from panelhub.export.csvdaily import DayTotals, daily_csv_lines
from panelhub.storage.series import Quality


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_one_row_per_day_one_column_per_device_and_the_quality() -> None:
    days = [
        DayTotals(date(2026, 3, 1), (12_500.0, 800.0), (Quality.GOOD, Quality.GOOD)),
        DayTotals(
            date(2026, 3, 2), (13_000.0, None), (Quality.GAP | Quality.ESTIMATED, Quality.NO_DATA)
        ),
    ]
    text = "".join(daily_csv_lines(["Main", "Lights, floor 1"], days, unit="kWh", factor=0.001))

    assert read(text) == [
        ["Date", "Main (kWh)", "Lights, floor 1 (kWh)", "Quality"],
        ["2026-03-01", "12.5", "0.8", "OK"],
        ["2026-03-02", "13", "", "Main: gap, estimated; Lights, floor 1: no data"],
    ]


def test_device_names_cannot_become_formulas() -> None:
    days = [DayTotals(date(2026, 3, 1), (1.0,), (Quality.RESET,))]

    records = read("".join(daily_csv_lines(["=1+1"], days, unit="Wh")))

    assert records[0][1] == "'=1+1 (Wh)"
    assert records[1][2] == "'=1+1: reset"


def test_a_day_with_the_wrong_number_of_totals_is_refused() -> None:
    days = [DayTotals(date(2026, 3, 1), (1.0,), (Quality.GOOD,))]

    with pytest.raises(ValueError, match="2026-03-01"):
        list(daily_csv_lines(["A", "B"], days, unit="Wh"))
