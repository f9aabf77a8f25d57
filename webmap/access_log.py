"""The access log of ``urbangis serve``: one line per answer, written by a WSGI wrapper.

The servers' own access logs go through Python's ``logging`` (a record object, handler
locks, formatting of a dozen fields): on a small API answer that was about a seventh of
the worker's CPU. This writes one preformatted line with a single ``os.write`` on the
output's descriptor, which needs no lock (a line is shorter than the pipe's atomic
write size) and is never held in a buffer that a killed worker would lose.

The line has the usual shape, so log tools read it::

    127.0.0.1 - [22/Nov/2026:10:15:02 +0000] "GET /healthz HTTP/1.1" 200 81 1.234ms

The size is the body's length in bytes (``-`` while unknown, for a streamed answer
that was not read to its end) and the last field the time to the end of the answer.
Query strings are logged (they hold no secrets: API keys travel in a header).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

# Longest path and query logged: a huge CQL2 filter must not make a line huge.
MAX_TARGET = 2000

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AccessLog:
    """Wraps a WSGI app; writes a line to ``stream`` when each answer ends."""

    def __init__(self, app: WSGIApp, stream: IO[str] | None = None) -> None:
        self.app = app
        self.stream = stream or sys.stdout  # held: its descriptor must stay open
        self.fd = self.stream.fileno()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        answered: list[str] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered[:] = [status]  # a later call (an error after all) replaces the first
            for name, value in headers:
                if name.lower() == "content-length":
                    answered.append(value)  # the size, whether or not the body is iterated
            return start_response(status, headers, exc_info)

        body = self.app(environ, capture)
        if isinstance(body, list):  # a whole answer (cached tiles): logged at once
            self.write(environ, answered, sum(len(part) for part in body), started)
            return body
        return _LoggedBody(self, environ, answered, body, started)

    def write(
        self, environ: dict[str, Any], answered: list[str], size: int | None, started: float
    ) -> None:
        """Write the request's line (best effort: a closed output never fails a request).

        ``answered`` holds the status, then the Content-Length if the answer had one."""
        status = answered[0] if answered else "-"
        if len(answered) > 1 and answered[1].isdigit():
            size = int(answered[1])
        line = format_line(environ, status, size, started)
        with contextlib.suppress(OSError):
            os.write(self.fd, line.encode("utf-8", "backslashreplace"))


def format_line(environ: dict[str, Any], status: str, size: int | None, started: float) -> str:
    """One access log line (module docstring)."""
    target = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    if query:
        target = f"{target}?{query}"
    if len(target) > MAX_TARGET:
        target = target[:MAX_TARGET] + "…"
    target = target.replace('"', "%22")
    when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    elapsed_ms = (time.perf_counter() - started) * 1000
    return (
        f"{environ.get('REMOTE_ADDR', '-')} - [{when}] "
        f'"{environ.get("REQUEST_METHOD", "-")} {target} {environ.get("SERVER_PROTOCOL", "-")}" '
        f"{status.split(' ', 1)[0]} {'-' if size is None else size} {elapsed_ms:.3f}ms\n"
    )


class _LoggedBody:
    """A streamed body that counts its bytes and writes the line when the server closes it."""

    def __init__(
        self,
        log: AccessLog,
        environ: dict[str, Any],
        answered: list[str],
        body: Iterable[bytes],
        started: float,
    ) -> None:
        self.log = log
        self.environ = environ
        self.answered = answered
        self.body = body
        self.started = started
        self.size = 0
        self.finished = False

    def __iter__(self) -> Iterator[bytes]:
        for part in self.body:
            self.size += len(part)
            yield part
        self.finished = True

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            size = self.size if self.finished else None
            self.log.write(self.environ, self.answered, size, self.started)
