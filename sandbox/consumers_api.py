"""Webhook consumers (`/webhooks`). Codat never returns the signing secret; the control API does."""

import uuid
from urllib.parse import urlsplit

from starlette.requests import Request

from sandbox.errors import bad_request
from sandbox.http import bool_field, empty, json_body, json_response, not_found, sandbox_of
from sandbox.store import public
from sandbox.webhooks import MAX_CONSUMERS, new_secret

MAX_COMPANY_TAGS = 10
MAX_COMPANY_TAG_LENGTH = 128


def consumer_body(consumer: dict) -> dict:
    return public(consumer)


async def list_consumers(request: Request):
    sb = sandbox_of(request)
    return json_response({"results": [consumer_body(c) for c in sb.store.all("consumer")]})


async def create_consumer(request: Request):
    sb = sandbox_of(request)
    body = await json_body(request)
    url = body.get("url")
    if not isinstance(url, str) or not urlsplit(url).scheme or not urlsplit(url).netloc:
        raise bad_request("url", "is required and must be an absolute URL")
    event_types = body.get("eventTypes") or []
    if not isinstance(event_types, list) or not all(isinstance(t, str) for t in event_types):
        raise bad_request("eventTypes", "must be an array of event type names")
    company_tags = body.get("companyTags") or []
    if not isinstance(company_tags, list) or not all(isinstance(t, str) for t in company_tags):
        raise bad_request("companyTags", "must be an array of 'tagKey:tagValue' strings")
    if len(company_tags) > MAX_COMPANY_TAGS:
        raise bad_request("companyTags", f"at most {MAX_COMPANY_TAGS} company tags are allowed")
    for tag in company_tags:
        if len(tag) > MAX_COMPANY_TAG_LENGTH or ":" not in tag or tag.startswith(":"):
            raise bad_request(
                "companyTags",
                f"'{tag}' must have the form tagKey:tagValue (at most 128 characters)",
            )
    disabled = bool_field(body, "disabled") or False
    if len(sb.store.tables["consumer"]) >= MAX_CONSUMERS:
        raise bad_request("url", f"a client can have at most {MAX_CONSUMERS} webhook consumers")
    consumer = {
        "id": str(uuid.uuid4()),
        "url": url,
        "eventTypes": event_types,
        "disabled": disabled,
        "companyTags": company_tags,
        "_secret": new_secret(),
    }
    sb.store.put("consumer", consumer["id"], consumer)
    return json_response(consumer_body(consumer), 201)


async def delete_consumer(request: Request):
    sb = sandbox_of(request)
    consumer_id = request.path_params["webhookId"]
    if sb.store.get("consumer", consumer_id) is None:
        raise not_found(f"Webhook consumer {consumer_id} not found")
    sb.store.delete("consumer", consumer_id)
    return empty(204)
