"""Exercise rules: loaded from TOML into frozen dataclasses, validated on load.

The packaged `exercises.toml` holds a rule for each of the 8 gym exercises. A user rules file may
override any value (tables merge key by key; lists such as `frame_checks` replace the default list).
Every validation error names the file, the key and the offending value.

The rooms: `rule_types` (the vocabulary and the dataclasses), `rules_parse` (validation), `rules_dict` (a rule
back to a TOML table); this module reads the files, merges a user's over the packaged ones, and is where the
rest of the code imports all of it from.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

# Everything a caller needs about rules is imported from here (noqa: the names are for them).
from .rule_types import (DEFAULT_RULES_PATH, EXERCISES, PHASES, REP_STATS, VIEWS, Bounds,  # noqa: F401
                         Counting, Defaults, ExerciseRule, FrameCheck, Gate, LearnedCheck, RepCheck, RuleSet,
                         RulesError, SecondSignal)
from .rules_dict import rule_to_dict  # noqa: F401  (the inverse of parsing)
from .rules_parse import (ANGLE_RANGE, CONCENTRIC, MAX_DISPLAY_NAME, MAX_MESSAGE,  # noqa: F401
                          MAX_PHASE_NAME, parse_rules)


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# Levels of tables and arrays a rules file may have (the packaged one has 5). Deeper is refused with a reason
# before it costs anything: the TOML parser recurses on nested arrays and inline tables (RecursionError), a
# dotted key's memory grows with the square of its parts (200,000 parts took all the memory), and copying
# and merging the parsed tables recurse too.
MAX_NESTING = 32
_LONG_DOTTED_KEY = re.compile(r"(?<![\w-])(?:(?>[\w-]+|\"[^\"\n]*\"|'[^'\n]*')[ \t]*\.[ \t]*){%d}" % MAX_NESTING)


def _nesting(data: Any) -> int:
    """How many levels of tables and arrays `data` has (without recursion: it may be very deep)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        obj, depth = todo.pop()
        if isinstance(obj, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_NESTING:
                todo.extend((v, depth + 1) for v in (obj.values() if isinstance(obj, dict) else obj))
    return deepest


def _loads(text: str, label: str) -> dict:
    """TOML text -> dict; a UTF-8 byte order mark (Windows editors write one) is not part of the document."""
    too_deep = RulesError(f"{label}: nested too deeply (a rules file has at most {MAX_NESTING} levels of tables, "
                          "arrays and dotted keys)")
    text = text.removeprefix("\ufeff")
    if _LONG_DOTTED_KEY.search(text):
        raise too_deep
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RulesError(f"{label}: not valid TOML: {e}") from None
    except RecursionError:
        raise too_deep from None
    if _nesting(data) > MAX_NESTING:
        raise too_deep
    return data


def read_toml(path: str | Path, label: str | None = None) -> dict:
    """A rules file as a dict. Messages name the file as `label` (default: the path)."""
    path = Path(path)
    label = label or str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise RulesError(f"{label}: rules file not found") from None
    except UnicodeDecodeError:
        raise RulesError(f"{label}: cannot read rules file: not a text (UTF-8) file") from None
    except OSError as e:
        raise RulesError(f"{label}: cannot read rules file: {e.strerror or type(e).__name__}") from None
    return _loads(text, label)


def load_rules(user_path: str | Path | None = None, user_text: str | None = None,
               label: str | None = None) -> RuleSet:
    """The packaged rules, optionally overridden by a user rules file (path or TOML text). Error messages
    name the user's file as `label` (default: its path), e.g. a path relative to the workspace."""
    base = read_toml(DEFAULT_RULES_PATH)
    source = str(DEFAULT_RULES_PATH)
    if user_text is not None:
        source = str(user_path or "<uploaded rules>")
        override = _loads(user_text, label or source)
    elif user_path is not None:
        source = str(user_path)
        override = read_toml(user_path, label)
    else:
        override = {}
    if not isinstance(override.get("exercises", {}), dict):
        raise RulesError(f"{label or source}: exercises: expected a table")
    for name in override.get("exercises", {}):
        if name not in EXERCISES:
            raise RulesError(f"{label or source}: exercises.{name[:60]}: unknown exercise (known: {', '.join(EXERCISES)})")
    return parse_rules(_merge(base, override), source, label=label)
