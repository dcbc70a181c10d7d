"""How stored records are rendered as Codat's bodies (companies, connections, references)."""

from sandbox.store import Store, public

PORTAL_COMPANY_URL = "https://app.codat.io/companies/{id}/summary"
HOSTED_LINK_URL = "https://link.codat.io/company/{id}"


def connection_body(connection: dict) -> dict:
    return public(connection)


def company_details(company: dict) -> dict:
    """`Company/definitions/companyDetails`: the company without its connections."""
    return public(company)


def company_body(store: Store, company: dict) -> dict:
    body = company_details(company)
    body["dataConnections"] = [
        connection_body(connection) for connection in company_connections(store, company["id"])
    ]
    return body


def company_connections(store: Store, company_id: str) -> list[dict]:
    connections = store.owned_by("connection", company_id)
    return sorted(connections, key=lambda c: c["created"])


def company_reference(company: dict) -> dict:
    """`Company/definitions/companyReference`, as carried by webhooks."""
    reference = {
        "id": company["id"],
        "name": company["name"],
        "links": {"portal": PORTAL_COMPANY_URL.format(id=company["id"])},
        "tags": company.get("tags") or {},
    }
    if company.get("description") is not None:
        reference["description"] = company["description"]
    return reference


def dataset_body(dataset: dict) -> dict:
    return public(dataset)


def push_body(operation: dict) -> dict:
    return public(operation)
