"""Client-level and company-level sync settings."""

import pytest

pytestmark = pytest.mark.sandbox


def test_client_settings_round_trip(api):
    current = api.get("/profile/syncSettings").json()
    assert len(current["settings"]) == 43
    body = {
        "clientId": current["clientId"],
        "overridesDefaults": True,
        "settings": [
            {"dataType": "invoices", "fetchOnFirstLink": True, "syncSchedule": 24, "syncOrder": 0}
        ],
    }
    assert api.post("/profile/syncSettings", json=body).status_code == 204
    assert api.get("/profile/syncSettings").json()["settings"][0]["dataType"] == "invoices"


def test_company_settings_drive_the_first_link(api, sandbox):
    company = api.company()
    body = {
        "companyId": company["id"],
        "overridesDefaults": True,
        "settings": [
            {"dataType": "journals", "fetchOnFirstLink": True, "syncSchedule": 24, "syncOrder": 0}
        ],
    }
    assert api.post(f"/companies/{company['id']}/syncSettings", json=body).status_code == 204
    assert (
        api.get(f"/companies/{company['id']}/syncSettings").json()["settings"][0]["dataType"]
        == "journals"
    )
    connection = api.connection(company["id"])
    sandbox.authorize(company["id"], connection["id"])
    history = api.get(f"/companies/{company['id']}/data/history").json()["results"]
    assert [d["dataType"] for d in history] == ["journals"]


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        (
            {"dataType": "nope", "fetchOnFirstLink": True, "syncSchedule": 24, "syncOrder": 0},
            "dataType",
        ),
        ({"dataType": "invoices", "syncSchedule": 24, "syncOrder": 0}, "fetchOnFirstLink"),
        (
            {"dataType": "invoices", "fetchOnFirstLink": True, "syncSchedule": "x", "syncOrder": 0},
            "syncSchedule",
        ),
    ],
)
def test_bad_settings_answer_400_with_the_field(api, setting, field):
    company = api.company()
    body = {"companyId": company["id"], "overridesDefaults": True, "settings": [setting]}
    response = api.post(f"/companies/{company['id']}/syncSettings", json=body)
    assert response.status_code == 400
    assert field in response.json()["error"]
