"""Where the tests' alerts arrive: a real SMTP server (aiosmtpd) and a local HTTP endpoint that
answers as a Slack incoming webhook does, each on a free port of 127.0.0.1, and the Airflow
connections (`AIRFLOW_CONN_*` variables) that point the notifiers at them."""

from __future__ import annotations

import email
import json
import socket
import threading
import time
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """What the SMTP server received: (envelope recipients, parsed message)."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: ANN401, N802 - aiosmtpd
        self.mails.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


class Webhook:
    """What the HTTP endpoint received: (path, JSON body) of each POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []


@contextmanager
def alert_sinks() -> Iterator[tuple[Inbox, Webhook, dict[str, str]]]:
    """Start both; yields them and the environment of connections `recsys_smtp` and `recsys_slack` to them."""
    from aiosmtpd.controller import Controller

    inbox, hook = Inbox(), Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.posts.append((self.path, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"ok")  # what Slack answers

        def log_message(self, *args: Any) -> None:  # noqa: ANN401 - keep the test output quiet
            pass

    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    env = {
        "AIRFLOW_CONN_RECSYS_SMTP": json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
            "extra": {"from_email": "recsys@test.local", "disable_tls": True, "disable_ssl": True,
                      "timeout": 10, "retry_limit": 0}}),
        # the webhook's "token" is the path under the host, as under hooks.slack.com/services
        "AIRFLOW_CONN_RECSYS_SLACK": json.dumps({
            "conn_type": "slackwebhook", "host": f"http://127.0.0.1:{http.server_address[1]}",
            "password": "T000/B000/test-token"}),
        "RECSYS_ALERT_EMAIL_TO": "oncall@test.local, ml@test.local",
    }
    try:
        yield inbox, hook, env
    finally:
        http.shutdown()
        http.server_close()
        smtp.stop()


def wait_for(predicate: Any, timeout: float) -> bool:  # noqa: ANN401
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def mail_text(message: EmailMessage) -> str:
    """Subject and the decoded body of a mail, the HTML unescaped."""
    import html

    parts = [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
    return message["Subject"] + "\n" + html.unescape("\n".join(parts))
