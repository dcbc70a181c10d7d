"""The consent evidence is append-only: in Python, in the admin, and in PostgreSQL itself."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from consent.models import AppendOnlyError, ConsentEvent, ConsentText
from tests.factories import ConsentEventFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(company, product):
    return ConsentEventFactory(company=company, product=product)


def test_an_event_cannot_be_saved_again_or_deleted(event):
    event.data_types = []
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_bulk_update_and_delete_are_refused(event):
    with pytest.raises(AppendOnlyError):
        ConsentEvent.objects.filter(pk=event.pk).update(action="withdraw")
    with pytest.raises(AppendOnlyError):
        ConsentEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        ConsentText.objects.all().delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_the_database_refuses_update_and_delete_whatever_the_client(event):
    for statement in (
        "UPDATE consent_consentevent SET action = 'withdraw' WHERE id = %s",
        "DELETE FROM consent_consentevent WHERE id = %s",
        "UPDATE consent_consenttext SET purpose = 'x' WHERE id = %s",
    ):
        target = event.pk if "consentevent" in statement else event.text_id
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [target])
    assert ConsentEvent.objects.get(pk=event.pk).action == "grant"


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_the_admin_shows_events_to_every_role_and_lets_none_change_them(client, event, role):
    user = StaffFactory(role=role)
    client.force_login(user)
    changelist = reverse("admin:consent_consentevent_changelist")
    detail = reverse("admin:consent_consentevent_change", args=[event.pk])
    assert client.get(changelist).status_code == 200
    page = client.get(detail)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(detail, {"action": "withdraw"}).status_code == 403
    delete = reverse("admin:consent_consentevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:consent_consentevent_add")).status_code == 403
    assert ConsentEvent.objects.get(pk=event.pk).action == "grant"
