"""Consent services: texts, requests and campaigns, and the decisions that become evidence.

Every decision (grant, decline, withdraw, reconfirm, expire) is one `ConsentEvent` per product,
written in the same transaction as its effect on Codat operations (consent/effects.py, the one
seam to operations), so the evidence and what it caused commit or roll back together. The same
transaction steps the company's stored current consent (`CurrentConsent`) by the event, under
the company's lock, so the table is always what the log adds up to.
"""

import ipaddress
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record
from companies.models import Company
from consent import effects, selectors
from consent.errors import ConsentAlreadyAnswered, ConsentError, ConsentLinkInvalid
from consent.models import (
    Campaign,
    ConsentAction,
    ConsentChannel,
    ConsentEvent,
    ConsentRequest,
    ConsentRequestReason,
    ConsentText,
    CurrentConsent,
)
from consent.selectors import ConsentState, ProductConsent, consent_state
from consent.texts import content_hash, text_document
from consent.tokens import manage_token_for, token_hash, token_new
from products.models import CompanyProduct, Product, ProductDataType

logger = logging.getLogger(__name__)

# --- Texts -------------------------------------------------------------------------------------


def consent_text_content(*, product: Product, purpose: str, retention: str) -> dict:
    """Exactly what the SMB owner is shown for a product; its hash identifies the version."""
    links = ProductDataType.objects.filter(product=product).select_related("data_type")
    return text_document(
        identifier=product.identifier,
        name=product.name,
        data_types=[
            {
                "identifier": link.data_type_id,
                "name": link.data_type.name,
                "description": link.data_type.description,
                "optional": link.is_optional,
            }
            for link in links
        ],
        purpose=purpose,
        retention=retention,
    )


@transaction.atomic
def consent_text_publish(
    *,
    product: Product,
    purpose: str | None = None,
    retention: str | None = None,
    retention_days: int | None = None,
    user=None,
) -> ConsentText:
    """Publish a new text version of the product if anything shown changed; return the current.

    Purpose and retention default to the latest version's (or the product's description and
    the default retention). `retention_days` is the same retention as a number, for the
    retention run; it is not part of what is shown (nor of the hash), but changing it makes a
    new version too. The catalogue calls it when a product or a data type changes
    (products.services, products.admin), so the pages only read the current version.
    """
    # Lock the product so that two publishers cannot both take the next version number.
    product = Product.objects.select_for_update().get(pk=product.pk)
    latest = ConsentText.objects.filter(product=product).order_by("-version").first()
    if purpose is None:
        purpose = latest.purpose if latest else (product.description or product.name)
    if retention is None:
        retention = latest.retention if latest else settings.CONSENT_DEFAULT_RETENTION
    if retention_days is None:
        retention_days = (
            latest.retention_days if latest else settings.CONSENT_DEFAULT_RETENTION_DAYS
        )
    content = consent_text_content(product=product, purpose=purpose, retention=retention)
    digest = content_hash(content)
    if (
        latest is not None
        and latest.content_hash == digest
        and latest.retention_days == retention_days
    ):
        return latest
    text = ConsentText(
        product=product,
        version=(latest.version + 1) if latest else 1,
        purpose=purpose,
        retention=retention,
        retention_days=retention_days,
        content=content,
        content_hash=digest,
        created_by=user,
    )
    text.full_clean()
    text.save()
    audit_record(
        action="consent.text_publish",
        actor=user,
        target=text,
        changes={
            "product": product.identifier,
            "version": text.version,
            "hash": digest,
            "purpose": purpose,
            "retention": retention,
            "retention_days": retention_days,
        },
    )
    logger.info(
        "consent_text.published",
        extra={"product": product.identifier, "version": text.version, "hash": digest},
    )
    return text


def consent_texts_publish(*, products, user=None) -> list[ConsentText]:
    """`consent_text_publish` for each product, for a change that touches several (a data
    type reworded is shown in the text of every product that reads it)."""
    return [consent_text_publish(product=product, user=user) for product in products]


# --- Links -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedLink:
    """A request and its token, which exists only here, in memory, for the URL to give out."""

    request: ConsentRequest
    token: str
    url: str
    manage_url: str


def public_url(path: str) -> str:
    return settings.CONSENT_BASE_URL.rstrip("/") + path


def consent_link_path(token: str) -> str:
    return reverse("consent:link", kwargs={"token": token})


def manage_link_path(company) -> str:
    return reverse("consent:manage_link", kwargs={"signed": manage_token_for(company=company)})


@transaction.atomic
def consent_request_create(
    *,
    company,
    products,
    reason: str = ConsentRequestReason.ADMIN,
    email: str = "",
    campaign: Campaign | None = None,
    user=None,
    send_email: bool = True,
) -> IssuedLink:
    """A one-time consent link for one company and one or more products.

    The e-mail, where an address is known, is sent once the request is committed.
    """
    products = list(products)
    if not products:
        raise ConsentError(_("Choose at least one use case."))
    # The request is a write anyway: make sure the text its page will show is current (a
    # setting shown in it, such as the controller's name, may have changed since).
    for product in products:
        consent_text_publish(product=product)
    token, digest = token_new()
    now = timezone.now()
    request = ConsentRequest(
        token_hash=digest,
        company=company,
        campaign=campaign,
        reason=reason,
        email=email,
        created_at=now,
        created_by=user,
        expires_at=now + settings.CONSENT_LINK_TTL,
    )
    request.full_clean()
    request.save()
    request.products.set(products)
    issued = IssuedLink(
        request=request,
        token=token,
        url=public_url(consent_link_path(token)),
        manage_url=public_url(manage_link_path(company)),
    )
    audit_record(
        action="consent.request_create",
        actor=user,
        target=company,
        changes={
            "request": request.pk,
            "products": [product.identifier for product in products],
            "reason": reason,
            "emailed": bool(email and send_email),
        },
        people_only=True,
    )
    if email and send_email:
        transaction.on_commit(lambda: consent_request_email_send(issued=issued, products=products))
    logger.info(
        "consent_request.created",
        extra={"request": request.pk, "company": company.pk, "reason": reason},
    )
    return issued


def consent_request_email_send(*, issued: IssuedLink, products) -> bool:
    """Send the link through Django's e-mail backend. A failure is logged, never raised:
    the operator still has the link (admin page or campaign CSV) to send another way."""
    request = issued.request
    context = {
        "company": request.company,
        "products": products,
        "controller_name": settings.CONSENT_CONTROLLER_NAME,
        "controller_contact": settings.CONSENT_CONTROLLER_CONTACT,
        "url": issued.url,
        "manage_url": issued.manage_url,
        "expires_at": request.expires_at,
    }
    subject = _("%(controller)s asks for your consent to share data") % {
        "controller": settings.CONSENT_CONTROLLER_NAME
    }
    try:
        send_mail(
            subject,
            render_to_string("consent/email/request.txt", context),
            settings.CONSENT_EMAIL_FROM,
            [request.email],
        )
    except Exception:
        logger.exception("consent_request.email_failed", extra={"request": request.pk})
        return False
    ConsentRequest.objects.filter(pk=request.pk).update(emailed_at=timezone.now())
    return True


@transaction.atomic
def consent_campaign_create(
    *, name: str, products, companies, emails: dict | None = None, user=None
) -> tuple[Campaign, list[IssuedLink]]:
    """One request per company, e-mailed where an address is known (`emails`: company pk ->
    address, falling back on the company's `email` tag)."""
    products = list(products)
    campaign = Campaign(name=name, created_by=user)
    campaign.full_clean()
    campaign.save()
    campaign.products.set(products)
    emails = emails or {}
    issued = []
    for company in companies:
        email = emails.get(company.pk) or (company.tags or {}).get("email", "")
        issued.append(
            consent_request_create(
                company=company,
                products=products,
                reason=ConsentRequestReason.CAMPAIGN,
                email=email,
                campaign=campaign,
                user=user,
            )
        )
    return campaign, issued


def _unspent_link(*, token: str, now):
    """The request a one-time link still opens: known, unopened, unanswered, unexpired.

    One predicate for the read-only check and the exchange, so the page that offers
    "Continue" and the exchange behind it cannot disagree about which links work.
    """
    return ConsentRequest.objects.filter(
        token_hash=token_hash(token),
        opened_at__isnull=True,
        answered_at__isnull=True,
        expires_at__gt=now,
    )


def consent_link_usable(*, token: str) -> bool:
    """Whether the link would still be exchanged; reads only, so a link fetched by a mail
    scanner or a preview stays usable."""
    return _unspent_link(token=token, now=timezone.now()).exists()


def consent_link_exchange(*, token: str) -> ConsentRequest:
    """Spend a one-time link: valid only if known, unopened, unanswered, unexpired.

    The claim is one conditional UPDATE, so two simultaneous visits cannot both succeed.
    Unknown, expired and used links raise the same error.
    """
    now = timezone.now()
    claimed = _unspent_link(token=token, now=now).update(opened_at=now)
    if claimed != 1:
        raise ConsentLinkInvalid()
    return ConsentRequest.objects.select_related("company").get(token_hash=token_hash(token))


def consent_request_open_products(*, request: ConsentRequest) -> list[Product]:
    """The request's products that have no grant or decline from this request yet."""
    answered = set(
        ConsentEvent.objects.filter(
            request=request, action__in=(ConsentAction.GRANT, ConsentAction.DECLINE)
        ).values_list("product_id", flat=True)
    )
    return [product for product in request.products.all() if product.pk not in answered]


# --- Decisions ---------------------------------------------------------------------------------


def client_metadata(http_request) -> dict:
    """Minimal client evidence: the network the request came from and the browser's name.

    The address is cut to its /24 (IPv4) or /48 (IPv6) network: enough to show where a
    decision came from, not enough to single out a device.
    """
    if http_request is None:
        return {}
    metadata = {}
    address = http_request.META.get("REMOTE_ADDR", "")
    try:
        ip = ipaddress.ip_address(address)
        prefix = 24 if ip.version == 4 else 48
        metadata["ip_network"] = str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
    except ValueError:
        pass
    user_agent = http_request.META.get("HTTP_USER_AGENT", "")
    if user_agent:
        metadata["user_agent"] = user_agent[:200]
    return metadata


@dataclass(frozen=True)
class Actor:
    """Who records a decision: the SMB through a channel, or an operator acting for it."""

    channel: str
    user: object = None
    client: dict | None = None

    @property
    def name(self) -> str:
        if self.user is None:
            return ""
        return self.user.get_full_name() or self.user.get_username()


def _check_actor(actor: Actor) -> None:
    if actor.channel == ConsentChannel.ADMIN and actor.user is None:
        raise ConsentError("An operator acting for the customer must be named.")


def _event(
    *,
    company,
    product,
    action: str,
    data_types,
    text: ConsentText,
    actor: Actor,
    receipt_id: uuid.UUID,
    request: ConsentRequest | None = None,
    now=None,
) -> ConsentEvent:
    # Events of a company are written one at a time, in time order, so that the stored consent
    # steps through them as the replay of the log does.
    _lock_company_consent(company)
    event = ConsentEvent(
        receipt_id=receipt_id,
        occurred_at=now or timezone.now(),
        company=company,
        product=product,
        action=action,
        data_types=sorted(data_types),
        text=text,
        text_hash=text.content_hash,
        channel=actor.channel,
        actor=actor.user,
        actor_name=actor.name,
        request=request,
        token_hash=request.token_hash if request is not None else "",
        client=actor.client or {},
    )
    event.full_clean()
    event.save()
    _current_consent_follow(event)
    if actor.user is not None:
        # Staff recording what the customer said: on the audit trail as staff, with the evidence.
        audit_record(
            action="consent.recorded_for_customer",
            actor=actor.user,
            target=company,
            changes={
                "event": event.pk,
                "consent_action": action,
                "product": product.identifier,
                "data_types": sorted(data_types),
                "channel": actor.channel,
            },
        )
    logger.info(
        "consent_event.recorded",
        extra={
            "event": event.pk,
            "action": action,
            "company": company.pk,
            "product": product.identifier,
            "channel": actor.channel,
        },
    )
    return event


def _request_check(*, request: ConsentRequest, company, product) -> None:
    if request.company_id != company.pk:
        raise ConsentLinkInvalid()
    if request.is_expired():
        raise ConsentLinkInvalid()
    if not request.products.filter(pk=product.pk).exists():
        raise ConsentLinkInvalid()
    if ConsentEvent.objects.filter(
        request=request,
        product=product,
        action__in=(ConsentAction.GRANT, ConsentAction.DECLINE),
    ).exists():
        raise ConsentAlreadyAnswered(_("This use case was already answered."))


def _request_mark_answered(request: ConsentRequest | None) -> None:
    if request is None:
        return
    if not consent_request_open_products(request=request):
        ConsentRequest.objects.filter(pk=request.pk, answered_at__isnull=True).update(
            answered_at=timezone.now()
        )


def _text_check(*, text: ConsentText, product) -> None:
    if text.product_id != product.pk:
        raise ConsentError("The consent text belongs to another use case.")


@transaction.atomic
def consent_grant(
    *,
    company,
    product,
    text: ConsentText,
    optional_data_types=(),
    actor: Actor,
    request: ConsentRequest | None = None,
) -> ConsentEvent:
    """Record a grant for the text version the SMB was shown.

    The grant covers every required data type of that version and the optional ones the SMB
    picked. An add that waits for this consent goes ahead (consent/effects.py).
    """
    _check_actor(actor)
    _text_check(text=text, product=product)
    if request is not None:
        request = ConsentRequest.objects.select_for_update().get(pk=request.pk)
        _request_check(request=request, company=company, product=product)
    elif actor.channel != ConsentChannel.ADMIN:
        raise ConsentError("A grant comes from a consent link or from an operator.")
    shown = text.content["data_types"]
    required = {item["identifier"] for item in shown if not item["optional"]}
    optional = {item["identifier"] for item in shown if item["optional"]}
    picked = set(optional_data_types)
    if not picked <= optional:
        raise ConsentError("Only the optional data types shown can be picked.")
    event = _event(
        company=company,
        product=product,
        action=ConsentAction.GRANT,
        data_types=required | picked,
        text=text,
        actor=actor,
        receipt_id=uuid.uuid4(),
        request=request,
    )
    _request_mark_answered(request)
    effects.consent_given(company=company, product=product, actor=actor.user)
    return event


@transaction.atomic
def consent_decline(
    *,
    company,
    product,
    text: ConsentText,
    actor: Actor,
    request: ConsentRequest | None = None,
) -> ConsentEvent:
    """Record a decline. Any earlier consent for the product ends with it."""
    _check_actor(actor)
    _text_check(text=text, product=product)
    if request is not None:
        request = ConsentRequest.objects.select_for_update().get(pk=request.pk)
        _request_check(request=request, company=company, product=product)
    elif actor.channel != ConsentChannel.ADMIN:
        raise ConsentError("A decline comes from a consent link or from an operator.")
    event = _event(
        company=company,
        product=product,
        action=ConsentAction.DECLINE,
        data_types=[item["identifier"] for item in text.content["data_types"]],
        text=text,
        actor=actor,
        receipt_id=uuid.uuid4(),
        request=request,
    )
    _request_mark_answered(request)
    effects.consent_ended(company=company, product=product, actor=actor.user)
    return event


def _lock_company_consent(company) -> None:
    # Serialise decisions per company so that two withdrawals (two tabs) write one event.
    type(company).objects.select_for_update().filter(pk=company.pk).first()


@transaction.atomic
def consent_withdraw(*, company, product, actor: Actor) -> ConsentEvent:
    """Withdraw active (or lapsed) consent: refreshes stop at once, since every refresh checks
    consent, and the remove-product operation is written in this same transaction."""
    _check_actor(actor)
    _lock_company_consent(company)
    current = consent_state(company=company, product=product)
    if not current.can_withdraw:
        raise ConsentError(_("There is no consent to withdraw for this use case."))
    event = _event(
        company=company,
        product=product,
        action=ConsentAction.WITHDRAW,
        data_types=current.data_types,
        text=current.last_event.text,
        actor=actor,
        receipt_id=uuid.uuid4(),
    )
    effects.consent_ended(company=company, product=product, actor=actor.user)
    return event


@transaction.atomic
def consent_reconfirm(*, company, product, actor: Actor) -> ConsentEvent:
    """Reconfirm existing consent (reconfirmation policy); refreshes may resume."""
    _check_actor(actor)
    _lock_company_consent(company)
    current = consent_state(company=company, product=product)
    if not current.can_reconfirm:
        raise ConsentError(_("There is no consent to reconfirm for this use case."))
    event = _event(
        company=company,
        product=product,
        action=ConsentAction.RECONFIRM,
        data_types=current.data_types,
        text=current.last_event.text,
        actor=actor,
        receipt_id=uuid.uuid4(),
    )
    effects.consent_given(company=company, product=product, actor=actor.user)
    return event


# --- Current consent (the table the pages and the gate read) -----------------------------------


_STORED_FIELDS = ("state", "data_types", "granted_at", "confirmed_at", "last_event")


def _current_consent_write(rows: list[CurrentConsent]) -> None:
    """Insert or replace the stored consent of each row's (company, product), one statement."""
    CurrentConsent.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=("company", "product"),
        update_fields=_STORED_FIELDS,
        batch_size=2000,
    )


def _stored_row(company_id: int, current: ProductConsent, last_event_id: int) -> CurrentConsent:
    return CurrentConsent(
        company_id=company_id,
        product_id=current.product_id,
        state=current.state,
        data_types=sorted(current.data_types),
        granted_at=current.granted_at,
        confirmed_at=current.confirmed_at,
        last_event_id=last_event_id,
    )


def _current_consent_follow(event: ConsentEvent) -> None:
    """Step the stored consent of the event's (company, product) by the event, in the event's
    transaction (the caller holds the company's lock). Two queries."""
    stored = CurrentConsent.objects.filter(
        company_id=event.company_id, product_id=event.product_id
    ).first()
    before = (
        selectors.stored_consent_of(stored)
        if stored is not None
        else ProductConsent(product_id=event.product_id)
    )
    after = selectors.consent_after_event(before, event)
    if after.state == ConsentState.NONE:
        return  # a reconfirmation or an expiry with nothing to act on, as the replay ignores it
    last_event_id = event.pk if after.last_event is event else stored.last_event_id
    _current_consent_write([_stored_row(event.company_id, after, last_event_id)])


def current_consent_refold(*, company_ids=None, batch: int = 5000) -> int:
    """Store, from the event log, the current consent of `company_ids` (every company with
    events when None): for events written around the services (the scale book, test
    factories, the table's own migration does the same with the historical models). Reads the
    events in batches of companies; returns how many rows were written."""
    if company_ids is None:
        company_ids = ConsentEvent.objects.order_by().values_list("company_id", flat=True)
        company_ids = company_ids.distinct()
    company_ids = sorted(set(company_ids))
    written = 0
    for start in range(0, len(company_ids), batch):
        chunk = company_ids[start : start + batch]
        events = (
            ConsentEvent.objects.filter(company_id__in=chunk)
            .order_by("company_id", "product_id", "occurred_at", "id")
            .only("company_id", "product_id", "action", "data_types", "occurred_at")
        )
        rows = [
            _stored_row(company_id, current, current.last_event.pk)
            for company_id, _product_id, current in selectors.stored_consent_folded(
                events.iterator(chunk_size=5000)
            )
        ]
        _current_consent_write(rows)
        written += len(rows)
    return written


# --- Reconciler --------------------------------------------------------------------------------


# A reconciler pass works in batches of this many companies, each its own transaction, so that its
# memory and its locks do not grow with the book.
RECONCILE_BATCH = 2000


def _lapsed_unrecorded(*, now):
    """Stored consents active by the log but past the reconfirmation deadline by the clock: an
    expiry is due in the evidence (the selectors already count them as lapsed)."""
    cutoff = now - timedelta(days=settings.CONSENT_RECONFIRM_AFTER_DAYS)
    return CurrentConsent.objects.filter(state=ConsentState.ACTIVE, confirmed_at__lte=cutoff)


def _expire_lapsed(*, now, batch: int = RECONCILE_BATCH) -> list[ConsentEvent]:
    """Write an `expire` event for each consent past its reconfirmation deadline, and step the
    stored consent with it.

    Refreshes already stop at the deadline (the selectors count it); the event makes the
    lapse visible in the evidence and on the dashboard. Per batch of companies a fixed number of
    queries, whatever the size of the book.
    """
    written: list[ConsentEvent] = []
    after_company = 0
    while True:
        companies = list(
            _lapsed_unrecorded(now=now)
            .filter(company_id__gt=after_company)
            .order_by("company_id")
            .values_list("company_id", flat=True)
            .distinct()[:batch]
        )
        if not companies:
            return written
        after_company = companies[-1]
        written += _expire_lapsed_of(companies, now=now)


@transaction.atomic
def _expire_lapsed_of(company_ids: list[int], *, now) -> list[ConsentEvent]:
    # Decisions lock their company (_lock_company_consent): take the same locks, in pk
    # order, and read the stored consent again under them, so that a reconfirmation committed
    # since the first read is not followed by an expiry.
    list(
        Company.objects.select_for_update()
        .filter(pk__in=company_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    lapsed = list(
        _lapsed_unrecorded(now=now)
        .filter(company_id__in=company_ids)
        .select_related("last_event")
        .only(
            *_STORED_FIELDS[:-1],
            "company_id",
            "product_id",
            "last_event__text_id",
            "last_event__text_hash",
        )
    )
    events = [
        ConsentEvent(
            receipt_id=uuid.uuid4(),
            occurred_at=now,
            company_id=stored.company_id,
            product_id=stored.product_id,
            action=ConsentAction.EXPIRE,
            data_types=sorted(stored.data_types),
            text_id=stored.last_event.text_id,
            text_hash=stored.last_event.text_hash,
            channel=ConsentChannel.SYSTEM,
        )
        for stored in lapsed
    ]
    # One INSERT for all, without full_clean (a query per foreign key and constraint): each
    # value is copied from an event already recorded, and the table's constraints and
    # append-only trigger still hold.
    ConsentEvent.objects.bulk_create(events)
    _current_consent_write(
        [
            _stored_row(
                stored.company_id,
                selectors.consent_after_event(selectors.stored_consent_of(stored), event),
                event.pk,
            )
            for stored, event in zip(lapsed, events, strict=True)
        ]
    )
    for event in events:
        logger.info(
            "consent_event.recorded",
            extra={
                "event": event.pk,
                "action": event.action,
                "company": event.company_id,
                "product": event.product_id,
                "channel": event.channel,
            },
        )
    return events


def _ended_with_product_live(*, batch: int = RECONCILE_BATCH):
    """(company pk, product pk) pairs whose consent was withdrawn or declined while the company
    still holds the product live, in batches ordered by company: the removals to ask (again)."""
    live = CompanyProduct.objects.filter(
        company=OuterRef("company"), product=OuterRef("product"), status__in=effects.LIVE_STATUSES
    )
    ended = CurrentConsent.objects.filter(
        state__in=(ConsentState.WITHDRAWN, ConsentState.DECLINED)
    ).filter(Exists(live))
    after = (0, 0)
    while True:
        pairs = list(
            ended.filter(
                Q(company_id__gt=after[0]) | Q(company_id=after[0], product_id__gt=after[1])
            )
            .order_by("company_id", "product_id")
            .values_list("company_id", "product_id")[:batch]
        )
        if not pairs:
            return
        after = pairs[-1]
        yield pairs


def consent_reconcile(*, now=None) -> dict:
    """One reconciler pass: record lapses, and make sure every product whose consent ended
    has its removal under way (a removal whose operation was lost or failed is asked again).

    Reads only what needs acting on from `CurrentConsent` (never the whole log), in batches of
    companies: the same queries per batch for ten companies or a hundred thousand (removals once
    per product and batch, see `effects.removals_for_ended_consent`).
    """
    now = now or timezone.now()
    expired = []
    if settings.CONSENT_RECONFIRM_AFTER_DAYS:
        expired = _expire_lapsed(now=now)
    removals = 0
    for pairs in _ended_with_product_live():
        removals += effects.removals_for_ended_consent(ended=pairs)
    return {"expired": len(expired), "removals": removals}


# --- Adding a product that needs consent first -------------------------------------------------


@dataclass(frozen=True)
class ProductAddOutcome:
    """Either the add was written (consent covers it), or it awaits consent via `issued`."""

    added: bool
    issued: IssuedLink | None = None


@transaction.atomic
def product_add_or_request_consent(
    *, company, product, user=None, email: str = ""
) -> ProductAddOutcome:
    """Add a product to a company, or, without consent, send a consent request and let the add
    wait: it goes ahead by itself when the SMB grants (consent/effects.py)."""
    if selectors.consent_covers(company, product):
        return ProductAddOutcome(
            added=effects.product_add_with_consent(company=company, product=product, actor=user)
        )
    issued = consent_request_create(
        company=company,
        products=[product],
        reason=ConsentRequestReason.PRODUCT_ADDED,
        email=email or (company.tags or {}).get("email", ""),
        user=user,
    )
    return ProductAddOutcome(added=False, issued=issued)


@transaction.atomic
def product_add_consent_requests_create(*, companies, product, user=None) -> list[IssuedLink]:
    """The bulk form of `product_add_or_request_consent` for companies whose consent does not
    cover `product`: one PRODUCT_ADDED request per company, so that each company's add waits
    and goes ahead by itself when it grants (consent/effects.py `consent_given`).

    The caller has checked coverage (operations' plan). A fixed number of queries whatever the
    number of companies: the text is published once and the requests are inserted in bulk.
    Each address known for a company gets its link by e-mail once the transaction commits.
    """
    companies = list(companies)
    if not companies:
        return []
    consent_text_publish(product=product)
    now = timezone.now()
    issued = []
    for company in companies:
        token, digest = token_new()
        request = ConsentRequest(
            token_hash=digest,
            company=company,
            reason=ConsentRequestReason.PRODUCT_ADDED,
            email=(company.tags or {}).get("email", ""),
            created_at=now,
            created_by=user,
            expires_at=now + settings.CONSENT_LINK_TTL,
        )
        issued.append(
            IssuedLink(
                request=request,
                token=token,
                url=public_url(consent_link_path(token)),
                manage_url=public_url(manage_link_path(company)),
            )
        )
    # One INSERT for all, without full_clean (queries per row for the foreign keys and the
    # unique hash): every value is built here, and the table's constraints still hold.
    ConsentRequest.objects.bulk_create([link.request for link in issued])
    chosen = ConsentRequest.products.through
    chosen.objects.bulk_create(
        [chosen(consentrequest_id=link.request.pk, product_id=product.pk) for link in issued]
    )
    for link in issued:
        if link.request.email:
            transaction.on_commit(
                lambda link=link: consent_request_email_send(issued=link, products=[product])
            )
    logger.info(
        "consent_request.created_for_add",
        extra={"requests": len(issued), "product": product.identifier},
    )
    return issued


def new_company_consent_requests_create(
    *, company, product_identifiers, user=None
) -> list[IssuedLink]:
    """Codat has created a company whose products were asked for without consent (the API's
    create): one PRODUCT_ADDED request per product, so each add waits for the grant and goes
    ahead by itself (consent/effects.py `consent_given`). Unknown identifiers are skipped: the
    catalogue may have changed since the create was asked for."""
    issued = []
    for product in Product.objects.filter(identifier__in=product_identifiers).order_by("pk"):
        issued += product_add_consent_requests_create(
            companies=[company], product=product, user=user
        )
    return issued


# --- GDPR erasure and retention ------------------------------------------------------------------


@transaction.atomic
def company_consent_contacts_erase(*, company: Company) -> int:
    """An erased company's consent requests keep what the evidence points at (the request, its
    token's hash) but lose the e-mail address they were sent to. Its stored current consent goes
    too: it is derived from the evidence (which stays, under retention), and an erased company
    holds nothing it could cover; the retention run could not delete the events it points at."""
    CurrentConsent.objects.filter(company=company).delete()
    return ConsentRequest.objects.filter(company=company).exclude(email="").update(email="")


def _evidence_delete(events) -> int:
    """Delete consent events: the one delete the append-only trigger lets through, because this
    transaction says it is the retention run's (a transaction-local setting, cleared again right
    after, so nothing later in the transaction can delete evidence either)."""
    from django.db import connection, models

    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('consent.retention_purge', 'on', true)")
        # The queryset's own delete() refuses on purpose; this is the retention run's. (A failed
        # delete aborts the transaction, and the setting ends with it.)
        deleted, _ = models.QuerySet.delete(events)
        cursor.execute("SELECT set_config('consent.retention_purge', 'off', true)")
    return deleted


def consent_evidence_retention_run(*, now=None) -> dict[str, int]:
    """The scheduled retention run: the consent evidence of each erased company is deleted once
    its text's retention (`ConsentText.retention_days`, counted from the erasure) has passed;
    when none is left, the company's requests and its emptied row go too, and only the
    erasure's tombstone remains. Evidence of companies that were not erased is never touched."""
    from datetime import timedelta

    from companies.models import CompanyErasure, ErasureState
    from companies.services import company_row_delete

    now = now or timezone.now()
    counts = {"events deleted": 0, "companies done": 0}
    erased = CompanyErasure.objects.filter(state=ErasureState.ERASED).values_list("pk", flat=True)
    for erasure_pk in list(erased):
        with transaction.atomic():
            erasure = (
                CompanyErasure.objects.select_for_update(skip_locked=True)
                .filter(pk=erasure_pk, state=ErasureState.ERASED)
                .first()
            )
            if erasure is None:
                continue
            company = Company.objects.filter(codat_id=erasure.codat_id).first()
            if company is not None:
                events = ConsentEvent.objects.filter(company=company).select_related("text")
                due = [
                    event.pk
                    for event in events
                    if erasure.erased_at + timedelta(days=event.text.retention_days) <= now
                ]
                if due:
                    counts["events deleted"] += _evidence_delete(
                        ConsentEvent.objects.filter(pk__in=due)
                    )
                if ConsentEvent.objects.filter(company=company).exists():
                    continue
                ConsentRequest.objects.filter(company=company).delete()
                company_row_delete(company=company)
            erasure.state = ErasureState.EVIDENCE_PURGED
            erasure.evidence_purged_at = now
            erasure.save(update_fields=["state", "evidence_purged_at"])
            counts["companies done"] += 1
            audit_record(
                action="gdpr.consent_evidence_deleted",
                target=erasure,
                changes={"codat_id": erasure.codat_id, "retention_ended": now},
            )
    return counts
