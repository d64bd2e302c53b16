"""The restart back-off and the down memo (kg.store.supervisor, kg.store.availability), without a server."""

from __future__ import annotations

import time

import pytest

from kg.errors import GraphUnavailableError
from kg.store.availability import Availability
from kg.store.supervisor import RestartPolicy, _exit_reason


def test_back_off_doubles_and_is_capped() -> None:
    policy = RestartPolicy(backoff_s=1.0)
    assert [policy.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert RestartPolicy(backoff_s=0.0).delay(3) == 0.0


def test_exit_reasons_name_the_signal() -> None:
    assert _exit_reason(-9) == "was killed by SIGKILL"
    assert _exit_reason(1) == "exited with code 1"


def test_down_memo_fails_at_once_then_lets_one_probe_through() -> None:
    availability = Availability(memo_s=0.3)
    assert availability.check(take_probe=True) is False  # up: nothing to probe
    error = availability.failed("cannot reach the graph database at bolt://127.0.0.1:1: refused")
    assert error.retry_after == 1.0  # at least a second, as Retry-After counts
    with pytest.raises(GraphUnavailableError) as info:
        availability.check()
    assert "refused" in str(info.value) and info.value.retry_after is not None
    assert availability.state().state == "down"
    time.sleep(0.35)
    assert availability.check(take_probe=True) is True  # the memo ran out: this call probes
    with pytest.raises(GraphUnavailableError):
        availability.check(take_probe=True)  # others still fail at once while it does
    assert availability.check() is False  # a raw driver user is not held back by the probe
    availability.succeeded()
    assert availability.check(take_probe=True) is False
    assert availability.state().state == "up"


def test_a_probe_that_ends_without_an_answer_is_released() -> None:
    availability = Availability(memo_s=0.0)
    availability.failed("down")
    assert availability.check(take_probe=True) is True
    availability.release_probe()
    assert availability.check(take_probe=True) is True  # the next call may probe
