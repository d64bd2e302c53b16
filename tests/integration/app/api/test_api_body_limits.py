"""Request bodies are bounded on a real uvicorn: chunked bodies are cut off at the route's limit while they
stream in, a declared Content-Length over it is refused before anything is read, and write endpoints refuse a
missing token before reading the body."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from app.core.config import AppSettings
from app.main import create_app
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.store.graph import Graph
from tests.helpers import FIXTURES, PROBLEM, clear_graph, serve_in_thread

pytestmark = pytest.mark.integration

UPLOAD_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def base_url(graph: Graph, graph_settings: GraphSettings) -> Iterator[str]:
    clear_graph(graph)
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    settings = AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                              "PHENOKG_RETRIEVAL_MAX_BYTES": str(UPLOAD_LIMIT),
                              **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})
    with serve_in_thread(create_app(settings), "body-limit-uvicorn") as url:
        yield url
    clear_graph(graph)


def _raw_request(base_url: str, head: str, chunks: Iterator[bytes], timeout_s: float = 30.0) -> tuple[bytes, int]:
    """Send ``head`` then ``chunks`` on a raw socket until the server answers; ``(answer, body bytes sent)``."""
    parts = urlsplit(base_url)
    sent = 0
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout_s) as sock:
        sock.sendall(head.encode("latin-1"))
        deadline = time.monotonic() + timeout_s
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or time.monotonic() > deadline:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.settimeout(timeout_s)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer, sent


def _chunked(total: int, size: int = 64 * 1024, first: bytes = b"") -> Iterator[bytes]:
    """``total`` bytes of HTTP/1.1 chunks, starting with ``first`` (e.g. a multipart part header)."""
    if first:
        yield f"{len(first):x}\r\n".encode() + first + b"\r\n"
    payload = b"x" * size
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + payload + b"\r\n"


def test_a_chunked_upload_is_cut_off_at_the_limit(base_url: str) -> None:
    head = ("POST /retrieval/image HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n")
    part = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
            b"Content-Type: image/png\r\n\r\n")
    answer, sent = _raw_request(base_url, head, _chunked(1024 * 1024 * 1024, first=part))  # would be 1 GiB
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer
    # the server stopped reading at the limit; what was sent beyond sits in socket buffers
    assert sent < 64 * 1024 * 1024, sent


def test_a_chunked_json_body_cannot_bypass_the_limit_of_normalize(base_url: str) -> None:
    head = ("POST /normalize HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/json\r\n\r\n")
    answer, sent = _raw_request(base_url, head, _chunked(1024 * 1024 * 1024))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 128 * 1024 * 1024, sent


def test_a_declared_oversize_body_is_refused_before_it_is_sent(base_url: str) -> None:
    head = ("POST /rank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {100 * 1024 * 1024}\r\n\r\n")
    started = time.monotonic()
    answer, _ = _raw_request(base_url, head, iter(()))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 10


def test_a_write_endpoint_checks_the_token_before_reading_the_body(base_url: str) -> None:
    head = ("POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n")
    answer, sent = _raw_request(base_url, head, _chunked(50 * 1024 * 1024))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"www-authenticate: bearer" in answer.lower()
    assert sent < 16 * 1024 * 1024, sent  # answered before the 50 MiB body was sent
    with httpx.Client(base_url=base_url, timeout=30) as http:
        wrong = http.post("/jobs", json={"kind": "clip", "config": {}}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert wrong.headers["content-type"].startswith(PROBLEM)


def test_bodies_under_the_limits_still_work(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as http:
        ranked = http.post("/rank", json={"present": ["HP:0002090"]})
        assert ranked.status_code == 200, ranked.text
        chunked = http.post("/normalize", content=iter([b'{"mentions": ', b'["pneumonia"]}']),
                            headers={"Content-Type": "application/json"})
        assert chunked.status_code == 200, chunked.text
        assert chunked.json()["results"][0]["candidates"][0]["id"] == "HP:0002090"
        upload = http.post("/retrieval/image", files={"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"0" * 1000)})
        assert upload.status_code != 413, upload.text
