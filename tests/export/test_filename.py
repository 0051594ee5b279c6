from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from panelhub.export.filename import csv_file_name

AT = datetime(2022, 11, 4, 8, 48, 30, 994_000, tzinfo=UTC)


def test_the_reference_example_name() -> None:
    assert csv_file_name("11_mb", "F160 3P 3P+N", AT) == "11_mb_F160 3P 3P+N_20221104084830994.csv"


def test_forbidden_characters_become_tildes_and_no_path_survives() -> None:
    name = csv_file_name("10_mb", '../a\\b:c*d?e"f<g>h|i\x00é', AT, index=3)

    assert name == "10_mb_..~a~b~c~d~e~f~g~h~i~é_20221104084830994_3.csv"
    assert "/" not in name


def test_the_time_is_written_in_the_zone_it_is_given() -> None:
    paris = AT.astimezone(ZoneInfo("Europe/Paris"))

    assert csv_file_name("10_mb", "M", paris).endswith("_20221104094830994.csv")


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        csv_file_name("10_mb", "M", AT.replace(tzinfo=None))
