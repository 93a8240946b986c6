"""Counts in words, the same on every page, file and report: "1 rep", "2 reps", "1 partial rep"."""

from __future__ import annotations


def plural(n: int | float, noun: str, plural_form: str | None = None) -> str:
    """ "1 rep" / "0 reps" / "2 analyses" (plural_form for nouns that do not just take an s)."""
    word = noun if n == 1 else (plural_form or noun + "s")
    return f"{n:g} {word}" if isinstance(n, float) else f"{n} {word}"
