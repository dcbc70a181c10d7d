"""The Link page: where the SMB authorises (or cancels) a connection. No API key: it is the SMB's
browser that opens it, at the connection's linkUrl."""

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse

from sandbox.bank_feeds import link_code_refused
from sandbox.http import sandbox_of

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connect {platform} - Codat sandbox</title></head>
<body>
<h1>Connect {platform}</h1>
<p>{company} asks to read your {source_type} data through Codat (sandbox).</p>
<p>Connection status: <strong id="status">{status}</strong></p>
<form method="post" action="{base}/authorise"><button type="submit" name="action"
 value="authorise">Authorise</button></form>
<form method="post" action="{base}/cancel"><button type="submit" name="action"
 value="cancel">Cancel</button></form>
</body></html>
"""

RESULT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>Connection status: <strong id="status">{status}</strong></p></body></html>
"""


def _find(request: Request):
    sb = sandbox_of(request)
    company = sb.store.get("company", request.path_params["companyId"])
    connection = sb.store.get("connection", request.path_params["connectionId"])
    if company is None or connection is None or connection["_companyId"] != company["id"]:
        return sb, None, None
    return sb, company, connection


def _not_found() -> HTMLResponse:
    return HTMLResponse(RESULT.format(title="Link not found", status="unknown"), status_code=404)


async def start(request: Request):
    sb, company, connection = _find(request)
    if connection is None:
        return _not_found()
    if link_code_refused(connection, request.query_params.get("otp"), sb.clock.now()):
        return HTMLResponse(
            RESULT.format(title="This link has expired", status=connection["status"]),
            status_code=401,
        )
    base = f"/link/companies/{company['id']}/connections/{connection['id']}"
    return HTMLResponse(
        PAGE.format(
            platform=html.escape(connection["platformName"]),
            company=html.escape(company["name"]),
            source_type=html.escape(connection["sourceType"].lower()),
            status=connection["status"],
            base=base,
        )
    )


async def authorise(request: Request):
    sb, _, connection = _find(request)
    if connection is None:
        return _not_found()
    sb.engine.authorize(connection, sb.clock.now())
    return HTMLResponse(RESULT.format(title="Connected", status=connection["status"]))


async def cancel(request: Request):
    sb, _, connection = _find(request)
    if connection is None:
        return _not_found()
    if connection["status"] != "Linked":
        sb.engine.fail_link(connection, sb.clock.now())
    return HTMLResponse(RESULT.format(title="Cancelled", status=connection["status"]))
