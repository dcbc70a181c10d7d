"""The operation registry, the app's routes and Codat's documents agree."""

import pytest
from starlette.routing import Route

from sandbox.app import HANDLERS, api_routes
from sandbox.operations import OPERATIONS
from tests.oas import load_document

pytestmark = pytest.mark.sandbox


def test_every_registry_operation_exists_in_its_documents_with_that_method_and_path():
    for operation_id, operation in OPERATIONS.items():
        for document in operation.documents:
            paths = load_document(document)["paths"]
            assert operation.path in paths, f"{operation_id}: {operation.path} not in {document}"
            entry = paths[operation.path].get(operation.method.lower())
            assert entry is not None, f"{operation_id}: {operation.method} missing in {document}"
            assert entry["operationId"] == operation_id, f"{operation_id} is named differently"


def test_registry_and_app_routes_agree():
    registry = {(op.method, op.path) for op in OPERATIONS.values()}
    routes = {
        (method, route.path)
        for route in api_routes()
        if isinstance(route, Route)
        for method in route.methods - {"HEAD"}
    }
    assert routes == registry
    assert set(HANDLERS) == set(OPERATIONS)


def test_no_app_route_outside_the_registry_uses_a_codat_path():
    from sandbox.app import create_app  # noqa: F401  (the full route table is built in create_app)
    from sandbox.control import ROUTES

    for route in ROUTES:
        assert route.path.startswith("/_sandbox/")
