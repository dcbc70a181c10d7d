"""Client-level and company-level sync schedules run on the sandbox clock, beside product-level
schedules (a data type read by both is the seed's "dual sync"), with the sandbox's record of reads
saying what started each one."""

import pytest

pytestmark = pytest.mark.sandbox

HOUR = 3600
# One read takes under a minute of sandbox time (Queued 2 s, Fetching 30 s, then 20 s more); a
# schedule counts from the end of the last successful read, so each hourly read starts ~52 s
# later than the one before.
READ_SECONDS = 60


def setting(data_type, hours, *, fetch_on_first_link=True, order=0):
    return {
        "dataType": data_type,
        "fetchOnFirstLink": fetch_on_first_link,
        "syncSchedule": hours,
        "syncOrder": order,
    }


def set_client_settings(api, *settings):
    client_id = api.get("/profile/syncSettings").json()["clientId"]
    body = {"clientId": client_id, "overridesDefaults": True, "settings": list(settings)}
    assert api.post("/profile/syncSettings", json=body).status_code == 204


def set_company_settings(api, company_id, *settings):
    body = {"companyId": company_id, "overridesDefaults": True, "settings": list(settings)}
    response = api.post(f"/companies/{company_id}/syncSettings", json=body)
    assert response.status_code == 204, response.text


def reads(sandbox, company_id, origin=None):
    params = {"companyId": company_id, **({"origin": origin} if origin else {})}
    return sandbox.request("GET", "/_sandbox/reads", params=params).json()


def read_types(read) -> set[str]:
    return {dataset["dataType"] for dataset in read["datasets"]}


def test_client_level_schedule_rereads_every_linked_company(api, sandbox):
    # given: invoices hourly and bills every two hours at client level, two linked companies
    set_client_settings(api, setting("invoices", 1), setting("bills", 2, order=1))
    first, _ = api.linked_company(name="First Ltd")
    second, _ = api.linked_company(name="Second Ltd")
    unlinked = api.company(name="Never Linked Ltd")
    api.connection(unlinked["id"])

    # when: three sandbox hours pass
    sandbox.advance(3 * HOUR + 5 * READ_SECONDS)

    # then: each linked company was re-read on each data type's own schedule
    for company in (first, second):
        scheduled = reads(sandbox, company["id"], origin="clientSchedule")
        per_type = [data_type for r in scheduled for data_type in sorted(read_types(r))]
        assert sorted(per_type) == ["bills", "invoices", "invoices", "invoices"]
        assert all(r["done"] for r in scheduled)
        # Pull history grows, and every scheduled read ends with read.completed.
        history = api.get(
            f"/companies/{company['id']}/data/history", params={"query": "dataType=invoices"}
        ).json()
        assert history["totalResults"] == 4  # the first link's read, then three scheduled ones
        completed = [
            e
            for e in sandbox.events("read.completed")
            if e["payload"]["referenceCompany"]["id"] == company["id"]
        ]
        assert len(completed) == 5  # the first link's read, then four scheduled ones
        assert all("modifiedFromDate" in e["payload"] for e in completed[1:])
    assert reads(sandbox, unlinked["id"]) == []


def test_company_level_settings_override_the_client_level_schedule(api, sandbox):
    set_client_settings(api, setting("invoices", 1))
    company, _ = api.linked_company()
    set_company_settings(api, company["id"], setting("invoices", 3))

    sandbox.advance(6 * HOUR + 3 * READ_SECONDS)

    assert reads(sandbox, company["id"], origin="clientSchedule") == []
    scheduled = reads(sandbox, company["id"], origin="companySchedule")
    assert len(scheduled) == 2  # about 3 h and 6 h after the first read


def test_a_zero_schedule_stops_scheduled_reads_and_a_change_applies_at_once(api, sandbox):
    set_client_settings(api, setting("invoices", 24))
    company, _ = api.linked_company()
    sandbox.advance(READ_SECONDS)

    set_client_settings(api, setting("invoices", 1))  # from daily to hourly
    sandbox.advance(HOUR)
    assert len(reads(sandbox, company["id"], origin="clientSchedule")) == 1

    set_client_settings(api, setting("invoices", 0))  # "off"
    sandbox.advance(5 * HOUR)
    assert len(reads(sandbox, company["id"], origin="clientSchedule")) == 1


def test_an_unlinked_company_is_not_reread_until_it_links_again(api, sandbox):
    set_client_settings(api, setting("invoices", 1))
    company, connection = api.linked_company()
    sandbox.advance(READ_SECONDS)
    patch = api.patch(
        f"/companies/{company['id']}/connections/{connection['id']}", json={"status": "Unlinked"}
    )
    assert patch.status_code == 200

    sandbox.advance(3 * HOUR)
    assert reads(sandbox, company["id"], origin="clientSchedule") == []

    sandbox.authorize(company["id"], connection["id"])
    sandbox.advance(HOUR + READ_SECONDS)
    assert len(reads(sandbox, company["id"], origin="clientSchedule")) == 1


def test_product_level_schedules_run_beside_client_level_ones_a_dual_sync(api, sandbox):
    # given: invoices read hourly at client level, and by an hourly custom product
    sandbox.control(
        "PUT",
        "products/cash-flow",
        {"name": "Cash flow", "dataTypes": ["invoices"], "schedule": {"frequency": "hourly"}},
    )
    set_client_settings(api, setting("invoices", 1))
    company, _ = api.linked_company(products=["cash-flow"])

    sandbox.advance(4 * HOUR)

    # then: the sandbox's record shows invoices read by both kinds of schedule
    by_client = reads(sandbox, company["id"], origin="clientSchedule")
    by_product = reads(sandbox, company["id"], origin="productSchedule")
    assert by_client and by_product
    assert all(
        r["origin"] == {"kind": "productSchedule", "product": "cash-flow"} for r in by_product
    )
    assert {"invoices"} == set().union(*(read_types(r) for r in by_client + by_product))
    assert sandbox.events("cash-flow.read.completed")


def test_a_schedule_that_meets_a_running_read_collides_instead_of_reading_twice(api, sandbox):
    set_client_settings(api, setting("invoices", 1))
    company, _ = api.linked_company()
    sandbox.advance(READ_SECONDS)
    # Reads now take two hours in Fetching, so the hourly schedule meets its own running read.
    sandbox.control("PUT", "datasets", {"durations": {"Fetching": 2 * HOUR}})

    sandbox.advance(2 * HOUR + 30)

    scheduled = reads(sandbox, company["id"], origin="clientSchedule")
    assert len(scheduled) == 2
    started, collided = scheduled
    assert read_types(started) == {"invoices"} and not started["collisions"]
    assert collided["datasets"] == []
    assert collided["collisions"] == [
        {"dataType": "invoices", "datasetId": started["datasets"][0]["id"]}
    ]
    running = api.get(
        f"/companies/{company['id']}/data/history", params={"query": "status=Fetching"}
    ).json()
    assert running["totalResults"] == 1  # one dataset, never two of the same type at once
