"""Products: add/remove and their webhooks, refresh rules, schedules and platform downtime."""

from datetime import datetime

import pytest

pytestmark = pytest.mark.sandbox

HOUR = 3600


def define_custom_product(sandbox, identifier="cash-flow", schedule=None):
    body = {"name": "Cash flow", "dataTypes": ["invoices", "bills"]}
    if schedule:
        body["schedule"] = schedule
    return sandbox.control("PUT", f"products/{identifier}", body).json()


def test_add_and_remove_fire_events_with_the_full_product_list(api, sandbox):
    company = api.company(products=["lending"])
    path = f"/companies/{company['id']}/products/expenses"
    assert api.put(path).status_code == 204
    assert api.get(f"/companies/{company['id']}").json()["products"] == ["lending", "expenses"]
    added = sandbox.events("company.product.added")[0]["payload"]
    assert added["productId"] == "expenses" and added["productName"] == "Expenses"
    assert added["products"] == ["lending", "expenses"]
    assert api.delete(path).status_code == 204
    assert (
        api.delete(f"/companies/{company['id']}/products/lending").status_code == 204
    )  # the last one
    assert sandbox.events("company.product.removed")[-1]["payload"]["products"] == []
    assert api.put(f"/companies/{company['id']}/products/nope").status_code == 404


def test_adding_a_product_to_a_linked_company_queues_its_data_types(api, sandbox):
    company, _ = api.linked_company()
    sandbox.advance(120)
    api.put(f"/companies/{company['id']}/products/expenses")
    queued = api.get(
        f"/companies/{company['id']}/data/history", params={"query": "status=Queued"}
    ).json()["results"]
    assert {d["dataType"] for d in queued} == {
        "company",
        "chartOfAccounts",
        "taxRates",
        "trackingCategories",
        "suppliers",
    }


def test_refresh_rules(api, sandbox):
    define_custom_product(sandbox)
    company, _ = api.linked_company(products=["cash-flow", "lending"])
    base = f"/companies/{company['id']}/products"
    standard = api.post(f"{base}/lending/refresh")
    assert standard.status_code == 400
    assert standard.json()["error"].startswith("Lending doesn't support data refreshing")
    running = api.post(f"{base}/cash-flow/refresh")
    assert running.status_code == 400
    assert running.json()["error"] == (
        "Data cannot be refreshed while a read operation is in progress. "
        "Allow the read to complete before attempting to refresh."
    )
    sandbox.advance(120)
    invalid = api.post(f"{base}/cash-flow/refresh", json={"dataTypes": ["journals"]})
    assert (
        invalid.status_code == 400 and "Valid options: invoices, bills" in invalid.json()["error"]
    )
    extra = api.post(f"{base}/cash-flow/refresh", json={"dataTypes": ["bills"], "other": 1})
    assert extra.status_code == 400
    assert api.post(f"{base}/cash-flow/refresh", json={"dataTypes": ["bills"]}).status_code == 202
    sandbox.advance(120)
    product_events = sandbox.events("cash-flow.read.completed")
    assert product_events[-1]["payload"]["dataTypes"][0]["dataType"] == "bills"
    assert sandbox.events("cash-flow.read.completed.successful")
    assert len(sandbox.events("cash-flow.read.completed.initial")) == 1


def test_hourly_schedule_reads_with_modified_from_the_previous_scheduled_read(api, sandbox):
    define_custom_product(sandbox, schedule={"frequency": "hourly"})
    # Link ten minutes past an hour: three hours (and the last read's minute) later then hold
    # exactly three hour marks, whatever the time the test runs at (from the last minute of an
    # hour, the same advance would reach a fourth).
    now = datetime.fromisoformat(sandbox.control("GET", "clock").json()["now"])
    sandbox.advance(HOUR - (now.minute * 60 + now.second) + 10 * 60)
    api.linked_company(products=["cash-flow"])
    sandbox.advance(3 * HOUR + 60)
    scheduled = sandbox.events("cash-flow.read.completed")[1:]  # [0] is the first-link read
    assert len(scheduled) == 3
    froms = [e["payload"]["modifiedFromDate"] for e in scheduled]
    # Each scheduled read starts where the previous scheduled read started, on the hour.
    assert froms[1] > froms[0] and froms[2] > froms[1]
    assert all(f.endswith(":00:00.000Z") for f in froms)


def test_daily_schedule_runs_at_its_time(api, sandbox):
    define_custom_product(sandbox, schedule={"frequency": "daily", "time": "06:30"})
    products = sandbox.control("GET", "products").json()
    custom = next(p for p in products if p["identifier"] == "cash-flow")
    assert custom["nextScheduledRead"].endswith("T06:30:00.000Z")


def test_platform_downtime_retries_ten_times_over_twelve_hours_then_fetch_error(api, sandbox):
    define_custom_product(sandbox, schedule={"frequency": "hourly"})
    company, _ = api.linked_company(products=["cash-flow"])
    sandbox.advance(120)
    sandbox.control("PUT", f"companies/{company['id']}/downtime", {"down": True})
    before = len(sandbox.events("read.completed"))
    sandbox.advance(HOUR)  # the next scheduled read starts, and meets the outage
    paused = api.get(
        f"/companies/{company['id']}/data/history", params={"query": "status=Fetching"}
    ).json()["results"]
    assert paused and all(d["statusDescription"].startswith("Paused until") for d in paused)
    sandbox.advance(12 * HOUR + 60)
    history = api.get(f"/companies/{company['id']}/data/history", params={"pageSize": 500}).json()
    failed = [d for d in history["results"] if d["id"] in {p["id"] for p in paused}]
    assert {d["status"] for d in failed} == {"FetchError"}
    completed = sandbox.events("read.completed")[before:]
    statuses = [{i["status"] for i in e["payload"]["dataTypes"]} for e in completed]
    assert {"FetchError"} in statuses
    assert sandbox.events("cash-flow.read.completed.unsuccessful")


IN_PROGRESS = (
    "Data cannot be refreshed while a read operation is in progress. "
    "Allow the read to complete before attempting to refresh."
)


def test_read_in_progress_is_judged_per_custom_product(api, sandbox):
    # given: two custom products of one company, and a running read of the first one's invoices
    define_custom_product(sandbox)  # cash-flow: invoices, bills
    sandbox.control(
        "PUT", "products/payments-watch", {"name": "Payments", "dataTypes": ["payments"]}
    )
    company, _ = api.linked_company(products=["cash-flow", "payments-watch"])
    sandbox.advance(120)
    base = f"/companies/{company['id']}/products"
    assert (
        api.post(f"{base}/cash-flow/refresh", json={"dataTypes": ["invoices"]}).status_code == 202
    )

    # when/then: the same product is refused whatever data types the refresh names...
    again = api.post(f"{base}/cash-flow/refresh", json={"dataTypes": ["bills"]})
    assert again.status_code == 400 and again.json()["error"] == IN_PROGRESS
    # ...while another product of the same company may refresh
    assert api.post(f"{base}/payments-watch/refresh").status_code == 202

    # and once the product's read has finished, it may refresh again
    sandbox.advance(120)
    assert api.post(f"{base}/cash-flow/refresh", json={"dataTypes": ["bills"]}).status_code == 202


def test_a_refresh_takes_in_a_running_read_of_its_types_that_is_not_the_products(api, sandbox):
    define_custom_product(sandbox)
    company, _ = api.linked_company(products=["cash-flow"])
    sandbox.advance(120)
    # A read of invoices for another reason (one data type queued) is running.
    queued = api.post(f"/companies/{company['id']}/data/queue/invoices").json()

    assert api.post(f"/companies/{company['id']}/products/cash-flow/refresh").status_code == 202
    sandbox.advance(120)

    # One invoices dataset, not two, and the product's event covers both of its data types.
    history = api.get(
        f"/companies/{company['id']}/data/history", params={"query": "dataType=invoices"}
    ).json()
    assert history["totalResults"] == 2  # the first link's read, then the queued one
    event = sandbox.events("cash-flow.read.completed")[-1]["payload"]
    assert {item["dataType"] for item in event["dataTypes"]} == {"invoices", "bills"}
    (refresh,) = sandbox.request(
        "GET", "/_sandbox/reads", params={"origin": "productRefresh"}
    ).json()
    joined = [d for d in refresh["datasets"] if d["joined"]]
    assert [d["id"] for d in joined] == [queued["id"]]


def test_a_product_added_while_its_data_types_are_being_read_still_gets_its_event(api, sandbox):
    define_custom_product(sandbox)  # invoices and bills, both read on first link
    company, _ = api.linked_company()  # the first link's read of invoices and bills is running

    assert api.put(f"/companies/{company['id']}/products/cash-flow").status_code == 204
    sandbox.advance(120)

    (event,) = sandbox.events("cash-flow.read.completed")
    assert {item["dataType"] for item in event["payload"]["dataTypes"]} == {"invoices", "bills"}
    assert sandbox.events("cash-flow.read.completed.successful")


def test_a_refresh_with_no_linked_connection_is_refused_not_accepted_for_nothing(api, sandbox):
    define_custom_product(sandbox)
    company = api.company(products=["cash-flow"])
    api.connection(company["id"])  # PendingAuth: nothing can be read yet

    response = api.post(f"/companies/{company['id']}/products/cash-flow/refresh")

    assert response.status_code == 404
    assert response.json()["error"].startswith("Datatype invoices, bills not supported by")
    assert sandbox.request("GET", "/_sandbox/reads").json() == []
