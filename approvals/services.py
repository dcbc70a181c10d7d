"""Four-eyes (maker-checker) around the existing services: what needs a second person is
decided here, the request is kept with the service's arguments, and an approval calls that
same service, in the maker's name. Nothing here repeats what the services do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalAction, ApprovalRequest, ApprovalState, FourEyesPolicy
from audit.services import audit_record


class ApprovalError(Exception):
    """A decision that cannot be taken, with the reason for the person who tried."""


def policy() -> FourEyesPolicy:
    return FourEyesPolicy.objects.get_or_create(pk=1)[0]


def _over(limit: int | None, count: int) -> bool:
    return limit is not None and count > limit


def operations_need_approval(*, kind: str, company_count: int) -> bool:
    from operations.models import OperationKind

    thresholds = policy()
    if kind == OperationKind.REMOVE_PRODUCT:
        return _over(thresholds.product_removal_over, company_count)
    return _over(thresholds.bulk_action_over, company_count)


@transaction.atomic
def approval_request(*, action: str, arguments: dict, summary: str, maker) -> ApprovalRequest:
    approval = ApprovalRequest.objects.create(
        action=action, arguments=arguments, summary=summary[:500], maker=maker
    )
    audit_record(
        action="approvals.requested",
        actor=maker,
        target=approval,
        changes={"action": action, "arguments": arguments},
    )
    return approval


def operations_start_or_request_approval(
    *, maker, kind, company_ids, product=None, data_types=(), parameters=None
):
    """`operations_start`, or, above the admins' threshold, an approval request for it.

    Returns (job, plan, None) when it ran and (None, preview, approval) when it waits.
    """
    from operations.services import operations_preview, operations_start

    company_ids = sorted(set(company_ids))
    arguments = {
        "kind": kind,
        "company_ids": company_ids,
        "product": product,
        "data_types": data_types,
        "parameters": parameters,
    }
    preview = operations_preview(**arguments)
    acted_on = len(preview.queued) + len(preview.joined)
    if not operations_need_approval(kind=kind, company_count=acted_on):
        job, plan = operations_start(**arguments, requested_by=maker)
        return job, plan, None
    what = f"{kind.replace('_', ' ')}"
    if product is not None:
        what += f" {product.name}"
    approval = approval_request(
        action=ApprovalAction.OPERATIONS_START,
        arguments={
            "kind": kind,
            "company_ids": company_ids,
            "product_id": product.pk if product is not None else None,
            "data_types": list(data_types),
            **({"parameters": parameters} if parameters else {}),
        },
        summary=f"{what}: {acted_on} companies",
        maker=maker,
    )
    return None, preview, approval


# -- what an approval runs, and who may approve it ------------------------------------------


@dataclass(frozen=True)
class Approvable:
    permission: str  # the checker must be allowed to do the action themselves
    run: Callable[[dict, object], str]  # (arguments, maker) -> what was done, in words


def _run_operations(arguments: dict, maker) -> str:
    from operations.services import operations_start
    from products.models import Product

    product_id = arguments.get("product_id")
    job, plan = operations_start(
        kind=arguments["kind"],
        company_ids=arguments["company_ids"],
        product=Product.objects.get(pk=product_id) if product_id else None,
        data_types=arguments.get("data_types", ()),
        parameters=arguments.get("parameters"),
        requested_by=maker,
    )
    return f"job {job.pk}: {len(plan.queued)} queued, {len(plan.joined)} joined, " + (
        f"{len(plan.skipped)} left out"
    )


def _publish_consent_text(arguments: dict, maker) -> str:
    from consent.services import consent_text_publish
    from products.models import Product

    text = consent_text_publish(
        product=Product.objects.get(pk=arguments["product_id"]),
        purpose=arguments["purpose"],
        retention=arguments["retention"],
        retention_days=arguments.get("retention_days"),
        user=maker,
    )
    return f"{text} is the current version"


def _register_consumer(arguments: dict, maker) -> str:
    from webhooks.consumers import webhook_consumer_register

    consumer = webhook_consumer_register(**arguments, requested_by=maker)
    return f"consumer #{consumer.pk} being registered at Codat"


def _delete_consumer(arguments: dict, maker) -> str:
    from webhooks.consumers import webhook_consumer_delete
    from webhooks.models import WebhookConsumer

    consumer = WebhookConsumer.objects.get(pk=arguments["consumer_id"])
    return f"consumer #{webhook_consumer_delete(consumer=consumer, requested_by=maker).pk}: " + (
        "deletion under way"
    )


def _disable_consumer(arguments: dict, maker) -> str:
    from webhooks.consumers import webhook_consumer_disable
    from webhooks.models import WebhookConsumer

    consumer = WebhookConsumer.objects.get(pk=arguments["consumer_id"])
    copy = webhook_consumer_disable(consumer=consumer, requested_by=maker)
    return f"replaced by disabled copy #{copy.pk}" if copy else "nothing to disable"


def _erase_company(arguments: dict, maker) -> str:
    from companies.erasure import company_erase
    from companies.models import Company

    company = Company.objects.get(pk=arguments["company_id"])
    erasure = company_erase(
        company=company, requested_by=maker, approval_id=arguments.get("approval_id")
    )
    return f"erasure #{erasure.pk}: deletion at Codat under way"


def _start_sync_migration(arguments: dict, maker) -> str:
    from syncmigration.models import MigrationRun
    from syncmigration.services import migration_run_start

    run = migration_run_start(
        run=MigrationRun.objects.get(pk=arguments["run_id"]), user=maker, approved=True
    )
    return f"{run} started: {len(run.company_ids)} companies"


def _continue_sync_migration(arguments: dict, maker) -> str:
    from syncmigration.models import MigrationRun
    from syncmigration.services import migration_run_continue

    run = migration_run_continue(
        run=MigrationRun.objects.get(pk=arguments["run_id"]), user=maker, approved=True
    )
    return f"{run} continues past its canary"


APPROVABLE = {
    ApprovalAction.OPERATIONS_START: Approvable("companies.run_operations", _run_operations),
    ApprovalAction.CONSENT_TEXT_PUBLISH: Approvable(
        "consent.add_consenttext", _publish_consent_text
    ),
    ApprovalAction.CONSUMER_REGISTER: Approvable("webhooks.manage_consumers", _register_consumer),
    ApprovalAction.CONSUMER_DELETE: Approvable("webhooks.manage_consumers", _delete_consumer),
    ApprovalAction.CONSUMER_DISABLE: Approvable("webhooks.manage_consumers", _disable_consumer),
    ApprovalAction.COMPANY_ERASE: Approvable("companies.erase_company", _erase_company),
    ApprovalAction.SYNC_MIGRATION_START: Approvable(
        "syncmigration.run_sync_migration", _start_sync_migration
    ),
    ApprovalAction.SYNC_MIGRATION_CONTINUE: Approvable(
        "syncmigration.run_sync_migration", _continue_sync_migration
    ),
}


def consent_text_publish_needs_approval() -> bool:
    return policy().consent_text_publish


def company_erasure_needs_approval() -> bool:
    return policy().company_erasure


def company_erase_or_request_approval(*, company, maker):
    """`company_erase`, or, when the policy asks for a second person, an approval request for
    it. Returns (erasure, None) when it started and (None, approval) when it waits."""
    from companies.erasure import company_erase, company_erasure_check

    if not company_erasure_needs_approval():
        return company_erase(company=company, requested_by=maker), None
    company_erasure_check(company=company, requested_by=maker)
    with transaction.atomic():
        approval = approval_request(
            action=ApprovalAction.COMPANY_ERASE,
            arguments={"company_id": company.pk},
            # The Codat id, not the name: the request outlives the company's data.
            summary=f"erase company {company.codat_id} (GDPR)",
            maker=maker,
        )
        # The tombstone names the approval the erasure ran under.
        approval.arguments["approval_id"] = approval.pk
        approval.save(update_fields=["arguments"])
    return None, approval


def consumer_changes_need_approval() -> bool:
    return policy().consumer_changes


def consent_text_publish_request(
    *, maker, product, purpose: str, retention: str, retention_days: int | None = None
):
    return approval_request(
        action=ApprovalAction.CONSENT_TEXT_PUBLISH,
        arguments={
            "product_id": product.pk,
            "purpose": purpose,
            "retention": retention,
            "retention_days": retention_days,
        },
        summary=f"publish a new consent text for {product.name}",
        maker=maker,
    )


def consumer_register_request(*, maker, url: str, event_types, disabled=False, company_tags=()):
    return approval_request(
        action=ApprovalAction.CONSUMER_REGISTER,
        arguments={
            "url": url,
            "event_types": sorted(event_types),
            "disabled": disabled,
            "company_tags": list(company_tags),
        },
        summary=f"register a webhook consumer sending to {url}",
        maker=maker,
    )


def consumer_change_request(*, maker, consumer, action: str):
    return approval_request(
        action=action,
        arguments={"consumer_id": consumer.pk},
        summary=f"{ApprovalAction(action).label} sending to {consumer.url}",
        maker=maker,
    )


def approval_decide(*, approval: ApprovalRequest, checker, approve: bool, reason: str = ""):
    """The checker's decision. An approval runs the action, in the maker's name; a refusal
    runs nothing. Both are on the audit trail; the maker cannot decide their own request."""
    approvable = APPROVABLE.get(approval.action)
    if approvable is None:
        raise ApprovalError(f"action: {approval.action!r} cannot be approved here.")
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval.pk)
        if approval.state != ApprovalState.PENDING:
            raise ApprovalError(f"This request is already {approval.get_state_display()}.")
        if checker.pk == approval.maker_id:
            raise ApprovalError("A second person must decide: you asked for this yourself.")
        if not (checker.is_active and checker.has_perm(approvable.permission)):
            raise ApprovalError("Only someone allowed to do this themselves may approve it.")
        approval.checker = checker
        approval.decided_at = timezone.now()
        if approve:
            try:
                with transaction.atomic():
                    approval.outcome = approvable.run(approval.arguments, approval.maker)
                approval.state = ApprovalState.APPROVED
            except Exception as error:  # the reason is kept, and the request closed
                approval.state = ApprovalState.FAILED
                approval.outcome = f"{type(error).__name__}: {error}"
        else:
            approval.state = ApprovalState.REFUSED
            approval.outcome = reason[:2000]
        approval.save(update_fields=["checker", "decided_at", "state", "outcome"])
        audit_record(
            action="approvals.approved" if approve else "approvals.refused",
            actor=checker,
            target=approval,
            changes={
                "action": approval.action,
                "maker": approval.maker.get_username(),
                "state": approval.state,
                "outcome": approval.outcome,
            },
        )
    return approval
