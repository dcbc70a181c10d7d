"""Webhook consumers at Codat: the portal's endpoint registered for chosen event types.

Every change is a durable row first (pending_create, pending_delete); a worker makes the Codat
call after commit, and a periodic job re-drives rows left pending. Codat has no update call for
consumers: disabling one registers a disabled copy and deletes the original.
"""

import contextlib
import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from codat.event_types import STANDARD_EVENT_TYPES
from core.codat_client import codat_client
from operations import limiter
from webhooks.models import ConsumerStatus, WebhookConsumer

log = logging.getLogger(__name__)

# Rows pending longer than this are driven again by the periodic job.
PENDING_AFTER = timedelta(minutes=2)
MAX_ATTEMPTS = 10
DISABLED_AT_CODAT = (
    "Disabled at Codat: Codat disables an endpoint whose deliveries have all failed for 5 days. "
    "Fix the endpoint, then enable it again in Codat's Portal or register it again here "
    "(Codat's API cannot edit a consumer)."
)


def event_type_choices() -> list[tuple[str, str]]:
    """Standard events, and `{productIdentifier}.read.completed` for each custom product."""
    from products.models import Product, ProductKind

    choices = [(event_type, event_type) for event_type in STANDARD_EVENT_TYPES]
    for identifier in Product.objects.filter(kind=ProductKind.CUSTOM).values_list(
        "identifier", flat=True
    ):
        event_type = f"{identifier}.read.completed"
        choices.append((event_type, f"{event_type} (custom product)"))
    return choices


def _enqueue(consumer_pk: int) -> None:
    from webhooks.tasks import sync_webhook_consumer_task

    transaction.on_commit(lambda: _send(sync_webhook_consumer_task, consumer_pk))


def _send(task, consumer_pk: int) -> None:
    try:
        task.apply_async((consumer_pk,), retry=False)
    except Exception:
        # The row is durable; the periodic re-drive picks it up.
        log.warning("webhooks.consumer.enqueue_failed", extra={"pk": consumer_pk}, exc_info=True)


@transaction.atomic
def webhook_consumer_register(
    *, url: str, event_types: list[str], disabled: bool = False, company_tags=()
) -> WebhookConsumer:
    consumer = WebhookConsumer(
        url=url,
        event_types=sorted(set(event_types)),
        disabled=disabled,
        company_tags=list(company_tags),
    )
    consumer.full_clean()
    consumer.save()
    _enqueue(consumer.pk)
    return consumer


@transaction.atomic
def webhook_consumer_delete(*, consumer: WebhookConsumer) -> WebhookConsumer:
    consumer = WebhookConsumer.objects.select_for_update().get(pk=consumer.pk)
    if consumer.status in (ConsumerStatus.DELETED, ConsumerStatus.PENDING_DELETE):
        return consumer
    if consumer.codat_id is None and consumer.status == ConsumerStatus.FAILED:
        consumer.status = ConsumerStatus.DELETED
    else:
        consumer.status = ConsumerStatus.PENDING_DELETE
        consumer.attempts = 0
        _enqueue(consumer.pk)
    consumer.save(update_fields=["status", "attempts", "status_changed_at"])
    return consumer


@transaction.atomic
def webhook_consumer_disable(*, consumer: WebhookConsumer) -> WebhookConsumer | None:
    """Codat cannot change a consumer: register a disabled copy, delete the original."""
    if consumer.disabled or consumer.status not in (
        ConsumerStatus.ACTIVE,
        ConsumerStatus.PENDING_CREATE,
    ):
        return None
    copy = webhook_consumer_register(
        url=consumer.url,
        event_types=consumer.event_types,
        disabled=True,
        company_tags=consumer.company_tags,
    )
    webhook_consumer_delete(consumer=consumer)
    return copy


def _same_consumer(consumer: WebhookConsumer, remote: dict) -> bool:
    return (
        remote.get("url") == consumer.url
        and sorted(remote.get("eventTypes") or []) == sorted(consumer.event_types)
        and bool(remote.get("disabled")) == consumer.disabled
    )


def webhook_consumer_sync(*, consumer_pk: int, client=None) -> str | None:
    """Make Codat match one consumer row; the row's new status.

    A create is made idempotent by looking first: a consumer at Codat with the same URL, event
    types and disabled flag that no row claims yet is adopted instead of creating a second one
    (the worker may have died after Codat created it and before the row was saved).
    Raises the client's transient errors; permanent ones fail the row with Codat's message.
    """
    from codat.errors import CodatError, CodatNotFound

    consumer = WebhookConsumer.objects.filter(pk=consumer_pk).first()
    if consumer is None:
        log.info("webhooks.consumer.missing", extra={"pk": consumer_pk})
        return None
    if consumer.status not in (ConsumerStatus.PENDING_CREATE, ConsumerStatus.PENDING_DELETE):
        return consumer.status
    client = client or codat_client()
    WebhookConsumer.objects.filter(pk=consumer.pk).update(attempts=consumer.attempts + 1)
    try:
        if consumer.status == ConsumerStatus.PENDING_CREATE:
            codat_id = _adopt_or_create(client, consumer)
            changes = {"codat_id": codat_id, "status": ConsumerStatus.ACTIVE, "last_error": ""}
            expected = ConsumerStatus.PENDING_CREATE
        else:
            if consumer.codat_id is not None:
                # Already gone at Codat is the goal reached.
                with contextlib.suppress(CodatNotFound), limiter.slot(company_id=None):
                    client.delete_webhook_consumer(str(consumer.codat_id))
            changes = {"status": ConsumerStatus.DELETED, "last_error": ""}
            expected = ConsumerStatus.PENDING_DELETE
    except CodatError as error:
        if error.is_transient:
            WebhookConsumer.objects.filter(pk=consumer.pk).update(last_error=str(error)[:2000])
            raise
        WebhookConsumer.objects.filter(pk=consumer.pk, status=consumer.status).update(
            status=ConsumerStatus.FAILED,
            last_error=str(error)[:2000],
            status_changed_at=timezone.now(),
        )
        return ConsumerStatus.FAILED
    changes["status_changed_at"] = timezone.now()
    # Conditional: an operator may have asked for deletion while the create was in flight.
    updated = WebhookConsumer.objects.filter(pk=consumer.pk, status=expected).update(**changes)
    if not updated and "codat_id" in changes:
        WebhookConsumer.objects.filter(pk=consumer.pk).update(codat_id=changes["codat_id"])
        _enqueue(consumer.pk)
    return WebhookConsumer.objects.get(pk=consumer.pk).status


def _adopt_or_create(client, consumer: WebhookConsumer) -> uuid.UUID:
    if consumer.codat_id is not None:
        return consumer.codat_id
    claimed = set(WebhookConsumer.objects.exclude(codat_id=None).values_list("codat_id", flat=True))
    with limiter.slot(company_id=None):
        remotes = client.list_webhook_consumers().get("results") or []
    for remote in remotes:
        remote_id = uuid.UUID(remote["id"])
        if remote_id not in claimed and _same_consumer(consumer, remote):
            return remote_id
    with limiter.slot(company_id=None):
        created = client.create_webhook_consumer(
            consumer.url,
            consumer.event_types,
            disabled=consumer.disabled,
            company_tags=consumer.company_tags or None,
        )
    return uuid.UUID(created["id"])


def webhook_consumers_redrive(*, now=None) -> int:
    """Enqueue again the rows left pending (lost message, worker down, transient error)."""
    from webhooks.tasks import sync_webhook_consumer_task

    cutoff = (now or timezone.now()) - PENDING_AFTER
    pending = list(
        WebhookConsumer.objects.filter(
            status__in=(ConsumerStatus.PENDING_CREATE, ConsumerStatus.PENDING_DELETE),
            status_changed_at__lt=cutoff,
            attempts__lt=MAX_ATTEMPTS,
        ).values_list("pk", flat=True)
    )
    for consumer_pk in pending:
        _send(sync_webhook_consumer_task, consumer_pk)
    return len(pending)


def webhook_consumers_import(*, client=None) -> int:
    """List the consumers at Codat: record the ones the portal lacks, and take Codat's `disabled`
    flag for the registered ones. How many rows were added or changed.

    Codat (Svix) disables an endpoint whose deliveries have all failed for 5 days, and says so
    only in this list; the hourly run shows it in the admin instead of leaving it looking live.
    """
    client = client or codat_client()
    known = {
        codat_id: (pk, status, disabled)
        for pk, codat_id, status, disabled in WebhookConsumer.objects.exclude(
            codat_id=None
        ).values_list("pk", "codat_id", "status", "disabled")
    }
    changed = 0
    with limiter.slot(company_id=None):
        remotes = client.list_webhook_consumers().get("results") or []
    for remote in remotes:
        remote_id = uuid.UUID(remote["id"])
        disabled_at_codat = bool(remote.get("disabled"))
        if remote_id in known:
            pk, status, disabled = known[remote_id]
            if status == ConsumerStatus.ACTIVE and disabled != disabled_at_codat:
                changed += WebhookConsumer.objects.filter(pk=pk, status=status).update(
                    disabled=disabled_at_codat,
                    last_error=DISABLED_AT_CODAT if disabled_at_codat else "",
                )
                log.warning(
                    "webhooks.consumer.disabled_at_codat"
                    if disabled_at_codat
                    else "webhooks.consumer.enabled_at_codat",
                    extra={"consumer_pk": pk, "codat_id": str(remote_id)},
                )
            continue
        WebhookConsumer.objects.create(
            url=remote.get("url") or "",
            event_types=remote.get("eventTypes") or [],
            disabled=disabled_at_codat,
            company_tags=remote.get("companyTags") or [],
            codat_id=remote_id,
            status=ConsumerStatus.ACTIVE,
        )
        changed += 1
    return changed
