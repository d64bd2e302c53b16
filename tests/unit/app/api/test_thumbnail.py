"""Evidence thumbnails (``GET /evidence/{id}/image?size=``): longest side ``size``, aspect ratio kept, small
images scaled up rather than returned at their own size."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.api.routes.retrieval import _thumbnail


def _png(size: tuple[int, int], mode: str = "L") -> bytes:
    img = Image.new(mode, size)
    for x in range(size[0]):  # a checkerboard: every pixel differs from its neighbours
        for y in range(size[1]):
            img.putpixel((x, y), 255 * ((x + y) % 2) if mode == "L" else (255 * ((x + y) % 2),) * 3)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(("source", "size", "expected"), [
    ((28, 28), 128, (128, 128)),  # a MedMNIST image grows to the requested size
    ((28, 14), 128, (128, 64)),  # aspect ratio kept
    ((14, 28), 100, (50, 100)),
    ((96, 96), 64, (64, 64)),  # larger images shrink
    ((300, 100), 60, (60, 20)),
    ((64, 64), 64, (64, 64)),
])
def test_longest_side_is_the_requested_size(source: tuple[int, int], size: int, expected: tuple[int, int]) -> None:
    with Image.open(io.BytesIO(_thumbnail(_png(source), size))) as out:
        assert out.format == "PNG" and out.size == expected


def test_upscaling_keeps_the_pixels_crisp() -> None:
    with Image.open(io.BytesIO(_thumbnail(_png((28, 28), "RGB"), 112))) as out:
        values = {v for _, v in out.convert("L").getcolors() or []}
    assert values == {0, 255}  # nearest-neighbour: no blended greys between the checkerboard's cells
