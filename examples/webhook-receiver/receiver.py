#!/usr/bin/env python3
"""A webhook receiver for email-sessions, with nothing but the standard library.

It checks each delivery's signature (Standard Webhooks: HMAC-SHA256 of "{id}.{timestamp}.{body}"
with the secret's bytes), refuses stale timestamps, drops a delivery whose webhook-id it already
has (retries repeat the ID), keeps per session only what is newer than the version it holds, and
prints each new event as one JSON line. The secret comes from WEBHOOK_SECRET (whsec_...).

    WEBHOOK_SECRET=whsec_... python3 receiver.py 127.0.0.1:9000
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock

SECRET = base64.b64decode(os.environ["WEBHOOK_SECRET"].removeprefix("whsec_"))
TOLERANCE_SECONDS = 5 * 60

seen_ids = set()  # a real receiver keeps these in its database, with the event
versions = {}  # (user_id, session_id) -> the newest version applied
lock = Lock()


def signed(headers, body):
    event_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = base64.b64encode(
        hmac.new(SECRET, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    # The header may carry several signatures (a secret being rotated): any may match.
    return any(
        hmac.compare_digest(signature, expected)
        for version, _, signature in (
            entry.partition(",") for entry in headers.get("webhook-signature", "").split()
        )
        if version == "v1"
    )


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if not signed(self.headers, body):
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        data = event["data"]
        session = (data["user_id"], data["session_id"])
        with lock:
            if self.headers["webhook-id"] not in seen_ids:
                seen_ids.add(self.headers["webhook-id"])
                # Versions arrive in order per session; a session deleted and written again
                # starts afresh at 1, after its deletion.
                if event["type"] == "email_session.deleted":
                    versions.pop(session, None)
                else:
                    versions[session] = data["version"]
                print(json.dumps({"id": self.headers["webhook-id"], "type": event["type"],
                                  "session_id": data["session_id"],
                                  "version": data["version"]}), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    host, _, port = sys.argv[1].rpartition(":")
    ThreadingHTTPServer((host, int(port)), Receiver).serve_forever()
