"""Evidence images: read or download them, check them with Pillow, store them once by content.

:func:`load_image` reads the image a row names (local path relative to the input file, ``file://`` URI, or
``http(s)://`` URL, downloaded by :func:`fetch_url`); :func:`inspect_image` checks it with Pillow; the
:class:`BlobStore` keeps it under its sha256.  The graph only holds the hash and the URI, never the bytes.
The same bytes are stored once, whatever path or caption they come with.  Every problem with an image is
an :class:`ImageError`.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import http.client
import io
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import Image, UnidentifiedImageError

from kg.errors import ValidationError

__all__ = [
    "HTTP_TIMEOUT_S",
    "IMAGE_FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE",
    "BlobStore",
    "ImageError",
    "ImageInfo",
    "LocalPaths",
    "StoredImage",
    "fetch_url",
    "inspect_image",
    "load_image",
]

#: Largest image file accepted (bytes), local or downloaded.
MAX_IMAGE_BYTES: Final = 64 * 1024 * 1024
#: Largest image accepted (width × height); below Pillow's own decompression-bomb threshold.
MAX_IMAGE_PIXELS: Final = 80_000_000
MAX_IMAGE_SIDE: Final = 40_000
#: Whole-download deadline for ``http(s)://`` images (connect + transfer), seconds.
HTTP_TIMEOUT_S: Final = 10.0
#: Pillow formats accepted as evidence images.
IMAGE_FORMATS: Final = frozenset({"PNG", "JPEG", "MPO", "JPEG2000", "TIFF", "BMP", "GIF", "WEBP", "PPM"})


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


class LocalPaths:
    """Canonical ``file://`` URIs of local image paths (symlinks resolved, as ``Path.resolve`` does), with each
    folder resolved once: an import of many images in few folders then makes one ``lstat`` per image, not one
    per path component. Keep one per import (a folder's resolution is not re-checked)."""

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}

    def uri(self, path: Path) -> str:
        absolute = os.path.abspath(path)
        if ".." in Path(path).parts or os.path.islink(absolute):
            return Path(path).resolve().as_uri()
        folder, name = os.path.split(absolute)
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder)
        return Path(real, name).as_uri()


def load_image(ref: str, base_dir: Path, paths: LocalPaths | None = None) -> tuple[bytes, str]:
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
    return data, (paths.uri(target) if paths is not None else target.resolve().as_uri())


# ---------------------------------------------------------------------------------------------------------
# Content-addressed blob store
# ---------------------------------------------------------------------------------------------------------


def _syncfs(fd: int) -> bool:
    """``syncfs(2)`` on Linux (flushes one file system, not all of them); False where it is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.syncfs(fd) == 0)
    except (OSError, AttributeError):
        return False


class BlobStore:
    """Images stored once by content: ``root/ab/cd/<sha256>`` (no extension; the format is on the node).

    Writes go to a temporary file in the target folder, are flushed to disk and renamed into place, so a
    reader never sees a partial blob; a blob that is already there is not rewritten.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # writers of the same bytes from several threads: one checks and writes, the others find the blob there
        self._locks = tuple(threading.Lock() for _ in range(64))
        self._folders: set[str] = set()  # hash folders known to exist

    def path(self, sha: str) -> Path:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ValidationError(f"not a sha256 hex digest: {sha!r}")
        return self.root / sha[:2] / sha[2:4] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def get(self, sha: str) -> bytes:
        return self.path(sha).read_bytes()

    def put(self, data: bytes) -> str:
        """Store image bytes (checked with :func:`inspect_image`); return their sha256 hex digest."""
        return self.put_image(data).sha256

    def put_image(self, data: bytes, *, durable: bool = True) -> StoredImage:
        """Check and store image bytes. ``durable=False`` leaves flushing to disk to the caller, who must call
        :meth:`sync` before anything refers to the blob (a streamed import syncs once per batch, not per image)."""
        info = inspect_image(data)
        sha = hashlib.sha256(data).hexdigest()
        return StoredImage(sha256=sha, info=info, written=self._write(sha, data, durable=durable))

    def sync(self) -> None:
        """Flush every blob written with ``durable=False`` to disk (one ``syncfs`` of the store's file system
        where the platform has it, else ``sync``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if not _syncfs(fd):
                os.sync()
        finally:
            os.close(fd)

    def _write(self, sha: str, data: bytes, *, durable: bool = True) -> bool:
        with self._locks[int(sha[:2], 16) % len(self._locks)]:
            return self._write_unlocked(sha, data, durable=durable)

    def _write_unlocked(self, sha: str, data: bytes, *, durable: bool) -> bool:
        folder = os.path.join(self.root, sha[:2], sha[2:4])
        target = os.path.join(folder, sha)
        try:
            if os.stat(target).st_size == len(data):
                return False
        except FileNotFoundError:
            pass
        if folder not in self._folders:  # one mkdir per folder and process, not one per blob
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        # the lock striped by hash makes this name unique to the writer; no mkstemp round of random names
        tmp = os.path.join(folder, f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if durable:
                    os.fsync(fd)
                if os.fstat(fd).st_mode & 0o777 != 0o644:  # a restrictive umask: blobs are world-readable data
                    os.fchmod(fd, 0o644)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True
