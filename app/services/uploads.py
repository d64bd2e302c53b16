"""Uploaded images, checked before any model sees them.

:func:`decode_upload` turns the bytes of an upload into a Pillow image or raises :class:`UploadError` with the
HTTP status it deserves:

* **413** the file is larger than the size cap;
* **415** the bytes are not a PNG or JPEG (nor DICOM, when pydicom is installed) — the type is sniffed from
  the magic bytes, never taken from the declared content type or the file name;
* **422** the declared content type names another image format than the bytes are (a lying type), the image
  is truncated or corrupt (Pillow ``verify()`` and then a full decode), or it declares more pixels than the
  pixel cap (a decompression bomb: refused from the header, before anything is decoded).
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image, UnidentifiedImageError

__all__ = ["ACCEPTED", "UploadError", "decode_upload", "dicom_available", "sniff"]

#: Sniffed kind → the content types that may be declared for it.
ACCEPTED: Final[dict[str, frozenset[str]]] = {
    "png": frozenset({"image/png", "image/x-png", "image/apng"}),
    "jpeg": frozenset({"image/jpeg", "image/jpg", "image/pjpeg"}),
    "dicom": frozenset({"application/dicom", "application/dicom+json", "image/dicom"}),
}
_GENERIC: Final = frozenset({"", "application/octet-stream", "binary/octet-stream",
                             "application/x-www-form-urlencoded"})
_OTHER_IMAGES: Final = ((b"GIF87a", "gif"), (b"GIF89a", "gif"), (b"BM", "bmp"), (b"II*\x00", "tiff"),
                        (b"MM\x00*", "tiff"), (b"\x00\x00\x00\x0cjP  ", "jpeg2000"))


@dataclass
class UploadError(Exception):
    """An upload refused with ``status`` (413, 415 or 422), a short ``title`` and a ``detail`` for the user."""

    status: int
    title: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def dicom_available() -> bool:
    """Whether pydicom can be imported (DICOM uploads are accepted only then)."""
    return importlib.util.find_spec("pydicom") is not None


def sniff(data: bytes) -> str | None:
    """``png``, ``jpeg``, ``dicom``, another image format's name (``gif``, ``webp`` …) or ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, name in _OTHER_IMAGES:
        if data.startswith(magic):
            return name
    return None


def _accepted_text() -> str:
    return "PNG, JPEG" + (" or DICOM" if dicom_available() else "")


def _check_declared(kind: str, declared: str | None) -> None:
    media = (declared or "").split(";", 1)[0].strip().lower()
    if media in _GENERIC or not (media.startswith("image/") or media in ACCEPTED["dicom"]):
        return  # no claim, or a generic one: the bytes decide
    if media not in ACCEPTED.get(kind, frozenset()):
        raise UploadError(422, "Unprocessable Content",
                          f"the upload is declared as {media} but its bytes are a {kind.upper()} image")


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise UploadError(422, "Unprocessable Content", f"image size {width}x{height} is empty")
    if width * height > max_pixels:
        raise UploadError(422, "Unprocessable Content",
                          f"image declares {width}x{height} = {width * height} pixels, more than the cap of "
                          f"{max_pixels} (a decompression bomb or an image too large to serve)")


def _decode_pillow(data: bytes, kind: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                _check_pixels(*probe.size, max_pixels)
                probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()  # verify() does not decode the pixels: truncated data fails here
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(422, "Unprocessable Content", f"decompression bomb refused: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise UploadError(422, "Unprocessable Content", f"corrupt {kind.upper()} image: Pillow cannot read it") \
            from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise UploadError(422, "Unprocessable Content", f"corrupt or truncated {kind.upper()} image: {exc}") \
            from exc
    return image


def _decode_dicom(data: bytes, max_pixels: int) -> Image.Image:
    import numpy as np
    import pydicom

    try:
        ds: Any = pydicom.dcmread(io.BytesIO(data))
        rows, cols = int(ds.Rows), int(ds.Columns)
        _check_pixels(cols, rows, max_pixels)
        pixels = np.asarray(ds.pixel_array, dtype=np.float64)
    except UploadError:
        raise
    except Exception as exc:  # pydicom and its pixel handlers raise many kinds
        raise UploadError(422, "Unprocessable Content", f"corrupt or undecodable DICOM image: {exc}") from exc
    if pixels.ndim == 4 or (pixels.ndim == 3 and pixels.shape[-1] not in (3, 4)):
        pixels = pixels[0]  # multi-frame: the first frame
    slope, intercept = float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0)
    pixels = pixels * slope + intercept
    low, high = float(pixels.min()), float(pixels.max())
    scaled = np.zeros_like(pixels) if high <= low else (pixels - low) / (high - low)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        scaled = 1.0 - scaled  # MONOCHROME1: bright is low
    arr = (scaled * 255.0).round().astype(np.uint8)
    return Image.fromarray(arr[..., :3] if arr.ndim == 3 else arr)


def decode_upload(data: bytes, *, declared_type: str | None, max_bytes: int, max_pixels: int) -> Image.Image:
    """The decoded image in ``data`` (PNG / JPEG, DICOM with pydicom), or :class:`UploadError` (module doc)."""
    if len(data) > max_bytes:
        raise UploadError(413, "Content Too Large", f"the file is {len(data)} bytes; at most {max_bytes} are accepted")
    if not data:
        raise UploadError(422, "Unprocessable Content", "the uploaded file is empty")
    kind = sniff(data)
    if kind is None or kind not in ACCEPTED or (kind == "dicom" and not dicom_available()):
        what = f"a {kind.upper()} image" if kind else "not an image"
        raise UploadError(415, "Unsupported Media Type",
                          f"the upload is {what} (by its bytes); {_accepted_text()} images are accepted")
    _check_declared(kind, declared_type)
    if kind == "dicom":
        return _decode_dicom(data, max_pixels)
    return _decode_pillow(data, kind, max_pixels)
