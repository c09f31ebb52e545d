"""Rendering the console's pages: Jinja templates (package data, escaped
by default), the language switch, Vietnamese formats, and the headers every
page carries.

Vietnamese first: ``?lang=en`` switches to English and remembers it in the
``lang`` cookie, ``?lang=vi`` switches back. Money is đồng as
``1.234.000 đ``; times are Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from domain.business_time import VIETNAM_TZ
from domain.text import unsafe_character
from ledger.receipts.pdf import format_amount_vnd, format_vietnam_time
from reconciler.api.auth import may
from reconciler.api.bodies import read_body
from reconciler.console.texts import TEXTS

Lang = Literal["vi", "en"]
LANG_COOKIE: Final = "lang"
LANGS: Final[tuple[Lang, ...]] = ("vi", "en")
FORM_FIELDS_MAX: Final = 20
FORM_VALUE_CHARS_MAX: Final = 1000

# Staff pages show personal data: never cached, never framed, nothing loaded
# from elsewhere (the one stylesheet is ours), no Referer to another site.
PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_env: Final = Environment(
    loader=PackageLoader("reconciler.console", "templates"),
    autoescape=select_autoescape(["jinja", "html"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Navigation shows a page's link only to whoever may open it.
_env.globals["may"] = may


def format_dong(amount_vnd: int) -> str:
    """``1234000`` → ``"1.234.000 đ"``."""
    return format_amount_vnd(amount_vnd).removesuffix(" đồng") + " đ"


def format_time(at: datetime, lang: Lang) -> str:
    if lang == "vi":
        return format_vietnam_time(at)
    local = at.astimezone(VIETNAM_TZ)
    return f"{local:%H:%M} on {local:%d/%m/%Y} (Vietnam time)"


def language(request: web.Request) -> Lang:
    chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE, "")
    return "en" if chosen == "en" else "vi"


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """The page ``template`` in the request's language."""
    lang = language(request)
    texts = TEXTS[lang]
    body = _env.get_template(template).render(
        lang=lang,
        t=texts.__getitem__,
        dong=format_dong,
        when=lambda at: format_time(at, lang),
        switch_url=_switch_url(request, "en" if lang == "vi" else "vi"),
        **context,
    )
    response = web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
    )
    if request.query.get("lang") in LANGS:
        response.set_cookie(
            LANG_COOKIE, lang, path="/", max_age=365 * 86400, samesite="Lax", httponly=True
        )
    return response


def _switch_url(request: web.Request, other: Lang) -> str:
    """This page in the other language, its query (a search) kept."""
    query = [(k, v) for k, v in request.query.items() if k != "lang"]
    return request.path + "?" + urlencode([*query, ("lang", other)])


def message_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    """A page that only says something (403, 404, 400), by text keys."""
    lang = language(request)
    return render(
        request,
        "message.jinja",
        status=status,
        title=TEXTS[lang][title],
        message=TEXTS[lang][message],
        principal=None,
    )


async def read_form(
    request: web.Request, free_text: frozenset[str] = frozenset()
) -> dict[str, str] | None:
    """A form's fields (``application/x-www-form-urlencoded``, UTF-8), or
    None when it is not one: another type, not UTF-8, too many fields, a
    field twice, too long, or holding a character text may not hold.

    ``free_text`` fields (a reason typed in a textarea) are kept whatever
    their length and characters (the body's cap bounds them), line breaks
    as LF (a browser sends CR LF): the handler checks them and says on the
    page what is wrong with them, where a refused form says "expired"."""
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    raw = await read_body(request)
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, max_num_fields=FORM_FIELDS_MAX, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    form = dict(pairs)
    if len(form) != len(pairs):
        return None
    for name, value in pairs:
        if len(name) > 100 or unsafe_character(name) is not None:
            return None
        if name in free_text:
            form[name] = value.replace("\r\n", "\n")
        elif len(value) > FORM_VALUE_CHARS_MAX or unsafe_character(value) is not None:
            return None
    return form
