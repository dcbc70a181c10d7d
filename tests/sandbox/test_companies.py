"""Companies: Codat's bodies, status codes, name and tag rules, querying, ordering and paging."""

import pytest

pytestmark = pytest.mark.sandbox


def test_it_rejects_a_missing_or_wrong_api_key_with_codats_401(sandbox, api):
    for headers in ({}, {"Authorization": "Basic d3Jvbmc="}, {"Authorization": sandbox.api_key}):
        response = api.get("/companies", headers=headers or {"Authorization": ""})
        assert response.status_code == 401
        body = response.json()
        assert body["error"] == "Unauthorized"
        assert body["canBeRetried"] == "Unknown" and body["detailedErrorCode"] == 0


def test_create_strips_forbidden_characters_and_echoes_products(api):
    company = api.company("Company (Codat[1])", products=["lending"], tags={"region": "uk"})
    assert company["name"] == "Company Codat1"
    assert company["redirect"] == f"https://link.codat.io/company/{company['id']}"
    assert company["products"] == ["lending"]
    assert company["tags"] == {"region": "uk"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "((("}, "name"),
        ({"name": "A", "tags": {f"k{i}": "v" for i in range(11)}}, "tags"),
        ({"name": "A", "tags": {"k" * 28: "v"}}, "tags"),
        ({"name": "A", "tags": {"k": "v" * 101}}, "tags.k"),
        ({"name": "A", "products": ["no-such-product"]}, "products"),
    ],
)
def test_create_answers_400_naming_the_field(api, body, field):
    response = api.post("/companies", json=body)
    assert response.status_code == 400
    assert response.json()["validation"]["errors"][0]["itemId"].startswith(field)
    assert field in response.json()["error"]


def test_get_put_patch_delete(api, sandbox):
    company = api.company("Old name", tags={"a": "1"})
    path = f"/companies/{company['id']}"
    assert api.get(path).json()["name"] == "Old name"
    replaced = api.put(path, json={"name": "New name"}).json()
    assert replaced["name"] == "New name" and replaced["tags"] == {}
    patched = api.patch(path, json={"tags": {"b": "2"}}).json()
    assert patched["name"] == "New name" and patched["tags"] == {"b": "2"}
    assert api.delete(path).status_code == 204
    missing = api.get(path)
    assert missing.status_code == 404
    assert missing.json()["error"] == f"No company was found with ID {company['id']}"
    assert [e["eventType"] for e in sandbox.events()] == ["company.created", "company.deleted"]


def test_list_filters_orders_and_pages(api):
    for name in ("Alpha", "Bravo", "Charlie"):
        api.company(name, tags={"region": "uk" if name != "Bravo" else "us"})
    names = lambda r: [c["name"] for c in r.json()["results"]]  # noqa: E731
    assert names(api.get("/companies", params={"orderBy": "-name"})) == [
        "Charlie",
        "Bravo",
        "Alpha",
    ]
    assert names(api.get("/companies", params={"query": "name~ar"})) == ["Charlie"]
    assert names(
        api.get("/companies", params={"query": "{name=alpha||name=bravo}&&name!=bravo"})
    ) == ["Alpha"]
    assert names(api.get("/companies", params={"tags": "region=us"})) == ["Bravo"]
    assert names(api.get("/companies", params={"tags": "region!=us"})) == ["Alpha", "Charlie"]
    page = api.get("/companies", params={"page": 2, "pageSize": 1, "orderBy": "name"}).json()
    assert [c["name"] for c in page["results"]] == ["Bravo"]
    assert page["totalResults"] == 3 and page["pageNumber"] == 2 and page["pageSize"] == 1
    assert page["_links"]["self"]["href"] == "/companies"
    assert "page=3" in page["_links"]["next"]["href"]
    assert "page=1" in page["_links"]["previous"]["href"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "name="}, "Error parsing query - Malformed query."),
        ({"query": "{name=a"}, "Error parsing query - Malformed query."),
        ({"query": "name=" + "a" * 2048}, "Error parsing query - Malformed query."),
        (
            {"query": "colour=red"},
            "Error parsing query - Could not resolve property colour on Company",
        ),
        ({"pageSize": 5001}, "pageSize"),
        ({"page": 0}, "page"),
    ],
)
def test_list_answers_400_for_bad_queries_and_paging(api, params, message):
    response = api.get("/companies", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_page_size_up_to_5000_is_accepted(api):
    api.company()
    assert api.get("/companies", params={"pageSize": 5000}).json()["pageSize"] == 5000
