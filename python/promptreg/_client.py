"""A client of `promptreg serve`: the same ``Prompt`` objects as a clone gives, cached.

Caching, as the server's HTTP semantics allow:

- a version named by number (``version=3``) never changes: it is cached for good;
- a default, a label or a commit is cached for ``cache_ttl_seconds``; after that it is
  revalidated with the ``ETag`` it came with (``If-None-Match``: a 304 costs no body), and at
  once when the event stream says its prompt changed (``listen=True`` starts a background
  listener on ``/v1/events``);
- when the server cannot be reached (connection refused, a timeout, a 5xx), the last good copy
  is served, then the ``fallback`` (a ``promptreg export`` folder or its ``bundle.json``, or a
  dict in the bundle's shape), and the prompt says so: ``is_fallback`` and ``origin``.

Every request has a ``timeout`` (5 s by default) and is retried ``retries`` times (2 by
default) on a connection error, a timeout, a 502, 503 or 504, waiting 0.1 s, then 0.2 s, ...
(or what ``Retry-After`` asks, up to 2 s). A 4xx answer is not retried: it raises the exception
of its problem's kind.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import quote

import httpx

from . import _promptreg
from ._errors import PromptregError, Unavailable, from_problem
from ._prompt import Prompt, _selector

Fallback = Union[str, "os.PathLike[str]", Mapping[str, Any], None]

RETRIABLE = {502, 503, 504}


def _path(id: str, selector: Tuple[str, Optional[str]]) -> str:
    reference = id if selector[1] is None else f"{id}@{selector[1]}"
    return "/v1/prompts/" + quote(reference, safe="/@")


def _load_fallback(fallback: Fallback) -> Dict[str, Any]:
    """The bundle's ``prompts`` mapping, from a path (an export folder or its bundle.json) or a
    dict (the bundle, or its ``prompts``)."""
    if fallback is None:
        return {}
    if isinstance(fallback, Mapping):
        bundle = dict(fallback)
    else:
        path = Path(fallback)
        if path.is_dir():
            path = path / "bundle.json"
        bundle = json.loads(path.read_text(encoding="utf-8"))
    prompts = bundle.get("prompts", bundle)
    if not isinstance(prompts, Mapping):
        raise ValueError("the fallback is not a promptreg export bundle")
    return dict(prompts)


def _from_bundle(prompts: Mapping[str, Any], id: str, selector: Tuple[str, Optional[str]]) -> Optional[Dict[str, Any]]:
    entry = prompts.get(id)
    if not isinstance(entry, Mapping):
        return None
    versions = entry.get("versions") or {}
    kind, value = selector
    if kind == "version":
        number = value
    elif kind == "label":
        number = (entry.get("labels") or {}).get(value)
    elif kind == "default":
        number = entry.get("default")
    else:
        # A commit: the bundle's versions that came from it.
        return next((d for d in versions.values() if isinstance(d, Mapping) and str(d.get("commit", "")).startswith(str(value))), None)
    doc = versions.get(str(number)) if number is not None else None
    return dict(doc) if isinstance(doc, Mapping) else None


class _Entry:
    __slots__ = ("doc", "etag", "fetched", "stale")

    def __init__(self, doc: Dict[str, Any], etag: Optional[str]) -> None:
        self.doc, self.etag, self.fetched, self.stale = doc, etag, time.monotonic(), False


class _Base:
    """What the sync and async clients share: the cache, the fallback, the headers."""

    def __init__(
        self,
        base_url: str,
        token: Optional[str] = None,
        cache_ttl_seconds: float = 60,
        fallback: Fallback = None,
        timeout: float = 5.0,
        retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache_ttl_seconds = cache_ttl_seconds
        self.timeout = timeout
        self.retries = retries
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._fallback = _load_fallback(fallback)
        self._cache: Dict[Tuple[str, str, Optional[str]], _Entry] = {}
        self._lock = threading.Lock()

    # -- the cache

    def _fresh(self, key: Tuple[str, str, Optional[str]]) -> Optional[_Entry]:
        with self._lock:
            entry = self._cache.get(key)
        if entry is None:
            return None
        if key[1] == "version":
            return entry
        if entry.stale or time.monotonic() - entry.fetched > self.cache_ttl_seconds:
            return None
        return entry

    def _store(self, key: Tuple[str, str, Optional[str]], doc: Dict[str, Any], etag: Optional[str]) -> None:
        with self._lock:
            self._cache[key] = _Entry(doc, etag)

    def _touch(self, key: Tuple[str, str, Optional[str]]) -> Optional[_Entry]:
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                entry.fetched, entry.stale = time.monotonic(), False
            return entry

    def invalidate(self, id: Optional[str] = None) -> None:
        """Marks the cached defaults and labels of ``id`` (of every prompt when ``None``) for
        revalidation at their next use."""
        with self._lock:
            for key, entry in self._cache.items():
                if key[1] != "version" and (id is None or key[0] == id):
                    entry.stale = True

    def _apply_event(self, change: Mapping[str, Any]) -> None:
        ids = set()
        for group in ("versions", "defaults", "labels", "rewritten"):
            for item in change.get(group) or []:
                ids.add(item.get("id"))
        ids.update(change.get("added") or [])
        ids.update(change.get("removed") or [])
        with self._lock:
            for rewritten in change.get("rewritten") or []:
                for number in rewritten.get("versions") or []:
                    self._cache.pop((rewritten.get("id"), "version", str(number)), None)
        for id in ids:
            self.invalidate(id)

    # -- one get, before and after its request

    def _ask(self, id: str, label: Optional[str], version: Optional[int], commit: Optional[str]):
        """The cache key, the request's path and headers, and what the cache holds: a fresh
        entry (no request needed) or a known one (to revalidate)."""
        selector = _selector(label, version, commit)
        key = (id, selector[0], selector[1])
        fresh = self._fresh(key)
        with self._lock:
            known = self._cache.get(key)
        headers = {"If-None-Match": known.etag} if known is not None and known.etag else {}
        return key, _path(id, selector), headers, fresh, known

    def _answered(self, key: Tuple[str, str, Optional[str]], known: Optional[_Entry],
                  response: httpx.Response) -> Prompt:
        """The prompt a server's answer gives (a 304 keeps the known copy), cached."""
        if response.status_code == 304 and known is not None:
            self._touch(key)
            return self._prompt(known.doc, "server")
        if response.status_code != 200:
            _raise_problem(response)
        doc = response.json()
        self._store(key, doc, response.headers.get("etag"))
        if key[1] != "version" and doc.get("version") is not None:
            # The version it resolved to is cached for good as well.
            self._store((key[0], "version", str(doc["version"])), doc, None)
        return self._prompt(doc, "server")

    # -- answers

    def _prompt(self, doc: Dict[str, Any], origin: str) -> Prompt:
        return Prompt.from_document(doc, renderer=self._renderer(origin), origin=origin)

    def _renderer(self, origin: str):
        def local(prompt: Prompt, values: Mapping[str, Any]) -> Dict[str, Any]:
            return _render_local(prompt, values)

        return local

    def _unreachable(self, key: Tuple[str, str, Optional[str]], id: str, why: str) -> Prompt:
        with self._lock:
            entry = self._cache.get(key)
        if entry is not None:
            return self._prompt(entry.doc, "cache")
        doc = _from_bundle(self._fallback, id, (key[1], key[2]))
        if doc is not None:
            return self._prompt(doc, "fallback")
        raise Unavailable(f"{self.base_url} could not be reached ({why}) and no copy of `{id}` is at hand",
                          "give the client a fallback: a `promptreg export` bundle")

    @staticmethod
    def _wait(attempt: int, response: Optional[httpx.Response]) -> float:
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.isdigit():
                return min(2.0, float(after))
        return min(2.0, 0.1 * (2 ** attempt))


def _render_local(prompt: Prompt, values: Mapping[str, Any]) -> Dict[str, Any]:
    doc = {"id": prompt.id, "file": prompt.file, "source": prompt.source}
    return json.loads(_promptreg.render_document(json.dumps(doc), json.dumps(dict(values))))


def _raise_problem(response: httpx.Response) -> None:
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text or f"HTTP {response.status_code}"}
    raise from_problem(problem if isinstance(problem, dict) else {"detail": str(problem)})


class Client(_Base):
    """A client of ``promptreg serve`` at ``base_url``.

    ``get`` returns the same ``Prompt`` a ``Registry`` returns; ``prompt.render(**values)``
    asks the server's render route (so partials render), and renders the prompt's own text
    locally when the server cannot be reached. Thread-safe. Use it as a context manager, or
    call ``close()``.
    """

    def __init__(
        self,
        base_url: str,
        token: Optional[str] = None,
        cache_ttl_seconds: float = 60,
        fallback: Fallback = None,
        timeout: float = 5.0,
        retries: int = 2,
        listen: bool = False,
    ) -> None:
        super().__init__(base_url, token, cache_ttl_seconds, fallback, timeout, retries)
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=timeout)
        self._stop = threading.Event()
        self._listener: Optional[threading.Thread] = None
        if listen:
            self._listener = threading.Thread(target=self._listen, name="promptreg-events", daemon=True)
            self._listener.start()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stops the listener and closes the connections."""
        self._stop.set()
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer to a request, retried on connection errors, timeouts and 502/503/504."""
        last: Optional[BaseException] = None
        for attempt in range(self.retries + 1):
            response = None
            try:
                response = self._http.request(method, path, **kwargs)
                if response.status_code not in RETRIABLE:
                    return response
                last = RuntimeError(f"HTTP {response.status_code}")
            except httpx.TransportError as err:
                last = err
            if attempt < self.retries:
                time.sleep(self._wait(attempt, response))
        raise ConnectionError(str(last))

    def get(
        self,
        id: str,
        label: Optional[str] = None,
        version: Optional[int] = None,
        commit: Optional[str] = None,
    ) -> Prompt:
        """The prompt ``id`` at its default, or at the label, version or commit given."""
        key, path, headers, fresh, known = self._ask(id, label, version, commit)
        if fresh is not None:
            return self._prompt(fresh.doc, "server")
        try:
            response = self._send("GET", path, headers=headers)
        except ConnectionError as err:
            return self._unreachable(key, id, str(err))
        return self._answered(key, known, response)

    def get_prompt(
        self,
        name: str,
        label: Optional[str] = None,
        version: Optional[int] = None,
        cache_ttl_seconds: Optional[float] = None,
        fallback: Optional[Mapping[str, Any]] = None,
    ) -> Prompt:
        """``get``, as Langfuse names it; ``fallback`` here is a prompt document (or a dict
        with ``source``) returned when nothing else can be."""
        if cache_ttl_seconds is not None:
            self.cache_ttl_seconds = cache_ttl_seconds
        try:
            return self.get(name, label=label, version=version)
        except Unavailable:
            if fallback is None:
                raise
            doc = {"id": name, "file": f"{name}.prompt.yaml", "commit": "", **dict(fallback)}
            return self._prompt(doc, "fallback")

    def _write(self, method: str, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        response = self._send(method, path, json=body)
        if response.status_code not in (200, 201):
            _raise_problem(response)
        return response.json()

    def set_default(self, id: str, version: int, message: Optional[str] = None) -> Dict[str, Any]:
        """Points the default of ``id`` at ``version`` (the server commits it; its token must
        may write)."""
        body: Dict[str, Any] = {"version": int(version)}
        if message:
            body["message"] = message
        answer = self._write("PUT", "/v1/manifest/defaults/" + quote(id, safe="/"), body)
        self.invalidate(id)
        return answer

    def set_label(self, label: str, id: str, version: int, message: Optional[str] = None) -> Dict[str, Any]:
        """Points ``label`` of ``id`` at ``version`` (the server commits it)."""
        body: Dict[str, Any] = {"version": int(version)}
        if message:
            body["message"] = message
        path = f"/v1/manifest/labels/{quote(label, safe='')}/" + quote(id, safe="/")
        answer = self._write("PUT", path, body)
        self.invalidate(id)
        return answer

    def commit(self, id: str, source: str, message: str) -> Dict[str, Any]:
        """Commits ``source`` as the next version of ``id`` (the server commits it)."""
        answer = self._write("POST", "/v1/prompts/" + quote(id, safe="/"), {"message": message, "source": source})
        self.invalidate(id)
        return answer

    def _renderer(self, origin: str):
        def remote(prompt: Prompt, values: Mapping[str, Any]) -> Dict[str, Any]:
            if origin == "server":
                try:
                    response = self._send(
                        "POST", "/v1/render/" + quote(prompt.reference, safe="/@"),
                        json={"variables": dict(values)},
                    )
                except ConnectionError:
                    return _render_local(prompt, values)
                if response.status_code == 200:
                    return response.json()
                _raise_problem(response)
            return _render_local(prompt, values)

        return remote

    def _listen(self) -> None:
        """Follows ``/v1/events`` until ``close()``: each change marks the cached defaults
        and labels of its prompts for revalidation. Reconnects with ``Last-Event-ID``."""
        last_id: Optional[str] = None
        failures = 0
        while not self._stop.is_set():
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                with httpx.Client(base_url=self.base_url, headers=self._headers,
                                  timeout=httpx.Timeout(self.timeout, read=None)) as http:
                    with http.stream("GET", "/v1/events", headers=headers) as response:
                        if response.status_code != 200:
                            raise ConnectionError(f"HTTP {response.status_code}")
                        failures = 0
                        event: Dict[str, str] = {}
                        for line in response.iter_lines():
                            if self._stop.is_set():
                                return
                            if line == "":
                                last_id = event.get("id", last_id)
                                if event.get("event") == "resync":
                                    self.invalidate()
                                elif "data" in event:
                                    try:
                                        self._apply_event(json.loads(event["data"]))
                                    except ValueError:
                                        pass
                                event = {}
                            elif not line.startswith(":") and ":" in line:
                                name, _, value = line.partition(":")
                                event[name] = value[1:] if value.startswith(" ") else value
            except (httpx.HTTPError, ConnectionError):
                failures += 1
            # What may have changed while disconnected is revalidated.
            self.invalidate()
            self._stop.wait(min(5.0, 0.2 * (2 ** min(failures, 5))))


class AsyncClient(_Base):
    """``Client`` for asyncio applications: ``await client.get(...)``. A prompt it returns
    renders locally (``prompt.render(...)``, from its own text, no request); ``await
    client.render(prompt, **values)`` asks the server (partials included)."""

    def __init__(
        self,
        base_url: str,
        token: Optional[str] = None,
        cache_ttl_seconds: float = 60,
        fallback: Fallback = None,
        timeout: float = 5.0,
        retries: int = 2,
    ) -> None:
        super().__init__(base_url, token, cache_ttl_seconds, fallback, timeout, retries)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=timeout)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connections."""
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        last: Optional[BaseException] = None
        for attempt in range(self.retries + 1):
            response = None
            try:
                response = await self._http.request(method, path, **kwargs)
                if response.status_code not in RETRIABLE:
                    return response
                last = RuntimeError(f"HTTP {response.status_code}")
            except httpx.TransportError as err:
                last = err
            if attempt < self.retries:
                await asyncio.sleep(self._wait(attempt, response))
        raise ConnectionError(str(last))

    async def get(
        self,
        id: str,
        label: Optional[str] = None,
        version: Optional[int] = None,
        commit: Optional[str] = None,
    ) -> Prompt:
        """The prompt ``id`` at its default, or at the label, version or commit given."""
        key, path, headers, fresh, known = self._ask(id, label, version, commit)
        if fresh is not None:
            return self._prompt(fresh.doc, "server")
        try:
            response = await self._send("GET", path, headers=headers)
        except ConnectionError as err:
            return self._unreachable(key, id, str(err))
        return self._answered(key, known, response)

    async def render(self, prompt: Prompt, **values: Any) -> Dict[str, Any]:
        """The server's render of ``prompt`` (its messages, and the chat-completions body as
        ``request``); the local render when the server cannot be reached."""
        try:
            response = await self._send(
                "POST", "/v1/render/" + quote(prompt.reference, safe="/@"),
                json={"variables": dict(values)},
            )
        except ConnectionError:
            return _render_local(prompt, values)
        if response.status_code != 200:
            _raise_problem(response)
        return response.json()


__all__ = ["Client", "AsyncClient", "PromptregError"]
