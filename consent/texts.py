"""The document an SMB owner is shown for a use case, and the hash that names its version.

Pure functions of plain values, so that the service that publishes versions and the migration
that gave every existing product its first version build the very same document.
"""

import hashlib
import json

from django.conf import settings

WITHDRAWAL_EFFECT = (
    "You can withdraw this consent at any time on your manage-my-consent page, in as few steps "
    "as it took to give it. When you withdraw, we stop reading this data for this use case "
    "straight away and ask Codat to remove the use case from your business. Data read before "
    "you withdrew was read lawfully; it is then kept only as the retention text says."
)


def canonical_json(content: dict) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(content: dict) -> str:
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def text_document(
    *,
    identifier: str,
    name: str,
    data_types: list[dict],
    purpose: str,
    retention: str,
) -> dict:
    """Exactly what the owner is shown. `data_types`: one dict per data type of the use case,
    with `identifier`, `name`, `description` and `optional`; required ones are listed first."""
    return {
        "language": settings.LANGUAGE_CODE,
        "controller": {
            "name": settings.CONSENT_CONTROLLER_NAME,
            "contact": settings.CONSENT_CONTROLLER_CONTACT,
        },
        "use_case": {"identifier": identifier, "name": name},
        "purpose": purpose,
        "data_types": sorted(data_types, key=lambda item: (item["optional"], item["identifier"])),
        "retention": retention,
        "withdrawal": WITHDRAWAL_EFFECT,
        "processor": "Codat Ltd",
    }
