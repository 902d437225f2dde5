"""A local HTTP server that answers Microsoft Graph `$batch` requests for users, with scripted faults."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlparse

from stand_ins.http import LocalHttpStub, send_json


def graph_user(email: str, name: str, department: str | None, job_title: str | None, *, upn: str | None = None) -> dict:
    return {
        "id": f"id-{email}",
        "displayName": name,
        "department": department,
        "jobTitle": job_title,
        "mail": email,
        "userPrincipalName": upn or email,
    }


class GraphApiStub(LocalHttpStub):
    def __init__(self, users: list[dict]):
        self.users = users
        self.refused: set[str] = set()  # principal names Graph answers 403 for (the sync records them as errors)
        self.faults: list[
            object
        ] = []  # per batch request: an HTTP status, ("retry", status, seconds), "malformed", "item429"
        self.batches: list[list[str]] = []
        self.authorization: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                stub.authorization.append(self.headers.get("Authorization", ""))
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length))
                if urlparse(self.path).path != "/v1.0/$batch":
                    return send_json(self, 404, {"error": {"code": "NotFound"}})
                requests = payload["requests"]
                assert len(requests) <= 20, "Graph allows at most 20 requests per batch"
                stub.batches.append([item["url"] for item in requests])
                fault = stub.faults.pop(0) if stub.faults else None
                if isinstance(fault, tuple) and fault[0] == "retry":
                    return send_json(
                        self, fault[1], {"error": {"code": "TooManyRequests"}}, {"Retry-After": str(fault[2])}
                    )
                if isinstance(fault, int):
                    return send_json(
                        self, fault, {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}
                    )
                if fault == "malformed":
                    data = b"<html>gateway error</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                responses = [stub.answer(item) for item in requests]
                if fault == "item429":
                    responses[0] = {
                        "id": requests[0]["id"],
                        "status": 429,
                        "headers": {"Retry-After": "3"},
                        "body": {"error": {"code": "TooManyRequests"}},
                    }
                return send_json(self, 200, {"responses": responses})

        self.start_server(Handler)

    def answer(self, item: dict) -> dict:
        url = urlparse(item["url"])
        by_upn = re.fullmatch(r"/users/([^/]+)", url.path)
        if by_upn:
            upn = unquote(by_upn.group(1)).lower()
            if upn in self.refused:
                return {"id": item["id"], "status": 403, "body": {"error": {"code": "Authorization_RequestDenied"}}}
            found = [user for user in self.users if user["userPrincipalName"].lower() == upn]
            if not found:
                return {"id": item["id"], "status": 404, "body": {"error": {"code": "Request_ResourceNotFound"}}}
            return {"id": item["id"], "status": 200, "body": found[0]}
        mail_filter = parse_qs(url.query).get("$filter", [""])[0]
        match = re.fullmatch(r"mail eq '(.*)'", mail_filter)
        if url.path == "/users" and match:
            mail = match.group(1).replace("''", "'").lower()
            return {
                "id": item["id"],
                "status": 200,
                "body": {"value": [u for u in self.users if u["mail"].lower() == mail]},
            }
        return {"id": item["id"], "status": 400, "body": {"error": {"code": "BadRequest"}}}
