"""Codat's webhook event types with fixed names (the `webhooks` sections of its documents).

Patterned ones come on top: `{dataType}.write.successful|unsuccessful` and, for custom
products, `{productIdentifier}.read.completed` with its sub-events.
"""

STANDARD_EVENT_TYPES = (
    "company.created",
    "company.deleted",
    "company.product.added",
    "company.product.removed",
    "connection.created",
    "connection.connected",
    "connection.failed",
    "connection.disconnected",
    "connection.reconnected",
    "connection.deleted",
    "read.completed",
    "read.completed.initial",
    # The generic forms of a read's outcome, sent alongside the `{product}.` ones.
    "read.completed.successful",
    "read.completed.unsuccessful",
    "read.completed.successful.initial",
    "client.rateLimit.reached",
    "client.rateLimit.reset",
    "bankFeeds.sourceAccount.connected",
    "bankFeeds.sourceAccount.disconnected",
)
