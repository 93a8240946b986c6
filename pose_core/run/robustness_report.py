"""The robustness suite's summary, table and JSON (`run.robustness` runs it).

"Unchanged": the variant's count equals the untransformed clip's. "Exact": it equals the hand count.
Shares are over the pairs that ran (a transform that does not apply to a clip, e.g. the feet already out of
frame, is left out); a failed analysis counts as changed and not exact. The control (`reencode`, the same
frames written again) is shown but kept out of the overall share: it measures the encoding, not a camera.
"""

from __future__ import annotations

from dataclasses import asdict

from ..media.variants import CONTROL, TRANSFORMS
from .robustness import PairResult, SuiteResult


def _block(pairs: list[PairResult]) -> dict:
    ran = [p for p in pairs if p.ran]
    n = len(ran)
    unchanged, exact = sum(p.unchanged for p in ran), sum(p.exact for p in ran)
    return {"pairs": n, "unchanged": unchanged, "exact": exact, "failed": sum(bool(p.error) for p in ran),
            "not_applicable": len(pairs) - n,
            "share_unchanged": round(unchanged / n, 4) if n else None,
            "share_exact": round(exact / n, 4) if n else None}


def summarize(result: SuiteResult) -> dict:
    """Per transform, per clip, and overall (every transform but the control)."""
    tested = [p for p in result.pairs if p.transform != CONTROL]
    base = result.baselines
    return {
        "per_transform": {t: _block([p for p in result.pairs if p.transform == t]) for t in result.transforms},
        "per_clip": {b.file: _block([p for p in tested if p.file == b.file]) for b in base},
        "overall": _block(tested),
        "untransformed": {"clips": len(base), "exact": sum(b.exact for b in base),
                          "failed": sum(bool(b.error) for b in base)},
    }


def _cell(p: PairResult) -> str:
    if p.skipped:
        return "-"
    if p.error:
        return "E"
    return f"{p.counted}" + ("" if p.unchanged else "*")


def _share(n: int, share: float | None) -> str:
    return f"{n} (-)" if share is None else f"{n} ({share:.0%})"


def _grid(result: SuiteResult) -> list[str]:
    widths = [max(len(t), 3) for t in result.transforms]
    lines = [f"{'clip':24s} {'exercise':14s} {'hand':>4s} {'base':>4s} | " +
             " ".join(f"{t:>{w}s}" for t, w in zip(result.transforms, widths))]
    for b in result.baselines:
        row = {p.transform: p for p in result.pairs if p.file == b.file}
        base = "E" if b.counted is None else str(b.counted)
        lines.append(f"{b.file:24s} {b.exercise:14s} {b.expected:4d} {base:>4s} | " +
                     " ".join(f"{_cell(row[t]):>{w}s}" for t, w in zip(result.transforms, widths)))
    return lines


def _per_transform(result: SuiteResult, summary: dict) -> list[str]:
    lines = [f"{'transform':12s} {'pairs':>5s} {'unchanged':>10s} {'exact':>10s} {'failed':>6s} {'n/a':>4s}  what"]
    rows = list(summary["per_transform"].items()) + [("overall", summary["overall"])]
    for name, b in rows:
        what = TRANSFORMS[name].what if name in TRANSFORMS else f"every transform but the control ({CONTROL})"
        lines.append(f"{name:12s} {b['pairs']:5d} {_share(b['unchanged'], b['share_unchanged']):>10s} "
                     f"{_share(b['exact'], b['share_exact']):>10s} {b['failed']:6d} {b['not_applicable']:4d}  {what}")
    return lines


def _changes(result: SuiteResult) -> list[str]:
    lines = []
    for p in result.pairs:
        if p.skipped or p.unchanged:
            continue
        what = f"failed: {p.error}" if p.error else f"{p.baseline} -> {p.counted}"
        lines.append(f"  {p.file} x {p.transform}: {what} (hand {p.expected})" + (f"  [{p.note}]" if p.note else ""))
    return lines


def format_table(result: SuiteResult, summary: dict) -> str:
    u = summary["untransformed"]
    lines = [f"robustness: {len(result.baselines)} clips x {len(result.transforms)} transforms (seed {result.seed}, "
             f"{result.seconds:.0f} s); cell: the variant's count, * = changed from the untransformed clip (base), "
             "- = not applicable, E = failed", ""]
    lines += _grid(result) + [""] + _per_transform(result, summary)
    failed = f", {u['failed']} failed" if u["failed"] else ""
    lines.append(f"untransformed clips: {u['exact']}/{u['clips']} exact{failed}")
    changes = _changes(result)
    lines += ["", f"changed ({len(changes)}): clip x transform: untransformed -> variant"] + (changes or ["  none"])
    skipped = [f"  {p.file} x {p.transform}: {p.skipped}" for p in result.pairs if p.skipped]
    if skipped:
        lines += ["", f"not applicable ({len(skipped)}):"] + skipped
    lines += ["", f"{'clip':24s} {'pairs':>5s} {'unchanged':>10s} {'exact':>10s}"]
    for name, b in summary["per_clip"].items():
        lines.append(f"{name:24s} {b['pairs']:5d} {_share(b['unchanged'], b['share_unchanged']):>10s} "
                     f"{_share(b['exact'], b['share_exact']):>10s}")
    return "\n".join(lines)


def to_json(result: SuiteResult, summary: dict) -> dict:
    pairs = []
    for p in result.pairs:
        d = asdict(p)
        d.update(unchanged=p.unchanged, exact=p.exact)
        pairs.append(d)
    return {"folder": result.folder, "seed": result.seed, "seconds": result.seconds, "out_dir": result.out_dir,
            "transforms": {t: {"what": TRANSFORMS[t].what, "params": TRANSFORMS[t].params} for t in result.transforms},
            "clips": [{**asdict(b), "exact": b.exact} for b in result.baselines], "pairs": pairs, **summary}
