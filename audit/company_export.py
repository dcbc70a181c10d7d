"""Everything the portal holds about one company, as JSON (GDPR access and portability).

The tables are found by walking the relations that point at the company, and at what points at
it, rather than listed by hand: a table added later is in the export without anyone
remembering to add it. Secrets the portal keeps about links (token hashes, claim tokens) are
left out: they identify nothing and would only help someone forge a link.
"""

from __future__ import annotations

from django.core import serializers
from django.utils import timezone

from audit.models import AuditEntry
from companies.models import Company

LEFT_OUT_FIELDS = {"token_hash", "claim_token", "idempotency_key"}
MAX_DEPTH = 3


def _rows(queryset) -> list[dict]:
    rows = []
    for row in serializers.serialize("python", queryset):
        fields = {k: v for k, v in row["fields"].items() if k not in LEFT_OUT_FIELDS}
        rows.append({"id": row["pk"], **fields})
    return rows


def _collect(model, pks: list, depth: int, found: dict[str, dict]) -> None:
    if depth > MAX_DEPTH or not pks:
        return
    for relation in model._meta.related_objects:
        if not (relation.one_to_many or relation.one_to_one):
            continue
        child = relation.related_model
        if child is AuditEntry:
            continue
        rows = child._default_manager.filter(**{f"{relation.field.name}__in": pks}).order_by("pk")
        label = child._meta.label_lower
        known = found.setdefault(label, {})
        new = [row for row in _rows(rows) if row["id"] not in known]
        for row in new:
            known[row["id"]] = row
        _collect(child, [row["id"] for row in new], depth + 1, found)


def company_data_export(*, company: Company) -> dict:
    found: dict[str, dict] = {}
    _collect(Company, [company.pk], 1, found)
    trail = AuditEntry.objects.filter(target_type="companies.company", target_id=str(company.pk))
    return {
        "exported_at": timezone.now().isoformat(),
        "company": _rows(Company.objects.filter(pk=company.pk))[0],
        "tables": {label: list(rows.values()) for label, rows in sorted(found.items()) if rows},
        "audit_trail": [
            {
                "at": entry.at.isoformat(),
                "actor": entry.actor,
                "via": entry.via,
                "action": entry.action,
                "changes": entry.changes,
            }
            for entry in trail.order_by("at", "pk")
        ],
    }
