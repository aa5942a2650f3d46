"""The built web app (admin_ui/dist) at /: hashed assets cached for a year, index.html never
cached, and every other path that is not /api answered with index.html so the browser's router
takes it (a reload on /tasks/12 works).

The files are read on the first request and kept in memory with their gzip form, so a phone on a
slow link gets the 1 MB of scripts as about 300 KB, and serving them costs no disk reads. One
build is read once per process however many apps are created (tests create hundreds), and an
app that never serves a page (`djflow openapi`, the API tests) never reads it."""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from starlette.types import Receive, Scope, Send

IMMUTABLE = "public, max-age=31536000, immutable"
# The page may load its own scripts and styles only; antd and bpmn-js set inline styles, and a
# drawn signature or a diagram export is a data: or blob: image.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


# What a missing file looks like (a 404); any other path is a page of the app (index.html).
STATIC_SUFFIXES = (".js", ".mjs", ".css", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".webp",
                   ".woff", ".woff2", ".ttf", ".eot", ".txt", ".json", ".webmanifest", ".xml", ".html")


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str  # of the plain body; the gzipped body's tag ends in -gz (a cache must not mix them)
    cache: str

    def tag(self, encoding: str | None) -> str:
        return self.etag[:-1] + '-gz"' if encoding == "gzip" else self.etag


def load(dist: Path) -> dict[str, Asset]:
    """Every file under dist by its URL path; {} when the app is not built."""
    index = dist / "index.html"
    return _load(dist, index.stat().st_mtime_ns) if index.is_file() else {}


@lru_cache(maxsize=4)
def _load(dist: Path, _built_at: int) -> dict[str, Asset]:
    """The files of one build (a new build rewrites index.html, so its mtime tells builds apart)."""
    assets: dict[str, Asset] = {}
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        rel = "/" + path.relative_to(dist).as_posix()
        body = path.read_bytes()
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "image/svg+xml", "application/json"):
            ctype += "; charset=utf-8"
        packed = gzip.compress(body, 9, mtime=0) if len(body) > 1024 and _compressible(ctype) else None
        # Vite names what it builds after the content (assets/index-3f9a1c.js): those never change.
        cache = IMMUTABLE if rel.startswith("/assets/") else "no-cache"
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[rel] = Asset(body, packed if packed and len(packed) < len(body) else None, ctype, etag, cache)
    return assets


def _accepts_gzip(header: bytes) -> bool:
    """Accept-Encoding lists gzip (or *) with a q-value above 0."""
    for part in header.decode("latin-1").lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip()
            try:
                return not q.startswith("q=") or float(q[2:]) > 0
            except ValueError:
                return False
    return False


def _matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match: a list of tags (weak ones compare equal to strong, RFC 9110 §13.1.2) or *."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",") if t.strip()]
    return "*" in tags or etag in tags


def _compressible(ctype: str) -> bool:
    return ctype.startswith(("text/", "application/javascript", "application/json", "image/svg+xml"))


class WebApp:
    """ASGI app for every path outside /api (api.main.Edge sends them here when the app is built)."""

    def __init__(self, dist: Path):
        self.dist = dist
        self.built = (dist / "index.html").is_file()
        self._assets: dict[str, Asset] | None = None

    @property
    def assets(self) -> dict[str, Asset]:
        if self._assets is None:
            self._assets = load(self.dist)
        return self._assets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "/")
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            return await self._plain(send, 405, b"Method Not Allowed", "text/plain; charset=utf-8")
        assets = self.assets
        if not assets:  # the build was removed after start-up
            return await self._plain(send, 404, b"Not Found", "text/plain; charset=utf-8")
        asset = assets.get(path)
        if asset is None:
            if path.startswith("/assets/") or path.lower().endswith(STATIC_SUFFIXES):
                # A missing script is a 404, not the page: a stale tab must not run HTML as JS.
                return await self._plain(send, 404, b"Not Found", "text/plain; charset=utf-8")
            asset = assets["/index.html"]
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        encoding = "gzip" if asset.gzipped is not None and _accepts_gzip(headers.get(b"accept-encoding", b"")) else None
        if _matches(headers.get(b"if-none-match", b"").decode("latin-1"), asset.tag(encoding)):
            return await self._send(send, 304, b"", asset, encoding, method)
        await self._send(send, 200, asset.gzipped if encoding else asset.body, asset, encoding, method)

    async def _send(self, send: Send, status: int, body: bytes, asset: Asset, encoding: str | None,
                    method: str) -> None:
        headers = [(b"content-type", asset.content_type.encode()), (b"cache-control", asset.cache.encode()),
                   (b"etag", asset.tag(encoding).encode()), (b"x-content-type-options", b"nosniff"),
                   (b"content-security-policy", CSP.encode()), (b"referrer-policy", b"same-origin")]
        if asset.gzipped is not None:
            headers.append((b"vary", b"Accept-Encoding"))
        if encoding and status != 304:
            headers.append((b"content-encoding", encoding.encode()))
        if status != 304:
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" or status == 304 else body})

    @staticmethod
    async def _plain(send: Send, status: int, body: bytes, ctype: str) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
