"""The texts phenotypes are retrieved by (shared by evaluation, fitting and serving)."""

from __future__ import annotations

__all__ = ["absence_prompt", "phenotype_prompt"]


def phenotype_prompt(name: str, study: str = "chest radiograph") -> str:
    """The text a phenotype is retrieved by."""
    return f"{study[:1].upper()}{study[1:]} showing {name[:1].lower()}{name[1:]}."


def absence_prompt(name: str, study: str = "chest radiograph") -> str:
    """The text of a phenotype's absence, worded as the set-theory captions word excluded sets."""
    return f"{study[:1].upper()}{study[1:]}. No evidence of {name[:1].lower()}{name[1:]}."

