"""How the CLI maps failures to exit codes (app.cli.support): input 2, other expected failures 1, bugs raise."""

from __future__ import annotations

from app.cli.support import exit_code, message
from kg.errors import GraphUnavailableError, NotFoundError, SourceFormatError, ValidationError
from kg.ingest.xray_pack import PackValidationError


def test_input_errors_exit_2_and_bugs_keep_their_traceback() -> None:
    assert exit_code(ValidationError("bad --k")) == 2
    assert exit_code(PackValidationError(["unknown id HP:9999999"])) == 2  # a ValidationError now
    assert exit_code(SourceFormatError("hp.obo", 11, "syntax error")) == 2
    assert exit_code(FileNotFoundError("x.tsv")) == 2
    assert exit_code(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")) == 2
    assert exit_code(GraphUnavailableError("down")) == 1
    assert exit_code(NotFoundError("no model m-1")) == 1
    assert exit_code(ValueError("a bug")) is None  # no longer passed off as bad input
    assert exit_code(KeyError("a bug")) is None


def test_a_driver_message_is_one_line() -> None:
    assert message(GraphUnavailableError("cannot connect\n  to bolt://x:7687")) == "cannot connect to bolt://x:7687"


def test_a_connection_lost_under_a_raw_driver_call_is_one_line_exit_1() -> None:
    from neo4j.exceptions import ServiceUnavailable, SessionExpired

    lost = ServiceUnavailable("Failed to read from defunct connection\n  IPv4Address(('127.0.0.1', 7687))")
    assert exit_code(lost) == 1
    assert exit_code(SessionExpired("gone")) == 1
    assert message(lost) == ("the graph database is not reachable: Failed to read from defunct connection "
                             "IPv4Address(('127.0.0.1', 7687))")
