"""Public consent pages for SMB owners, under /consent/.

A consent link's one-time token is exchanged for a session only when the owner presses
"Continue" (a POST): mail scanners and link previews fetch links before people do, and a GET
that spent the token would leave the owner a dead link. A signed manage link, which is not
spent, is exchanged on its GET. Either way the browser is then sent on to a URL without it.
After that the session says which company the browser may see: every page checks it, and shows
the same "link not valid" page when it does not hold.
"""

import functools
import logging
import uuid

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from companies.models import Company
from consent import selectors, services
from consent.csrf import consent_csrf_protect
from consent.errors import ConsentAlreadyAnswered, ConsentError, ConsentLinkInvalid
from consent.models import ConsentChannel, ConsentRequest, ConsentText
from consent.ratelimit import rate_limit_exceeded
from consent.receipts import acted_by, receipt_document
from consent.tokens import company_id_from_manage_token

logger = logging.getLogger(__name__)

SESSION_COMPANY = "consent.company"
RECORD_FOR_CUSTOMER = "consent.record_consent_for_customer"
SESSION_REQUEST = "consent.request"
# An unattended browser should not stay able to decide for the business for long.
SESSION_SECONDS = 2 * 60 * 60

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def consent_page(view):
    """Headers for every consent page: nothing cached, no Referer leaves, own assets only."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0, private"
        response["Referrer-Policy"] = "no-referrer"
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapper


def _render(request, template: str, context: dict | None = None, status: int = 200):
    return render(
        request,
        template,
        {
            "consent_controller_name": settings.CONSENT_CONTROLLER_NAME,
            "consent_controller_contact": settings.CONSENT_CONTROLLER_CONTACT,
            **(context or {}),
        },
        status=status,
    )


def link_not_valid(request):
    """One answer for unknown, expired, used and foreign links: nothing tells them apart."""
    return _render(request, "consent/not_valid.html", status=404)


def too_many_attempts(request):
    return _render(request, "consent/rate_limited.html", status=429)


def _session_company(request) -> Company | None:
    company_id = request.session.get(SESSION_COMPANY)
    if company_id is None:
        return None
    return Company.objects.filter(pk=company_id).first()


def _session_request(request, company) -> ConsentRequest | None:
    request_id = request.session.get(SESSION_REQUEST)
    if request_id is None:
        return None
    consent_request = ConsentRequest.objects.filter(pk=request_id, company=company).first()
    if consent_request is None or consent_request.is_expired():
        return None
    return consent_request


def _start_session(request, *, company_id: int, request_id: int | None = None) -> None:
    # A new session id on every exchange: a session id planted before cannot ride along.
    request.session.cycle_key()
    request.session[SESSION_COMPANY] = company_id
    if request_id is None:
        request.session.pop(SESSION_REQUEST, None)
    else:
        request.session[SESSION_REQUEST] = request_id
    request.session.set_expiry(SESSION_SECONDS)


@consent_page
@consent_csrf_protect
@require_http_methods(["GET", "POST"])
def link(request, token):
    """GET shows "Continue" and changes nothing; only its POST spends the link.

    A HEAD gets 405 and spends nothing. Every bad link gets the one "not valid" answer on
    either method; both methods count towards the rate limit.
    """
    if rate_limit_exceeded(request, scope="link"):
        return too_many_attempts(request)
    if request.method == "GET":
        if not services.consent_link_usable(token=token):
            return link_not_valid(request)
        return _render(request, "consent/continue.html", {"token": token})
    try:
        consent_request = services.consent_link_exchange(token=token)
    except ConsentLinkInvalid:
        return link_not_valid(request)
    _start_session(request, company_id=consent_request.company_id, request_id=consent_request.pk)
    return HttpResponseRedirect(reverse("consent:request"))


@consent_page
@require_GET
def manage_link(request, signed):
    if rate_limit_exceeded(request, scope="link"):
        return too_many_attempts(request)
    try:
        company_id = company_id_from_manage_token(signed)
    except ConsentLinkInvalid:
        return link_not_valid(request)
    if not Company.objects.filter(pk=company_id).exists():
        return link_not_valid(request)
    _start_session(request, company_id=company_id)
    return HttpResponseRedirect(reverse("consent:manage"))


def _decision_actor(request, *, channel: str) -> services.Actor:
    """Who a decision made on these pages is recorded as.

    A browser signed in to the admin belongs to the enterprise's staff, not to the customer:
    what it decides is recorded as that staff member acting for the customer (the admin
    channel, named), and only for staff who may record consent on a customer's behalf.
    """
    client = services.client_metadata(request)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        if not (user.is_active and user.has_perm(RECORD_FOR_CUSTOMER)):
            raise PermissionDenied
        return services.Actor(channel=ConsentChannel.ADMIN, user=user, client=client)
    return services.Actor(channel=channel, client=client)


class DecisionForm(forms.Form):
    product = forms.IntegerField()
    text = forms.IntegerField()
    decision = forms.ChoiceField(choices=(("grant", "grant"), ("decline", "decline")))
    optional_data_types = forms.MultipleChoiceField(required=False, choices=())

    def __init__(self, *args, open_products, **kwargs):
        super().__init__(*args, **kwargs)
        self.open_products = {product.pk: product for product in open_products}
        optional = {
            (link.data_type_id, link.data_type_id)
            for product in open_products
            for link in product.product_data_types.all()
        }
        self.fields["optional_data_types"].choices = sorted(optional)

    def clean(self):
        cleaned = super().clean()
        product = self.open_products.get(cleaned.get("product"))
        if product is None:
            raise forms.ValidationError(_("This use case is not part of your request."))
        text = ConsentText.objects.filter(pk=cleaned.get("text"), product=product).first()
        if text is None:
            raise forms.ValidationError(_("The text you answered is not known."))
        cleaned["product"] = product
        cleaned["text"] = text
        return cleaned


def _request_context(consent_request, company):
    open_products = list(
        consent_request.products.filter(
            pk__in=[p.pk for p in services.consent_request_open_products(request=consent_request)]
        ).prefetch_related("product_data_types")
    )
    # A read: the texts were published when the catalogue changed and when the request was made.
    texts = selectors.consent_texts_current(products=open_products)
    offers = []
    for product in open_products:
        if product.pk not in texts:
            logger.error("consent_page.text_missing", extra={"product": product.identifier})
            continue
        offers.append({"product": product, "text": texts[product.pk]})
    return open_products, offers


@consent_page
@consent_csrf_protect
@require_http_methods(["GET", "POST"])
def request_page(request):
    company = _session_company(request)
    consent_request = _session_request(request, company) if company else None
    if consent_request is None:
        return link_not_valid(request)
    open_products, offers = _request_context(consent_request, company)
    if not offers:
        request.session.pop(SESSION_REQUEST, None)
        return HttpResponseRedirect(reverse("consent:manage"))
    error = None
    if request.method == "POST":
        form = DecisionForm(request.POST, open_products=open_products)
        if form.is_valid():
            actor = _decision_actor(request, channel=ConsentChannel.LINK)
            data = form.cleaned_data
            try:
                if data["decision"] == "grant":
                    event = services.consent_grant(
                        company=company,
                        product=data["product"],
                        text=data["text"],
                        optional_data_types=data["optional_data_types"],
                        actor=actor,
                        request=consent_request,
                    )
                else:
                    event = services.consent_decline(
                        company=company,
                        product=data["product"],
                        text=data["text"],
                        actor=actor,
                        request=consent_request,
                    )
            except ConsentAlreadyAnswered:
                return HttpResponseRedirect(reverse("consent:request"))
            except ConsentLinkInvalid:
                return link_not_valid(request)
            except ConsentError as failure:
                error = str(failure)
            else:
                return HttpResponseRedirect(reverse("consent:receipt", args=[event.receipt_id]))
        else:
            error = " ".join(form.non_field_errors()) or _("Please choose again.")
    return _render(
        request,
        "consent/request.html",
        {"company": company, "offers": offers, "error": error, "request_obj": consent_request},
        status=400 if error else 200,
    )


def _receipt_events(request, receipt_id):
    company = _session_company(request)
    if company is None:
        return None, None
    events = selectors.consent_receipt_events(company=company, receipt_id=receipt_id)
    return company, events


@consent_page
@require_GET
def receipt(request, receipt_id: uuid.UUID):
    company, events = _receipt_events(request, receipt_id)
    if not events:
        return link_not_valid(request)
    pending = _session_request(request, company)
    has_more = bool(pending and services.consent_request_open_products(request=pending))
    return _render(
        request,
        "consent/receipt.html",
        {
            "company": company,
            "events": events,
            "first": events[0],
            "acted_by": acted_by(events[0]),
            "receipt_id": receipt_id,
            "has_more": has_more,
            "manage_url": services.public_url(services.manage_link_path(company)),
        },
    )


@consent_page
@require_GET
def receipt_json(request, receipt_id: uuid.UUID):
    _company, events = _receipt_events(request, receipt_id)
    if not events:
        return link_not_valid(request)
    document = receipt_document(
        events=events, manage_url=services.public_url(reverse("consent:manage"))
    )
    response = JsonResponse(document, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'inline; filename="consent-receipt-{receipt_id}.json"'
    return response


@consent_page
@require_GET
def manage(request):
    company = _session_company(request)
    if company is None:
        return link_not_valid(request)
    _columns, rows = selectors.consent_matrix(company=company)
    receipts = selectors.consent_receipts_for_company(company=company)
    pending = _session_request(request, company)
    has_pending = bool(pending and services.consent_request_open_products(request=pending))
    return _render(
        request,
        "consent/manage.html",
        {
            "company": company,
            "rows": rows,
            "receipts": receipts,
            "has_pending": has_pending,
            # Without a reconfirmation policy, "confirm" would only be a button that does nothing.
            "reconfirm_policy": bool(settings.CONSENT_RECONFIRM_AFTER_DAYS),
            "manage_url": services.public_url(services.manage_link_path(company)),
        },
    )


class ProductChoiceForm(forms.Form):
    product = forms.IntegerField()


def _manage_action(request, service):
    company = _session_company(request)
    if company is None:
        return link_not_valid(request)
    form = ProductChoiceForm(request.POST)
    states = selectors.consent_states(company=company)
    if not form.is_valid() or form.cleaned_data["product"] not in states:
        return link_not_valid(request)
    product = states[form.cleaned_data["product"]].last_event.product
    actor = _decision_actor(request, channel=ConsentChannel.MANAGE)
    try:
        event = service(company=company, product=product, actor=actor)
    except ConsentError:
        # Already withdrawn (a second tab, a double click): the page shows how things stand.
        return HttpResponseRedirect(reverse("consent:manage"))
    return HttpResponseRedirect(reverse("consent:receipt", args=[event.receipt_id]))


@consent_page
@consent_csrf_protect
@require_POST
def withdraw(request):
    return _manage_action(request, services.consent_withdraw)


@consent_page
@consent_csrf_protect
@require_POST
def reconfirm(request):
    # Without a reconfirmation policy the page offers no such button, and consent never lapses:
    # a reconfirmation would be evidence of a question nobody asked.
    if not settings.CONSENT_RECONFIRM_AFTER_DAYS:
        return link_not_valid(request)
    return _manage_action(request, services.consent_reconfirm)
