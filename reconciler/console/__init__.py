"""The staff console and the citizen's status page: server-rendered HTML
from the API process (Jinja templates and one stylesheet, package data;
no JavaScript). See docs/console.md.

Routes (``add_routes``): ``/console/`` (to the counter or the login),
``/console/login`` (GET form, POST), ``/console/logout`` (POST),
``/console/counter`` (the officer's search), ``/console/receipts/{series}/
{number}.pdf`` (print) and ``.../reprint`` (POST: an audited copy),
``/console/static/console.css``, and the public ``/status``.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from aiohttp import web

from reconciler.console import admin, citizen, counter, finance_pages, officer, operator, pages

_CSS: Final = files("reconciler.console").joinpath("static", "console.css").read_bytes()


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(
        body=_CSS,
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/", pages.home)
    app.router.add_get("/console", pages.home)
    app.router.add_get("/console/login", pages.login_form)
    app.router.add_post("/console/login", pages.login)
    app.router.add_post("/console/logout", pages.logout)
    app.router.add_get("/console/counter", counter.counter)
    app.router.add_get("/console/receipts/{series}/{number}.pdf", counter.print_receipt)
    app.router.add_post("/console/receipts/{series}/{number}/reprint", counter.reprint)
    app.router.add_get("/console/static/console.css", stylesheet)
    app.router.add_get("/status", citizen.status_page)
    operator.add_routes(app)
    admin.add_routes(app)
    finance_pages.add_routes(app)
    officer.add_routes(app)
