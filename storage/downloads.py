"""Catalog images and feeds by URL: polite downloads into a disk cache revalidated by ETag.

Each URL's bytes are kept in ``<cache>/<sha256 of the URL>`` with a ``.json`` beside it (the
validators the server sent). The next ingest asks the server with ``If-None-Match`` /
``If-Modified-Since``; a 304 costs no body and keeps the file, so the ingest sees the same
bytes (same fingerprint) and re-embeds nothing. A failed download leaves the cached copy as it
was: it is reported, never fatal, and the rest of the catalog goes on.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

RETRIES = 3
BACKOFF_SECONDS = (0.5, 1.0, 2.0)
MAX_RETRY_AFTER_SECONDS = 60.0
MAX_FEED_BYTES = 500 * 1024 * 1024
MAX_REDIRECTS = 5
_RETRIED_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})
"""Content types that say nothing: accepted when the bytes decode as an image."""
USER_AGENT = "WardrobeConsultant/1.0 (catalog ingest)"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DownloadLimits:
    concurrency: int = 8
    """Downloads at once: enough to hide latency, few enough not to look like an attack."""
    seconds: float = 20.0
    """Each connect, read or write may wait this long (a whole download may take longer)."""
    max_image_bytes: int = 20 * 1024 * 1024


class DownloadFailed(Exception):
    """One URL could not be fetched; ``reason`` is one line for the ingest report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    path: Path
    downloaded: bool
    """False when the cached copy was still current (304) and no body came."""
    stale: str | None = None
    """Why the URL failed this time, when the copy from an earlier ingest is used instead."""


@dataclass
class DownloadReport:
    """What :meth:`DownloadCache.fetch_images` did (feed documents are not counted)."""

    downloaded: int = 0
    revalidated: int = 0
    failed: int = 0


class DownloadCache:
    """Fetches URLs into ``folder``; one instance per ingest, used inside ``async with``."""

    def __init__(
        self,
        folder: Path,
        limits: DownloadLimits | None = None,
        *,
        backoff: Sequence[float] = BACKOFF_SECONDS,
    ) -> None:
        self.folder = folder
        limits = limits or DownloadLimits()
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._max_image_bytes = limits.max_image_bytes
        self._backoff = tuple(backoff)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(limits.seconds),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={"User-Agent": USER_AGENT},
        )
        self.report = DownloadReport()

    async def __aenter__(self) -> DownloadCache:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    def path_of(self, url: str) -> Path:
        return self.folder / hashlib.sha256(url.encode()).hexdigest()

    async def fetch_images(
        self, urls: Collection[str], progress: Progress | None = None
    ) -> dict[str, Fetched | DownloadFailed]:
        """Each URL's cached file, or why it could not be had; ``progress(done, total)``."""
        unique = list(dict.fromkeys(urls))
        results: dict[str, Fetched | DownloadFailed] = {}
        if progress:
            progress(0, len(unique))

        async def one(url: str) -> None:
            async with self._slots:
                try:
                    fetched = await self._fetch(url, self._max_image_bytes, _check_image)
                    if fetched.downloaded:
                        self.report.downloaded += 1
                    else:
                        self.report.revalidated += 1
                    results[url] = fetched
                except DownloadFailed as failed:
                    self.report.failed += 1
                    cached = self.path_of(url)
                    # A shop's CDN having a bad minute must not take items out of the catalog.
                    results[url] = (
                        Fetched(cached, downloaded=False, stale=failed.reason)
                        if cached.is_file()
                        else failed
                    )
            if progress:
                progress(len(results), len(unique))

        await asyncio.gather(*(one(url) for url in unique))
        return results

    async def fetch_document(self, url: str) -> Path:
        """A feed file by URL, cached and revalidated like an image; raises DownloadFailed."""
        return (await self._fetch(url, MAX_FEED_BYTES, None)).path

    async def _fetch(
        self, url: str, max_bytes: int, check: Callable[[bytes, str], str | None] | None
    ) -> Fetched:
        path = self.path_of(url)
        validators = _read_validators(path) if path.is_file() else {}
        for attempt in range(RETRIES + 1):
            try:
                return await self._get(url, path, validators, max_bytes, check)
            except _Retry as retry:
                if attempt == RETRIES:
                    raise DownloadFailed(retry.reason) from None
                wait = retry.after if retry.after is not None else self._backoff_for(attempt)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    def _backoff_for(self, attempt: int) -> float:
        return self._backoff[min(attempt, len(self._backoff) - 1)] if self._backoff else 0.0

    async def _get(
        self,
        url: str,
        path: Path,
        validators: dict[str, str],
        max_bytes: int,
        check: Callable[[bytes, str], str | None] | None,
    ) -> Fetched:
        headers = {}
        if etag := validators.get("etag"):
            headers["If-None-Match"] = etag
        if modified := validators.get("last_modified"):
            headers["If-Modified-Since"] = modified
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304 and validators:
                    return Fetched(path, downloaded=False)
                if response.status_code in _RETRIED_STATUSES:
                    raise _Retry(f"HTTP {response.status_code}", _retry_after(response))
                if response.status_code != 200:
                    raise DownloadFailed(f"HTTP {response.status_code}")
                content_type = _content_type(response)
                if check is not None and not (
                    content_type.startswith("image/") or content_type in _UNTYPED
                ):
                    raise DownloadFailed(f"not an image (Content-Type {content_type})")
                data = await _read_limited(response, max_bytes)
        except httpx.TooManyRedirects:
            raise DownloadFailed(f"more than {MAX_REDIRECTS} redirects") from None
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
            raise _Retry(_network_reason(error)) from None
        except httpx.InvalidURL as error:
            raise DownloadFailed(f"invalid URL ({error})") from None
        except httpx.UnsupportedProtocol:
            raise DownloadFailed("not an http(s) URL") from None
        if check is not None and (problem := await asyncio.to_thread(check, data, content_type)):
            raise DownloadFailed(problem)
        await asyncio.to_thread(_store, path, data, response)
        return Fetched(path, downloaded=True)

    def prune(self, keep: Collection[Path]) -> int:
        """Delete cached files (and their validators) not in ``keep``; returns how many."""
        kept = {Path(path).resolve() for path in keep}
        removed = 0
        for path in self.folder.iterdir():
            if path.suffix or path.resolve() in kept:
                continue
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
            removed += 1
        return removed


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds or as an HTTP date, capped; None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise DownloadFailed(
            f"too large ({int(declared) // 1024} KB, limit {max_bytes // 1024} KB)"
        )
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise DownloadFailed(f"too large (over {max_bytes // 1024} KB)")
    return bytes(body)


def _network_reason(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    return f"network error ({type(error).__name__})"


def _check_image(data: bytes, content_type: str) -> str | None:
    """Why ``data`` is no usable image (None: it is one). Verified, not decoded: decoding is
    the embedder's, which also limits its pixels."""
    if not data:
        return "empty response"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        what = f" ({content_type})" if content_type else ""
        return f"not a readable image{what}"
    return None


def _store(path: Path, data: bytes, response: httpx.Response) -> None:
    """File first, then its validators, each atomically: a crash leaves no validator that
    would vouch for bytes that are not there."""
    _write_atomically(path, data)
    validators = {
        "url": str(response.request.url),
        "etag": response.headers.get("etag"),
        "last_modified": response.headers.get("last-modified"),
    }
    _write_atomically(path.with_suffix(".json"), json.dumps(validators).encode())


def _read_validators(path: Path) -> dict[str, str]:
    try:
        stored = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return {key: value for key, value in stored.items() if isinstance(value, str)}


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
