"""kg.store.blobs: canonical image URIs with folders resolved once, deferred syncs, concurrent writers."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from PIL import Image

from kg.store.blobs import BlobStore, LocalPaths


def test_local_paths_give_the_uri_path_resolve_gives(tmp_path: Path) -> None:
    real = tmp_path / "real" / "img"
    real.mkdir(parents=True)
    (real / "a.png").write_bytes(b"x")
    (tmp_path / "linked").symlink_to(tmp_path / "real")  # a symlinked folder
    (real / "b.png").symlink_to(real / "a.png")  # a symlinked file
    paths = LocalPaths()
    for p in (real / "a.png", tmp_path / "linked" / "img" / "a.png", real / "b.png",
              tmp_path / "linked" / "img" / ".." / "img" / "a.png", real / "missing.png"):
        assert paths.uri(p) == p.resolve().as_uri(), p
    assert paths.uri(tmp_path / "linked" / "img" / "a.png") == (real / "a.png").as_uri()


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4, 4), value).save(buf, "PNG")
    return buf.getvalue()


def test_deferred_writes_are_complete_after_sync_and_racing_writers_store_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = _png(7)
    results: list[bool] = []

    def put() -> None:
        results.append(store.put_image(data, durable=False).written)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.sync()
    assert results.count(True) == 1  # one writer stored it, the others found it there
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() == data
    assert files[0].stat().st_mode & 0o777 == 0o644


def test_blobs_are_world_readable_under_a_restrictive_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        stored = BlobStore(tmp_path / "blobs").put_image(_png(9))
    finally:
        os.umask(old)
    assert BlobStore(tmp_path / "blobs").path(stored.sha256).stat().st_mode & 0o777 == 0o644
