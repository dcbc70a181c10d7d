"""Bank feeds in the admin: onboarding, a CSV upload of transactions, what synced; every change
is for operators (core.roles), viewers only look."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from bankfeeds.models import BankFeedPush, BankTransaction
from bankfeeds.services import account_push_next, transactions_submit
from operations.models import Operation, OperationKind
from tests.bankfeeds.helpers import mapped_account, transactions
from tests.factories import StaffFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery")]

ONBOARD = "admin:bankfeeds_bankfeedconnection_add"


@pytest.fixture
def operator(client):
    client.force_login(StaffFactory(role="operator"))
    return client


@pytest.fixture
def viewer(client):
    client.force_login(StaffFactory(role="viewer"))
    return client


def _csv(lines: list[str]) -> SimpleUploadedFile:
    text = "\n".join(["id,date,amount,balance,transactionType,description", *lines])
    return SimpleUploadedFile("transactions.csv", text.encode(), content_type="text/csv")


def test_an_operator_onboards_a_new_company_for_a_bank_feeds_platform(operator):
    response = operator.post(reverse(ONBOARD), {"company_name": "Toft Stores", "platform": "hcws"})
    assert response.status_code == 302
    operation = Operation.objects.get(kind=OperationKind.CREATE_COMPANY)
    assert operation.parameters["name"] == "Toft Stores"
    assert operation.parameters["bankFeedPlatform"] == "hcws"


def test_onboarding_with_a_bad_request_says_why_and_writes_nothing(operator):
    response = operator.post(reverse(ONBOARD), {"company_name": "", "platform": "hcws"})
    assert response.status_code == 200
    assert "Give either a new company" in response.content.decode()
    response = operator.post(reverse(ONBOARD), {"company_name": "X", "platform": "zzzz"})
    assert "Select a valid choice" in response.content.decode()
    assert not Operation.objects.exists()


def test_viewers_see_what_synced_but_cannot_onboard_or_upload(viewer):
    account = mapped_account()
    for name in ("bankfeedconnection", "sourceaccount", "banktransaction", "bankfeedpush"):
        assert viewer.get(reverse(f"admin:bankfeeds_{name}_changelist")).status_code == 200
    assert viewer.get(reverse(ONBOARD)).status_code == 403
    upload = reverse("admin:bankfeeds_sourceaccount_upload", args=(account.pk,))
    assert viewer.post(upload, {"file": _csv(["t1,2026-11-20,5,,Credit,x"])}).status_code == 403
    assert not BankTransaction.objects.exists()


def test_an_operator_uploads_a_csv_and_a_file_with_a_bad_row_stores_nothing(operator):
    account = mapped_account(platform="gbol")  # Xero: balance required
    upload = reverse("admin:bankfeeds_sourceaccount_upload", args=(account.pk,))
    response = operator.post(
        upload,
        {"file": _csv(["t1,2026-11-20T09:00:00,5,100,Credit,x", "t2,2026-11-21,-3,,Debit,y"])},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was stored" in page and "transactions[1].balance" in page
    assert not BankTransaction.objects.exists()
    response = operator.post(
        upload,
        {"file": _csv(["t1,2026-11-20T09:00:00,5,100,Credit,x", "t2,2026-11-21,-3,97,Debit,y"])},
    )
    assert response.status_code == 302
    assert BankTransaction.objects.filter(account=account).count() == 2
    # The same file again is a no-op; a changed amount is refused by id.
    operator.post(upload, {"file": _csv(["t1,2026-11-20T09:00:00,5.00,100,Credit,x"])})
    response = operator.post(upload, {"file": _csv(["t1,2026-11-20T09:00:00,6,100,Credit,x"])})
    assert "t1 is already stored with different content" in response.content.decode()
    assert BankTransaction.objects.get(transaction_id="t1").amount == 5


def test_the_account_page_shows_its_transactions_by_state_its_pushes_and_its_mapping(operator):
    account = mapped_account()
    transactions_submit(
        account=account, rows=transactions(3, start=timezone.now() - timedelta(hours=2))
    )
    push = account_push_next(account_id=account.pk)
    page = operator.get(
        reverse("admin:bankfeeds_sourceaccount_change", args=(account.pk,))
    ).content.decode()
    assert "In a push: 3" in page and "Waiting: 0" in page
    assert "Connected" in page  # the mapping
    assert f"{push.transaction_count}" in page and "Being sent" in page
    listing = operator.get(reverse("admin:bankfeeds_sourceaccount_changelist")).content.decode()
    assert account.account_name in listing


def test_an_operator_puts_set_aside_transactions_back_in_the_queue(operator):
    account = mapped_account()
    transactions_submit(
        account=account, rows=transactions(2, start=timezone.now() - timedelta(hours=2))
    )
    BankTransaction.objects.update(state="set_aside", set_aside_reason="test")
    response = operator.post(
        reverse("admin:bankfeeds_banktransaction_changelist"),
        {
            "action": "requeue",
            "_selected_action": list(BankTransaction.objects.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 302
    assert set(BankTransaction.objects.values_list("state", flat=True)) == {"waiting"}
    assert not BankFeedPush.objects.exists()
