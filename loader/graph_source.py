"""Microsoft Graph user look-ups with JSON batching, throttling and retries.

`entry_from_graph_user` turns a Graph user into a directory row (pure). `GraphClient.lookup` asks
Graph about emails 20 at a time: first as a userPrincipalName (`GET /users/{email}`), and for
those not found that way, by mail (`GET /users?$filter=mail eq '...'`). Follow-up look-ups share
batches with new emails, so every request carries as many look-ups as it can.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from loader.errors import GraphError

log = logging.getLogger(__name__)

BATCH_SIZE = 20
SELECT = "$select=id,displayName,department,jobTitle,mail,userPrincipalName"
BY_PRINCIPAL_NAME, BY_MAIL = "principal_name", "mail"


@dataclass(frozen=True)
class DirectoryEntry:
    """One row for raw.users: what the directory said about an email, values as Graph returned them."""

    email: str
    status: str  # found, not_found, error
    graph_id: str | None = None
    full_name: str | None = None
    department: str | None = None
    job_title: str | None = None
    detail: str | None = None


# What raw.users can hold of a directory value (Graph's own limits are lower: displayName 256).
MAX_DIRECTORY_TEXT = 1024


def entry_from_graph_user(email: str, user: Any) -> DirectoryEntry:
    """The directory row for a Graph user; ValueError when the object cannot be stored as it is."""
    if not isinstance(user, dict):
        raise ValueError(f"Graph user is not an object but {type(user).__name__}")

    def text(key: str) -> str | None:
        value = user.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError(f"Graph user's {key} is not text but {type(value).__name__}")
        if "\x00" in value or len(value) > MAX_DIRECTORY_TEXT:
            raise ValueError(f"Graph user's {key} holds a NUL or is over {MAX_DIRECTORY_TEXT} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"Graph user's {key} is not valid Unicode") from None
        return value

    if not text("id"):
        raise ValueError("Graph user without an id")
    return DirectoryEntry(
        email=email,
        status="found",
        graph_id=text("id"),
        full_name=text("displayName"),
        department=text("department"),
        job_title=text("jobTitle"),
    )


def lookup_url(email: str, stage: str) -> str:
    if stage == BY_PRINCIPAL_NAME:
        return f"/users/{quote(email, safe='@')}?{SELECT}"
    mail_filter = "mail eq '" + email.replace("'", "''") + "'"
    return f"/users?$filter={quote(mail_filter, safe='')}&{SELECT}"


class GraphClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: requests.Session | None = None,
        max_wait_seconds: float = 300.0,
        attempts: int = 5,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._endpoint = f"{base_url.rstrip('/')}/v1.0/$batch"
        self._session = session or requests.Session()
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._max_wait = max_wait_seconds
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._timeout = timeout_seconds
        self._sleep = sleep
        self.requests_made = 0
        self.waited_seconds = 0.0

    def lookup(self, emails: list[str]) -> Iterator[list[DirectoryEntry]]:
        """Yields the finished entries after each batch request, so the caller can write them at once."""
        queue: deque[tuple[str, str, int]] = deque((email, BY_PRINCIPAL_NAME, 0) for email in emails)
        while queue:
            batch = [queue.popleft() for _ in range(min(BATCH_SIZE, len(queue)))]
            responses = self._send(batch)
            finished: list[DirectoryEntry] = []
            retry_after = 0.0
            for index, (email, stage, tries) in enumerate(batch):
                item = responses.get(str(index))
                if item is None:
                    finished.append(DirectoryEntry(email, "error", detail="the batch response had no answer for it"))
                    continue
                status = item.get("status")
                body: dict[str, Any] = item["body"] if isinstance(item.get("body"), dict) else {}
                if status == 200:
                    finished.append(self._found(email, stage, body))
                elif status == 404 or (status == 400 and stage == BY_PRINCIPAL_NAME):
                    if stage == BY_PRINCIPAL_NAME:
                        queue.append((email, BY_MAIL, 0))
                    else:
                        finished.append(DirectoryEntry(email, "not_found"))
                elif status == 401:
                    raise GraphError(
                        "Microsoft Graph answered 401: token invalid or expired; get a new token and run again"
                    )
                elif status in (429, 500, 502, 503, 504) and tries + 1 < self._attempts:
                    retry_after = max(retry_after, _retry_after(item.get("headers") or {}, self._backoff * 2**tries))
                    queue.append((email, stage, tries + 1))
                else:
                    code = (body.get("error") or {}).get("code") if isinstance(body.get("error"), dict) else None
                    finished.append(DirectoryEntry(email, "error", detail=f"HTTP {status} {code or ''}".strip()))
            if finished:
                yield finished
            if retry_after:
                self._wait(retry_after, "throttled or failing look-ups")

    def _found(self, email: str, stage: str, body: dict[str, Any]) -> DirectoryEntry:
        """One user's answer; one that cannot be stored is that user's error, never the whole sync's."""
        if stage == BY_MAIL:
            matches = body.get("value")
            if not isinstance(matches, list):
                return DirectoryEntry(email, "error", detail="malformed mail look-up: no `value` list")
            if not matches:
                return DirectoryEntry(email, "not_found")
            body = matches[0]
        try:
            return entry_from_graph_user(email, body)
        except ValueError as error:
            return DirectoryEntry(email, "error", detail=f"malformed Graph user: {error}")

    def _send(self, batch: list[tuple[str, str, int]]) -> dict[str, dict[str, Any]]:
        payload = {
            "requests": [
                {"id": str(index), "method": "GET", "url": lookup_url(email, stage)}
                for index, (email, stage, _) in enumerate(batch)
            ]
        }
        for attempt in range(self._attempts):
            self.requests_made += 1
            try:
                response = self._session.post(
                    self._endpoint, json=payload, headers=self._headers, timeout=self._timeout
                )
            except requests.RequestException as error:
                cause = type(error).__name__
                delay = self._backoff * 2**attempt
            else:
                if response.status_code == 200:
                    return _batch_responses(response)
                if response.status_code == 401:
                    raise GraphError(
                        "Microsoft Graph answered 401: token invalid or expired; get a new token and run again"
                    )
                if response.status_code == 403:
                    raise GraphError(
                        "Microsoft Graph answered 403: the app or user lacks permission User.Read.All; "
                        "grant it and run again"
                    )
                if response.status_code not in (429, 500, 502, 503, 504):
                    raise GraphError(
                        f"Microsoft Graph answered {response.status_code} to a batch request; check GRAPH_BASE_URL"
                    )
                cause = f"HTTP {response.status_code}"
                delay = _retry_after(response.headers, self._backoff * 2**attempt)
            if attempt + 1 < self._attempts:
                log.warning("Graph batch request failed (%s); retrying in %.1f s", cause, delay)
                self._wait(delay, cause)
        raise GraphError(f"Microsoft Graph failed {self._attempts} times in a row (last: {cause}); run again later")

    def _wait(self, seconds: float, reason: str) -> None:
        if self.waited_seconds + seconds > self._max_wait:
            raise GraphError(
                f"Microsoft Graph kept asking to wait ({reason}) beyond {self._max_wait:.0f} s in total; "
                "what was fetched so far is saved, run again later"
            )
        self.waited_seconds += seconds
        self._sleep(seconds)


def _batch_responses(response: requests.Response) -> dict[str, dict[str, Any]]:
    try:
        document = response.json()
    except (ValueError, json.JSONDecodeError):
        raise GraphError("malformed Graph batch response (not JSON); nothing more was written") from None
    items = document.get("responses") if isinstance(document, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise GraphError("malformed Graph batch response (no `responses` list); nothing more was written")
    return {str(item.get("id")): item for item in items}


def _retry_after(headers: Any, default: float) -> float:
    for key, value in dict(headers).items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break
    return default
