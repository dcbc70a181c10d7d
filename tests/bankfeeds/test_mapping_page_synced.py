"""The SMB's mapping page also shows, per account, what synced: the transactions by state and
the latest pushes with their outcome, the figures the bank reads in the API."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from bankfeeds.models import BankFeedPush, BankTransaction
from bankfeeds.services import mapping_link_path
from tests.bankfeeds.helpers import mapped_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]


def _open(client, account):
    link = mapping_link_path(connection=account.connection)
    assert client.post(link).status_code == 302
    response = client.get("/bank-feeds/mapping/")
    assert response.status_code == 200
    return response.content.decode()


def _section(html: str, account) -> str:
    match = re.search(rf'<section id="account-{account.pk}".*?</section>', html, re.S)
    assert match, html
    return match.group(0)


def _transaction(account, number, state, push=None, **fields):
    return BankTransaction.objects.create(
        account=account,
        transaction_id=f"t-{number}",
        date=timezone.now() - timedelta(days=2, minutes=number),
        amount=-1,
        content_hash=str(number) * 64,
        state=state,
        push=push,
        **fields,
    )


def test_each_account_shows_its_transactions_by_state_and_its_latest_pushes(client):
    account = mapped_account(platform="hcws")
    now = timezone.now()
    synced = BankFeedPush.objects.create(
        account=account,
        status="success",
        transaction_count=2,
        first_date=now - timedelta(days=2),
        last_date=now - timedelta(days=2),
        sent_at=now - timedelta(hours=1),
    )
    failed = BankFeedPush.objects.create(
        account=account,
        status="failed",
        transaction_count=1,
        first_date=now - timedelta(days=1),
        last_date=now - timedelta(days=1),
        sent_at=now - timedelta(minutes=30),
    )
    _transaction(account, 1, "synced", synced)
    _transaction(account, 2, "synced", synced)
    _transaction(account, 3, "waiting")
    _transaction(account, 4, "set_aside", set_aside_reason="Older than the latest pushed.")

    section = _section(_open(client, account), account)

    counts = dict(re.findall(r'<dd class="([a-z-]+)">(\d+)</dd>', section))
    assert counts == {"synced": "2", "in-push": "0", "waiting": "1", "set-aside": "1"}
    assert re.findall(r'<td class="outcome">([^<]+)</td>', section) == ["Failed", "Success"]
    assert str(failed.transaction_count) in section
    assert "The latest transaction in your accounting software is from" in section


def test_an_account_with_nothing_sent_says_so(client):
    account = mapped_account(platform="hcws")
    section = _section(_open(client, account), account)
    assert "No transactions have been sent for this account yet." in section
    assert "<table" not in section
