"""Words, the same on every page, file and report: counts ("1 rep", "2 reps", "1 partial rep"), numbers as a
message shows them, a check's short name, a camera view in a sentence."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (rules and judging import this module: no import back at run time)
    from .rules import ExerciseRule, RepCheck
    from .types import CheckResult

MESSAGE_FIELD = re.compile(r"\{(value|min|max)\}")  # the measurement placeholders of a check's message


def plural(n: int | float, noun: str, plural_form: str | None = None) -> str:
    """ "1 rep" / "0 reps" / "2 analyses" (plural_form for nouns that do not just take an s)."""
    word = noun if n == 1 else (plural_form or noun + "s")
    return f"{n:g} {word}" if isinstance(n, float) else f"{n} {word}"


def number_text(x: float) -> str:
    """A measurement or limit as a message shows it: whole degrees, small quantities (a hip sag of 5.5% of
    body length) to one decimal."""
    if not math.isfinite(x):
        return f"{x:.0f}"
    text = f"{x:.1f}" if abs(x) < 20 else f"{x:.0f}"
    return text[:-2] if text.endswith(".0") else text


def check_label(check: RepCheck) -> str:
    """A check's short name for tables and advice: its message up to the first ':' ("Not deep enough",
    "Knees caved in"), without the measurement placeholders; the angle and statistic when that is empty."""
    head = MESSAGE_FIELD.sub("", check.message.split(":", 1)[0]).strip(" ,;.")
    return head or f"{check.angle.replace('_', ' ')} {check.stat}"


def rule_check_for(rule: ExerciseRule, result: CheckResult) -> RepCheck | None:
    """The rule's rep check a stored CheckResult was judged against (matched by angle and statistic)."""
    return next((c for c in rule.rep_checks if c.angle == result.angle and c.stat == result.stat), None)


# How each view reads in a sentence ("filmed from the side", "film at an angle").
VIEW_PHRASES = {"side": "from the side", "front": "from the front", "rear": "from behind",
                "oblique": "at an angle"}


def view_phrase(view: str) -> str:
    return VIEW_PHRASES.get(view, f"from the {view}")
