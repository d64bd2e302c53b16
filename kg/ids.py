"""HPO identifiers: the one rule for what an id looks like, shared by ingest, analysis and every API endpoint.

Input accepts ``HP:0001166``, ``hp:0001166`` and ``HP_0001166`` (the OBO PURL form); stored and answered ids are
always canonical ``HP:nnnnnnn``.
"""

from __future__ import annotations

import re
from typing import Final

ROOT_ID: Final = "HP:0000001"
PHENOTYPIC_ABNORMALITY: Final = "HP:0000118"

#: What a request may send as an HPO id (any case, ``:`` or ``_``).
HPO_ID_INPUT_PATTERN: Final = r"^[Hh][Pp][:_][0-9]{7}$"
#: A canonical, stored HPO id.
HPO_ID: Final = re.compile(r"^HP:\d{7}$")


def canonical_hpo_id(raw: str) -> str:
    """``hp:0002202`` / ``HP_0002202`` → ``HP:0002202`` (other text is returned stripped, unchanged)."""
    text = raw.strip()
    if len(text) == 10 and text[:2].upper() == "HP" and text[2] in ":_" and text[3:].isdigit():
        return "HP:" + text[3:]
    return text


def is_hpo_id(text: str) -> bool:
    """True for a canonical ``HP:nnnnnnn`` id."""
    return HPO_ID.match(text) is not None
