"""drf-spectacular post-processing: what every operation shares, stated once in the schema.

Every operation can answer a problem (400 bad input, 401 no valid key, 403 missing scope, 404
unknown id, 405, 406, 429 rate limit); every POST takes an Idempotency-Key and can answer 409
(in flight, or refused by the current state); 422 also answers a key reused with another body.
"""

from api.idempotency import HEADER, MAX_KEY_LENGTH

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": ["string", "null"]},
                    "reason": {"type": "string"},
                },
                "required": ["field", "reason"],
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}

COMMON = {
    "400": "The input is not valid: `errors` names each field and the reason.",
    "401": "No API key, or a key that is unknown, revoked or expired.",
    "403": "The key (or the staff member's role) lacks the scope this needs.",
    "404": "No such resource.",
    "405": "The method is not allowed here.",
    "422": "Well-formed input that cannot be acted on: a product not in the catalogue, a cursor "
    "this API did not give out, fields that do not go together, a reused Idempotency-Key.",
    "406": "The Accept header asks for a type the API does not give.",
    "429": "Too many requests for this key: wait for Retry-After seconds.",
}
FOR_POST = {
    "409": "A request with this Idempotency-Key is in flight, or the current state refuses it.",
    "415": "The body is not JSON.",
    "503": "An Idempotency-Key was given and its store (Redis) cannot be reached.",
}


def _problem(description: str) -> dict:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def add_problems_and_idempotency(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            extra = dict(COMMON)
            if method == "post":
                extra.update(FOR_POST)
                operation.setdefault("parameters", []).append(
                    {
                        "in": "header",
                        "name": HEADER,
                        "required": False,
                        "description": "Makes a retry safe: the same key and body get the "
                        "first response again.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
                    }
                )
            for code, description in extra.items():
                responses.setdefault(code, _problem(description))
    return result
