"""Free text → phenotype mentions (spans, ids, negation, uncertainty), in batches, with the dictionary linker.

The linker is built once per graph build from the snapshot (live terms under HP:0000118: names and
synonyms; ~1 s for the full HPO, on the first request after a build) and shared by every request.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.core.errors import ProblemError
from app.schemas.terms import (
    MAX_DOCUMENT_CHARS,
    MAX_DOCUMENTS,
    MAX_TOTAL_CHARS,
    AnnotatedDocument,
    AnnotateRequest,
    AnnotateResponse,
    MentionOut,
    Problem,
)

router = APIRouter(tags=["annotate"])

#: Largest request body accepted: 1,000,000 characters of text with room for JSON escapes.
MAX_BODY_BYTES = 8 * 1024 * 1024  # enforced while reading by app.api.body_limit


@router.post("/annotate", response_model=AnnotateResponse,
             summary="Find phenotype mentions in free text (batch)",
             description=f"Up to {MAX_DOCUMENTS} documents of up to {MAX_DOCUMENT_CHARS:,} characters each "
                         f"(more → 422), at most {MAX_TOTAL_CHARS:,} characters in all and a body of at most "
                         "8 MiB (more → 413). Each mention gives its span "
                         "(`text == document.text[start:end]`, offsets in Unicode code points), the HPO id and "
                         "name, the lexicon string that matched, and whether it is negated (\"no pleural "
                         "effusion\") or uncertain (\"possible cardiomegaly\"). Empty texts give no mentions.",
             responses={413: {"model": Problem, "description": "Request body or total text too large"}})
def annotate(request: AnnotateRequest, services: ServicesDep) -> AnnotateResponse:
    total = sum(len(d.text) for d in request.documents)
    if total > MAX_TOTAL_CHARS:
        raise ProblemError(413, "Content Too Large",
                           f"the documents hold {total:,} characters; at most {MAX_TOTAL_CHARS:,} per request "
                           "(split the batch)")
    linker = services.linker()
    out = []
    for position, document in enumerate(request.documents):
        mentions = linker.annotate(document.text) if document.text else []
        out.append(AnnotatedDocument(
            id=document.id if document.id is not None else str(position),
            mentions=[MentionOut(start=m.start, end=m.end, text=m.text, id=m.id, name=m.name, matched=m.matched,
                                 field=m.field, negated=m.negated, uncertain=m.uncertain)  # type: ignore[arg-type]
                      for m in mentions]))
    return AnnotateResponse(documents=out)
