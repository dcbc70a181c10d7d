"""Companies, their products and their connections."""

import re
import uuid

from starlette.requests import Request

from sandbox import bank_feeds
from sandbox.catalogue import INTEGRATIONS, integration_id, source_id
from sandbox.clock import iso
from sandbox.engine import ORIGIN_PRODUCT_REFRESH
from sandbox.errors import ApiError, bad_request, free_plan_limit
from sandbox.http import (
    empty,
    json_body,
    json_response,
    not_found,
    require_company,
    require_connection,
    sandbox_of,
    string_field,
)
from sandbox.query import paged
from sandbox.render import (
    HOSTED_LINK_URL,
    company_body,
    company_connections,
    company_details,
    connection_body,
)

# Codat removes (not rejects) characters outside this set: "Company (Codat[1])" -> "Company Codat1"
_FORBIDDEN_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9\s\-',&@.?!]")
MAX_TAGS = 10
MAX_TAG_KEY = 27
MAX_TAG_VALUE = 100
FREE_PLAN_COMPANY_LIMIT = 50

COMPANY_PROPERTIES = {
    "id",
    "name",
    "description",
    "redirect",
    "lastSync",
    "created",
    "createdByUserName",
    "products",
    "tags",
    "dataConnections",
    "referenceParentCompany",
    "referenceSubsidiaryCompanies",
}
CONNECTION_PROPERTIES = {
    "id",
    "integrationId",
    "integrationKey",
    "sourceId",
    "sourceType",
    "platformName",
    "linkUrl",
    "status",
    "lastSync",
    "created",
    "dataConnectionErrors",
    "connectionInfo",
}


def clean_name(raw) -> str:
    if not isinstance(raw, str):
        raise bad_request("name", "is required and must be a string")
    name = _FORBIDDEN_NAME_CHARACTERS.sub("", raw)
    if not name.strip():
        raise bad_request("name", "must contain at least one letter, digit or allowed punctuation")
    return name


def clean_tags(raw) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request("tags", "must be an object of string values")
    if len(raw) > MAX_TAGS:
        raise bad_request("tags", f"at most {MAX_TAGS} tags are allowed")
    for key, value in raw.items():
        if not 1 <= len(key) <= MAX_TAG_KEY:
            raise bad_request(f"tags.{key}", f"tag keys must be 1 to {MAX_TAG_KEY} characters")
        if not isinstance(value, str):
            raise bad_request(f"tags.{key}", "tag values must be strings")
        if len(value) > MAX_TAG_VALUE:
            raise bad_request(
                f"tags.{key}", f"tag values must be at most {MAX_TAG_VALUE} characters"
            )
    return dict(raw)


def clean_products(sb, raw) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise bad_request("products", "must be an array of product identifiers")
    for identifier in raw:
        if sb.engine.product(identifier) is None:
            raise bad_request("products", f"unknown product '{identifier}'")
    return list(dict.fromkeys(raw))


# -- companies ---------------------------------------------------------------------------


async def list_companies(request: Request):
    sb = sandbox_of(request)
    records = [company_body(sb.store, c) for c in sb.store.all("company")]
    records.sort(key=lambda c: c["created"])
    from sandbox.query import compile_query

    tags_filter = compile_query(request.query_params.get("tags"), None, "Company", "ClientsApi")
    if tags_filter is not None:
        records = [c for c in records if tags_filter(c.get("tags") or {})]
    body = paged(
        records,
        path="/companies",
        params=request.query_params,
        known_properties=COMPANY_PROPERTIES,
        entity="Company",
        service="ClientsApi",
    )
    return json_response(body)


async def create_company(request: Request):
    sb = sandbox_of(request)
    company = add_company(sb, await json_body(request))
    return json_response(company_body(sb.store, company))


def add_company(sb, body: dict) -> dict:
    """Create Company from a request body; also what the demo world is built with."""
    if sb.on_free_plan() and len(sb.store.all("company")) >= FREE_PLAN_COMPANY_LIMIT:
        raise free_plan_limit("CompanyValidationException: Company limit exceeded")
    at = sb.clock.now()
    company_id = str(uuid.uuid4())
    company = {
        "id": company_id,
        "name": clean_name(body.get("name")),
        "description": string_field(body, "description"),
        "redirect": HOSTED_LINK_URL.format(id=company_id),
        "created": iso(at),
        "products": clean_products(sb, body.get("products")),
        "tags": clean_tags(body.get("tags")),
        "referenceSubsidiaryCompanies": [],
    }
    sb.store.put("company", company_id, company)
    sb.dispatcher.emit("company.created", company_details(company), at=at, company=company)
    return company


async def get_company(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    return json_response(company_body(sb.store, company))


async def replace_company(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    body = await json_body(request)
    company["name"] = clean_name(body.get("name"))
    company["description"] = string_field(body, "description")
    company["tags"] = clean_tags(body.get("tags"))
    sb.store.put("company", company["id"], company)
    return json_response(company_body(sb.store, company))


async def update_company(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    body = await json_body(request)
    if "name" in body:
        company["name"] = clean_name(body["name"])
    if "description" in body:
        company["description"] = string_field(body, "description")
    if "tags" in body:
        company["tags"] = clean_tags(body["tags"])
    sb.store.put("company", company["id"], company)
    return json_response(company_body(sb.store, company))


async def delete_company(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    at = sb.clock.now()
    # Permanent: the company's connections and cached data go with it.
    for kind, owner in (
        ("connection", "_companyId"),
        ("dataset", "companyId"),
        ("read", "companyId"),
        ("push", "companyId"),
        ("source_account", "_companyId"),
    ):
        for record_id, record in list(sb.store.tables[kind].items()):
            if record.get(owner) == company["id"]:
                sb.store.delete(kind, record_id)
    sb.store.delete("company", company["id"])
    sb.engine.forget_company(company["id"])
    sb.dispatcher.emit("company.deleted", company_details(company), at=at, company=company)
    return empty(204)


# -- products ----------------------------------------------------------------------------


def _require_product(sb, identifier: str) -> dict:
    product = sb.engine.product(identifier)
    if product is None:
        raise not_found(f"Product {identifier} does not exist")
    return product


def _product_event(company: dict, product: dict) -> dict:
    payload = {
        "id": company["id"],
        "name": company["name"],
        "productId": product["identifier"],
        "productName": product["name"],
        "products": list(company["products"]),
    }
    if company.get("description") is not None:
        payload["description"] = company["description"]
    return payload


async def add_product(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    product = _require_product(sb, request.path_params["productIdentifier"])
    if product["identifier"] in company["products"]:
        return empty(204)
    at = sb.clock.now()
    company["products"].append(product["identifier"])
    sb.store.put("company", company["id"], company)
    sb.dispatcher.emit(
        "company.product.added", _product_event(company, product), at=at, company=company
    )
    sb.engine.product_added(company, product, at)
    return empty(204)


async def remove_product(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    product = _require_product(sb, request.path_params["productIdentifier"])
    if product["identifier"] not in company["products"]:
        raise not_found(
            f"Product {product['identifier']} is not assigned to company {company['id']}"
        )
    # Removing the last product is allowed (since 2026-01-10); connections stay.
    company["products"].remove(product["identifier"])
    sb.store.put("company", company["id"], company)
    sb.dispatcher.emit(
        "company.product.removed",
        _product_event(company, product),
        at=sb.clock.now(),
        company=company,
    )
    return empty(204)


async def refresh_product(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    product = _require_product(sb, request.path_params["productIdentifier"])
    body = await json_body(request, optional=True)
    if not product.get("custom"):
        raise ApiError(
            400,
            f"{product['name']} doesn't support data refreshing. For more information, refer "
            "to your solution's documentation [here](https://docs.codat.io).",
        )
    if product["identifier"] not in company["products"]:
        raise not_found(
            f"Product {product['identifier']} is not assigned to company {company['id']}"
        )
    data_types = list(product["dataTypes"])
    if body is not None:
        unknown_keys = sorted(set(body) - {"dataTypes"})
        if unknown_keys:
            raise bad_request(unknown_keys[0], "is not allowed; the body accepts dataTypes only")
        requested = body.get("dataTypes")
        if requested is not None:
            if not isinstance(requested, list) or not all(isinstance(t, str) for t in requested):
                raise bad_request("dataTypes", "must be an array of data type names")
            invalid = [t for t in requested if t not in product["dataTypes"]]
            if invalid:
                raise bad_request(
                    "dataTypes",
                    f"{', '.join(invalid)} is not valid for product {product['identifier']}. "
                    f"Valid options: {', '.join(product['dataTypes'])}",
                )
            data_types = requested or data_types
    # Codat judges "in progress" per custom product: while any read of this product runs,
    # another refresh of it is refused, whatever data types it names. A running read of the
    # same types for another reason (a schedule, another product) does not refuse it; the new
    # read takes those datasets in.
    if sb.engine.running_product_read(company["id"], product["identifier"]) is not None:
        raise ApiError(
            400,
            "Data cannot be refreshed while a read operation is in progress. "
            "Allow the read to complete before attempting to refresh.",
        )
    readable = sb.engine.linked_data_types(company["id"])
    if not any(t in readable for t in data_types):
        # Nothing could be read, so nothing would ever complete: refused the way Codat refuses
        # to queue a data type that no connection of the company can read (404).
        platforms = ", ".join(
            sorted({c["platformName"] for c in sb.engine.linked_connections(company["id"])})
        )
        raise not_found(
            f"Datatype {', '.join(data_types)} not supported by platform(s) "
            f"{platforms or 'none'}: the company has no Linked connection that reads them"
        )
    sb.engine.start_read(
        company,
        data_types,
        at=sb.clock.now(),
        products=[product],
        modified_from=product.get("_lastRunAt"),
        origin={"kind": ORIGIN_PRODUCT_REFRESH, "product": product["identifier"]},
    )
    return empty(202)


# -- connections -------------------------------------------------------------------------


async def list_connections(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    records = [connection_body(c) for c in company_connections(sb.store, company["id"])]
    body = paged(
        records,
        path=f"/companies/{company['id']}/connections",
        params=request.query_params,
        known_properties=CONNECTION_PROPERTIES,
        entity="DataConnection",
    )
    return json_response(body)


async def create_connection(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    body = await json_body(request)
    platform_key = string_field(body, "platformKey", required=True)
    return json_response(connection_body(add_connection(sb, company, platform_key)))


def add_connection(sb, company: dict, platform_key: str) -> dict:
    """Create Connection: a PendingAuth connection whose linkUrl is the sandbox's Link page."""
    if platform_key not in INTEGRATIONS:
        raise not_found(f"Integration {platform_key} not found or not enabled")
    platform_name, source_type = INTEGRATIONS[platform_key]
    at = sb.clock.now()
    connection_id = str(uuid.uuid4())
    connection = {
        "id": connection_id,
        "integrationId": integration_id(platform_key),
        "integrationKey": platform_key,
        "sourceId": source_id(platform_key),
        "sourceType": source_type,
        "platformName": platform_name,
        # The sandbox's own Link page stands in for link-api.codat.io.
        "linkUrl": (
            f"{sb.public_url}/link/companies/{company['id']}/connections/{connection_id}/start"
        ),
        "status": "PendingAuth",
        "created": iso(at),
        "dataConnectionErrors": [],
        "_companyId": company["id"],
    }
    bank_feeds.link_code_issue(connection, at)
    sb.store.put("connection", connection_id, connection)
    sb.engine.emit_connection("connection.created", company, connection, at)
    return connection


async def get_connection(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    connection = require_connection(sb, company, request.path_params["connectionId"])
    if connection["status"] == "PendingAuth" and connection.get("_linkCode"):
        bank_feeds.link_code_issue(connection, sb.clock.now())
        sb.store.put("connection", connection["id"], connection)
    return json_response(connection_body(connection))


async def delete_connection(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    connection = require_connection(sb, company, request.path_params["connectionId"])
    for key, account in list(sb.store.tables["source_account"].items()):
        if account["_connectionId"] == connection["id"]:
            sb.store.delete("source_account", key)
    sb.store.delete("connection", connection["id"])
    sb.engine.emit_connection("connection.deleted", company, connection, sb.clock.now())
    return empty(200)


async def unlink_connection(request: Request):
    sb = sandbox_of(request)
    company = require_company(sb, request.path_params["companyId"])
    connection = require_connection(sb, company, request.path_params["connectionId"])
    body = await json_body(request)
    unknown_keys = sorted(set(body) - {"status"})
    if unknown_keys:
        raise bad_request(unknown_keys[0], "is not allowed; the body accepts status only")
    if body.get("status") != "Unlinked":
        raise bad_request("status", "must be Unlinked")
    if connection["status"] != "Linked":
        raise bad_request(
            "status",
            f"only Linked connections can be unlinked; this one is {connection['status']}",
        )
    sb.engine.disconnect(connection, "Unlinked", sb.clock.now())
    return json_response(connection_body(connection))
