"""The OpenAPI document: every API route of the table is in it, and only sessions may read it."""

from __future__ import annotations

from panelhub.security.accounts import Role
from panelhub.web.access import Access, GuardedRoute, api
from panelhub.web.app import routes
from panelhub.web.routes.openapi import build_document
from tests.web.browsers import admin_browser, browser_of

API_ROUTES = [route for route in routes() if isinstance(route, GuardedRoute) and route.is_api]


def test_refused_without_a_session(web):
    response = web.client.get("/api/openapi.json")
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated"}
    assert "paths" not in response.text


def test_every_api_route_and_method_is_described(web):
    client = admin_browser(web)
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "PanelHub API"
    described = {(path, method.upper()) for path, item in document["paths"].items()
                 for method in item}  # fmt: skip
    expected = {(route.path_format, method) for route in API_ROUTES
                for method in route.methods or () if method != "HEAD"}  # fmt: skip
    assert described == expected
    assert ("/api/openapi.json", "GET") in described
    assert ("/api/audit/export.csv", "GET") in described
    for route in API_ROUTES:
        for method in (route.methods or set()) - {"HEAD"}:
            operation = document["paths"][route.path_format][method.lower()]
            assert operation["x-panelhub-access"] == route.access.value
            assert operation["summary"], (route.path, method)
            names = {p["name"] for p in operation.get("parameters", [])}
            assert names == set(route.param_convertors), route.path
            if route.access is Access.PUBLIC:
                assert operation["security"] == []
            else:
                assert operation["security"][0]["session"] == []
                assert "401" in operation["responses"]
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_summaries_come_from_the_docstrings(web):
    client = admin_browser(web)
    paths = client.get("/api/openapi.json").json()["paths"]
    assert paths["/api/openapi.json"]["get"]["summary"] == (
        "This document: the JSON API described in OpenAPI 3.1."
    )
    assert paths["/api/certificate"]["put"]["security"] == [{"session": [], "csrf": []}]
    assert paths["/api/audit"]["get"]["x-panelhub-access"] == "admin"


def test_a_viewer_may_read_it(web):
    admin_browser(web)
    viewer = browser_of(web, "viewer1", Role.VIEWER)
    assert viewer.get("/api/openapi.json").status_code == 200


def test_a_route_added_to_the_table_appears_in_the_document():
    async def new_thing(_request):
        """Something new."""

    added = api("/api/new/{item_id:int}", new_thing, access=Access.OPERATOR, methods=["POST"])
    document = build_document([*routes(), added])
    operation = document["paths"]["/api/new/{item_id}"]["post"]
    assert operation["summary"] == "Something new."
    assert operation["parameters"] == [
        {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    ]
