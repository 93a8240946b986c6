"""The reliability table of a recognition: per confidence band of the named clips, how many there were and how
many were right, then "cannot tell" and "not one of these". Both evaluate reports show it (counting in auto
mode, `evaluate`; recognition alone, `evaluate_recognition`)."""

from __future__ import annotations

# Confidence bands of a named clip (the dashboard's: sure from SURE_CONFIDENCE), then the two unnamed outcomes.
BANDS = ((0.9, 1.0001, "sure, 90-100%"), (0.7, 0.9, "sure, 70-90%"), (0.5, 0.7, "not sure, 50-70%"))


def reliability_rows(items: list[tuple[str | None, float, str, bool]]) -> list[dict]:
    """The reliability table from (named, confidence, outcome, right) per clip: per band of the named clips
    how many there were and how many were right, then "cannot tell" and "not one of these" (right there
    means: a clip of a movement outside the exercises)."""
    rows = []
    for lo, hi, name in BANDS:
        b = [it for it in items if it[0] is not None and lo <= it[1] < hi]
        rows.append({"band": name, "clips": len(b), "right": sum(it[3] for it in b),
                     "wrong": sum(not it[3] for it in b)})
    for outcome, name in (("cannot_tell", "cannot tell"), ("none_of_these", "not one of these")):
        b = [it for it in items if it[0] is None and it[2] == outcome]
        rows.append({"band": name, "clips": len(b), "right": sum(it[3] for it in b), "wrong": sum(not it[3] for it in b)})
    return rows


def format_reliability(rows: list[dict]) -> list[str]:
    out = ["reliability (how often a name in each band was right):"]
    for b in rows:
        out.append(f"  {b['band']:18s} {b['clips']:4d} clips, {b['right']:4d} right, {b['wrong']:3d} wrong")
    return out
