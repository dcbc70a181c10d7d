"""An id that names nothing ("abc", an unknown number, one past every integer column) gets a 404
or the refusal that fits, never a 500: on every admin URL, as a superuser and as a viewer, for GET
and POST. So do junk URLs outside the admin, and the webhook path without its trailing slash."""

import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import URLResolver, reverse
from django.urls.resolvers import RegexPattern

from operations.models import Operation, OperationState
from tests.factories import JobFactory, OperationFactory, StaffFactory
from tests.webhooks.conftest import as_django_headers, new_secret, signature_headers
from webhooks.models import WebhookConsumer, WebhookEvent

pytestmark = pytest.mark.django_db

# Not a number; a number no row has; a number past the range of the integer primary keys.
JUNK_IDS = ("abc", "999999", "99999999999999999999")
ROLES = ("superuser", "viewer")
ROUTE_PARAMETER = re.compile(r"<(?:\w+:)?\w+>")
REGEX_GROUP = re.compile(r"\(\?P<\w+>[^)]*\)")


def _admin_routes(patterns, prefix=""):
    """(route, pattern) for every admin URL pattern, the site's own and each ModelAdmin's
    get_urls() (the site includes those under app_label/model_name/)."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _admin_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _junk_cases():
    """(route, url path under /admin/, takes an id) for each route and each junk id."""
    for route, pattern in _admin_routes(admin.site.get_urls()):
        if isinstance(pattern.pattern, RegexPattern):
            template, parameter = route.strip("^$"), REGEX_GROUP
        else:
            template, parameter = route, ROUTE_PARAMETER
        if not parameter.search(template):
            yield route, template, False
            continue
        for junk in JUNK_IDS:
            yield route, parameter.sub(junk, template), True


JUNK_CASES = list(_junk_cases())


def _user(role):
    if role == "superuser":
        return get_user_model().objects.create_superuser("root", password="x")
    return StaffFactory(role="viewer")


@pytest.fixture(params=ROLES)
def staff_client(request, client):
    client.force_login(_user(request.param))
    client.raise_request_exception = False
    return client


def test_the_walk_covers_the_custom_admin_views():
    routes = {route for route, _, _ in JUNK_CASES}
    for custom in (
        "operations/job/<int:job_id>/progress.json",
        "operations/job/<int:job_id>/retry-failed/",
        "operations/job/<int:job_id>/cancel-rest/",
        "operations/operation/stale/",
        "consent/companyconsent/<int:pk>/record/",
        "webhooks/webhookconsumer/import-from-codat/",
        "companies/company/operations/confirm/",
    ):
        assert custom in routes


@pytest.mark.parametrize(
    "route, path, takes_id", JUNK_CASES, ids=[path for _, path, _ in JUNK_CASES]
)
def test_no_admin_url_answers_500_to_an_id_that_names_nothing(staff_client, route, path, takes_id):
    url = reverse("admin:index") + path
    index = reverse("admin:index")
    # GET first: a POST to logout/ ends the session the GET needs.
    for method in ("get", "post"):
        response = getattr(staff_client, method)(url, follow=True)
        final_path = response.request["PATH_INFO"]
        assert response.status_code != 500, f"{method.upper()} {url}"
        if takes_id:
            # Nothing is shown for a row that does not exist: a 404, a refusal (403, or 405 for
            # the wrong method), or Django's own "does not exist" redirect to the admin index.
            assert response.status_code in (403, 404, 405) or final_path == index, (
                f"{method.upper()} {url} -> {response.status_code} at {final_path}"
            )


@pytest.fixture
def superuser_client(client):
    client.force_login(_user("superuser"))
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/admin/operations/job/abc/change/"),
        ("get", "/admin/operations/job/999999/change/"),
        ("get", "/admin/operations/job/1%2Fretry/change/"),
        ("get", "/admin/operations/job/999999/progress.json"),
        ("post", "/admin/operations/job/999999/retry-failed/"),
        ("post", "/admin/operations/job/999999/cancel-rest/"),
        ("get", "/admin/consent/companyconsent/abc/change/"),
        ("get", "/admin/consent/companyconsent/999999/change/"),
        ("get", "/admin/consent/companyconsent/999999/request/"),
        ("get", "/admin/consent/companyconsent/999999/record/"),
        ("get", "/admin/consent/companyconsent/999999/add-product/"),
    ],
)
def test_a_custom_admin_page_for_a_row_that_does_not_exist_is_a_404(superuser_client, method, url):
    assert getattr(superuser_client, method)(url).status_code == 404


def test_a_subpath_of_a_job_that_does_not_exist_is_a_404(superuser_client):
    job = JobFactory()

    response = superuser_client.get(f"/admin/operations/job/{job.pk}/retry/", follow=True)

    assert response.status_code == 404


def test_retry_and_cancel_refuse_get_with_405_and_change_nothing(superuser_client):
    # given
    job = JobFactory()
    failed = OperationFactory(job=job, state=OperationState.FAILED)
    waiting = OperationFactory(job=job, state=OperationState.PENDING)

    # when
    retry = superuser_client.get(reverse("admin:operations_job_retry_failed", args=[job.pk]))
    cancel = superuser_client.get(reverse("admin:operations_job_cancel_rest", args=[job.pk]))

    # then
    assert (retry.status_code, cancel.status_code) == (405, 405)
    assert retry["Allow"] == cancel["Allow"] == "POST"
    states = dict(Operation.objects.values_list("pk", "state"))
    assert states == {failed.pk: OperationState.FAILED, waiting.pk: OperationState.PENDING}


def test_importing_consumers_refuses_get_with_405_and_requests_nothing(superuser_client):
    operations_before = Operation.objects.count()

    response = superuser_client.get(reverse("admin:webhooks_webhookconsumer_import"))

    assert response.status_code == 405
    assert Operation.objects.count() == operations_before
    assert not WebhookConsumer.objects.exists()


@pytest.mark.parametrize("debug", [False, True])
def test_a_junk_url_is_a_404_page_for_anyone_and_for_staff(client, settings, debug):
    settings.DEBUG = debug
    client.raise_request_exception = False
    anonymous = client.get("/nope/")
    client.force_login(StaffFactory(role="viewer"))
    for response in (anonymous, client.get("/nope/"), client.get("/admin/nope/")):
        assert response.status_code == 404
        assert b"Traceback" not in response.content


@pytest.mark.parametrize("debug", [False, True])
def test_a_delivery_to_the_webhook_path_without_its_slash_is_received(client, settings, debug):
    # given: DEBUG makes APPEND_SLASH raise on a POST it cannot redirect
    settings.DEBUG = debug
    secret = new_secret()
    settings.CODAT_WEBHOOK_SECRETS = [secret]
    client.raise_request_exception = False
    body = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "eventType": "company.deleted",
            "generatedDate": datetime.now(tz=UTC).isoformat(),
            "payload": {"id": str(uuid.uuid4()), "name": "Toft stores"},
        }
    )
    headers = as_django_headers(signature_headers(body, secret))

    # when
    response = client.post("/webhooks/codat", body, "application/json", **headers)

    # then
    assert response.status_code == 202
    assert WebhookEvent.objects.get().event_type == "company.deleted"


def test_an_unsigned_post_without_the_slash_gets_the_same_4xx_as_with_it(client, settings):
    settings.DEBUG = True
    settings.CODAT_WEBHOOK_SECRETS = [new_secret()]
    client.raise_request_exception = False

    with_slash = client.post("/webhooks/codat/", "{}", "application/json")
    without = client.post("/webhooks/codat", "{}", "application/json")

    assert 400 <= with_slash.status_code < 500
    assert (without.status_code, without.content) == (with_slash.status_code, with_slash.content)
    assert not WebhookEvent.objects.exists()
