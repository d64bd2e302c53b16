"""Phenotype mentions in free text: the keyword linker and negation (no database access)."""
