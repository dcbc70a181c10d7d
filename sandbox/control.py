"""The control API under /_sandbox/ (a prefix Codat does not use). Same API key as the Codat API.

See sandbox/README.md for the list. Bodies are JSON; errors use the ErrorMessage shape.
"""

import re

from starlette.requests import Request
from starlette.routing import Route

from sandbox.catalogue import STANDARD_PRODUCTS
from sandbox.clock import iso
from sandbox.errors import bad_request
from sandbox.http import (
    empty,
    json_body,
    json_response,
    not_found,
    require_company,
    require_connection,
    sandbox_of,
)
from sandbox.render import connection_body
from sandbox.settings import DATASET_STAGES, ERROR_DECIDED_AFTER
from sandbox.store import public
from sandbox.vocabulary import DATA_TYPES

_PRODUCT_IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9\-_.]{0,63}$")
_DAILY_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
FINAL_STATUSES = ("Complete", *ERROR_DECIDED_AFTER)


async def health(request: Request):
    sb = sandbox_of(request)
    return json_response({"ok": True, "now": iso(sb.clock.now()), "speed": sb.clock.speed})


async def reset(request: Request):
    sandbox_of(request).reset()
    return empty(204)


# -- clock -------------------------------------------------------------------------------


def _clock(sb) -> dict:
    return {"now": iso(sb.clock.now()), "speed": sb.clock.speed}


async def get_clock(request: Request):
    return json_response(_clock(sandbox_of(request)))


async def set_clock(request: Request):
    sb = sandbox_of(request)
    body = await json_body(request)
    speed = body.get("speed")
    if isinstance(speed, bool) or not isinstance(speed, int | float) or speed <= 0:
        raise bad_request("speed", "must be a positive number (sandbox seconds per real second)")
    sb.set_speed(float(speed))
    return json_response(_clock(sb))


async def advance_clock(request: Request):
    sb = sandbox_of(request)
    body = await json_body(request)
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise bad_request("seconds", "must be a number of seconds, 0 or more")
    sb.advance(float(seconds))
    return json_response(_clock(sb))


# -- settings (faults, datasets, push, rate limits) --------------------------------------


def _merge(target: dict, body: dict, checks: dict) -> None:
    for key, value in body.items():
        if key not in checks:
            raise bad_request(key, f"unknown setting; known: {', '.join(sorted(checks))}")
        problem = checks[key](value)
        if problem:
            raise bad_request(key, problem)
    target.update(body)


def _number(low: float, high: float | None = None, *, nullable: bool = False):
    def check(value):
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if value < low or (high is not None and value > high):
            return f"must be between {low} and {high}" if high is not None else f"must be >= {low}"
        return None

    return check


def _boolean(value):
    return None if isinstance(value, bool) else "must be true or false"


def _settings_route(section: str, checks: dict):
    async def handler(request: Request):
        sb = sandbox_of(request)
        if request.method == "PUT":
            body = await json_body(request)
            _merge(sb.settings[section], body, checks)
            sb.save_settings()
        return json_response(sb.settings[section])

    return handler


def _check_durations(value):
    if not isinstance(value, dict):
        return "must be an object of stage -> seconds"
    for stage, seconds in value.items():
        if stage not in DATASET_STAGES:
            return f"unknown stage {stage}; stages: {', '.join(DATASET_STAGES)}"
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return f"{stage} must be a number of seconds, 0 or more"
    return None


def _check_outcomes(value):
    if not isinstance(value, dict):
        return "must be an object of dataType -> final status"
    for data_type, status in value.items():
        if data_type not in DATA_TYPES:
            return f"unknown data type {data_type}"
        if status not in FINAL_STATUSES:
            return f"{status} is not a final status; use one of {', '.join(FINAL_STATUSES)}"
    return None


faults = _settings_route(
    "faults",
    {
        "errorRate": _number(0, 1),
        "errorStatus": lambda v: None if v in (500, 503) else "must be 500 or 503",
        "latencyMs": _number(0, 60000),
        "duplicateWebhooks": _boolean,
        "outOfOrderWebhooks": _boolean,
    },
)
datasets = _settings_route(
    "datasets",
    {"durations": _check_durations, "outcomes": _check_outcomes, "recordsModified": _boolean},
)
push = _settings_route(
    "push",
    {
        "delaySeconds": _number(0),
        "outcome": lambda v: (
            None
            if v in ("Success", "Failed", "TimedOut")
            else "must be Success, Failed or TimedOut"
        ),
    },
)
account = _settings_route(
    "account", {"plan": lambda v: None if v in ("Paid", "Free") else "must be Paid or Free"}
)
rate_limits = _settings_route(
    "rateLimits",
    {
        "dailyQuota": _number(0, nullable=True),
        "perMinute": _number(1, nullable=True),
        "concurrentPerCompany": _number(1, nullable=True),
    },
)


async def rate_limit_usage(request: Request):
    sb = sandbox_of(request)
    return json_response(
        {"dailyQuota": sb.limiter.quota(), "used": sb.limiter.used, "reached": sb.limiter.reached}
    )


# -- companies and connections -----------------------------------------------------------


async def company_downtime(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    body = await json_body(request)
    if not isinstance(body.get("down"), bool):
        raise bad_request("down", "is required and must be true or false")
    company["_platformDown"] = body["down"]
    sb.store.put("company", company["id"], company)
    return json_response({"companyId": company["id"], "down": body["down"]})


async def company_outcomes(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    body = await json_body(request)
    set_company_outcomes(sb, company, body)
    return json_response(body)


def set_company_outcomes(sb, company: dict, outcomes: dict) -> None:
    """How this company's reads end, per data type (`Complete` or an error status)."""
    problem = _check_outcomes(outcomes)
    if problem:
        raise bad_request("body", problem)
    company["_datasetOutcomes"] = outcomes
    sb.store.put("company", company["id"], company)


async def connection_action(request: Request):
    """authorize (the SMB finished Link), cancel (the SMB cancelled), deauthorize (access lost)."""
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    connection = require_connection(sb, company, request.path_params["connectionId"])
    action = request.path_params["action"]
    at = sb.clock.now()
    if action == "authorize":
        sb.engine.authorize(connection, at)
    elif action == "cancel":
        if connection["status"] == "Linked":
            raise bad_request("status", "a Linked connection cannot cancel linking")
        sb.engine.fail_link(connection, at)
    elif action == "deauthorize":
        if connection["status"] != "Linked":
            raise bad_request(
                "status",
                f"only a Linked connection can be deauthorized, not {connection['status']}",
            )
        sb.engine.disconnect(connection, "Deauthorized", at)
    else:
        raise not_found(f"Unknown connection action {action}; use authorize, cancel or deauthorize")
    return json_response(connection_body(connection))


# -- webhooks ----------------------------------------------------------------------------


async def consumers(request: Request):
    sb = sandbox_of(request)
    return json_response([{**public(c), "secret": c["_secret"]} for c in sb.store.all("consumer")])


async def consumer_secret(request: Request):
    sb = sandbox_of(request)
    consumer = sb.store.get("consumer", request.path_params["webhookId"])
    if consumer is None:
        raise not_found(f"Webhook consumer {request.path_params['webhookId']} not found")
    return json_response({"id": consumer["id"], "secret": consumer["_secret"]})


async def messages(request: Request):
    sb = sandbox_of(request)
    event_type = request.query_params.get("eventType")
    found = [
        {key: value for key, value in m.items() if key != "body"}
        for m in sorted(sb.store.all("message"), key=lambda m: m["createdAt"])
        if event_type is None or m["eventType"] == event_type
    ]
    return json_response(found)


async def events(request: Request):
    sb = sandbox_of(request)
    event_type = request.query_params.get("eventType")
    found = [e["body"] for e in sb.dispatcher.events if event_type in (None, e["eventType"])]
    return json_response(found)


def _read_body(sb, read: dict) -> dict:
    """One read as the record shows it: what started it, what it read, when, and collisions."""
    joined = set(read.get("joinedDatasetIds") or [])
    datasets = [sb.store.get("dataset", d) for d in read["datasetIds"]]
    return {
        "id": read["id"],
        "companyId": read["companyId"],
        "origin": read.get("origin") or {},
        "products": read.get("products") or [],
        "startedAt": iso(read.get("startedAt")),
        "completedAt": iso(read.get("completedAt")),
        "done": read["done"],
        "datasets": [
            {
                "id": d["id"],
                "dataType": d["dataType"],
                "connectionId": d["connectionId"],
                "status": d["status"],
                "requested": d["requested"],
                "completed": d.get("completed"),
                # Queued by an earlier read, which this one waited for instead of reading twice.
                "joined": d["id"] in joined,
            }
            for d in datasets
            if d is not None
        ],
        "collisions": read.get("collisions") or [],
    }


async def reads(request: Request):
    """The sandbox's own record of reads, oldest first: each says which schedule or call started
    it (`origin.kind`), so a test can find a data type read by two schedules."""
    sb = sandbox_of(request)
    company_id = request.query_params.get("companyId")
    kind = request.query_params.get("origin")
    found = [
        read
        for read in sb.store.all("read")
        if company_id in (None, read["companyId"])
        and kind in (None, (read.get("origin") or {}).get("kind"))
    ]
    found.sort(key=lambda read: read.get("startedAt") or 0)
    return json_response([_read_body(sb, read) for read in found])


async def calls(request: Request):
    sb = sandbox_of(request)
    company_id = request.query_params.get("companyId")
    found = [c for c in sb.calls if company_id in (None, c["companyId"])]
    return json_response(found)


# -- products ----------------------------------------------------------------------------


def _product_body(product: dict) -> dict:
    body = {key: value for key, value in product.items() if key[0] != "_"}
    if product.get("_nextRunAt") is not None:
        body["nextScheduledRead"] = iso(product["_nextRunAt"])
    return body


async def list_products(request: Request):
    sb = sandbox_of(request)
    standard = [
        {"identifier": key, "custom": False, **value} for key, value in STANDARD_PRODUCTS.items()
    ]
    custom = [_product_body(p) for p in sb.store.all("product")]
    return json_response(standard + custom)


async def put_product(request: Request):
    sb = sandbox_of(request)
    product = define_product(sb, request.path_params["identifier"], await json_body(request))
    return json_response(_product_body(product))


def define_product(sb, identifier: str, body: dict) -> dict:
    """Create or redefine a custom product, as Codat does for a client on request."""
    if identifier in STANDARD_PRODUCTS:
        raise bad_request("identifier", "standard products cannot be redefined")
    if not _PRODUCT_IDENTIFIER.match(identifier):
        raise bad_request("identifier", "use lower-case letters, digits, '-', '_' or '.'")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("name", "is required")
    data_types = body.get("dataTypes")
    if not isinstance(data_types, list) or not data_types:
        raise bad_request("dataTypes", "is required: a non-empty array of Codat data types")
    unknown = [t for t in data_types if t not in DATA_TYPES]
    if unknown:
        raise bad_request("dataTypes", f"unknown data types: {', '.join(map(str, unknown))}")
    schedule = body.get("schedule")
    if schedule is not None:
        frequency = schedule.get("frequency") if isinstance(schedule, dict) else None
        if frequency not in ("hourly", "daily"):
            raise bad_request("schedule.frequency", "must be hourly or daily")
        if frequency == "daily" and not _DAILY_TIME.match(str(schedule.get("time", ""))):
            raise bad_request("schedule.time", "daily schedules need a UTC time as HH:MM")
        schedule = {
            "frequency": frequency,
            **({"time": schedule["time"]} if frequency == "daily" else {}),
        }
    existing = sb.store.get("product", identifier) or {}
    product = {
        "identifier": identifier,
        "name": name,
        "dataTypes": list(dict.fromkeys(data_types)),
        "schedule": schedule,
        "custom": True,
        "_lastRunAt": existing.get("_lastRunAt"),
    }
    sb.engine.plan_schedule(product, sb.clock.now())
    return product


async def delete_product(request: Request):
    sb = sandbox_of(request)
    identifier = request.path_params["identifier"]
    if sb.store.get("product", identifier) is None:
        raise not_found(f"Custom product {identifier} not found")
    sb.store.delete("product", identifier)
    return empty(204)


ROUTES = [
    Route("/_sandbox/health", health, methods=["GET"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/clock", get_clock, methods=["GET"]),
    Route("/_sandbox/clock", set_clock, methods=["PUT"]),
    Route("/_sandbox/clock/advance", advance_clock, methods=["POST"]),
    Route("/_sandbox/faults", faults, methods=["GET", "PUT"]),
    Route("/_sandbox/datasets", datasets, methods=["GET", "PUT"]),
    Route("/_sandbox/push", push, methods=["GET", "PUT"]),
    Route("/_sandbox/account", account, methods=["GET", "PUT"]),
    Route("/_sandbox/rate-limits", rate_limits, methods=["GET", "PUT"]),
    Route("/_sandbox/rate-limits/usage", rate_limit_usage, methods=["GET"]),
    Route("/_sandbox/companies/{companyId}/downtime", company_downtime, methods=["PUT"]),
    Route("/_sandbox/companies/{companyId}/dataset-outcomes", company_outcomes, methods=["PUT"]),
    Route(
        "/_sandbox/companies/{companyId}/connections/{connectionId}/{action}",
        connection_action,
        methods=["POST"],
    ),
    Route("/_sandbox/webhooks/consumers", consumers, methods=["GET"]),
    Route("/_sandbox/webhooks/consumers/{webhookId}/secret", consumer_secret, methods=["GET"]),
    Route("/_sandbox/webhooks/messages", messages, methods=["GET"]),
    Route("/_sandbox/webhooks/events", events, methods=["GET"]),
    Route("/_sandbox/calls", calls, methods=["GET"]),
    Route("/_sandbox/reads", reads, methods=["GET"]),
    Route("/_sandbox/products", list_products, methods=["GET"]),
    Route("/_sandbox/products/{identifier}", put_product, methods=["PUT"]),
    Route("/_sandbox/products/{identifier}", delete_product, methods=["DELETE"]),
]
