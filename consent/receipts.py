"""Consent receipts shaped after the Kantara Consent Receipt Specification v1.1.0.

One receipt per decision (the events sharing a `receipt_id`). Fields the specification names
keep its names; what this portal adds lives under `x-portal` (text version and hash, the
data types by Codat identifier, the action).
"""

from django.conf import settings
from django.utils.translation import gettext as _

from consent.models import ConsentAction, ConsentChannel

KANTARA_VERSION = "KI-CR-v1.1.0"

COLLECTION_METHODS = {
    ConsentChannel.LINK: "Web form reached through a one-time consent link",
    ConsentChannel.MANAGE: "Manage-my-consent web page",
    ConsentChannel.ADMIN: "Recorded by an operator acting for the customer",
    ConsentChannel.SYSTEM: "Reconfirmation policy applied by the portal",
}

# Kantara's consentType: EXPLICIT for an affirmative act; a policy expiry is not consent at all.
CONSENT_TYPES = {
    ConsentAction.GRANT: "EXPLICIT",
    ConsentAction.RECONFIRM: "EXPLICIT",
    ConsentAction.DECLINE: "DECLINED",
    ConsentAction.WITHDRAW: "WITHDRAWN",
    ConsentAction.EXPIRE: "EXPIRED",
}


def acted_by(event) -> str:
    """Who a receipt says recorded a decision: nobody for the customer's own channels, and the
    enterprise's staff in general for the admin channel. A login name is the enterprise's
    internal detail, and the evidence (ConsentEvent.actor) keeps who it was."""
    if event.channel != ConsentChannel.ADMIN:
        return ""
    return _("a member of %(controller)s's staff") % {
        "controller": settings.CONSENT_CONTROLLER_NAME
    }


def receipt_document(*, events, manage_url: str = "") -> dict:
    """The receipt for the events of one decision (all of one company, one receipt id)."""
    first = events[0]
    company = first.company
    services = []
    for event in events:
        content = event.text.content
        names = {item["identifier"]: item["name"] for item in content["data_types"]}
        services.append(
            {
                "service": content["use_case"]["name"],
                "purposes": [
                    {
                        "purpose": content["purpose"],
                        "purposeCategory": [content["use_case"]["identifier"]],
                        "consentType": CONSENT_TYPES[event.action],
                        "piiCategory": [names.get(item, item) for item in event.data_types],
                        "primaryPurpose": True,
                        "termination": content["withdrawal"] + " " + content["retention"],
                        "thirdPartyDisclosure": True,
                        "thirdPartyName": content.get("processor", "Codat Ltd"),
                    }
                ],
            }
        )
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": settings.CONSENT_JURISDICTION,
        "consentTimestamp": int(first.occurred_at.timestamp()),
        "collectionMethod": COLLECTION_METHODS[first.channel],
        "consentReceiptID": str(first.receipt_id),
        "language": first.text.content.get("language", settings.LANGUAGE_CODE),
        "piiPrincipalId": f"codat-company:{company.codat_id}",
        "piiControllers": [
            {
                "piiController": settings.CONSENT_CONTROLLER_NAME,
                "contact": settings.CONSENT_CONTROLLER_CONTACT,
                "address": "",
                "email": settings.CONSENT_CONTROLLER_CONTACT
                if "@" in settings.CONSENT_CONTROLLER_CONTACT
                else "",
                "phone": "",
            }
        ],
        "policyUrl": settings.CONSENT_POLICY_URL or manage_url,
        "services": services,
        "sensitive": False,
        "spiCat": [],
        "x-portal": {
            "company": company.name,
            "occurredAt": first.occurred_at.isoformat(),
            "channel": first.channel,
            "operator": acted_by(first) or None,
            "decisions": [
                {
                    "useCase": event.product.identifier,
                    "action": event.action,
                    "dataTypes": event.data_types,
                    "textVersion": event.text.version,
                    "textHash": event.text_hash,
                }
                for event in events
            ],
        },
    }
