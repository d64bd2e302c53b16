"""The local Ray head's temp directory leaves room for Ray's session socket paths (AF_UNIX: 107 bytes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.services.jobs.ray_head import MAX_TEMP_DIR, LocalRayHead

#: The longest socket path Ray makes below its temp directory (seen in a head.log: a 7-digit pid here).
RAY_SOCKET_SUFFIX = "/session_2026-12-07_01-43-02_801490_1954400/sockets/dash_MetricsHead"


@pytest.mark.parametrize("root", ["/h/ray", "/tmp/retrieval-quality-3_sfhhuv/home/ray",
                                  "/a/very/long/home/directory/of/a/user/with/a/deep/tree/phenokg/ray"])
def test_socket_paths_fit_under_the_af_unix_limit(root: str) -> None:
    temp = LocalRayHead(Path(root)).temp_dir
    assert len(str(temp)) <= MAX_TEMP_DIR
    assert len(str(temp) + RAY_SOCKET_SUFFIX) <= 107
    if len(root + "/tmp") <= MAX_TEMP_DIR:
        assert temp == Path(root) / "tmp"
