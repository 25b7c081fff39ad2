"""The chat page: ``/`` is its HTML and ``/static/...`` its scripts and stylesheet.

The files ship inside the package (``token_bowl_chat_server/web``), so the server that
answers the API also serves the page that talks to it; nothing is fetched from elsewhere.
Only these two paths are taken, so no API route is shadowed.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

# Set explicitly: the platform's mimetypes table may lack ``.js`` or call it text/plain, and
# a browser refuses to run a module served with a non-JavaScript type.
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

# The page renders other people's text; the policy is a second wall behind markdown.js:
# scripts, styles and connections only from this server, no inline script, no framing.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on each load, so an upgraded server never runs with yesterday's modules.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _file(relative: str) -> FileResponse:
    path = (WEB_DIR / relative).resolve()
    media_type = _MEDIA_TYPES.get(path.suffix)
    if media_type is None or not path.is_relative_to(WEB_DIR) or not path.is_file():
        # The same 404 (``route_not_found``) as any unknown path.
        raise HTTPException(404, "Not Found")
    return FileResponse(path, media_type=media_type, headers=_PAGE_HEADERS)


@router.get("/")
async def page() -> FileResponse:
    return _file("index.html")


@router.get("/static/{relative:path}")
async def static(relative: str) -> FileResponse:
    return _file(relative)
