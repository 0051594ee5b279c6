"""The models pages: built-in maps shown, custom models imported with located problems."""

from __future__ import annotations

import asyncio
import os
from importlib import resources

from panelhub.security.accounts import Role
from panelhub.security.audit import AuditEvent, AuditFilter
from tests.web.browsers import admin_browser, browser_of, form
from tests.web.conftest import Web

SDM120 = (resources.files("panelhub.devices.templates") / "eastron-sdm120.toml").read_text()
CUSTOM = SDM120.replace('id = "eastron-sdm120"', 'id = "site-sdm120-copy"', 1)


def upload(web: Web, client, **files):
    return form(web, client, "/models/import", files=files)


def test_a_builtin_model_page_shows_its_register_map_and_file(web):
    client = admin_browser(web)
    page = client.get("/models/eastron-sdm120")
    assert page.status_code == 200
    assert "<code>voltage_l1_n</code>" in page.text
    assert "id = &#34;eastron-sdm120&#34;" in page.text  # the file, escaped
    assert "Delete this model" not in page.text  # built-ins stay
    assert client.get("/models/no-such-model").status_code == 404


def test_a_custom_model_typed_in_is_kept_0600_and_audited(web):
    client = admin_browser(web)
    saved = form(web, client, "/models/import", text=CUSTOM)
    assert (saved.status_code, saved.headers["location"]) == (303, "/models?saved=site-sdm120-copy")
    path = web.data_dir / "models" / "site-sdm120-copy.toml"
    assert path.read_text() == CUSTOM
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert 'data-model="site-sdm120-copy"' in client.get("/models").text
    records = asyncio.run(web.audit.query(AuditFilter(event=AuditEvent.CONFIG_CHANGED)))
    assert dict(records[-1].details) == {"changed": "models.site-sdm120-copy (saved)"}


def test_a_model_file_with_overlapping_registers_is_refused_with_its_line(web):
    client = admin_browser(web)
    lines = CUSTOM.splitlines()
    current = next(i for i, line in enumerate(lines) if 'key = "current_l1"' in line)
    address = next(i for i in range(current, len(lines)) if lines[i].startswith("address"))
    lines[address] = "address = 0x0001  # overlaps the voltage"
    refused = upload(web, client, file=("mine.toml", "\n".join(lines).encode(), "text/plain"))
    assert refused.status_code == 400
    assert f"model:{address + 1}:" in refused.text
    assert "overlap" in refused.text
    assert not (web.data_dir / "models").exists()


def test_a_random_file_is_refused_clearly(web):
    client = admin_browser(web)
    refused = upload(web, client, file=("meter.toml", os.urandom(2048), "application/octet-stream"))
    assert refused.status_code == 400
    assert "Nothing was kept" in refused.text


def test_a_builtin_id_cannot_be_taken_and_a_used_model_cannot_be_deleted(web):
    client = admin_browser(web)
    assert form(web, client, "/models/import", text=SDM120).status_code == 400
    assert form(web, client, "/models/import", text=CUSTOM).status_code == 303
    data = web.context.control.settings.model_dump(mode="json")
    data["buses"] = [{"kind": "tcp", "name": "meters", "host": "127.0.0.1"}]
    data["devices"] = [{"name": "Pump", "model": "site-sdm120-copy", "bus": "meters"}]
    from panelhub.config.models import Settings  # noqa: PLC0415

    asyncio.run(web.context.control.apply_settings(Settings.model_validate(data)))
    refused = form(web, client, "/models/delete", id="site-sdm120-copy")
    assert refused.status_code == 409
    assert "used by Pump" in refused.text
    data["devices"] = []
    asyncio.run(web.context.control.apply_settings(Settings.model_validate(data)))
    assert form(web, client, "/models/delete", id="site-sdm120-copy").status_code == 303
    assert not (web.data_dir / "models" / "site-sdm120-copy.toml").exists()


def test_viewers_read_models_but_cannot_import(web):
    admin_browser(web)
    viewer = browser_of(web, "reader", Role.VIEWER)
    assert viewer.get("/models").status_code == 200
    assert form(web, viewer, "/models/import", text=CUSTOM).status_code == 403
