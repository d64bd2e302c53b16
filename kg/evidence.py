"""Image–caption evidence: read CSV/TSV/JSONL rows, store images by content, link captions to phenotypes.

``phenokg evidence import FILE`` runs :func:`import_evidence`:

1. :func:`read_evidence_rows` yields one :class:`EvidenceRow` per record, or a :class:`RowError` carrying the
   record's physical line number (missing field, undecodable bytes, a JSONL line that is not an object …).
   Problems with the whole file (unknown format, no header, missing columns, UTF-16 without BOM) raise
   :class:`~kg.errors.SourceFormatError` before anything is written.
2. Each row's image (local path relative to the input file, ``file://`` URI, or ``http(s)://`` URL) is read,
   checked with Pillow and put into the :class:`BlobStore` under its sha256; the graph only holds the hash
   and the URI, never the bytes.  The same bytes are stored once, whatever path or caption they come with.
3. The evidence id is a hash of (image sha256, caption, source): the same image with another caption is
   another ``Evidence`` node.  Existing nodes are never modified (the first import wins).
4. The caption goes through the :class:`~kg.linker.Linker`: asserted mentions become
   ``(:Evidence)-[:SHOWS {matched, field, start, end, uncertain}]->(:Phenotype)`` (hedged ones with
   ``uncertain: true``), negated ones ``(:Evidence)-[:RULES_OUT {matched, field, start, end, uncertain}]->``.
   ``start``/``end`` are character offsets in the caption, ``field`` says whether the lexicon *name* or a
   *synonym* matched.  Only links the graph does not hold yet are written, so re-importing a file writes
   nothing at all, while an import interrupted between nodes and links is completed by running it again.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import io
import json
import os
import tempfile
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from kg import queries as Q
from kg.errors import SourceFormatError, ValidationError
from kg.graph import Graph
from kg.linker import Linker, Mention, TermLabels

__all__ = [
    "HTTP_TIMEOUT_S",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "PHENOTYPIC_ABNORMALITY",
    "BlobStore",
    "EvidenceRow",
    "ImageError",
    "ImageInfo",
    "ImportReport",
    "RowError",
    "StoredImage",
    "evidence_id",
    "fetch_url",
    "import_evidence",
    "inspect_image",
    "linker_from_graph",
    "load_image",
    "read_evidence_rows",
]

PHENOTYPIC_ABNORMALITY: Final = "HP:0000118"
#: Largest image file accepted (bytes), local or downloaded.
MAX_IMAGE_BYTES: Final = 64 * 1024 * 1024
#: Largest image accepted (width × height); below Pillow's own decompression-bomb threshold.
MAX_IMAGE_PIXELS: Final = 80_000_000
MAX_IMAGE_SIDE: Final = 40_000
#: Whole-download deadline for ``http(s)://`` images (connect + transfer), seconds.
HTTP_TIMEOUT_S: Final = 10.0
#: Pillow formats accepted as evidence images.
IMAGE_FORMATS: Final = frozenset({"PNG", "JPEG", "MPO", "JPEG2000", "TIFF", "BMP", "GIF", "WEBP", "PPM"})

FIELDS: Final = ("image", "caption", "source", "license")
ALIASES: Final[dict[str, str]] = {
    "image": "image", "image_path": "image", "image_uri": "image", "image_url": "image", "path": "image",
    "uri": "image", "url": "image",
    "caption": "caption",
    "source": "source",
    "license": "license", "licence": "license",
}
FORMATS: Final[dict[str, str]] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_BATCH: Final = 1000
_ID_CHUNK: Final = 1000


# ---------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceRow:
    """One image–caption record as written in the file (caption NFC-normalised, fields stripped)."""

    line: int
    image: str
    caption: str
    source: str
    license: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    """A record that was skipped, with the physical line where it starts (1-based)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _column_key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def read_evidence_rows(path: Path) -> Iterator[EvidenceRow | RowError]:
    """Rows of an evidence file, chosen by extension: ``.csv``, ``.tsv``, ``.jsonl`` / ``.ndjson``.

    Raises :class:`SourceFormatError` for problems with the file as a whole (it cannot be read, has an
    unknown extension, is not UTF-8 at all, lacks a header or a required column); every problem confined
    to one record is yielded as a :class:`RowError` and the other records still come.
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise SourceFormatError(path, None, f"unknown evidence file type {path.suffix!r} "
                                            f"(expected {', '.join(sorted(FORMATS))})")
    lines, bad = _decode_lines(path)
    if kind == "jsonl":
        yield from _jsonl_rows(path, lines, bad)
    else:
        yield from _csv_rows(path, lines, bad, "," if kind == "csv" else "\t")


def _decode_lines(path: Path) -> tuple[list[str], dict[int, str]]:
    """The file's physical lines (with their line ends) and the 1-based numbers of undecodable ones.

    UTF-8, with or without BOM; UTF-16/32 *with* a BOM is decoded too.  A line that is not valid UTF-8 is
    kept (bytes replaced, so the CSV structure survives) and reported by its number; a file that is
    mostly NUL bytes (UTF-16/32 without BOM) is refused as a whole.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceFormatError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                       (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                line = data[: exc.start].decode(codec, errors="replace").count("\n") + 1
                raise SourceFormatError(path, line, f"not valid {codec.upper()} text: {exc.reason}") from exc
            return _split_text(text), {}
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    if nul >= 0 and data.count(b"\x00") * 8 > len(data):
        line = data[:nul].count(b"\n") + 1
        raise SourceFormatError(path, line, "not UTF-8 text (NUL bytes: UTF-16 or UTF-32 without a "
                                            "byte-order mark?); save the file as UTF-8")
    lines: list[str] = []
    bad: dict[int, str] = {}
    for number, raw in enumerate(_split_bytes(data), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = raw[exc.start: exc.start + 1].hex()
            column = len(raw[: exc.start].decode("utf-8", errors="replace")) + 1
            bad[number] = (f"not valid UTF-8 (byte 0x{byte} at column {column}; unknown encoding, "
                           "save the file as UTF-8)")
            text = raw.decode("utf-8", errors="replace")
        if "\x00" in text:
            bad.setdefault(number, "NUL byte in the line")
        lines.append(text)
    return lines, bad


def _split_bytes(data: bytes) -> list[bytes]:
    """Split on ``\\n`` only (never on the other line breaks ``splitlines`` knows), keeping line ends."""
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _split_text(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _bad_in(bad: Mapping[int, str], first: int, last: int) -> tuple[int, str] | None:
    for number in range(first, last + 1):
        if number in bad:
            return number, bad[number]
    return None


def _csv_rows(path: Path, lines: list[str], bad: dict[int, str],
              delimiter: str) -> Iterator[EvidenceRow | RowError]:
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    columns: list[str] | None = None
    end = 0  # physical line where the previous record ended
    while True:
        start = end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            end = reader.line_num
            message = str(exc)
            if "unexpected end of data" in message:
                message = f"unterminated quoted field (runs from line {start} to the end of the file)"
            if columns is None:
                raise SourceFormatError(path, start, f"bad header: {message}") from exc
            yield RowError(str(path), start, f"malformed {'CSV' if delimiter == ',' else 'TSV'}: {message}")
            continue
        end = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank line (or a row of empty cells, as spreadsheets leave behind)
        hit = _bad_in(bad, start, end)
        if columns is None:
            if hit is not None:
                raise SourceFormatError(path, hit[0], f"header: {hit[1]}")
            columns = _header(path, start, record)
            continue
        if hit is not None:
            yield RowError(str(path), hit[0], hit[1])
            continue
        if len(record) > len(columns):
            yield RowError(str(path), start, f"{len(record)} fields but the header has {len(columns)} "
                                             "(an unquoted delimiter in a field?)")
            continue
        values = dict(zip(columns, record, strict=False))
        yield _make_row(path, start, values)
    if columns is None:
        raise SourceFormatError(path, 1, "empty file: expected a header with columns "
                                         "image, caption, source, license")


def _header(path: Path, line: int, record: list[str]) -> list[str]:
    columns: list[str] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(record):
        key = _column_key(raw) or f"column_{index + 1}"
        name = ALIASES.get(key, key)
        if name in seen:
            raise SourceFormatError(path, line,
                                    f"columns {seen[name]!r} and {raw.strip()!r} both give the {name}")
        seen[name] = raw.strip()
        columns.append(name)
    missing = [f for f in FIELDS if f not in seen]
    if missing:
        raise SourceFormatError(
            path, line, f"missing column(s) {', '.join(missing)} in the header (found: "
                        f"{', '.join(repr(c.strip()) for c in record)}; image may be called image_path, "
                        "image_uri, path or uri, license licence)")
    return columns


def _jsonl_rows(path: Path, lines: list[str], bad: dict[int, str]) -> Iterator[EvidenceRow | RowError]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if number in bad:
            yield RowError(str(path), number, bad[number])
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RowError(str(path), number, f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            yield RowError(str(path), number, f"expected a JSON object, got {type(obj).__name__}")
            continue
        values: dict[str, Any] = {}
        clash = None
        for raw_key, value in obj.items():
            key = _column_key(str(raw_key))
            name = ALIASES.get(key, key)
            if name in values:
                clash = f"keys give the {name} twice ({raw_key!r})"
                break
            values[name] = value
        if clash:
            yield RowError(str(path), number, clash)
            continue
        yield _make_row(path, number, values)


def _make_row(path: Path, line: int, values: Mapping[str, Any]) -> EvidenceRow | RowError:
    missing: list[str] = []
    wrong: list[str] = []
    found: dict[str, str] = {}
    for name in FIELDS:
        value = values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(name)
        elif not isinstance(value, str):
            wrong.append(f"{name} must be a string, not {type(value).__name__}")
        else:
            found[name] = value
    if missing:
        return RowError(str(path), line, f"missing {', '.join(missing)}")
    if wrong:
        return RowError(str(path), line, "; ".join(wrong))
    caption = unicodedata.normalize("NFC", found["caption"].replace("\r\n", "\n").replace("\r", "\n")).strip()
    extra = {k: v for k, v in values.items() if k not in FIELDS}
    return EvidenceRow(line=line, image=found["image"].strip(), caption=caption,
                       source=found["source"].strip(), license=found["license"].strip(), extra=extra)


# ---------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------


class ImageError(ValidationError):
    """An image that cannot be read, downloaded or decoded, or is not acceptable."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str
    mode: str
    size: int  # bytes


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    info: ImageInfo
    written: bool  # False when the store already held these bytes


def inspect_image(data: bytes) -> ImageInfo:
    """Check that ``data`` is a whole, decodable image of a sane size; raise :class:`ImageError` if not."""
    if not data:
        raise ImageError("empty image file")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"image file too large ({len(data)} bytes; at most {MAX_IMAGE_BYTES})")
    fmt = "?"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, mode, (width, height) = str(im.format), str(im.mode), im.size
                if fmt not in IMAGE_FORMATS:
                    accepted = ", ".join(sorted(IMAGE_FORMATS))
                    raise ImageError(f"unsupported image format {fmt} (accepted: {accepted})")
                if (width < 1 or height < 1 or max(width, height) > MAX_IMAGE_SIDE
                        or width * height > MAX_IMAGE_PIXELS):
                    raise ImageError(f"image size {width}x{height} is out of range "
                                     f"(at most {MAX_IMAGE_SIDE} per side and {MAX_IMAGE_PIXELS} pixels)")
                im.verify()
            with Image.open(io.BytesIO(data)) as im:
                im.load()  # verify() does not decode pixels; truncated JPEGs only fail here
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError("not an image file (Pillow cannot identify it)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image too large: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise ImageError(f"corrupt or truncated {fmt} image: {exc}") from exc
    return ImageInfo(width=width, height=height, format=fmt, mode=mode, size=len(data))


def fetch_url(url: str, *, timeout: float = HTTP_TIMEOUT_S, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """Download ``url`` (http/https) within ``timeout`` seconds in all and ``max_bytes``; else ImageError."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": "phenokg-evidence-import"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise ImageError(f"download refused: {url} is {length} bytes (at most {max_bytes})")
            chunks: list[bytes] = []
            total = 0
            while chunk := response.read(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise ImageError(f"download refused: {url} is larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise ImageError(f"download timed out after {timeout:g} s: {url}")
                chunks.append(chunk)
    except ImageError:
        raise
    except urllib.error.HTTPError as exc:
        raise ImageError(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from exc
    except urllib.error.URLError as exc:
        raise ImageError(f"download failed: {url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise ImageError(f"download failed: {url}: {exc or type(exc).__name__}") from exc
    return b"".join(chunks)


def load_image(ref: str, base_dir: Path) -> tuple[bytes, str]:
    """The bytes of the image that ``ref`` names, and its canonical URI.

    ``ref`` is a path (relative ones are relative to ``base_dir``, the input file's folder), a ``file://``
    URI or an ``http(s)://`` URL.  Every failure is an :class:`ImageError`.
    """
    parts = urllib.parse.urlsplit(ref)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return fetch_url(ref), ref
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ImageError(f"file URI on another host is not supported: {ref}")
        local = Path(urllib.request.url2pathname(parts.path))
    elif len(scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise ImageError(f"unsupported URI scheme {parts.scheme!r} in {ref} (use a path, file:// or http(s)://)")
    else:
        local = Path(ref).expanduser()
    target = local if local.is_absolute() else base_dir / local
    try:
        if not target.exists():
            raise ImageError(f"image file not found: {ref}")
        if not target.is_file():
            raise ImageError(f"image path is not a file: {ref}")
        size = target.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageError(f"image file too large: {ref} ({size} bytes; at most {MAX_IMAGE_BYTES})")
        data = target.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read image file {ref}: {exc.strerror or exc}") from exc
    return data, target.resolve().as_uri()


# ---------------------------------------------------------------------------------------------------------
# Content-addressed blob store
# ---------------------------------------------------------------------------------------------------------


class BlobStore:
    """Images stored once by content: ``root/ab/cd/<sha256>`` (no extension; the format is on the node).

    Writes go to a temporary file in the target folder, are flushed to disk and renamed into place, so a
    reader never sees a partial blob; a blob that is already there is not rewritten.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha: str) -> Path:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return self.root / sha[:2] / sha[2:4] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def get(self, sha: str) -> bytes:
        return self.path(sha).read_bytes()

    def put(self, data: bytes) -> str:
        """Store image bytes (checked with :func:`inspect_image`); return their sha256 hex digest."""
        return self.put_image(data).sha256

    def put_image(self, data: bytes) -> StoredImage:
        info = inspect_image(data)
        sha = hashlib.sha256(data).hexdigest()
        return StoredImage(sha256=sha, info=info, written=self._write(sha, data))

    def _write(self, sha: str, data: bytes) -> bool:
        target = self.path(sha)
        try:
            if target.stat().st_size == len(data):
                return False
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{sha[:12]}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True


# ---------------------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did. Every field but ``errors`` is a plain number or string (JSON-ready)."""

    file: str = ""
    rows: int = 0  # records read, good or bad
    created: int = 0  # new Evidence nodes
    unchanged: int = 0  # Evidence nodes that were already in the graph
    duplicates: int = 0  # records repeating an earlier record of the same file
    links_shows: int = 0  # new SHOWS edges
    links_rules_out: int = 0  # new RULES_OUT edges
    images_stored: int = 0  # blobs newly written to the store
    errors: list[RowError] = field(default_factory=list)


def evidence_id(sha256: str, caption: str, source: str) -> str:
    """Deterministic id of one image–caption pair: ``ev:`` + 32 hex of sha256 over the three parts."""
    canonical = json.dumps([sha256, caption, source], ensure_ascii=False, separators=(",", ":"))
    return "ev:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def linker_from_graph(graph: Graph, *, branch: str = PHENOTYPIC_ABNORMALITY) -> Linker:
    """A linker over the live phenotypes of ``branch`` (names and synonyms), as the graph holds them."""
    rows = graph.read(Q.TERM_LABELS, branch=branch)
    return Linker(TermLabels(r["id"], r["name"] or "", tuple(r["synonyms"] or ())) for r in rows)


def _link_row(evidence: str, m: Mention) -> dict[str, Any]:
    return {"evidence": evidence, "phenotype": m.id, "matched": m.matched, "field": m.field,
            "start": m.start, "end": m.end, "uncertain": m.uncertain}


def _chunks(items: list[str], size: int = _ID_CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def import_evidence(graph: Graph, path: Path, linker: Linker, store: BlobStore, *,
                    progress: bool = True) -> ImportReport:
    """Import an evidence file; bad records are reported in ``errors`` and skipped.

    Raises :class:`SourceFormatError` (before writing anything) when the file as a whole cannot be read.
    """
    path = Path(path)
    report = ImportReport(file=str(path))
    base_dir = path.resolve().parent
    nodes: dict[str, dict[str, Any]] = {}  # evidence id -> properties
    first_line: dict[str, int] = {}
    links: dict[str, list[dict[str, Any]]] = {"SHOWS": [], "RULES_OUT": []}
    images: dict[str, tuple[StoredImage, str]] = {}  # image reference -> (stored image, canonical URI)
    with tqdm(desc="evidence", unit="row", disable=not progress, dynamic_ncols=True, mininterval=0.5) as bar:
        for item in read_evidence_rows(path):
            report.rows += 1
            bar.update(1)
            if isinstance(item, RowError):
                report.errors.append(item)
                continue
            cached = images.get(item.image)
            if cached is None:
                try:
                    data, uri = load_image(item.image, base_dir)
                    stored = store.put_image(data)
                except ImageError as exc:
                    report.errors.append(RowError(str(path), item.line, str(exc)))
                    continue
                report.images_stored += stored.written
                cached = images[item.image] = (stored, uri)
            stored, uri = cached
            ident = evidence_id(stored.sha256, item.caption, item.source)
            if ident in nodes:
                if nodes[ident]["license"] != item.license:
                    report.errors.append(RowError(
                        str(path), item.line, f"same image, caption and source as line {first_line[ident]} "
                                              f"but another license ({item.license!r})"))
                else:
                    report.duplicates += 1
                continue
            info = stored.info
            props: dict[str, Any] = {
                "id": ident, "image_uri": uri, "caption": item.caption, "source": item.source,
                "license": item.license, "sha256": stored.sha256, "width": info.width, "height": info.height,
                "image_format": info.format, "image_mode": info.mode, "image_bytes": info.size,
            }
            if item.extra:
                props["extra"] = json.dumps(item.extra, sort_keys=True, ensure_ascii=False, default=str)
            nodes[ident] = props
            first_line[ident] = item.line
            for mention in linker.annotate(item.caption):
                links["RULES_OUT" if mention.negated else "SHOWS"].append(_link_row(ident, mention))
    _write(graph, report, nodes, links)
    return report


def _write(graph: Graph, report: ImportReport, nodes: dict[str, dict[str, Any]],
           links: dict[str, list[dict[str, Any]]]) -> None:
    ids = list(nodes)
    present: set[str] = set()
    for chunk in _chunks(ids):
        present.update(graph.read(Q.EVIDENCE_IDS_PRESENT, ids=chunk)[0]["ids"])
    new: list[Mapping[str, Any]] = [{"id": i, "props": nodes[i]} for i in ids if i not in present]
    report.created = len(new)
    report.unchanged = len(ids) - len(new)
    if new:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        graph.write_batches(Q.UPSERT_EVIDENCE, new, _BATCH, now=now)
    # Links of new and existing evidence alike, minus those the graph holds: a re-import writes nothing,
    # and an import interrupted after its nodes is completed by the next run.
    for relation, rows in links.items():
        have: set[tuple[str, str, int, int]] = set()
        for chunk in _chunks(sorted({r["evidence"] for r in rows})):
            have.update(tuple(k) for k in graph.read(Q.EVIDENCE_LINK_KEYS[relation], ids=chunk)[0]["rows"])
        wanted: list[Mapping[str, Any]] = [
            r for r in rows if (r["evidence"], r["phenotype"], r["start"], r["end"]) not in have]
        if wanted:
            graph.write_batches(Q.LINK_SHOWS if relation == "SHOWS" else Q.LINK_RULES_OUT, wanted, _BATCH)
        if relation == "SHOWS":
            report.links_shows = len(wanted)
        else:
            report.links_rules_out = len(wanted)
