"""``POST /retrieval/image`` (image → phenotypes, diseases, nearest evidence) and ``GET /evidence/{id}/image``.

The service (:class:`app.services.retrieval.RetrievalService`, ``app.state.retrieval``) owns the model and the
micro-batcher; this module reads the upload, hands it over and shapes the answer.
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser

from app.api.deps import GraphDep, RetrievalDep, ServicesDep, SettingsDep
from app.core.errors import ProblemError
from app.schemas.retrieval import RetrievalResponse, Scope
from app.services.retrieval_answer import AnswerRequest, build_answer
from kg.repo import evidence as evidence_repo
from kg.store.blobs import BlobStore

router = APIRouter(tags=["retrieval"])

#: Multipart framing allowed on top of the file itself before the Content-Length check refuses a request.
MULTIPART_SLACK: Final = 64 * 1024
_CONTENT_TYPES: Final = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "GIF": "image/gif",
                         "BMP": "image/bmp", "TIFF": "image/tiff", "WEBP": "image/webp", "JPEG2000": "image/jp2",
                         "PPM": "image/x-portable-pixmap"}
_PROBLEM: Final[dict[str, Any]] = {"content": {"application/problem+json": {}}}

_UPLOAD_BODY: Final[dict[str, Any]] = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["file"], "additionalProperties": False, "properties": {
        "file": {"type": "string", "format": "binary", "description": "A PNG or JPEG image (DICOM with pydicom)"}}},
}}}}


class _InMemoryUploadParser(MultiPartParser):
    """Keeps the file part in memory: the body limit (app.api.body_limit) caps it while it streams in, so no
    upload is ever spooled to a temporary directory."""

    spool_max_size = 1 << 62


async def _read_upload(request: Request, max_bytes: int) -> tuple[bytes, str | None]:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise ProblemError(415, "Unsupported Media Type",
                           "send the image as multipart/form-data in the field 'file'")
    try:
        form = await _InMemoryUploadParser(request.headers, request.stream(), max_files=1, max_fields=8).parse()
    except HTTPException:  # the body limit, raised while reading
        raise
    except Exception as exc:  # malformed multipart bodies raise several kinds
        raise ProblemError(400, "Bad Request", f"the multipart body cannot be parsed: {exc}") from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ProblemError(422, "Unprocessable Content", "the multipart field 'file' (an image file) is missing",
                               errors=[{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}])
        unexpected = sorted({key for key in form if key != "file"})
        if unexpected:
            raise ProblemError(422, "Unprocessable Content", "the upload takes one multipart field, 'file'",
                               errors=[{"loc": ["body", key], "msg": "Extra inputs are not permitted",
                                        "type": "extra_forbidden"} for key in unexpected])
        if upload.size is not None and upload.size > max_bytes:
            raise ProblemError(413, "Content Too Large",
                               f"the file is {upload.size} bytes; at most {max_bytes} are accepted")
        data = await upload.read(max_bytes + 1)
        return data, upload.content_type
    finally:
        await form.close()


@router.post("/retrieval/image", response_model=RetrievalResponse, openapi_extra=_UPLOAD_BODY,
             summary="Phenotypes, diseases and evidence images for an uploaded image",
             responses={400: {"description": "The multipart body cannot be parsed (or has more than 8 parts)",
                              **_PROBLEM},
                        413: {"description": "The file is larger than PHENOKG_RETRIEVAL_MAX_BYTES", **_PROBLEM},
                        415: {"description": "Not a PNG or JPEG image by its bytes (or DICOM without pydicom), "
                                             "or not a multipart upload", **_PROBLEM},
                        422: {"description": "Declared content type lies about the format; truncated or corrupt "
                                             "image; more pixels than PHENOKG_RETRIEVAL_MAX_PIXELS; no field "
                                             "'file', or another field beside it", **_PROBLEM},
                        503: {"description": "No image–text model is active (nor PHENOKG_CLIP_MODEL set); or "
                                             "scope=all while the ontology's prompts are being embedded (with "
                                             "Retry-After)", **_PROBLEM}})
async def retrieve_image(
    request: Request,
    settings: SettingsDep,
    services: ServicesDep,
    service: RetrievalDep,
    k: Annotated[int, Query(ge=1, le=100, description="Phenotypes to return")] = 10,
    findings: Annotated[int, Query(ge=0, le=100, description="Findings / diseases to return")] = 5,
    evidence: Annotated[int, Query(ge=0, le=100, description="Nearest evidence images to return")] = 6,
    scope: Annotated[Scope, Query(description="model: the phenotypes the model learned (default); all: every "
                                              "phenotypic abnormality by similarity alone, an extrapolation")
                     ] = "model",
    sources: Annotated[str | None, Query(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*(,[A-Za-z][A-Za-z0-9_]*)*$",
        description="Disease sources to rank findings from, comma-separated (default: the model's, e.g. "
                    "CXR_PACK; naming sources ranks all their diseases)")] = None,
) -> Response:
    """The image goes through the active image–text model's image tower (batched with concurrent requests).
    Each phenotype of the model's vocabulary gets a calibrated probability from label transfer (the nearest
    evidence images' ``SHOWS`` / ``RULES_OUT`` links) combined with the image–text similarity; the answer names
    the evidence behind each phenotype and what the neighbours rule out. Present and ruled-out phenotypes are
    ranked into findings by the likelihood ranker. An image far from all evidence is ``in_domain: false``."""
    started = time.perf_counter()
    data, declared = await _read_upload(request, settings.retrieval_max_bytes)
    query = await run_in_threadpool(service.prepare, data, declared, evidence=evidence)
    result = await asyncio.wrap_future(service.submit(query))
    wanted = AnswerRequest(k=k, findings=findings, evidence=evidence, scope=scope,
                           sources=sources.split(",") if sources else None)
    body = await run_in_threadpool(build_answer, service, services, query.state, result, wanted)
    body.elapsed_ms = round((time.perf_counter() - started) * 1000.0, 2)
    return Response(body.model_dump_json(), media_type="application/json")


def _thumbnail(data: bytes, size: int) -> bytes:
    """A PNG whose longest side is ``size``, aspect ratio kept: larger images shrink (Lanczos), smaller ones
    (28-px MedMNIST) grow with nearest-neighbour, so the pixels show as they are, with no invented detail."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        upscale = max(img.size) < size
        method = Image.Resampling.NEAREST if upscale else Image.Resampling.LANCZOS
        small: Image.Image = ImageOps.contain(img, (size, size), method=method)
        if small.mode not in ("L", "RGB", "RGBA", "LA"):
            small = small.convert("RGBA" if "A" in small.getbands() else "RGB")
        out = io.BytesIO()
        small.save(out, format="PNG")
    return out.getvalue()


@router.get("/evidence/{evidence_id}/image", summary="The image of an evidence item",
            response_class=Response,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}},
                             "description": "The stored image, or a PNG thumbnail with ``size``"},
                       404: {"description": "Unknown evidence id, or its image is not on this machine",
                             **_PROBLEM}})
def evidence_image(
    evidence_id: str,
    graph: GraphDep,
    settings: SettingsDep,
    size: Annotated[int | None, Query(ge=16, le=1024, description="Longest side of a PNG thumbnail")] = None,
) -> Response:
    """The image bytes as imported (content-addressed, so cacheable forever), or a thumbnail."""
    stored = evidence_repo.evidence_image(graph, evidence_id)
    if stored is None:
        raise ProblemError(404, "Not Found", f"no evidence {evidence_id!r}")
    sha, fmt = stored
    store = BlobStore(settings.blob_dir)
    try:
        data = store.get(sha)
    except (OSError, ValueError) as exc:
        raise ProblemError(404, "Not Found", f"the image of evidence {evidence_id!r} is not on this machine") \
            from exc
    etag = f'"{sha}-{size}"' if size else f'"{sha}"'
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": etag}
    if size is not None:
        return Response(_thumbnail(data, size), media_type="image/png", headers=headers)
    return Response(data, media_type=_CONTENT_TYPES.get(fmt.upper(), "application/octet-stream"), headers=headers)
