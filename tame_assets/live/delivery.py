"""Alert delivery: a webhook (JSON POST) in a background thread, retried, never blocking the live path.

The alerts table itself is written by the runner (:class:`tame_assets.live.table.LiveTable`); this
module only talks HTTP. A webhook that refuses, times out or is unreachable is retried ``retries``
times with a growing pause, then logged as failed and given up: the live path never waits for it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)


@dataclass
class WebhookResult:
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""


def post_json(url: str, body: dict, timeout_s: float = 5.0) -> int:
    """POST ``body`` as JSON; the HTTP status (``urllib.error.URLError``/``HTTPError`` otherwise)."""
    data = json.dumps(body, default=str).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": "tame-live"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (configured URL)
        response.read()
        return response.status


def deliver(url: str, body: dict, *, timeout_s: float = 5.0, retries: int = 3, backoff_s: float = 0.5) -> WebhookResult:
    """POST with ``retries`` more attempts after a failure (pause ``backoff_s`` × attempt)."""
    error = ""
    for attempt in range(1, retries + 2):
        try:
            status = post_json(url, body, timeout_s)
            return WebhookResult(True, attempt, status)
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            error = str(getattr(exc, "reason", exc))
        log.warning("webhook %s: attempt %d failed (%s)", url, attempt, error)
        if attempt <= retries:
            time.sleep(backoff_s * attempt)
    return WebhookResult(False, retries + 1, None, error)


@dataclass
class WebhookSender:
    """Delivers bodies to ``url`` from one daemon thread, in order; :meth:`send` never blocks."""

    url: str
    timeout_s: float = 5.0
    retries: int = 3
    backoff_s: float = 0.5
    on_result: Callable[[dict, WebhookResult], None] | None = None
    results: list[WebhookResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="tame-live-webhook", daemon=True)
        self._thread.start()

    def send(self, body: dict) -> None:
        self._queue.put(body)

    def _work(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                self._queue.task_done()
                return
            try:
                result = deliver(
                    self.url, body, timeout_s=self.timeout_s, retries=self.retries, backoff_s=self.backoff_s
                )
            except Exception as exc:  # never let the thread die: the next alert must still go out
                result = WebhookResult(False, 0, None, f"{type(exc).__name__}: {exc}")
            if not result.ok:
                log.error("webhook %s: alert %s not delivered (%s)", self.url, body.get("rule"), result.error)
            self.results.append(result)
            if self.on_result is not None:
                self.on_result(body, result)
            self._queue.task_done()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued body was delivered or given up (True), at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def close(self, timeout_s: float = 30.0) -> None:
        self.flush(timeout_s)
        self._queue.put(None)
        self._thread.join(timeout=1.0)
