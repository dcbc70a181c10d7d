"""GDPR erasure of a company: delete it at Codat, then the portal's copies of its data.

1. `company_erase` (an admin, after a second person's approval when the four-eyes policy asks
   for one: approvals.services) records a `CompanyErasure` and writes a `delete_company`
   operation row; the worker calls Codat's DELETE /companies/{companyId} like any other call.
2. When Codat has confirmed, `company_erasure_codat_answered` (the kind's outcome, in the same
   transaction as the row's) deletes every copy the portal holds, each through the service of
   the app that owns the table: the mirror, product assignments, operation rows, webhook events
   and what they fed, bank-feed data, consent requests' e-mail addresses.
3. Consent evidence is kept, as the law requires, for as long as each consent text's retention
   says; the scheduled retention run (consent.services.consent_evidence_retention_run) then
   deletes it, the company's requests and its emptied row. The `CompanyErasure` stays as the
   tombstone: a company with this Codat id was erased, when, by whom, under which approval.

Every step is on the audit trail, with the erasure (never the company's name) as its target.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from companies.models import Company, CompanyErasure, ErasureState
from core.roles import can_erase_companies


class ErasureRefused(Exception):
    """An erasure that cannot start, with the reason for the person who asked."""


def company_erasure_check(*, company: Company, requested_by) -> None:
    """Why `requested_by` may not erase `company` now (ErasureRefused), or nothing."""
    if not can_erase_companies(requested_by):
        raise ErasureRefused("Only an admin may erase a company.")
    earlier = CompanyErasure.objects.filter(codat_id=company.codat_id).first()
    if earlier is not None and earlier.state != ErasureState.FAILED:
        raise ErasureRefused(f"This company is already {earlier.get_state_display().lower()}.")


@transaction.atomic
def company_erase(*, company: Company, requested_by, approval_id: int | None = None):
    """Start erasing `company`: Codat is asked to delete it, and the portal's copies follow
    once Codat confirms. A failed erasure may be started again."""
    from operations.models import OperationKind
    from operations.services import operation_write

    company = Company.objects.select_for_update().get(pk=company.pk)
    company_erasure_check(company=company, requested_by=requested_by)
    erasure, _ = CompanyErasure.objects.update_or_create(
        codat_id=company.codat_id,
        defaults={
            "state": ErasureState.REQUESTED,
            "requested_at": timezone.now(),
            "requested_by_id": requested_by.pk,
            "requested_by": requested_by.get_username(),
            "approval_id": approval_id,
            "failure_reason": "",
        },
    )
    operation = operation_write(
        kind=OperationKind.DELETE_COMPANY,
        dedupe_key=f"delete_company:{company.codat_id}",
        company=company,
        requested_by=requested_by,
    )
    audit_record(
        action="gdpr.company_erasure_requested",
        actor=requested_by,
        target=erasure,
        changes={"codat_id": company.codat_id, "operation": operation.pk, "approval": approval_id},
    )
    return erasure


def company_erasure_codat_answered(*, operation, state: str, error: str) -> None:
    """The delete_company row finished: on success the portal's copies go (same transaction
    as the row's outcome); otherwise the erasure records why Codat did not delete it."""
    from operations.models import OperationState

    company = operation.company
    erasure = CompanyErasure.objects.select_for_update().filter(codat_id=company.codat_id).first()
    if erasure is None:  # a delete_company row written without an erasure: nothing to follow
        return
    if state != OperationState.SUCCEEDED:
        erasure.state = ErasureState.FAILED
        erasure.failure_reason = error or f"The deletion at Codat was {state}."
        erasure.save(update_fields=["state", "failure_reason"])
        audit_record(
            action="gdpr.company_erasure_failed",
            target=erasure,
            changes={"reason": erasure.failure_reason},
        )
        return
    deleted = company_local_data_erase(company=company, keep=operation)
    erasure.state = ErasureState.ERASED
    erasure.erased_at = timezone.now()
    erasure.save(update_fields=["state", "erased_at"])
    audit_record(action="gdpr.company_erased", target=erasure, changes={"deleted": deleted})


@transaction.atomic
def company_local_data_erase(*, company: Company, keep) -> dict[str, int]:
    """Every copy of the company's data the portal holds, but the consent evidence: each table
    through the service of the app that owns it."""
    from bankfeeds.services import company_bank_feeds_erase
    from companies.services import company_mirror_erase
    from consent.services import company_consent_contacts_erase
    from operations.services import company_operations_erase
    from products.services import company_products_erase
    from webhooks.services import company_webhook_data_erase

    deleted = {
        "bank-feed rows": company_bank_feeds_erase(company=company),
        **company_webhook_data_erase(company=company),
        "operations": company_operations_erase(company=company, keep=keep),
        "product assignments": company_products_erase(company=company),
        "consent request e-mail addresses": company_consent_contacts_erase(company=company),
    }
    deleted.update(company_mirror_erase(company=company))
    return deleted


def company_is_erased(codat_id) -> bool:
    """Whether a company with this Codat id was erased (Codat confirmed the deletion)."""
    return CompanyErasure.objects.filter(
        codat_id=codat_id, state__in=(ErasureState.ERASED, ErasureState.EVIDENCE_PURGED)
    ).exists()
