"""Webhook consumers at Codat: the portal's endpoint registered for chosen event types.

A change writes the consumer's desired state (pending_create, pending_delete) and an operation
row in one transaction; the operation workers make the Codat call, with the same limiter,
backoff, sweeper and job pages as every other Codat call (operations/kinds.py). Codat has no
update call for consumers: disabling one registers a disabled copy and deletes the original.
"""

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from codat.event_types import STANDARD_EVENT_TYPES
from operations.models import Operation, OperationKind, OperationState
from operations.services import operation_write
from webhooks.models import ConsumerStatus, WebhookConsumer

log = logging.getLogger(__name__)
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


def _consumer_operation(kind: str, consumer: WebhookConsumer, requested_by=None) -> Operation:
    return operation_write(
        kind=kind,
        dedupe_key=f"{kind}:{consumer.pk}",
        consumer=consumer,
        requested_by=requested_by,
    )


@transaction.atomic
def webhook_consumer_register(
    *, url: str, event_types: list[str], disabled: bool = False, company_tags=(), requested_by=None
) -> WebhookConsumer:
    consumer = WebhookConsumer(
        url=url,
        event_types=sorted(set(event_types)),
        disabled=disabled,
        company_tags=list(company_tags),
    )
    consumer.full_clean()
    consumer.save()
    _consumer_operation(OperationKind.REGISTER_CONSUMER, consumer, requested_by)
    audit_record(
        action="webhooks.consumer_register",
        actor=requested_by,
        target=consumer,
        changes={
            "url": consumer.url,
            "event_types": consumer.event_types,
            "disabled": consumer.disabled,
            "company_tags": consumer.company_tags,
        },
    )
    return consumer


@transaction.atomic
def webhook_consumer_delete(*, consumer: WebhookConsumer, requested_by=None) -> WebhookConsumer:
    consumer = WebhookConsumer.objects.select_for_update().get(pk=consumer.pk)
    if consumer.status in (ConsumerStatus.DELETED, ConsumerStatus.PENDING_DELETE):
        return consumer
    # A registration that has not started is cancelled: the newest wish wins, and nothing was
    # registered at Codat. One that is running finishes first; the deletion waits for it.
    Operation.objects.filter(
        consumer=consumer, kind=OperationKind.REGISTER_CONSUMER, state=OperationState.PENDING
    ).update(
        state=OperationState.CANCELLED,
        finished_at=timezone.now(),
        last_error="superseded by a later delete webhook consumer",
    )
    registering = Operation.objects.filter(
        consumer=consumer, kind=OperationKind.REGISTER_CONSUMER, state=OperationState.RUNNING
    ).exists()
    if consumer.codat_id is None and not registering:
        consumer.status = ConsumerStatus.DELETED  # nothing at Codat to delete
    else:
        consumer.status = ConsumerStatus.PENDING_DELETE
        _consumer_operation(OperationKind.DELETE_CONSUMER, consumer, requested_by)
    consumer.save(update_fields=["status", "status_changed_at"])
    audit_record(
        action="webhooks.consumer_delete",
        actor=requested_by,
        target=consumer,
        changes={"url": consumer.url, "status": consumer.status},
    )
    return consumer


@transaction.atomic
def webhook_consumer_disable(
    *, consumer: WebhookConsumer, requested_by=None
) -> WebhookConsumer | None:
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
        requested_by=requested_by,
    )
    webhook_consumer_delete(consumer=consumer, requested_by=requested_by)
    return copy


def webhook_consumers_list_request() -> Operation:
    """Ask for Codat's consumer list (hourly): one row, joined while one is live."""
    return operation_write(kind=OperationKind.LIST_CONSUMERS, dedupe_key="list_consumers")


# -- the calls and outcomes the operation kinds use (operations/kinds.py) ------------------


def _same_consumer(consumer: WebhookConsumer, remote: dict) -> bool:
    return (
        remote.get("url") == consumer.url
        and sorted(remote.get("eventTypes") or []) == sorted(consumer.event_types)
        and bool(remote.get("disabled")) == consumer.disabled
    )


def consumer_register_at_codat(client, operation: Operation) -> dict:
    """Create the consumer at Codat; Codat's answer (with its id).

    A retried create is made idempotent by looking first: a consumer at Codat with the same URL,
    event types and disabled flag that no row claims yet is adopted instead of creating a second
    one (the worker may have died after Codat created it and before its answer was recorded).
    """
    consumer = operation.consumer
    if consumer.codat_id is not None:
        return {"id": str(consumer.codat_id)}
    if operation.attempts > 1:
        claimed = set(
            WebhookConsumer.objects.exclude(codat_id=None).values_list("codat_id", flat=True)
        )
        for remote in client.list_webhook_consumers().get("results") or []:
            if uuid.UUID(remote["id"]) not in claimed and _same_consumer(consumer, remote):
                return remote
    return client.create_webhook_consumer(
        consumer.url,
        consumer.event_types,
        disabled=consumer.disabled,
        company_tags=consumer.company_tags or None,
    )


def consumer_delete_at_codat(client, operation: Operation) -> dict:
    consumer = WebhookConsumer.objects.get(pk=operation.consumer_id)
    if consumer.codat_id is None:
        # Its registration failed or never ran: there is nothing at Codat to delete.
        return {"absent": True}
    client.delete_webhook_consumer(str(consumer.codat_id))
    return {}


def consumer_registered(operation: Operation, answer: dict) -> dict:
    """Keep Codat's id for the consumer, whatever its status now: an operator may have asked
    for deletion while the create was in flight, and the deletion needs the id."""
    codat_id = uuid.UUID(answer["id"])
    WebhookConsumer.objects.filter(pk=operation.consumer_id).update(codat_id=codat_id)
    return {"consumerId": str(codat_id)}


def consumer_operation_finished(operation: Operation, *, state: str, error: str) -> None:
    """The consumer follows its row's outcome, unless a later wish has replaced it. A row that
    failed for good shows the consumer failed, with Codat's reason."""
    registering = operation.kind == OperationKind.REGISTER_CONSUMER
    expected = ConsumerStatus.PENDING_CREATE if registering else ConsumerStatus.PENDING_DELETE
    if state == OperationState.SUCCEEDED:
        changes = {
            "status": ConsumerStatus.ACTIVE if registering else ConsumerStatus.DELETED,
            "last_error": "",
        }
    elif state == OperationState.FAILED:
        changes = {"status": ConsumerStatus.FAILED, "last_error": error[:2000]}
    else:
        return
    WebhookConsumer.objects.filter(pk=operation.consumer_id, status=expected).update(
        **changes, status_changed_at=timezone.now()
    )


def webhook_consumers_import(*, remotes: list[dict]) -> int:
    """Apply Codat's consumer list: record the ones the portal lacks, and take Codat's `disabled`
    flag for the registered ones. How many rows were added or changed.

    Codat (Svix) disables an endpoint whose deliveries have all failed for 5 days, and says so
    only in this list; the hourly run shows it in the admin instead of leaving it looking live.
    """
    known = {
        codat_id: (pk, status, disabled)
        for pk, codat_id, status, disabled in WebhookConsumer.objects.exclude(
            codat_id=None
        ).values_list("pk", "codat_id", "status", "disabled")
    }
    changed = 0
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
