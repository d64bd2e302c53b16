"""Unit tests without a database: row readers (kg.ingest.evidence_rows), image loading and the blob store
(kg.store.blobs), evidence ids and the re-exports of kg.ingest.evidence."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from kg.errors import SourceFormatError
from kg.ingest import evidence, evidence_rows
from kg.ingest.evidence import evidence_id
from kg.ingest.evidence_rows import EvidenceRow, RowError, read_evidence_rows
from kg.store import blobs
from kg.store.blobs import BlobStore, ImageError, fetch_url, inspect_image, load_image


def png(color: int = 128, size: tuple[int, int] = (8, 6), mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def rows_of(path: Path) -> tuple[list[EvidenceRow], list[RowError]]:
    good: list[EvidenceRow] = []
    bad: list[RowError] = []
    for item in read_evidence_rows(path):
        (bad if isinstance(item, RowError) else good).append(item)  # type: ignore[arg-type]
    return good, bad


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ---- CSV / TSV ----------------------------------------------------------------------------------------


def test_csv_columns_aliases_and_extra(tmp_path: Path) -> None:
    f = write(tmp_path / "ev.csv",
              "Image_Path,Caption,Source,Licence,view\n"
              "a.png,Pneumonia.,mimic,CC BY 4.0,PA\n"
              "b.png,  No effusion.  ,mimic,CC0,AP\n")
    good, bad = rows_of(f)
    assert bad == []
    assert [(r.line, r.image, r.caption, r.source, r.license, r.extra) for r in good] == [
        (2, "a.png", "Pneumonia.", "mimic", "CC BY 4.0", {"view": "PA"}),
        (3, "b.png", "No effusion.", "mimic", "CC0", {"view": "AP"}),
    ]


@pytest.mark.parametrize("name", ["image", "image_uri", "path", "uri", "IMAGE URI"])
def test_image_column_aliases(tmp_path: Path, name: str) -> None:
    f = write(tmp_path / "ev.csv", f"{name},caption,source,license\nx.png,c,s,l\n")
    good, bad = rows_of(f)
    assert bad == [] and good[0].image == "x.png"


def test_tsv(tmp_path: Path) -> None:
    f = write(tmp_path / "ev.tsv", "image\tcaption\tsource\tlicense\nx.png\tA, B and C.\ts\tl\n")
    good, bad = rows_of(f)
    assert bad == [] and good[0].caption == "A, B and C." and good[0].line == 2


def test_multiline_quoted_fields_keep_physical_line_numbers(tmp_path: Path) -> None:
    f = write(tmp_path / "ev.csv",
              "image,caption,source,license\n"
              'a.png,"Line one.\nLine two.\n\nLine four.",s,l\n'
              "b.png,,s,l\n"
              "\n"
              'c.png,"x\r\ny",s,l\n'
              "d.png,ok,s,l\n")
    good, bad = rows_of(f)
    assert [(r.line, r.image) for r in good] == [(2, "a.png"), (8, "c.png"), (10, "d.png")]
    assert good[0].caption == "Line one.\nLine two.\n\nLine four."
    assert good[1].caption == "x\ny"  # line ends normalised
    assert [(e.line, e.message) for e in bad] == [(6, "missing caption")]


def test_crlf_file(tmp_path: Path) -> None:
    f = tmp_path / "ev.csv"
    f.write_bytes(b"image,caption,source,license\r\na.png,one,s,l\r\nb.png,two,s,l\r\n")
    good, bad = rows_of(f)
    assert bad == [] and [(r.line, r.caption) for r in good] == [(2, "one"), (3, "two")]


def test_missing_fields_and_bad_rows_are_reported_others_kept(tmp_path: Path) -> None:
    f = write(tmp_path / "ev.csv",
              "image,caption,source,license\n"
              "a.png,ok,s,l\n"
              ",no image,s,l\n"
              "c.png,   ,s,\n"
              "d.png,short\n"
              "e.png,too,many,fields,here\n"
              'f.png,"bad"quote,s,l\n'
              "g.png,ok,s,l\n")
    good, bad = rows_of(f)
    assert [r.image for r in good] == ["a.png", "g.png"]
    assert [(e.line, e.message) for e in bad[:4]] == [
        (3, "missing image"), (4, "missing caption, license"), (5, "missing source, license"),
        (6, "5 fields but the header has 4 (an unquoted delimiter in a field?)"),
    ]
    assert bad[4].line == 7 and "malformed CSV" in bad[4].message
    assert str(bad[0]) == f"{f}:3: missing image"


def test_unterminated_quote_is_a_row_error(tmp_path: Path) -> None:
    f = write(tmp_path / "ev.csv",
              'image,caption,source,license\na.png,ok,s,l\nb.png,"open,s,l\nc.png,x,s,l\n')
    good, bad = rows_of(f)
    assert [r.image for r in good] == ["a.png"]
    assert bad[0].line == 3 and "unterminated quoted field" in bad[0].message


def test_header_problems_raise(tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match=r"ev.csv:1: missing column\(s\) license"):
        list(read_evidence_rows(write(tmp_path / "ev.csv", "image,caption,source\na,b,c\n")))
    with pytest.raises(SourceFormatError, match="both give the image"):
        list(read_evidence_rows(write(tmp_path / "ev.csv", "image,path,caption,source,license\n")))
    with pytest.raises(SourceFormatError, match="empty file"):
        list(read_evidence_rows(write(tmp_path / "ev.csv", "\n\n")))
    with pytest.raises(SourceFormatError, match="unknown evidence file type"):
        list(read_evidence_rows(write(tmp_path / "ev.xlsx", "x")))
    with pytest.raises(SourceFormatError, match="cannot read"):
        list(read_evidence_rows(tmp_path / "missing.csv"))


# ---- encodings ----------------------------------------------------------------------------------------


def test_utf8_bom_and_nfc(tmp_path: Path) -> None:
    f = tmp_path / "ev.csv"
    decomposed = "Cafe\u0301 lung".encode()
    f.write_bytes(b"\xef\xbb\xbfimage,caption,source,license\na.png," + decomposed + b",s,l\n")
    good, bad = rows_of(f)
    assert bad == [] and good[0].caption == "Caf\u00e9 lung"


def test_latin1_line_is_a_row_error_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "ev.csv"
    f.write_bytes(b"image,caption,source,license\na.png,ok,s,l\nb.png,\xe9panchement,s,l\nc.png,ok,s,l\n")
    good, bad = rows_of(f)
    assert [r.image for r in good] == ["a.png", "c.png"]
    assert bad[0].line == 3 and "not valid UTF-8" in bad[0].message and "0xe9" in bad[0].message


def test_latin1_inside_multiline_record_reports_the_bad_line(tmp_path: Path) -> None:
    f = tmp_path / "ev.csv"
    f.write_bytes(b'image,caption,source,license\na.png,"one\ntw\xf6",s,l\nc.png,ok,s,l\n')
    good, bad = rows_of(f)
    assert [r.line for r in good] == [4] and [e.line for e in bad] == [3]


def test_utf16_without_bom_is_refused_with_a_line(tmp_path: Path) -> None:
    f = tmp_path / "ev.csv"
    f.write_bytes("image,caption,source,license\na.png,ok,s,l\n".encode("utf-16-le"))
    with pytest.raises(SourceFormatError, match=r"ev.csv:1: not UTF-8 text .*UTF-16") as info:
        list(read_evidence_rows(f))
    assert info.value.line == 1


def test_utf16_with_bom_is_read(tmp_path: Path) -> None:
    f = write(tmp_path / "ev.csv", "image,caption,source,license\na.png,Épanchement,s,l\n", "utf-16")
    good, bad = rows_of(f)
    assert bad == [] and good[0].caption == "Épanchement"


def test_latin1_header_raises(tmp_path: Path) -> None:
    f = tmp_path / "ev.csv"
    f.write_bytes(b"image,l\xe9gende,caption,source,license\n")
    with pytest.raises(SourceFormatError, match=r"ev\.csv:1: header: not valid UTF-8"):
        list(read_evidence_rows(f))


# ---- JSONL --------------------------------------------------------------------------------------------


def test_jsonl_rows_errors_and_aliases(tmp_path: Path) -> None:
    f = tmp_path / "ev.jsonl"
    f.write_bytes(
        b'{"image_uri": "a.png", "caption": "Pneumonia.", "source": "s", "licence": "l", "view": {"x": 1}}\n'
        b"\n"
        b'["not", "an", "object"]\n'
        b'{"image": "b.png", "caption": "x", "source": "s"\n'
        b'{"image": "c.png", "caption": 3, "source": "s", "license": "l"}\n'
        b'{"image": "d.png", "caption": "caf\xe9", "source": "s", "license": "l"}\n'
        b'{"path": "e.png", "uri": "e2.png", "caption": "x", "source": "s", "license": "l"}\n'
        b'{"image": "f.png", "caption": "line\\nbreak \xe2\x80\xa8 sep", "source": "s", "license": "l"}\r\n'
    )
    good, bad = rows_of(f)
    assert [(r.line, r.image, r.license) for r in good] == [(1, "a.png", "l"), (8, "f.png", "l")]
    assert good[0].extra == {"view": {"x": 1}}
    assert good[1].caption == "line\nbreak \u2028 sep"
    assert [e.line for e in bad] == [3, 4, 5, 6, 7]
    assert "expected a JSON object, got list" in bad[0].message
    assert "not valid JSON" in bad[1].message
    assert "caption must be a string" in bad[2].message
    assert "not valid UTF-8" in bad[3].message
    assert "twice" in bad[4].message


def test_ndjson_extension(tmp_path: Path) -> None:
    f = write(tmp_path / "ev.ndjson", '{"image": "a.png", "caption": "c", "source": "s", "license": "l"}')
    good, bad = rows_of(f)
    assert bad == [] and good[0].line == 1


# ---- images -------------------------------------------------------------------------------------------


def test_inspect_image_records_metadata() -> None:
    info = inspect_image(png(size=(10, 7), mode="RGB"))
    assert (info.width, info.height, info.format, info.mode) == (10, 7, "PNG", "RGB")


def test_inspect_image_rejects_text_truncated_and_huge() -> None:
    with pytest.raises(ImageError, match="not an image"):
        inspect_image(b"this is text, not a PNG\n")
    with pytest.raises(ImageError, match="empty"):
        inspect_image(b"")
    data = png(size=(64, 64))
    for cut in (len(data) - 12, len(data) // 2):
        with pytest.raises(ImageError, match="truncated"):
            inspect_image(data[:cut])
    # Valid PNG headers claiming absurd sizes are refused before any decoding.
    for side, message in ((9_000, "out of range"), (50_000, "too large")):
        chunk = b"IHDR" + struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
        bomb = data[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]
        with pytest.raises(ImageError, match=message):
            inspect_image(bomb)


def test_inspect_image_rejects_unlisted_format() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "ICO")
    with pytest.raises(ImageError, match="unsupported image format ICO"):
        inspect_image(buf.getvalue())


def test_load_image_paths_and_uris(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    data = png()
    (tmp_path / "imgs" / "a b.png").write_bytes(data)
    target = (tmp_path / "imgs" / "a b.png").resolve()
    assert load_image("imgs/a b.png", tmp_path) == (data, target.as_uri())
    assert load_image(str(target), Path("/nonexistent")) == (data, target.as_uri())
    assert load_image(target.as_uri(), Path("/nonexistent")) == (data, target.as_uri())
    with pytest.raises(ImageError, match=r"^image file not found: x\.png$"):
        load_image("x.png", tmp_path)
    with pytest.raises(ImageError, match="not a file"):
        load_image("imgs", tmp_path)
    with pytest.raises(ImageError, match="unsupported URI scheme 's3'"):
        load_image("s3://bucket/a.png", tmp_path)
    with pytest.raises(ImageError, match="another host"):
        load_image("file://server/share/a.png", tmp_path)


@pytest.mark.timeout(30)  # must fail cleanly, never hang
def test_http_failure_without_network_is_clean() -> None:
    with pytest.raises(ImageError, match="download failed"):
        load_image("http://127.0.0.1:9/x.png", Path("."))


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path == "/missing.png":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def http_server() -> Iterator[str]:
    _Handler.body = png()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_download_size_cap_and_errors(http_server: str) -> None:
    url = http_server + "/a.png"
    assert load_image(url, Path(".")) == (_Handler.body, url)
    with pytest.raises(ImageError, match="download refused"):
        fetch_url(url, max_bytes=10)
    with pytest.raises(ImageError, match="HTTP 404"):
        fetch_url(http_server + "/missing.png")


# ---- blob store ---------------------------------------------------------------------------------------


def test_blobstore_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = png()
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    path = store.path(sha)
    assert path == tmp_path / "blobs" / sha[:2] / sha[2:4] / sha
    assert store.has(sha) and store.get(sha) == data
    before = path.stat()
    again = store.put_image(data)
    assert again.sha256 == sha and not again.written
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == [sha]  # no temp files left
    assert not store.has("0" * 64)


def test_blobstore_rejects_non_images_and_bad_digests(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(ImageError):
        store.put(b"hello")
    with pytest.raises(ImageError):
        store.put(png()[:-20])
    assert not (tmp_path / "blobs").exists() or not any((tmp_path / "blobs").rglob("*"))
    for bad in ("../../etc/passwd", "A" * 64, "ab"):
        with pytest.raises(ValueError):
            store.path(bad)


def test_blobstore_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = png(7)
    sha = hashlib.sha256(data).hexdigest()

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.put(data)
    assert not store.has(sha)
    assert not [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]  # temp file removed
    monkeypatch.undo()
    assert store.put(data) == sha and store.get(sha) == data


def test_blobstore_repairs_a_damaged_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = png(9)
    sha = store.put(data)
    store.path(sha).write_bytes(data[:10])
    assert store.put_image(data).written and store.get(sha) == data


# ---- ids ----------------------------------------------------------------------------------------------


def test_evidence_id_is_deterministic_and_distinguishes_parts() -> None:
    sha = "a" * 64
    ident = evidence_id(sha, "Pneumonia.", "mimic")
    assert ident == evidence_id(sha, "Pneumonia.", "mimic") and ident.startswith("ev:") and len(ident) == 35
    assert len({ident, evidence_id(sha, "Pneumonia", "mimic"), evidence_id(sha, "Pneumonia.", "other"),
                evidence_id("b" * 64, "Pneumonia.", "mimic"), evidence_id(sha, "Pneumonia.,mimic", "")}) == 5


@pytest.mark.parametrize("module", [evidence, evidence_rows, blobs], ids=lambda m: m.__name__)
def test_module_does_not_import_torch(module: ModuleType) -> None:
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    assert "import torch" not in source and "from torch" not in source


@pytest.mark.parametrize("module", [evidence_rows, blobs], ids=lambda m: m.__name__)
def test_evidence_reexports_the_public_names_of_rows_and_blobs(module: ModuleType) -> None:
    names: list[str] = vars(module)["__all__"]
    assert set(names) <= set(evidence.__all__)
    for name in names:
        assert getattr(evidence, name) is getattr(module, name)
    defined = {n for n, v in vars(module).items()  # constants, classes and functions the module defines
               if not n.startswith("_") and (n.isupper() or getattr(v, "__module__", None) == module.__name__)}
    assert defined == set(names)


def test_evidence_all_names_resolve() -> None:
    assert len(set(evidence.__all__)) == len(evidence.__all__)
    assert all(hasattr(evidence, name) for name in evidence.__all__)
