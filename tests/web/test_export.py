"""The export page and downloads: the reference raw CSV of a device, daily totals, the audit."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from panelhub.config.models import MeasurementSamplingConfig
from panelhub.export.csvraw import IDENTITY_HEADER
from panelhub.security.audit import AuditEvent, AuditFilter
from panelhub.storage.series import Sample
from panelhub.web.routes.export import content_disposition
from tests.web.conftest import Web
from tests.web.energydata import FLAGGED_HOUR, fill_energy, logged_in, raw_samples

SLOTS = [FLAGGED_HOUR + 300 * index for index in range(3)]  # 12:00, 12:05, 12:10 Paris


def fill_raw(web: Web) -> list[str]:
    """Every series of the lights at three slots, one value invalid; returns their keys."""

    async def fill() -> list[str]:
        store = web.datalog.store
        series = await store.series_for("Lights")
        batch = [
            (info.series_id, _sample(ts, slot, column))
            for column, info in enumerate(series)
            for slot, ts in enumerate(SLOTS)
        ]
        await store.append(batch)
        return [info.key for info in series]

    return asyncio.run(fill())


def _sample(ts: int, slot: int, column: int) -> Sample:
    return Sample.invalid(ts) if (slot, column) == (1, 0) else Sample(ts, 10.0 * column + slot)


def test_the_raw_csv_has_the_reference_header_and_one_row_per_slot(web: Web):
    fill_energy(web)
    stored_keys = fill_raw(web)
    client = logged_in(web, "viewer")
    response = client.get("/api/export/raw.csv?device=Lights&from=2027-01-14&to=2027-01-14")
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="2_mb_Lights_20270115')
    assert disposition.endswith("filename*=UTF-8''2_mb_Lights_20270115090000000.csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == IDENTITY_HEADER
    assert rows[1][:2] == ["PanelHub panel server", "000000000000"]
    assert rows[1][4:] == ["Lights", "modbus:2_mb", "panelhub-sim-cb3", rows[1][7], "5", "3"]
    topics = rows[4][3:]
    template = web.datalog.catalog.get("panelhub-sim-cb3")
    assert template is not None
    keys = [m.key for m in template.measurements]
    assert topics == [f"modbus:2_mb_{key}" for key in keys]
    assert rows[3][3:] == [f"Topic ID{n}" for n in range(1, len(keys) + 1)]
    first = template.measurements[0]
    assert rows[6][:4] == [
        "Error",
        "UTC Offset (minutes)",
        "Local Time Stamp",
        f"{first.name} ({first.unit})",
    ]
    data = rows[7:]
    assert [row[:3] for row in data] == [
        ["0", "60", "2027-01-14 12:00:00"],
        ["19", "60", "2027-01-14 12:05:00"],  # the first measurement was invalid there
        ["0", "60", "2027-01-14 12:10:00"],
    ]
    column = {key: index for index, key in enumerate(stored_keys)}  # the samples' column

    def expected(key: str, slot: int) -> str:
        return "" if (slot, column[key]) == (1, 0) else format(10.0 * column[key] + slot, ".15g")

    assert [row[3:] for row in data] == [[expected(key, slot) for key in keys] for slot in range(3)]


def test_daily_totals_per_local_day_with_quality(web: Web):
    fill_energy(web)
    client = logged_in(web)
    response = client.get("/api/export/daily.csv?from=2027-01-13&to=2027-01-14")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "daily_electricity_20270115" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        ["Date", "Boiler (kWh)", "Lights (kWh)", "Incomer (kWh)", "Quality"],
        ["2027-01-13", "48", "24", "72", "OK"],
        ["2027-01-14", "72", "24", "96", "Lights: gap"],
    ]
    chosen = client.get("/api/export/daily.csv?device=Incomer&from=2027-01-14&to=2027-01-14")
    assert list(csv.reader(io.StringIO(chosen.text)))[1] == ["2027-01-14", "96", "OK"]


def test_each_download_is_audited_with_who_and_what(web: Web):
    fill_energy(web)
    client = logged_in(web, "viewer")
    client.get("/api/export/raw.csv?device=Boiler&from=2027-01-14&to=2027-01-14")
    client.get("/api/export/daily.csv?device=Boiler&device=Lights")
    assert client.head("/api/export/daily.csv").status_code == 200  # no copy taken: not audited
    records = asyncio.run(web.audit.query(AuditFilter(event=AuditEvent.DATA_EXPORTED)))
    found = sorted((r.user, r.details["format"], r.details["devices"]) for r in records)
    assert found == [("viewer1", "daily", "Boiler, Lights"), ("viewer1", "raw", "Boiler")]


@pytest.mark.parametrize(
    "path",
    ["/export/raw.csv", "/export/raw.csv?device=Nobody",
     "/export/raw.csv?device=Boiler&from=14.1.2027",
     "/export/daily.csv?commodity=plasma", "/export/daily.csv?device=Nobody",
     "/export/daily.csv?from=2027-01-14&to=2027-01-01"],
)  # fmt: skip
def test_a_bad_parameter_is_a_400_with_the_reason(web: Web, path: str):
    fill_energy(web)
    client = logged_in(web)
    refused = client.get(f"/api{path}")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_query"
    named = refused.json()["message"].split(":")[0]  # the parameter at fault
    assert named in {"device", "from", "to", "from/to", "commodity"}
    assert not asyncio.run(web.audit.query(AuditFilter(event=AuditEvent.DATA_EXPORTED)))


def test_the_export_page_offers_the_devices(web: Web):
    fill_energy(web)
    page = logged_in(web, "viewer").get("/export")
    assert page.status_code == 200
    assert page.text.count('<option value="Lights">') == 2
    assert 'value="2027-01-14"' in page.text


def test_downloads_need_a_session(web: Web):
    assert web.new_client().get("/api/export/raw.csv?device=Boiler").status_code == 401
    assert web.new_client().get("/export", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("name", ["Küche", "電気", "Q1 bay"])
def test_any_device_name_makes_a_header_http_can_carry(name: str):
    header = content_disposition(f"1_mb_{name}_20270115000000000.csv")
    header.encode("latin-1")
    assert header.startswith('attachment; filename="1_mb_')
    assert "filename*=UTF-8''1_mb_" in header


def test_a_measurement_switched_off_is_left_out_of_the_raw_csv(web: Web):
    fill_energy(web)
    fill_raw(web)
    settings = web.context.control.settings
    lights = settings.devices[1].model_copy(
        update={
            "measurements": (MeasurementSamplingConfig(key="active_energy_import", enable=False),)
        }
    )
    devices = (settings.devices[0], lights, settings.devices[2])
    asyncio.run(
        web.context.control.apply_settings(settings.model_copy(update={"devices": devices}))
    )
    response = logged_in(web).get("/api/export/raw.csv?device=Lights&from=2027-01-14")
    topics = list(csv.reader(io.StringIO(response.text)))[4]
    assert "modbus:2_mb_current_l1" in topics
    assert "modbus:2_mb_active_energy_import" not in topics


def test_a_long_raw_export_is_streamed_in_chunks(web: Web):
    fill_energy(web)
    start = FLAGGED_HOUR - 11 * 3_600  # 01:00 Paris on 14 January
    slots = 6_000  # one per 10 s: about 400 kB of CSV
    raw_samples(web, "Lights", "current_l1", [(start + 10 * i, 0.5 + i) for i in range(slots)])
    client = logged_in(web)
    with client.stream("GET", "/api/export/raw.csv?device=Lights&from=2027-01-14") as response:
        parts = list(response.iter_text())
    assert len(parts) > 3  # streamed, never one piece held whole
    rows = list(csv.reader(io.StringIO("".join(parts))))
    assert rows[1][-1] == str(slots)  # Historical Intervals, counted first
    assert len(rows) == 7 + slots
