"""The batch's record: the journal (batch.jsonl, one row per finished item, appended and fsynced, so a
re-run resumes), the table (batch.csv, written atomically), and which items an earlier run already did."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ..core.io import atomic_path
from ..datasets.penn_export import part_path
from .batch_plan import BATCH_COLUMNS, BatchItem, item_row

JOURNAL = "batch.jsonl"
TABLE = "batch.csv"


def read_journal(out_dir: Path) -> dict[str, dict]:
    """The last row per item from batch.jsonl (a torn last line, from a killed run, is ignored)."""
    rows: dict[str, dict] = {}
    path = out_dir / JOURNAL
    if not path.exists():
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(r, dict) and "item" in r:
                rows[str(r["item"])] = r
    return rows


class Journal:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a", encoding="utf-8")
        # A killed run can leave a torn line without a newline: start ours on a fresh line.
        if self._f.tell() > 0:
            with open(path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    self._f.write("\n")

    def append(self, row: dict) -> None:
        self._f.write(json.dumps(row, allow_nan=False, default=str) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def write_table(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(BATCH_COLUMNS), extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in BATCH_COLUMNS})


def already_done(item: BatchItem, prev: dict | None, out_dir: Path, fingerprint: str) -> bool:
    if item.kind == "penn":
        return part_path(out_dir, item.name).exists()  # export.json already guarantees the same rules
    return (prev is not None and prev.get("status") == "ok" and prev.get("rules_fingerprint") == fingerprint
            and (item.exercise is None or prev.get("exercise") == item.exercise)
            and (out_dir / item.name / "summary.json").is_file())


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def row_from_part(item: BatchItem, out_dir: Path) -> dict:
    """A table row for a clip finished by an earlier export without a journal row (e.g. export_dataset)."""
    import pandas as pd

    n = len(pd.read_parquet(part_path(out_dir, item.name), columns=["frame"]))
    return item_row(item, status="ok", frames=n, error="")
