"""Upload checks of the retrieval API (app.services.uploads) on real image bytes: type sniffing, lying types,
truncation, decompression bombs and the size cap."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from app.services.uploads import UploadError, decode_upload, sniff

CAP_BYTES, CAP_PIXELS = 1_000_000, 4_000_000


def _png(size: tuple[int, int] = (40, 30), mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 90 if mode == "L" else (200, 30, 10)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width x height`` grey pixels, with a few bytes of (deflated) data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def decode(data: bytes, declared: str | None = "image/png", **caps: int) -> Image.Image:
    return decode_upload(data, declared_type=declared, max_bytes=caps.get("max_bytes", CAP_BYTES),
                         max_pixels=caps.get("max_pixels", CAP_PIXELS))


def refused(data: bytes, declared: str | None = "image/png", **caps: int) -> UploadError:
    with pytest.raises(UploadError) as info:
        decode(data, declared, **caps)
    return info.value


def test_valid_png_and_jpeg_decode() -> None:
    img = decode(_png((40, 30)))
    assert (img.size, img.mode, img.format) == ((40, 30), "L", "PNG")
    img = decode(_jpeg(), "image/jpeg")
    assert (img.size, img.format) == ((64, 48), "JPEG")
    # no or generic declared types: the bytes decide
    assert decode(_jpeg(), None).format == "JPEG"
    assert decode(_png(mode="RGB"), "application/octet-stream").mode == "RGB"
    assert decode(_png(), "image/png; charset=binary").size == (40, 30)


def test_text_file_named_png_is_415() -> None:
    err = refused(b"this is not an image, whatever its name says\n" * 4)
    assert err.status == 415 and "not an image" in err.detail and "PNG, JPEG" in err.detail


def test_other_image_formats_are_415() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "GIF")
    assert sniff(buf.getvalue()) == "gif"
    err = refused(buf.getvalue(), "image/gif")
    assert err.status == 415 and "GIF" in err.detail


def test_lying_content_type_is_422() -> None:
    err = refused(_jpeg(), "image/png")
    assert err.status == 422 and "declared as image/png" in err.detail and "JPEG" in err.detail


def test_truncated_png_and_jpeg_are_422() -> None:
    png = _png((200, 200), "RGB")
    err = refused(png[: len(png) // 2])
    assert err.status == 422 and "PNG" in err.detail
    jpeg = _jpeg((256, 256))
    err = refused(jpeg[: len(jpeg) // 2], "image/jpeg")
    assert err.status == 422 and "truncated" in err.detail


def test_decompression_bomb_is_422_from_the_header() -> None:
    bomb = _bomb_png(50_000, 50_000)  # 2.5 gigapixels declared in well under a kilobyte
    assert len(bomb) < 200 and sniff(bomb) == "png"
    err = refused(bomb)
    assert err.status == 422 and "pixels" in err.detail
    # below Pillow's own guard (89 Mpx) it is our cap that refuses
    err = refused(_bomb_png(3000, 3000), max_pixels=1_000_000)
    assert err.status == 422 and "cap of 1000000" in err.detail


def test_too_large_is_413_and_empty_is_422() -> None:
    data = _png((400, 400), "RGB")
    err = refused(data, max_bytes=len(data) - 1)
    assert err.status == 413 and str(len(data)) in err.detail
    assert decode(data, max_bytes=len(data)).size == (400, 400)
    assert refused(b"").status == 422


def _dicom(rows: int = 20, cols: int = 30, photometric: str = "MONOCHROME2", pixels: bytes | None = None) -> bytes:
    pydicom = pytest.importorskip("pydicom")
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ramp = (np.arange(min(rows * cols, 10_000), dtype=np.uint16) % 4096).astype("<u2")
    ds.PixelData = pixels if pixels is not None else ramp.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert pydicom.__version__
    return buf.getvalue()


def test_dicom_with_pydicom() -> None:
    data = _dicom()
    assert sniff(data) == "dicom"
    img = decode(data, "application/dicom")
    assert (img.size, img.mode) == ((30, 20), "L")
    first, last = img.getpixel((0, 0)), img.getpixel((29, 19))
    assert first == 0 and last == 255  # the 12-bit ramp scaled to 8 bits
    inverted = decode(_dicom(photometric="MONOCHROME1"), None)
    assert inverted.getpixel((0, 0)) == 255  # MONOCHROME1: low values are bright
    assert "DICOM" in refused(data[:-200], "application/dicom").detail  # pixel data cut short
    bomb = _dicom(rows=30_000, cols=30_000, pixels=b"\x00\x00" * 8)  # declares 900 Mpx, carries 16 bytes
    err = refused(bomb, "application/dicom")
    assert err.status == 422 and "pixels" in err.detail
    assert refused(data, "image/png").status == 422  # declared PNG, bytes are DICOM
