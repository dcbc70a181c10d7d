"""The SMB's bank-feed mapping page, under /bank-feeds/, beside the consent pages and to their
standards: the link is exchanged for a session only on its POST (mail scanners fetch links
first), no JavaScript, the same headers and CSRF handling (consent/views.py, consent/csrf.py).

The page lists the business's source accounts with what Codat offers for each (read by an
operation when the session starts, never from the view), and maps one account per request
through an operation; for platforms mapped inside the accounting software it says where. Each
account also shows what synced: its transactions by state and its latest pushes.
"""

from django import forms
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from bankfeeds import selectors, services
from bankfeeds.models import AccountState, BankFeedConnection, MappingStatus
from bankfeeds.rules import BankFeedInvalid
from consent.csrf import consent_csrf_protect
from consent.ratelimit import rate_limit_exceeded
from consent.views import SESSION_SECONDS, _render, consent_page, link_not_valid, too_many_attempts
from operations.services import OperationRefused

SESSION_CONNECTION = "bankfeeds.connection"
NEW_ACCOUNT = "new"


@consent_page
@consent_csrf_protect
@require_http_methods(["GET", "POST"])
def link(request, signed):
    """GET shows "Continue" and changes nothing; its POST starts the session."""
    if rate_limit_exceeded(request, scope="bankfeeds-link"):
        return too_many_attempts(request)
    connection = services.connection_from_mapping_link(signed)
    if connection is None:
        return link_not_valid(request)
    if request.method == "GET":
        return _render(
            request, "bankfeeds/continue.html", {"signed": signed, "connection": connection}
        )
    request.session.cycle_key()
    request.session[SESSION_CONNECTION] = connection.pk
    request.session.set_expiry(SESSION_SECONDS)
    if connection.platform not in services.MAPPED_IN_PLATFORM:
        # What Codat offers for each account, read once per visit.
        services.bank_feed_mapping_read(connection=connection)
    return HttpResponseRedirect(reverse("bankfeeds:mapping"))


class MappingForm(forms.Form):
    account = forms.IntegerField(widget=forms.HiddenInput)
    target = forms.CharField(max_length=255)
    feed_start_date = forms.DateField(required=False)


def _session_connection(request) -> BankFeedConnection | None:
    pk = request.session.get(SESSION_CONNECTION)
    if pk is None:
        return None
    return BankFeedConnection.objects.select_related("company").filter(pk=pk).first()


@consent_page
@consent_csrf_protect
@require_http_methods(["GET", "POST"])
def mapping(request):
    connection = _session_connection(request)
    if connection is None:
        return link_not_valid(request)
    # With what synced, the same figures the bank reads in the API (bankfeeds/selectors.py).
    accounts = list(
        selectors.accounts_with_progress()
        .filter(connection=connection, state__in=(AccountState.ACTIVE, AccountState.UPDATING))
        .order_by("account_name", "pk")
    )
    latest_pushes = selectors.account_latest_pushes(accounts=accounts)
    for account in accounts:
        account.latest_pushes = latest_pushes[account.pk]
    errors: dict[int, str] = {}
    if request.method == "POST":
        form = MappingForm(request.POST)
        chosen = None
        if form.is_valid():
            chosen = next((a for a in accounts if a.pk == form.cleaned_data["account"]), None)
        if chosen is None:
            return link_not_valid(request)
        target = form.cleaned_data["target"]
        try:
            services.bank_feed_mapping_set(
                account=chosen,
                target_account_id=None if target == NEW_ACCOUNT else target,
                feed_start_date=form.cleaned_data["feed_start_date"],
            )
        except (BankFeedInvalid, OperationRefused) as error:
            errors[chosen.pk] = str(error)
        else:
            return HttpResponseRedirect(reverse("bankfeeds:mapping") + f"#account-{chosen.pk}")
    return _render(
        request,
        "bankfeeds/mapping.html",
        {
            "connection": connection,
            "accounts": accounts,
            "errors": errors,
            "in_platform": services.MAPPED_IN_PLATFORM.get(connection.platform, ""),
            "new_account": NEW_ACCOUNT,
            "connected": MappingStatus.CONNECTED,
        },
    )
