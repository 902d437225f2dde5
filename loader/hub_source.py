"""The hub's own view (spec 3.7): JupyterHub's REST API at each collection, for when each server was last active and
which groups (courses, labs) users belong to. The user and group models are turned into rows by pure functions
(tested on plain dicts); HubClient pages through /users and /groups. A hub that is down or forbids a scope costs the
collection those figures and one log line, never the collection."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from loader.config import HubSettings
from loader.errors import LoaderError
from loader.pods import EARLIEST_TIME, FUTURE_TOLERANCE, MAX_TEXT, Malformed, clean_text, parse_timestamp

log = logging.getLogger(__name__)

PAGE_SIZE = 200
# The JupyterHub >= 2 pagination envelope: {"items": [...], "_pagination": {"next": {...} | null}}.
PAGINATION = "application/jupyterhub-pagination+json"
HubSource = Callable[[], "HubSnapshot | None"]


class HubError(LoaderError):
    pass


@dataclass(frozen=True)
class HubServer:
    """One row of hub_servers (without the run id)."""

    user_name: str
    server_name: str
    last_activity: datetime | None
    started: datetime | None
    pending: str | None
    ready: bool | None


@dataclass(frozen=True)
class HubSnapshot:
    """What the hub said at a collection: its active servers, and its group memberships where groups could be read
    (None where not: a missing scope forgets no membership)."""

    servers: list[HubServer]
    memberships: set[tuple[str, str]] | None
    groups_listed: int | None = None
    skipped: Counter[str] = field(default_factory=Counter)


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise Malformed(where, "expected a name")
    return clean_text(value, where, "hub_name")


def _time(value: Any, where: str, now: datetime) -> datetime | None:
    moment = parse_timestamp(value, where)
    if moment is not None and not EARLIEST_TIME <= moment <= now + FUTURE_TOLERANCE:
        raise Malformed(where, f"{moment.isoformat()} is outside {EARLIEST_TIME.year} to the collection time")
    return moment


def servers_from_users(users: list[Any], now: datetime) -> tuple[list[HubServer], Counter[str]]:
    """Every server of every user model (GET /users, with read:servers): its activity and state. A malformed user or
    server is skipped and counted, its neighbours kept."""
    servers: list[HubServer] = []
    skipped: Counter[str] = Counter()
    for user in users:
        try:
            if not isinstance(user, Mapping):
                raise Malformed("user", "expected an object")
            name = _name(user.get("name"), "user.name")
            entries = user.get("servers") or {}
            if not isinstance(entries, Mapping):
                raise Malformed("user.servers", "expected an object")
            for server_name, server in entries.items():
                if not isinstance(server, Mapping):
                    raise Malformed("user.servers[]", "expected an object")
                if len(server_name) > MAX_TEXT["server_name"]:
                    raise Malformed("user.servers[]", "the server name is too long")
                pending, ready = server.get("pending"), server.get("ready")
                servers.append(
                    HubServer(
                        user_name=name,
                        server_name=clean_text(server_name, "server name", "server_name"),
                        last_activity=_time(server.get("last_activity"), "server.last_activity", now),
                        started=_time(server.get("started"), "server.started", now),
                        pending=clean_text(pending, "server.pending", "reason") if isinstance(pending, str) else None,
                        ready=ready if isinstance(ready, bool) else None,
                    )
                )
        except Malformed as problem:
            skipped[f"hub user: {problem}"] += 1
    return servers, skipped


def memberships_from_groups(groups: list[Any]) -> tuple[set[tuple[str, str]], Counter[str]]:
    """(group, user) for every member of every group model (GET /groups, with read:groups)."""
    members: set[tuple[str, str]] = set()
    skipped: Counter[str] = Counter()
    for group in groups:
        try:
            if not isinstance(group, Mapping):
                raise Malformed("group", "expected an object")
            name = _name(group.get("name"), "group.name")
            users = group.get("users") or []
            if not isinstance(users, list):
                raise Malformed("group.users", "expected a list")
            members |= {(name, _name(user, "group.users[]")) for user in users}
        except Malformed as problem:
            skipped[f"hub group: {problem}"] += 1
    return members, skipped


class HubClient:
    def __init__(self, settings: HubSettings, session: requests.Session | None = None) -> None:
        if not settings.api_url or not settings.api_token:
            raise HubError("HUB_API_URL and HUB_API_TOKEN are both needed to read the hub")
        self.base = settings.api_url.rstrip("/") + "/"
        self.timeout = settings.timeout_seconds
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"token {settings.api_token}", "Accept": PAGINATION})
        self.requests_made = 0

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[list[Any]]:
        """The items of a listing, page by page (JupyterHub's pagination; a hub before 2.0 answers with one list)."""
        offset = 0
        while True:
            answer = self._get(path, {**(params or {}), "offset": offset, "limit": PAGE_SIZE})
            if isinstance(answer, list):
                yield answer
                return
            items = answer.get("items") if isinstance(answer, dict) else None
            if not isinstance(items, list):
                raise HubError(f"the hub answered {path} without a list of items; check HUB_API_URL")
            yield items
            following = (answer.get("_pagination") or {}).get("next")
            if not isinstance(following, dict) or not items:
                return
            offset = int(following.get("offset", offset + len(items)))

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = urljoin(self.base, path.lstrip("/"))
        self.requests_made += 1
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise HubError(f"cannot reach the hub at {self.base} ({type(error).__name__}); check HUB_API_URL") from None
        if response.status_code in (401, 403):
            raise HubError(
                f"the hub refused {path} ({response.status_code}); give HUB_API_TOKEN the scopes list:users, "
                "read:users, read:users:activity, read:servers, list:groups, read:groups"
            )
        if response.status_code >= 400:
            raise HubError(f"the hub answered {path} with {response.status_code}; check HUB_API_URL")
        try:
            return response.json()
        except ValueError:
            raise HubError(f"the hub answered {path} with something that is not JSON; check HUB_API_URL") from None


def read_hub(settings: HubSettings, now: datetime) -> HubSnapshot:
    """The active servers (`state=active`: the users who have one) and the group memberships. Groups that cannot be
    read cost their memberships only (one log line)."""
    client = HubClient(settings)
    users = [user for page in client.pages("users", {"state": "active"}) for user in page]
    servers, skipped = servers_from_users(users, now)
    try:
        groups = [group for page in client.pages("groups") for group in page]
    except HubError as error:
        log.warning("no group memberships in this run: %s", error)
        return HubSnapshot(servers, None, None, skipped)
    memberships, skipped_groups = memberships_from_groups(groups)
    return HubSnapshot(servers, memberships, len(groups), skipped + skipped_groups)


def hub_from_file(path: Path, now: datetime) -> HubSnapshot:
    """A replay (`--hub-from-file`): saved answers, {"users": [...], "groups": [...]} (either may be a paginated
    answer as the hub sends it; without "groups", no memberships are recorded)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise HubError(f"cannot read hub answers {path}: {error.strerror}") from None
    except (ValueError, RecursionError):
        raise HubError(f"hub answers {path} are not JSON; save GET /hub/api/users and /groups answers") from None
    if not isinstance(document, Mapping) or "users" not in document:
        raise HubError(f'hub answers {path} hold no `users`; save {{"users": ..., "groups": ...}}')
    return snapshot_from_answers(document, now)


def snapshot_from_answers(answers: Mapping[str, Any], now: datetime) -> HubSnapshot:
    """The snapshot of saved answers {"users": ..., "groups": ...}: each a list or a paginated answer as the hub
    sends it (its first page); without "groups", no memberships are recorded."""

    def items(answer: Any) -> list[Any]:
        answer = answer.get("items") if isinstance(answer, Mapping) else answer
        return answer if isinstance(answer, list) else []

    servers, skipped = servers_from_users(items(answers.get("users")), now)
    if "groups" not in answers:
        return HubSnapshot(servers, None, None, skipped)
    groups = items(answers["groups"])
    memberships, skipped_groups = memberships_from_groups(groups)
    return HubSnapshot(servers, memberships, len(groups), skipped + skipped_groups)
