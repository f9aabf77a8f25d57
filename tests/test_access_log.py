"""The access log wrapper: one line per answer, whole or streamed, written when it ends."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from werkzeug.test import Client

from webmap.access_log import MAX_TARGET, AccessLog

LINE = re.compile(
    r"^(?P<addr>\S+) - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "
    r'"(?P<method>\w+) (?P<target>\S+) (?P<protocol>HTTP/1\.1)" '
    r"(?P<status>\d{3}) (?P<size>\d+|-) (?P<ms>\d+\.\d{3})ms$"
)


def whole(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
    return [b"no ", b"such page"]


def streamed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    yield b'{"a":'
    yield b"1}"


def logged(app: Any, tmp_path: Path) -> tuple[Client, Path]:
    path = tmp_path / "access.log"
    stream = path.open("w")
    return Client(AccessLog(app, stream)), path


def lines(path: Path) -> list[re.Match[str]]:
    found = []
    for line in path.read_text().splitlines():
        match = LINE.match(line)
        assert match, line
        found.append(match)
    return found


def test_a_whole_answer_is_logged_at_once(tmp_path: Path) -> None:
    client, path = logged(whole, tmp_path)
    client.get("/nope?f=json")
    [line] = lines(path)
    assert line["method"] == "GET" and line["target"] == "/nope?f=json"
    assert (line["status"], line["size"]) == ("404", "12")


def test_a_streamed_answer_is_logged_when_it_ends(tmp_path: Path) -> None:
    client, path = logged(streamed, tmp_path)
    response = client.post("/items", data=b"{}", buffered=False)
    assert lines(path) == [], "nothing is written before the body is sent"
    assert b"".join(response.iter_encoded()) == b'{"a":1}'
    response.close()
    [line] = lines(path)
    assert (line["method"], line["status"], line["size"]) == ("POST", "200", "7")


def test_an_answer_closed_early_has_no_size(tmp_path: Path) -> None:
    client, path = logged(streamed, tmp_path)
    response = client.get("/items", buffered=False)
    next(iter(response.response))
    response.close()
    [line] = lines(path)
    assert line["size"] == "-"


def test_long_targets_and_quotes_keep_one_parsable_line(tmp_path: Path) -> None:
    client, path = logged(whole, tmp_path)
    client.get("/items", query_string={"filter": 'name = "x"' + "y" * (2 * MAX_TARGET)})
    [line] = lines(path)
    assert len(line["target"]) <= MAX_TARGET + 1
    assert '"' not in line["target"]


def test_a_closed_output_never_fails_a_request(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    stream = path.open("w")
    app = AccessLog(whole, stream)
    os.close(app.fd)
    assert Client(app).get("/").status_code == 404


def test_the_content_length_gives_the_size_of_a_body_not_read_through(tmp_path: Path) -> None:
    def sized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "5")])
        yield b"hello"

    client, path = logged(sized, tmp_path)
    response = client.get("/", buffered=False)
    response.close()
    [line] = lines(path)
    assert line["size"] == "5"
