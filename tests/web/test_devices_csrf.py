"""Every change on the devices, models and discovery pages needs the session's CSRF token."""

from __future__ import annotations

import pytest

from tests.web.browsers import admin_browser
from tests.web.conftest import ORIGIN, Web

CHANGES = [
    ("/devices/add", {"name": "Forged", "connection": "tcp", "host": "127.0.0.1",
                      "port": "1502", "unit_id": "1", "model": "eastron-sdm630"}),
    ("/devices/edit", {"name": "Forged", "label": "x"}),
    ("/devices/delete", {"name": "Forged"}),
    ("/devices/measurements", {"name": "Forged"}),
    ("/models/import", {"text": 'id = "forged"'}),
    ("/models/delete", {"model": "forged"}),
    ("/devices/discover", {"connection": "tcp", "hosts": "127.0.0.1", "unit_ids": "1"}),
    ("/devices/discover/any/cancel", {}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "fields"), CHANGES)
@pytest.mark.parametrize("token", ["", "not-the-session-token"])
def test_a_change_without_the_session_token_is_refused_and_changes_nothing(
    web: Web, path: str, fields: dict[str, str], token: str
) -> None:
    client = admin_browser(web)
    before = web.context.control.settings
    models_before = client.get("/models").text
    answer = client.post(path, data={"csrf_token": token, **fields},
                         headers={"origin": ORIGIN}, follow_redirects=False)  # fmt: skip
    assert answer.status_code == 403
    assert web.context.control.settings == before
    assert client.get("/models").text == models_before
