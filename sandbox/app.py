"""The ASGI app: Codat's routes (from the operation registry), the control API, the Link page, and
one gateway in front of the API that does what Codat does before a handler runs: authentication,
rate limits, injected faults, the X-Rate-Limit-* headers and the call log.
"""

import asyncio
import base64
import contextlib
import logging
import random
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route

from sandbox import (
    bank_feeds,
    companies_api,
    consumers_api,
    control,
    data_api,
    demo,
    idempotency,
    link,
)
from sandbox.clock import iso
from sandbox.errors import ApiError, error_body, error_response
from sandbox.operations import OPERATIONS
from sandbox.runtime import Sandbox

log = logging.getLogger("sandbox")

HANDLERS = {
    "list-companies": companies_api.list_companies,
    "create-company": companies_api.create_company,
    "get-company": companies_api.get_company,
    "replace-company": companies_api.replace_company,
    "update-company": companies_api.update_company,
    "delete-company": companies_api.delete_company,
    "add-product": companies_api.add_product,
    "remove-product": companies_api.remove_product,
    "refresh-product-data": companies_api.refresh_product,
    "list-connections": companies_api.list_connections,
    "create-connection": companies_api.create_connection,
    "get-connection": companies_api.get_connection,
    "delete-connection": companies_api.delete_connection,
    "unlink-connection": companies_api.unlink_connection,
    "refresh-company-data": data_api.refresh_company_data,
    "refresh-data-type": data_api.refresh_data_type,
    "get-company-data-status": data_api.data_status,
    "list-pull-operations": data_api.list_pull_operations,
    "get-pull-operation": data_api.get_pull_operation,
    "get-company-push-history": data_api.list_push_operations,
    "get-push-operation": data_api.get_push_operation,
    "list-create-operations": data_api.list_push_operations,
    "get-create-operation": data_api.get_push_operation,
    "get-profile-syncSettings": data_api.get_profile_sync_settings,
    "update-profile-syncSettings": data_api.update_profile_sync_settings,
    "get-company-syncSettings": data_api.get_company_sync_settings,
    "set-company-syncSettings": data_api.set_company_sync_settings,
    "list-webhook-consumers": consumers_api.list_consumers,
    "create-webhook-consumer": consumers_api.create_consumer,
    "delete-webhook-consumer": consumers_api.delete_consumer,
    "list-source-accounts": bank_feeds.list_source_accounts,
    "create-source-account": bank_feeds.create_source_account,
    "create-batch-source-account": bank_feeds.create_source_accounts_batch,
    "update-source-account": bank_feeds.update_source_account,
    "delete-source-account": bank_feeds.delete_source_account,
    "get-bank-account-mapping": bank_feeds.get_mapping,
    "create-bank-account-mapping": bank_feeds.create_mapping,
    "create-bank-transactions": bank_feeds.create_bank_transactions,
}

LINK_ROUTES = [
    Route("/link/companies/{companyId}/connections/{connectionId}/start", link.start),
    Route(
        "/link/companies/{companyId}/connections/{connectionId}/authorise",
        link.authorise,
        methods=["POST"],
    ),
    Route(
        "/link/companies/{companyId}/connections/{connectionId}/cancel",
        link.cancel,
        methods=["POST"],
    ),
]


def api_routes() -> list[Route]:
    routes, seen = [], set()
    for operation_id, operation in OPERATIONS.items():
        key = (operation.method, operation.path)
        if key in seen:  # the Bank Feeds document renames two Platform operations
            continue
        seen.add(key)
        routes.append(
            Route(
                operation.path,
                HANDLERS[operation_id],
                methods=[operation.method],
                name=operation_id,
            )
        )
    return routes


class CodatGateway:
    """Pure ASGI middleware (cheap): auth, limits, faults, rate headers and the call log."""

    def __init__(self, app, sandbox: Sandbox):
        self.app = app
        self.sb = sandbox
        self.expected_auth = (
            "Basic " + base64.b64encode(sandbox.api_key.encode()).decode()
        ).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/link/"):
            return await self.app(scope, receive, send)
        path = scope["path"]
        is_control = path.startswith("/_sandbox/")
        limiter = self.sb.limiter
        result = {"status": 0}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                result["status"] = message["status"]
                if not is_control:
                    message["headers"] = [*message.get("headers", []), *limiter.headers()]
            await send(message)

        authorization = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                break
        if authorization != self.expected_auth:
            response = JSONResponse(error_body(401, "Unauthorized"), status_code=401)
            return await response(scope, receive, send_with_headers)
        if is_control:
            with self.sb.store.batch():
                return await self.app(scope, receive, send)

        segments = path.split("/")
        company_id = segments[2] if len(segments) > 2 and segments[1] == "companies" else None
        try:
            limiter.admit(company_id)
        except ApiError as exc:
            await error_response(exc)(scope, receive, send_with_headers)
            return self._log(scope, result["status"], company_id)
        if company_id:
            limiter.inflight[company_id] += 1
        try:
            faults = self.sb.settings["faults"]

            async def processing(scope, receive, send):
                # Injected latency is time spent processing: an idempotent request is in flight
                # (a repeat of its key gets 409) for all of it.
                if faults["latencyMs"]:
                    await asyncio.sleep(faults["latencyMs"] / 1000)
                with self.sb.store.batch():
                    await self.app(scope, receive, send)

            if faults["errorRate"] and random.random() < faults["errorRate"]:
                if faults["latencyMs"]:
                    await asyncio.sleep(faults["latencyMs"] / 1000)
                status = int(faults["errorStatus"])
                exc = ApiError(status, "Internal server error (injected by the sandbox)")
                await error_response(exc)(scope, receive, send_with_headers)
            elif scope["method"] in idempotency.METHODS and any(
                name == idempotency.HEADER for name, _ in scope["headers"]
            ):
                await self.sb.idempotency.handle(scope, receive, send_with_headers, processing)
            else:
                await processing(scope, receive, send_with_headers)
        finally:
            if company_id:
                limiter.inflight[company_id] -= 1
            self._log(scope, result["status"], company_id)

    def _log(self, scope, status: int, company_id: str | None) -> None:
        self.sb.calls.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode("latin-1"),
                "status": status,
                "time": iso(self.sb.clock.now()),
                "realTime": time.time(),
                "companyId": company_id,
            }
        )


async def _api_error(request: Request, exc: ApiError):
    return error_response(exc)


async def _http_error(request: Request, exc: HTTPException):
    messages = {404: "Not found", 405: "Method not allowed"}
    error = messages.get(exc.status_code, exc.detail)
    headers = None
    if exc.status_code == 405:
        # Starlette's Allow names only the first route on the path; Codat's paths often have one
        # route per method (GET and POST /companies), so gather them all (RFC 9110: a 405 must
        # carry Allow).
        headers = {"Allow": ", ".join(sorted(allowed_methods(request)))}
    return JSONResponse(
        error_body(exc.status_code, error), status_code=exc.status_code, headers=headers
    )


def allowed_methods(request: Request) -> set[str]:
    methods = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE and getattr(route, "methods", None):
            methods.update(route.methods)
    return methods


async def _unexpected(request: Request, exc: Exception):
    log.exception("sandbox.unhandled_error")
    return JSONResponse(error_body(500, "Internal server error"), status_code=500)


def create_app(sandbox: Sandbox) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        engine_task = asyncio.create_task(sandbox.engine.run_forever())
        clock_task = asyncio.create_task(_save_clock_periodically(sandbox))
        try:
            yield
        finally:
            engine_task.cancel()
            clock_task.cancel()
            await sandbox.dispatcher.drain()
            sandbox.save_clock()
            sandbox.store.close()

    app = Starlette(
        routes=[*api_routes(), *control.ROUTES, *demo.ROUTES, *LINK_ROUTES],
        middleware=[Middleware(CodatGateway, sandbox=sandbox)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app


async def _save_clock_periodically(sandbox: Sandbox) -> None:
    while True:
        await asyncio.sleep(1.0)
        sandbox.save_clock()
