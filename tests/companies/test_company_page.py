"""The company page for operators: a summary header (connection, each product's freshness,
consent and next scheduled read, the actions that apply), data types by product and state with
the never-read folded away, one bounded timeline of operations, webhook events and consent events
with links to the full lists, and a number of queries that does not grow with the history."""

import datetime
import re
import uuid

import factory
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from codat.data_types import ALL_DATA_TYPES
from companies.models import ProductReadStatus, PullOperation
from companies.selectors import ReadState
from consent.models import ConsentEvent
from operations.models import Operation
from tests.factories import (
    CompanyFactory,
    CompanyProductFactory,
    ConnectionFactory,
    ConsentEventFactory,
    DataTypeStatusFactory,
    OperationFactory,
    ProductFactory,
    PullOperationFactory,
    StaffFactory,
)
from webhooks.models import EventState, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client):
    client.force_login(StaffFactory(role="viewer"))
    return client


def company_page(client, company):
    response = client.get(reverse("admin:companies_company_change", args=[company.pk]))
    assert response.status_code == 200
    return response


def inline_rows(response, model) -> list:
    """The rows one inline of the page renders, as model instances."""
    (formset,) = [
        inline.formset
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is model
    ]
    return [form.instance for form in formset.initial_forms]


def add_pulls(company, count: int, *, start: datetime.datetime) -> None:
    """`count` pulls of the company, requested one minute apart after `start`."""
    minutes = iter(range(count))
    PullOperationFactory.create_batch(
        count,
        company=company,
        requested=factory.LazyFunction(lambda: start + datetime.timedelta(minutes=next(minutes))),
    )


def test_a_company_with_120_pulls_shows_the_newest_20_and_links_the_list_of_all(viewer):
    company = CompanyFactory()
    start = timezone.now() - datetime.timedelta(days=1)
    add_pulls(company, 120, start=start)
    PullOperationFactory.create_batch(5)  # another company's pulls

    response = company_page(viewer, company)

    shown = inline_rows(response, PullOperation)
    newest = PullOperation.objects.filter(company=company).order_by("-requested")[:20]
    assert [pull.pk for pull in shown] == [pull.pk for pull in newest]
    all_pulls = reverse("admin:companies_pulloperation_changelist")
    see_all = f"{all_pulls}?company__id__exact={company.pk}"
    content = response.content.decode()
    assert f'<a href="{escape(see_all)}">See all</a>' in content
    assert "Older pull operations, not shown: 100." in content
    # The link's list is the company's 120 pulls, not every company's.
    assert viewer.get(see_all).context["cl"].result_count == 120


def test_a_company_with_few_pulls_shows_them_all_with_no_see_all_link(viewer):
    company = CompanyFactory()
    PullOperationFactory.create_batch(3, company=company)

    response = company_page(viewer, company)

    assert len(inline_rows(response, PullOperation)) == 3
    assert "Older pull operations" not in response.content.decode()


def test_the_company_page_links_the_company_consent_matrix(viewer):
    company = CompanyFactory()

    content = company_page(viewer, company).content.decode()

    matrix = reverse("admin:consent_companyconsent_change", args=[company.pk])
    assert f'<a href="{matrix}">' in content
    assert viewer.get(matrix).status_code == 200


@pytest.fixture
def operator(client):
    client.force_login(StaffFactory(role="operator"))
    return client


def table_row(content: str, row_id: str) -> str:
    """The HTML of the table row with the id `row_id`."""
    start = content.index(f'<tr id="{row_id}"')
    return content[start : content.index("</tr>", start)]


def element(content: str, element_id: str, closing: str) -> str:
    """The HTML from the element with the id `element_id` to the first `closing` after it."""
    start = content.index(f'id="{element_id}"')
    return content[start : content.index(closing, start)]


class TwoProducts:
    """A company with two products whose reads stand differently, on a shared data type too:

    - "Cash-flow checks", custom, hourly, consented: bills failing; invoices stale for it (its own
      read is five hours old, though the other product read invoices just now); customers read;
      suppliers not read yet.
    - "Lending", standard, daily at 06:00 UTC, no consent: invoices and balanceSheet read now.
    """

    def __init__(self):
        self.now = timezone.now()
        self.company = CompanyFactory()
        ConnectionFactory(company=self.company, status="Deauthorized", platform_name="Xero")
        ConnectionFactory(company=self.company, status="Linked", platform_name="QuickBooks")
        self.hourly = ProductFactory(
            name="Cash-flow checks",
            schedule_kind="hourly",
            data_types=["invoices", "bills", "customers", "suppliers"],
        )
        self.daily = ProductFactory(
            name="Lending",
            kind="standard",
            schedule_kind="daily",
            schedule_time=datetime.time(6, 0),
            data_types=["invoices", "balanceSheet"],
        )
        hourly = CompanyProductFactory(company=self.company, product=self.hourly)
        daily = CompanyProductFactory(company=self.company, product=self.daily)
        ConsentEventFactory(company=self.company, product=self.hourly)
        self.five_hours_ago = self.now - datetime.timedelta(hours=5)
        recently = self.now - datetime.timedelta(minutes=10)
        self._read(hourly, "invoices", "Complete", self.five_hours_ago)
        self._read(hourly, "bills", "FetchError", recently)
        self._read(hourly, "customers", "Complete", recently)
        self._read(hourly, "suppliers", "", recently)
        self._read(daily, "invoices", "Complete", self.now)
        self._read(daily, "balanceSheet", "Complete", self.now)

    @staticmethod
    def _read(assignment, data_type, status, due_from):
        ProductReadStatus.objects.filter(assignment=assignment, data_type_id=data_type).update(
            last_status=status,
            last_read_at=due_from if status else None,
            last_successful_read=due_from if status == "Complete" else None,
            due_from=due_from,
        )

    @property
    def daily_next_read(self) -> datetime.datetime:
        """The first 06:00 UTC after the daily product's reads of now."""
        six = self.now.replace(hour=6, minute=0, second=0, microsecond=0)
        return six if six > self.now else six + datetime.timedelta(days=1)


@pytest.fixture
def two_products():
    return TwoProducts()


def test_the_header_shows_each_products_freshness_consent_and_next_read(viewer, two_products):
    company, hourly, daily = two_products.company, two_products.hourly, two_products.daily
    # and a product added a moment ago, which has read nothing yet
    added = ProductFactory(name="Payroll checks", schedule_kind="hourly", data_types=["taxRates"])
    CompanyProductFactory(company=company, product=added)

    response = company_page(viewer, company)

    # then: worked out per product, so the daily product's fresh invoices do not hide the
    # hourly product's stale read of them
    summary = response.context["summary"]
    products = {item.product.pk: item for item in summary.products}
    freshness = {pk: item.freshness for pk, item in products.items()}
    assert (freshness[hourly.pk].scheduled, freshness[hourly.pk].stale) == (4, 1)
    assert freshness[hourly.pk].failing == 1
    assert (freshness[daily.pk].scheduled, freshness[daily.pk].stale) == (2, 0)
    assert freshness[daily.pk].failing == 0
    assert products[hourly.pk].coverage.covered
    assert products[hourly.pk].coverage.consent.state == "active"
    assert not products[daily.pk].coverage.covered
    assert products[daily.pk].coverage.consent.state == "none"
    overdue_since = two_products.five_hours_ago + datetime.timedelta(hours=1)
    assert products[hourly.pk].next_read == overdue_since
    assert products[daily.pk].next_read == two_products.daily_next_read
    assert summary.next_read.product == hourly
    assert summary.connection_status == "Linked"

    # and the page says so
    content = response.content.decode()
    hourly_row = table_row(content, f"product-{hourly.pk}")
    for text in ("1 failing", "1 stale", "Active", "covers every required data type", "overdue"):
        assert text in hourly_row
    daily_row = table_row(content, f"product-{daily.pk}")
    due = two_products.daily_next_read
    for text in ("up to date", "No consent", "Lending: no consent recorded", "daily at 06:00 UTC"):
        assert text in daily_row
    assert f"{due.day} {due:%b, %H:%M} UTC" in daily_row
    assert "overdue" not in daily_row
    added_row = table_row(content, f"product-{added.pk}")
    assert "awaiting its first read" in added_row and "up to date" not in added_row
    assert "awaiting its first read" not in hourly_row + daily_row
    next_read = element(content, "company-next-read", "</div>")
    assert f"{overdue_since.day} {overdue_since:%b %Y, %H:%M} UTC" in next_read
    assert "Cash-flow checks, hourly" in next_read
    connection_fact = element(content, "company-connection", "</div>")
    assert connection_fact.index("Linked") < connection_fact.index("Deauthorized")
    assert "Codat is authorised: reads and writes run." in connection_fact


def test_data_types_are_grouped_by_product_and_state_with_the_never_read_folded(
    viewer, two_products
):
    company, hourly, daily = two_products.company, two_products.hourly, two_products.daily

    response = company_page(viewer, company)

    by_product = {
        entry.product.pk: [
            (group.state, [row.data_type_id for row in group.rows]) for group in entry.groups
        ]
        for entry in response.context["data_types_by_product"]
    }
    assert by_product == {
        hourly.pk: [
            (ReadState.FAILING, ["bills"]),
            (ReadState.STALE, ["invoices"]),
            (ReadState.READ, ["customers"]),
            (ReadState.NOT_READ, ["suppliers"]),
        ],
        daily.pk: [(ReadState.READ, ["balanceSheet", "invoices"])],
    }
    table = element(response.content.decode(), f"data-types-product-{hourly.pk}", "</table>")
    folded = table[table.index("<details>") : table.index("</details>")]
    assert "Suppliers" in folded and "Bills" not in folded
    assert "Bills: Fetch failed" in table


def test_other_data_types_are_grouped_by_state_and_the_never_synced_counted_and_linked(viewer):
    company = CompanyFactory()
    CompanyProductFactory(company=company, product=ProductFactory(data_types=["invoices"]))
    synced, failed, *never = [t for t in ALL_DATA_TYPES if t != "invoices"][:6]
    DataTypeStatusFactory(company=company, data_type_id="invoices", current_status="Complete")
    DataTypeStatusFactory(company=company, data_type_id=synced, current_status="Complete")
    # Codat has tried this one and failed: not synced successfully, but it has a status.
    DataTypeStatusFactory(company=company, data_type_id=failed, current_status="FetchError")
    for data_type in never:
        DataTypeStatusFactory(
            company=company, data_type_id=data_type, current_status="", last_successful_sync=None
        )
    DataTypeStatusFactory(data_type_id=never[0], current_status="")  # another company's

    response = company_page(viewer, company)

    # then: invoices is shown under its product, not again here
    other = response.context["other_data_types"]
    assert [(group.state, [row.data_type_id for row in group.rows]) for group in other.groups] == [
        (ReadState.FAILING, [failed]),
        (ReadState.READ, [synced]),
    ]
    assert other.never_synced == 4
    content = response.content.decode()
    assert "Data types never synced, not shown: 4." in content
    statuses = reverse("admin:companies_datatypestatus_changelist")
    see_all = (
        f"{statuses}?company__id__exact={company.pk}"
        "&current_status__exact=&last_successful_sync__isnull=True"
    )
    assert f'<a href="{escape(see_all)}">See all</a>' in content
    listed = viewer.get(see_all).context["cl"].result_list
    assert {status.data_type_id for status in listed} == set(never)


def forms_in(html: str) -> list[dict]:
    """The fields of each form in `html`, with its action."""
    found = []
    form = re.compile(r'<form method="post" action="([^"]+)">(.*?)</form>', re.S)
    for action, inner in form.findall(html):
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', inner))
        fields.pop("csrfmiddlewaretoken", None)
        found.append({"action": action, **fields})
    return found


def test_operators_get_the_actions_that_apply_and_each_opens_its_confirmation(
    operator, two_products
):
    company, hourly, daily = two_products.company, two_products.hourly, two_products.daily

    content = company_page(operator, company).content.decode()

    # then: refresh for the custom product only (Codat refreshes no standard product), and
    # only with consent
    hourly_forms = forms_in(table_row(content, f"product-{hourly.pk}"))
    daily_row = table_row(content, f"product-{daily.pk}")
    assert [form["kind"] for form in hourly_forms] == ["refresh_product", "remove_product"]
    assert [form["kind"] for form in forms_in(daily_row)] == ["remove_product"]
    # the product without consent can be asked for it, with the product chosen
    ask = reverse("admin:consent_companyconsent_request", args=[company.pk])
    assert f'href="{ask}?product={daily.pk}"' in daily_row
    assert "Ask for consent" not in table_row(content, f"product-{hourly.pk}")
    asked = operator.get(f"{ask}?product={daily.pk}")
    assert asked.context["form"].initial["products"] == [str(daily.pk)]
    for url_name in ("add_product", "request", "record"):
        url = reverse(f"admin:consent_companyconsent_{url_name}", args=[company.pk])
        assert f'href="{url}"' in content

    # when: the refresh button is pressed, the confirmation page plans it for this company
    refresh = hourly_forms[0]
    response = operator.post(refresh.pop("action"), refresh)
    assert response.status_code == 200
    assert response.context["plan"].queued == 1
    assert refresh["company_ids"] == str(company.pk)
    assert "You selected <strong>1</strong> company." in response.content.decode()
    assert not Operation.objects.exists()


def test_a_refresh_is_not_offered_without_the_consent_it_needs(operator, two_products):
    company, hourly = two_products.company, two_products.hourly
    ConsentEventFactory(company=company, product=hourly, action="withdraw")

    content = company_page(operator, company).content.decode()

    hourly_row = table_row(content, f"product-{hourly.pk}")
    assert [form["kind"] for form in forms_in(hourly_row)] == ["remove_product"]
    assert "Ask for consent" in hourly_row


def test_viewers_see_the_header_without_any_action(viewer, two_products):
    content = company_page(viewer, two_products.company).content.decode()

    summary = element(content, "company-summary", "</section>")
    assert "<form" not in summary
    assert "Ask for consent" not in summary
    assert "Add a product" not in summary
    matrix = reverse("admin:consent_companyconsent_change", args=[two_products.company.pk])
    assert f'href="{matrix}"' in summary


def add_operations(company, times, product) -> None:
    for at in times:
        operation = OperationFactory(company=company, product=product, state="succeeded")
        Operation.objects.filter(pk=operation.pk).update(created_at=at)


def add_webhook_events(company, times) -> None:
    events = WebhookEvent.objects.bulk_create(
        WebhookEvent(
            webhook_id=f"msg_{uuid.uuid4().hex}",
            event_type="invoices.read.completed",
            company=company,
            company_codat_id=company.codat_id,
            state=EventState.APPLIED,
        )
        for _ in times
    )
    for event, at in zip(events, times, strict=True):
        WebhookEvent.objects.filter(pk=event.pk).update(received_at=at)


def add_consent_events(company, product, times) -> None:
    for at in times:
        ConsentEventFactory(company=company, product=product, occurred_at=at)


TIMELINE_LINK = re.compile(
    r'href="/admin/(operations/operation|webhooks/webhookevent|consent/consentevent)/(\d+)/change/"'
)
SOURCE_OF_PATH = {
    "operations/operation": "operation",
    "webhooks/webhookevent": "webhook",
    "consent/consentevent": "consent",
}


def newest_of_the_company(company, count: int) -> list[tuple[str, int]]:
    """The company's `count` newest operations, webhook events and consent events together,
    as (source, pk), read straight from the three tables."""
    operations = company.operations.values_list("pk", "created_at")
    webhook_events = company.webhook_events.values_list("pk", "received_at")
    rows = [
        *(("operation", pk, at) for pk, at in operations),
        *(("webhook", pk, at) for pk, at in webhook_events),
        *(
            ("consent", pk, at)
            for pk, at in ConsentEvent.objects.filter(company=company).values_list(
                "pk", "occurred_at"
            )
        ),
    ]
    rows.sort(key=lambda row: row[2], reverse=True)
    return [(source, pk) for source, pk, _ in rows[:count]]


def test_the_timeline_merges_the_three_sources_newest_first_and_stops_at_50(viewer):
    # given: 30 of each, interleaved in time, and another company's
    company = CompanyFactory()
    product = ProductFactory(data_types=["invoices"])
    start = timezone.now() - datetime.timedelta(days=2)

    def minute(n):
        return start + datetime.timedelta(minutes=n)

    add_operations(company, [minute(3 * i) for i in range(30)], product)
    add_webhook_events(company, [minute(3 * i + 1) for i in range(30)])
    add_consent_events(company, product, [minute(3 * i + 2) for i in range(30)])
    other = CompanyFactory()
    add_operations(other, [timezone.now()], product)
    add_webhook_events(other, [timezone.now()])

    # when
    response = company_page(viewer, company)

    # then: the newest 50 of the 90, in time order, across the three sources
    timeline = response.context["timeline"]
    assert [entry.at for entry in timeline.entries] == [minute(n) for n in range(89, 39, -1)]
    assert timeline.truncated
    content = response.content.decode()
    section = element(content, "company-timeline", "</section>")
    shown = [(SOURCE_OF_PATH[path], int(pk)) for path, pk in TIMELINE_LINK.findall(section)]
    assert shown == newest_of_the_company(company, 50)
    assert "The newest 50 entries are shown; older ones are in the full lists" in section
    # and each "see all" link lists every row of the company, and no other company's
    for url_name in (
        "admin:operations_operation_changelist",
        "admin:webhooks_webhookevent_changelist",
        "admin:consent_consentevent_changelist",
    ):
        url = f"{reverse(url_name)}?company__id__exact={company.pk}"
        assert f'href="{escape(url)}"' in section
        assert viewer.get(url).context["cl"].result_count == 30


def test_a_short_history_is_shown_whole_without_a_bound_note(viewer):
    company = CompanyFactory()
    product = ProductFactory(data_types=["invoices"])
    now = timezone.now()
    add_consent_events(company, product, [now - datetime.timedelta(minutes=3)])
    add_operations(company, [now - datetime.timedelta(minutes=2)], product)
    add_webhook_events(company, [now - datetime.timedelta(minutes=1)])

    response = company_page(viewer, company)

    timeline = response.context["timeline"]
    assert [entry.source for entry in timeline.entries] == ["webhook", "operation", "consent"]
    assert not timeline.truncated
    section = element(response.content.decode(), "company-timeline", "</section>")
    assert "The newest 50" not in section
    assert "The full lists:" in section


def test_the_company_page_costs_the_same_queries_for_a_short_and_a_long_history(operator):
    # given: a company with products, consent and data types
    two_products = TwoProducts()
    company, product = two_products.company, two_products.hourly
    start = timezone.now() - datetime.timedelta(days=1)

    def history(count: int, offset: datetime.timedelta) -> None:
        times = [start + offset + datetime.timedelta(minutes=n) for n in range(count)]
        add_pulls(company, count, start=start + offset)
        add_operations(company, times, product)
        add_webhook_events(company, times)
        add_consent_events(company, product, times)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            company_page(operator, company)
        return len(captured)

    # when: the history grows from 3 to 83 of each kind
    history(3, datetime.timedelta(0))
    DataTypeStatusFactory(company=company, data_type_id=ALL_DATA_TYPES[0])
    few = queries()
    history(80, datetime.timedelta(hours=2))
    for data_type in ALL_DATA_TYPES[1:8]:
        DataTypeStatusFactory(company=company, data_type_id=data_type)
    many = queries()

    # then
    assert many == few


def test_a_very_long_pull_history_is_counted_only_up_to_the_cap(viewer, monkeypatch):
    from core.admin_mixins import FoldedInlineFormSet

    monkeypatch.setattr(FoldedInlineFormSet, "hidden_count_cap", 10)
    company = CompanyFactory()
    add_pulls(company, 40, start=timezone.now() - datetime.timedelta(days=1))

    content = company_page(viewer, company).content.decode()

    # 20 shown, 20 left out: past the cap of 10, the note does not count them all
    assert "Older pull operations, not shown: more than 10." in content
