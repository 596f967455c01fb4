"""Pages of the web UI: the Jinja2 environment, its filters, and the headers every UI answer carries.

:class:`Pages` renders a template into an HTML response with the session's CSRF token and the
signed-in scope in its context. :func:`ui_route_class` gives the router a route class that turns
errors into pages (a library error into its HTTP status with the message, no session into a
redirect to the sign-in page) and puts the security headers on every answer: a Content-Security-Policy
that allows scripts, styles, images and media from this server only (no inline script runs, even if
some text slipped through escaping), ``nosniff``, no framing, referrers only to this site and ``no-store`` for pages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from omnimem.errors import OmnimemError
from omnimem.server.ui.sessions import SignInNeeded, remember_new

__all__ = ["Pages", "ui_route_class", "harden", "CSP", "clock", "when"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self';"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


def clock(seconds: float | None) -> str:
    """``66.4`` -> ``"1:06"``, ``3725`` -> ``"1:02:05"`` (media times as players show them)."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def when(value: str | None) -> str:
    """An ISO-8601 time as ``2023-05-08 13:56`` (UTC marked), or ``""``."""
    if not value:
        return ""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    text = parsed.strftime("%Y-%m-%d %H:%M") if (parsed.hour, parsed.minute) != (0, 0) else parsed.strftime("%Y-%m-%d")
    return text + (" UTC" if parsed.utcoffset() == dt.timedelta(0) else "")


def cite(text: str, known: Any = ()) -> Any:
    """``text`` escaped, its citations (``[E2]``, ``[E1, E3]``) of ``known`` ids made links to ``#ev-E2``."""
    from markupsafe import Markup, escape

    known = set(known)
    out, last = [], 0
    for match in re.finditer(r"\[([^\[\]]+)\]", text):
        parts = [p.strip() for p in match.group(1).split(",")]
        out.append(escape(text[last : match.start()]))
        if parts and all(p in known for p in parts):
            links = ", ".join(f'<a class="cite" href="#ev-{escape(p)}">{escape(p)}</a>' for p in parts)
            out.append(Markup(f"[{links}]"))
        else:
            out.append(escape(match.group(0)))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _qs(**params: Any) -> str:
    """A query string of the non-empty ``params`` (every character that needs it escaped)."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


class Pages:
    """Renders the UI's templates (autoescaped: every value shows as text, never as markup)."""

    def __init__(self) -> None:
        try:
            import jinja2
        except ImportError as e:
            from omnimem.errors import missing_extra

            raise missing_extra("jinja2", "server") from e
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every template, whatever its name
            undefined=jinja2.StrictUndefined,  # a misspelt variable is an error, not an empty string
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            clock=clock, when=when, basename=lambda p: str(p).replace("\\", "/").rsplit("/", 1)[-1],
            pretty=lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str), cite=cite,
        )  # fmt: skip
        self.env.globals.update(qs=_qs)

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def page(self, request: Any, template: str, *, status: int = 200, **context: Any) -> Any:
        """An HTML response of ``template``; ``session``, ``name`` and ``scope`` in the context when known."""
        from fastapi.responses import HTMLResponse

        context.setdefault("session", getattr(request.state, "ui_session", None))
        context.setdefault("name", None)
        context.setdefault("active", "")
        session = context["session"]
        context.setdefault("scope", session.scope if session is not None else None)
        context.setdefault("can_write", bool(session and context["name"] and session.scope.can_write(context["name"])))
        context["csrf"] = session.csrf if session is not None else ""
        return HTMLResponse(self.render(template, **context), status_code=status)

    def error(self, request: Any, status: int, message: str) -> Any:
        """The error page (or ``{"detail": ...}`` to a script that asked for JSON)."""
        accept = request.headers.get("accept", "")
        if "application/json" in accept or "ndjson" in accept:
            from fastapi.responses import JSONResponse

            return JSONResponse({"detail": message}, status_code=status)
        return self.page(request, "error.html", status=status, message=message, status_code=status)


def ui_route_class(pages: Pages) -> type:
    """A FastAPI route class whose handlers answer errors with pages and carry the security headers."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import RedirectResponse
    from fastapi.routing import APIRoute
    from starlette.exceptions import HTTPException

    from omnimem.server.app import status_for

    class UIRoute(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()

            async def guarded(request: Any) -> Any:
                try:
                    response = await handler(request)
                except SignInNeeded:
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    response = RedirectResponse(f"/signin?{_qs(next=target)}", status_code=303)
                except OmnimemError as e:
                    status = status_for(e)
                    if status >= 500:
                        log.warning("UI request failed: %s", e)
                    response = pages.error(request, status, str(e))
                except HTTPException as e:
                    response = pages.error(request, e.status_code, str(e.detail))
                except RequestValidationError as e:
                    fields = "; ".join(
                        f"{'.'.join(map(str, x.get('loc', ())))}: {x.get('msg', '')}" for x in e.errors()
                    )
                    response = pages.error(request, 400, f"invalid input ({fields})")
                remember_new(request, response)
                harden(response, cache=request.url.path.startswith("/ui/static/"))
                return response

            return guarded

    return UIRoute


def harden(response: Any, *, cache: bool = False) -> Any:
    """Put the security headers on ``response``; pages are never cached (they hold a memory's content)."""
    for key, value in _HEADERS.items():
        response.headers.setdefault(key, value)
    response.headers.setdefault("cache-control", "no-cache" if cache else "no-store")
    return response
