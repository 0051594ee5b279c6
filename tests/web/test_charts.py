"""Charts as a browser gets them: well-formed SVG, the marks and tooltips a user sees, escaped."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import datetime
from zoneinfo import ZoneInfo

from panelhub.storage.series import Quality, Resolution, Rollup, Sample
from panelhub.web.charts import (
    BarSeries,
    Bucket,
    ChartSeries,
    Period,
    Slice,
    bar_chart,
    line_chart,
    pie_chart,
    top_slices,
)

NS = "{http://www.w3.org/2000/svg}"
PARIS = ZoneInfo("Europe/Paris")
DAY_START = int(datetime(2026, 11, 27, tzinfo=PARIS).timestamp())
DAY = Period(DAY_START, DAY_START + 86_400, PARIS)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it is well-formed
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert "style" not in svg  # the pages' CSP forbids inline styles
    return root


def series_groups(root: ET.Element) -> list[ET.Element]:
    return [group for group in root.iter(f"{NS}g") if group.get("class") == "series"]


def titles(element: ET.Element, tag: str) -> list[str]:
    return [node.findtext(f"{NS}title") or "" for node in element.iter(f"{NS}{tag}")]


def every_5_minutes(value: float = 231.5) -> list[Sample]:
    return [Sample(DAY_START + 300 * index, value) for index in range(288)]


def test_a_line_chart_has_a_polyline_per_series_axes_and_a_legend() -> None:
    svg = line_chart(
        [ChartSeries("Main", every_5_minutes()), ChartSeries("Heating", every_5_minutes(2.0))],
        DAY,
        unit="V",
        title="Voltage",
    )
    root = parse(svg)

    assert [len(group.findall(f"{NS}polyline")) for group in series_groups(root)] == [1, 1]
    assert root.findtext(f"{NS}title") == "Voltage"
    texts = [node.text for node in root.iter(f"{NS}text")]
    assert {"27 Nov", "03:00", "21:00", "28 Nov", "V", "Main", "Heating"} <= set(texts)


def test_a_gap_splits_the_line_and_no_segment_crosses_it() -> None:
    samples = every_5_minutes()
    for index in range(100, 120):  # 08:20 to 09:55 local: the meter did not answer
        samples[index] = Sample.invalid(samples[index].ts)
    root = parse(line_chart([ChartSeries("Main", samples)], DAY, unit="V", title="Voltage"))

    (group,) = series_groups(root)
    lines = group.findall(f"{NS}polyline")
    assert len(lines) == 2
    first_end = float(lines[0].get("points", "").split()[-1].split(",")[0])
    second_start = float(lines[1].get("points", "").split()[0].split(",")[0])
    gap_left = 64 + 99 * 300 / 86_400 * 704  # x of the last sample before the gap
    assert first_end <= gap_left + 0.1
    assert second_start >= 64 + 120 * 300 / 86_400 * 704 - 0.1


def test_each_point_has_a_tooltip_with_time_device_value_and_unit() -> None:
    root = parse(line_chart([ChartSeries("Main", every_5_minutes())], DAY, unit="V", title="V"))

    tooltips = titles(root, "circle")
    assert len(tooltips) == 288
    assert tooltips[1] == "2026-11-27 00:05, Main, 231.5 V"


def test_a_month_of_minute_samples_makes_a_light_chart() -> None:
    start = DAY_START
    samples = [Sample(start + 60 * index, 230 + math.sin(index / 90)) for index in range(43_200)]
    period = Period(start, start + 43_200 * 60, PARIS)

    svg = line_chart([ChartSeries("Main", samples)], period, unit="V", title="30 days")

    assert len(titles(parse(svg), "circle")) <= 1000
    assert len(svg) < 150_000


def test_device_names_are_escaped() -> None:
    name = "<script>alert(1)</script>"
    svg = line_chart([ChartSeries(name, every_5_minutes())], DAY, unit="V&A", title="</svg>")

    root = parse(svg)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert not list(root.iter(f"{NS}script"))
    assert name in [node.text for node in root.iter(f"{NS}text")]
    assert titles(root, "circle")[0].endswith(f", {name}, 231.5 V&A")


def test_bars_one_group_per_bucket_flagged_ones_hatched_never_negative() -> None:
    days = [DAY_START + 86_400 * index for index in range(7)]
    values = [5_000.0, 5_500.0, math.nan, 4_000.0, -20.0, 6_000.0, 5_100.0]
    buckets = [Bucket(ts, value) for ts, value in zip(days, values, strict=True)]
    buckets[3] = Bucket(days[3], 4_000.0, Quality.GAP | Quality.ESTIMATED)
    root = parse(bar_chart([BarSeries("Main", buckets)], tz=PARIS, unit="Wh", title="Energy"))

    (group,) = series_groups(root)
    bars = group.findall(f"{NS}rect")
    assert len(bars) == 6  # no bar for the day without data
    assert all(float(bar.get("height", "-1")) >= 0 for bar in bars)
    assert float(bars[3].get("height", "")) == 0  # the negative day
    flagged = [bar for bar in bars if bar.get("class") == "flagged"]
    assert len(flagged) == 1
    assert flagged[0].get("fill", "").startswith("url(#")
    assert flagged[0].findtext(f"{NS}title") == (
        "2026-11-30, Main, 4000 Wh (flagged: gap, estimated)"
    )
    assert titles(group, "rect")[0] == "2026-11-27, Main, 5000 Wh"


def test_compare_mode_puts_the_two_periods_side_by_side() -> None:
    this_week = [Bucket(DAY_START + 86_400 * index, 10.0 + index) for index in range(7)]
    last_week = [Bucket(DAY_START - 86_400 * (7 - index), 20.0) for index in range(7)]
    svg = bar_chart(
        [BarSeries("This week", this_week), BarSeries("Last week", last_week)],
        tz=PARIS,
        unit="kWh",
        title="Compare",
    )
    first, second = series_groups(parse(svg))

    first_bars, second_bars = first.findall(f"{NS}rect"), second.findall(f"{NS}rect")
    assert len(first_bars) == len(second_bars) == 7
    for mine, other in zip(first_bars, second_bars, strict=True):
        assert float(other.get("x", "")) > float(mine.get("x", ""))  # right next to it
        assert float(other.get("x", "")) - float(mine.get("x", "")) < 704 / 7
    assert second_bars[0].findtext(f"{NS}title") == "2026-11-20, Last week, 20.00 kWh"


def test_top_five_and_others() -> None:
    slices = [Slice(f"Usage {index}", float(100 - index)) for index in range(8)]

    top = top_slices(slices)

    assert [item.label for item in top] == [f"Usage {index}" for index in range(5)] + ["Others"]
    assert top[-1].value == 95 + 94 + 93
    assert top[-1].is_others


def test_a_donut_gives_each_slice_its_percentage() -> None:
    slices = top_slices([Slice("Heating", 600), Slice("Lighting", 300), Slice("<b>", 100)])
    root = parse(pie_chart(slices, unit="kWh", title="By usage", centre_text="Main 1000 kWh"))

    rings = [node for node in root.iter(f"{NS}circle") if node.get("class") == "slice"]
    assert [ring.findtext(f"{NS}title") for ring in rings] == [
        "Heating: 600.0 kWh (60.0 %)",
        "Lighting: 300.0 kWh (30.0 %)",
        "<b>: 100.0 kWh (10.0 %)",
    ]
    assert "Main 1000 kWh" in [node.text for node in root.iter(f"{NS}text")]


def test_the_others_slice_is_grey() -> None:
    slices = top_slices([Slice(f"Zone {index}", 10.0) for index in range(7)])
    rings = [
        node
        for node in parse(pie_chart(slices, unit="kWh", title="By zone")).iter(f"{NS}circle")
        if node.get("class") == "slice"
    ]

    assert len(rings) == 6
    assert rings[-1].get("stroke") == "#8a959c"
    assert len({ring.get("stroke") for ring in rings}) == 6


def test_a_period_without_consumption_says_so() -> None:
    root = parse(pie_chart([Slice("Heating", 0.0)], unit="kWh", title="By usage"))

    assert "No consumption" in [node.text for node in root.iter(f"{NS}text")]
    assert not [node for node in root.iter(f"{NS}circle") if node.get("class") == "slice"]


def test_hourly_rollups_draw_their_means_and_an_empty_hour_is_a_gap() -> None:
    rollups = [
        Rollup(1, Resolution.HOUR, DAY_START + 3_600 * hour, 60, 229, 233, 230.0 + hour, math.nan)
        for hour in range(24)
    ]
    nan = math.nan
    rollups[10] = Rollup(1, Resolution.HOUR, DAY_START + 36_000, 0, nan, nan, nan, nan, Quality.GAP)

    series = ChartSeries.from_rollups("Main", rollups)
    root = parse(line_chart([series], DAY, unit="V", title="Voltage"))

    (group,) = series_groups(root)
    assert len(group.findall(f"{NS}polyline")) == 2
    assert titles(group, "circle")[1] == "2026-11-27 01:00, Main, 231.0 V"
