"""Batch analysis: many videos, or a whole Penn Action folder, in parallel, resumable.

    python -m pose_core batch INPUT --out DIR [--exercise EX | --from-folder-names] [--workers N]
                                    [--scheduler tcp://host:port] [--no-video] [--penn]

INPUT is either
- a folder of videos (searched recursively): each video is one item, analysed with
  `pipeline.analyze_video` into DIR/<video stem>/. The exercise is --exercise for all of them, `auto`
  (recognised per video), or by default taken from the names: the nearest parent folder called like an
  exercise (`squat/clip.mp4`), else the file name's prefix (`squat_3.mp4`, `bench-press 2.mov`);
- or a Penn Action folder (`--penn`, or detected by its `labels/` subfolder): each annotated clip of the
  gym classes is one item, labelled with `penn_labels.export_clip` into DIR/parts/<clip>.parquet (plus
  labelled images when the frames exist), and DIR/manifest.parquet + .csv are assembled at the end,
  exactly the layout of `penn_labels.export_dataset`.

Where it runs: by default a pool of local processes (one per core). Each process builds its own pose
model (MediaPipe is not fork-safe once used, so the pool uses the "spawn" start method and the parent
never builds one). With `--scheduler tcp://host:port` every item is one task on an existing Dask
cluster (its workers need this package and must see INPUT and DIR at the same paths). Both go through
the same small executor interface (`submit`, `as_completed`).

Results in DIR:
    batch.jsonl   journal: one JSON row per finished item, appended (and fsynced) as it finishes
    batch.csv     the table (item, exercise, status, reps, reps_correct, reps_incorrect, partial_reps,
                  frames, seconds, error, source), written atomically at the end
Re-running resumes: an item whose last journal row is ok, made with the same rules (fingerprint) and
exercise, and whose output is still on disk, is skipped. A bad item (corrupt video, nobody in frame,
unreadable label file) is an error row, never fatal to the batch. A worker process that crashes is
survived too: the items that were in flight are re-run one at a time, so only the culprit fails.

The last stdout line is a JSON summary: items, ok (including skipped), errors, skipped, seconds, workers.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import csv
import json
import multiprocessing
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from ..core.io import atomic_path
from ..core.rules import RuleSet

BATCH_COLUMNS = ("item", "exercise", "status", "reps", "reps_correct", "reps_incorrect", "partial_reps", "frames",
                 "seconds", "error", "source")
JOURNAL = "batch.jsonl"
TABLE = "batch.csv"
VIDEO_EXTENSIONS = ("mp4", "mov", "m4v", "webm", "mkv", "avi")
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class BatchInputError(ValueError):
    """Bad input for a whole batch (missing folder, no videos, unreachable scheduler): the message is
    meant for the user; the CLI prints it as one `error:` line and exits 2."""


@dataclass(frozen=True)
class BatchItem:
    """One unit of work. `name` is unique in the batch and names the item's output (subfolder or part)."""

    name: str
    kind: str  # "video" | "penn"
    source: str  # the video file, or the clip's .mat file
    exercise: str | None  # None: to be recognised (video, --exercise auto)
    rel: str = ""  # source relative to INPUT, for the table


# ------------------------------------------------------------------------------------ planning

def _norm(s: str) -> str:
    return re.sub(r"[\s\-]+", "_", s.strip().lower())


def exercise_from_path(rel_path: str | Path, exercises: Iterable[str]) -> str | None:
    """The exercise named by a video's path: the nearest parent folder whose name is an exercise
    (`squat/`, `Bench Press/`), else the file name's prefix (`squat_3.mp4`, `pushups-1.mov`, `situp.mp4`).
    None when nothing matches. The longest exercise name wins (no exercise is a prefix of another today)."""
    rel_path = Path(rel_path)
    names = sorted(exercises, key=len, reverse=True)
    for folder in reversed(rel_path.parent.parts):
        f = _norm(folder)
        for ex in names:
            if f in (ex, ex + "s"):
                return ex
    stem = _norm(rel_path.stem)
    for ex in names:
        if re.match(rf"^{re.escape(ex)}s?(?:$|[_.\d])", stem):
            return ex
    return None


def _safe_name(s: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._-")
    return s or "item"


def find_videos(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Video files under `folder` (recursive; hidden files and folders and anything under `exclude`
    skipped), sorted by relative path."""
    folder = folder.resolve()
    ex = exclude.resolve() if exclude is not None else None
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if ex is not None and (p == ex or ex in p.parents):
            continue
        if p.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS and p.is_file():
            out.append(p)
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


def plan_videos(folder: Path, exercises: Sequence[str], exercise: str | None,
                exclude: Path | None = None) -> tuple[list[BatchItem], list[dict]]:
    """Items for a folder of videos, and error rows for videos whose exercise cannot be told from their
    names (when `exercise` is None). exercise == "auto": left to recognition (BatchItem.exercise None)."""
    folder = folder.resolve()
    videos = find_videos(folder, exclude)
    stems = [_safe_name(v.stem) for v in videos]
    taken: set[str] = set()
    items, errors = [], []
    for v, stem in zip(videos, stems):
        rel = v.relative_to(folder).as_posix()
        name = stem if stems.count(stem) == 1 else _safe_name(rel.rsplit(".", 1)[0].replace("/", "__"))
        base, n = name, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        if exercise == "auto":
            ex = None
        elif exercise is not None:
            ex = exercise
        else:
            ex = exercise_from_path(rel, exercises)
            if ex is None:
                errors.append(_row(BatchItem(name, "video", str(v), None, rel), status="error", error=(
                    "cannot tell the exercise from the file or folder name (name it like squat_1.mp4 or put it "
                    "in a folder called squat), or pass --exercise")))
                continue
        items.append(BatchItem(name, "video", str(v), ex, rel))
    return items, errors


def plan_penn(root: Path, actions: Sequence[str], split: str | None, limit: int | None
              ) -> tuple[list[BatchItem], list[dict]]:
    """Items for the Penn Action clips of `actions` (the first `limit` by id), and error rows for label
    files that cannot be read."""
    from ..datasets.penn import scan_dataset

    scan = scan_dataset(root, actions=actions, split=split)
    clips = scan.clips[:limit] if limit is not None else scan.clips
    items = [BatchItem(c.id, "penn", str(c.labels_path), c.action, f"labels/{c.labels_path.name}") for c in clips]
    errors = [_row(BatchItem(p.stem, "penn", str(p), None, f"labels/{p.name}"), status="error", error=msg)
              for p, msg in scan.errors]
    return items, errors


# ------------------------------------------------------------------------------------ the work

def _row(item: BatchItem, **values) -> dict:
    row = {c: None for c in BATCH_COLUMNS}
    row.update(item=item.name, exercise=item.exercise, source=item.rel or item.source)
    row.update(values)
    return row


_INITIALISED = False


def _worker_init() -> None:
    """Once per worker process (local pool initializer; first task on a Dask worker)."""
    global _INITIALISED
    if _INITIALISED:
        return
    _INITIALISED = True
    os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported in this process
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(1)  # one core per process: the pool is the parallelism


def run_video_item(item: BatchItem, out_dir: str, rules: RuleSet, write_video: bool, fingerprint: str) -> dict:
    """Analyse one video into out_dir/<item.name>/. Never raises for a bad video: returns an error row."""
    from .pipeline import AnalysisError, analyze_video
    from ..media.video import VideoError

    _worker_init()
    t0 = time.perf_counter()
    row = _row(item, rules_fingerprint=fingerprint)
    try:
        # None: recognised by the pipeline on the clip's first seconds, whose poses it then reuses.
        res = analyze_video(item.source, item.exercise or "auto", Path(out_dir) / item.name, rules=rules,
                            write_video=write_video)
        s = res.summary
        row["exercise"] = s["exercise"]
        row.update(status="ok", reps=s["reps"], reps_correct=s["reps_correct"], reps_incorrect=s["reps_incorrect"],
                   partial_reps=s["partial_reps"], frames=s["frames"], error="")
    except (VideoError, AnalysisError) as e:
        row.update(status="error", error=str(e))
    except Exception as e:  # one bad item must not stop the batch; say what it was
        row.update(status="error", error=f"unexpected failure: {type(e).__name__}: {e}")
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def run_penn_item(item: BatchItem, out_dir: str, rules: RuleSet, write_images: bool, fingerprint: str) -> dict:
    """Label one Penn Action clip into out_dir/parts/<clip>.parquet (+ images). Returns its row."""
    from ..datasets.penn import load_clip
    from ..datasets.penn_labels import export_clip

    _worker_init()
    t0 = time.perf_counter()
    row = _row(item, rules_fingerprint=fingerprint)
    try:
        clip = load_clip(item.source)
        done = export_clip(clip, rules, out_dir, images=write_images)
        note = f"warning: {len(done.errors)} frame image(s) missing or unreadable" if done.errors else ""
        row.update(status="ok", exercise=clip.action, reps=done.reps.reps, reps_correct=done.reps.reps_correct,
                   reps_incorrect=done.reps.reps_incorrect, partial_reps=done.reps.partial_reps, frames=done.frames,
                   error=note)
    except (ValueError, OSError) as e:  # PennFormatError is a ValueError
        row.update(status="error", error=str(e))
    except Exception as e:
        row.update(status="error", error=f"unexpected failure: {type(e).__name__}: {e}")
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


# ------------------------------------------------------------------------------------ executors

class LocalExecutor:
    """A pool of `workers` local processes started with "spawn" (nothing MediaPipe-related is inherited)."""

    crash_prone = True  # a dying worker breaks the whole pool (BrokenProcessPool)

    def __init__(self, workers: int):
        if workers < 1:
            raise BatchInputError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self.description = f"local, {workers} process{'es' if workers != 1 else ''}"
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_worker_init)

    def submit(self, fn: Callable, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def as_completed(self, futures: Iterable) -> Iterator:
        return cf.as_completed(list(futures))

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class DaskExecutor:
    """One task per item on an existing Dask cluster (`distributed.Client(address)`)."""

    crash_prone = False  # the scheduler re-runs tasks of dead workers and fails only the culprit (KilledWorker)

    def __init__(self, address: str, timeout_s: float = 10.0):
        try:
            from distributed import Client
        except ImportError:
            raise BatchInputError("--scheduler needs the 'distributed' package (pip install distributed)") from None
        try:
            self.client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise BatchInputError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        try:
            self.client.wait_for_workers(1, timeout=timeout_s)
        except (TimeoutError, OSError):
            self.client.close()
            raise BatchInputError(f"the Dask scheduler at {address} has no workers (waited {timeout_s:g} s)") from None
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        self.workers = sum(int(w.get("nthreads", 1)) for w in info.values()) or 1
        self.description = f"dask {address}, {len(info)} worker(s), {self.workers} thread(s)"

    def submit(self, fn: Callable, *args):
        return self.client.submit(fn, *args, pure=False)

    def as_completed(self, futures: Iterable) -> Iterator:
        from distributed import as_completed

        return iter(as_completed(list(futures), loop=self.client.loop))

    def restart(self) -> None:  # pragma: no cover - never needed (not crash_prone)
        pass

    def close(self, cancel: bool = False) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def run_items(executor, fn: Callable, items: Sequence[BatchItem], args: tuple,
              on_done: Callable[[dict], None]) -> None:
    """Run fn(item, *args) for every item on the executor, calling on_done(row) as each finishes.

    A task that raises gives an error row. When a local worker process dies (the pool breaks), the items
    that were in flight (the first workers + 1 unfinished ones in submission order: the pool dispatches in
    order) are re-run one at a time, so a crash is pinned on its own item; the rest go on in parallel."""
    pending = list(items)
    suspects: list[BatchItem] = []
    while pending or suspects:
        if suspects:
            item = suspects.pop(0)
            try:
                row = executor.submit(fn, item, *args).result()
            except cf.process.BrokenProcessPool:
                row = _row(item, status="error", error="the worker process crashed while processing this item")
                executor.restart()
            except Exception as e:
                row = _row(item, status="error", error=f"task failed: {type(e).__name__}: {e}")
            on_done(row)
            continue
        futures = {executor.submit(fn, it, *args): it for it in pending}
        order = list(futures)
        pending = []
        reported: set = set()
        broken = False
        for f in executor.as_completed(order):
            try:
                row = f.result()
            except cf.process.BrokenProcessPool:
                broken = True
                break
            except Exception as e:  # e.g. distributed's KilledWorker, a task that could not be unpickled
                row = _row(futures[f], status="error", error=f"task failed: {type(e).__name__}: {e}")
            reported.add(f)
            on_done(row)
        if broken:
            unfinished = []
            for f in order:
                if f in reported:
                    continue
                if f.done() and not f.cancelled() and f.exception() is None:
                    reported.add(f)
                    on_done(f.result())
                else:
                    unfinished.append(futures[f])
            executor.restart()
            k = executor.workers + 1
            suspects, pending = unfinished[:k], unfinished[k:]


# ------------------------------------------------------------------------------------ journal and table

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


def _already_done(item: BatchItem, prev: dict | None, out_dir: Path, fingerprint: str) -> bool:
    if item.kind == "penn":
        from ..datasets.penn_labels import part_path

        return part_path(out_dir, item.name).exists()  # export.json already guarantees the same rules
    return (prev is not None and prev.get("status") == "ok" and prev.get("rules_fingerprint") == fingerprint
            and (item.exercise is None or prev.get("exercise") == item.exercise)
            and (out_dir / item.name / "summary.json").is_file())


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _row_from_part(item: BatchItem, out_dir: Path) -> dict:
    """A table row for a clip finished by an earlier export without a journal row (e.g. export_dataset)."""
    import pandas as pd

    from ..datasets.penn_labels import part_path

    n = len(pd.read_parquet(part_path(out_dir, item.name), columns=["frame"]))
    return _row(item, status="ok", frames=n, error="")


# ------------------------------------------------------------------------------------ the batch

@dataclass
class BatchReport:
    mode: str  # "videos" | "penn"
    out_dir: str
    items: int
    ok: int  # including skipped
    errors: int
    skipped: int
    seconds: float
    workers: int
    executor: str
    rows: list[dict]

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("rows")
        d["batch_csv"] = str(Path(self.out_dir) / TABLE)
        return d


def run_batch(input_dir: str | Path, out_dir: str | Path, *, exercise: str | None = None, penn: bool | None = None,
              workers: int | None = None, scheduler: str | None = None, write_video: bool = True,
              rules: RuleSet | None = None, split: str | None = None, limit: int | None = None,
              connect_timeout_s: float = 10.0, progress: bool = True,
              log: Callable[[str], None] | None = None) -> BatchReport:
    """Run a batch (see the module docstring). Raises BatchInputError for bad input; never for a bad item.

    penn: True / False, or None to detect a Penn Action folder by its labels/ subfolder.
    exercise: videos: one exercise for all, "auto", or None (from names); Penn: restrict to one action.
    workers: local processes (default: all cores, at most one per item); refused together with
    `scheduler` (the cluster decides). split / limit: Penn only (official split, first N clips)."""
    from ..datasets.penn import GYM_CLASSES
    from ..datasets.penn_labels import export_columns, export_lock, prepare_export_dir, rules_fingerprint, write_manifest
    from ..core.rules import load_rules

    t0 = time.perf_counter()
    src = Path(input_dir)
    out = Path(out_dir)
    if not src.exists():
        raise BatchInputError(f"{src}: folder not found")
    if not src.is_dir():
        raise BatchInputError(f"{src}: not a folder (give a folder of videos or a Penn Action folder)")
    if scheduler is not None and workers is not None:
        raise BatchInputError("--workers applies to local runs; with --scheduler the Dask cluster's workers are used")
    if workers is not None and workers < 1:
        raise BatchInputError(f"--workers must be at least 1, got {workers}")
    if limit is not None and limit < 1:
        raise BatchInputError(f"--limit must be at least 1, got {limit}")
    rules = rules or load_rules()
    known = sorted(rules.exercises)
    if penn is None:
        penn = (src / "labels").is_dir()
    if exercise is not None and exercise not in known and not (exercise == "auto" and not penn):
        raise BatchInputError(f"unknown exercise {exercise!r}; choose one of: {', '.join(known)}"
                              + ("" if penn else ", auto"))
    if exercise == "auto":
        try:
            from ..datasets.recognition import default_recognizer

            default_recognizer()  # fail here, once, rather than in every task
        except Exception as e:
            raise BatchInputError(f"--exercise auto is not available (no usable exercise recogniser: {e})") from None

    if penn:
        if not (src / "labels").is_dir():
            raise BatchInputError(f"{src}: not a Penn Action folder (no labels/ subfolder)")
        actions = (exercise,) if exercise else tuple(a for a in GYM_CLASSES if a in rules.exercises)
        if split is not None and split not in ("train", "test"):
            raise BatchInputError(f"--split must be train or test, got {split!r}")
        items, plan_errors = plan_penn(src, actions, split, limit)
        if not items and not plan_errors:
            raise BatchInputError(f"{src}: no Penn Action clips of {', '.join(actions)} found")
        fingerprint = rules_fingerprint(rules, actions)
        mode, fn = "penn", run_penn_item
    else:
        items, plan_errors = plan_videos(src, known, exercise, exclude=out)
        if not items and not plan_errors:
            raise BatchInputError(f"{src}: no videos found ({', '.join(VIDEO_EXTENSIONS)})")
        fingerprint = rules_fingerprint(rules)
        mode, fn = "videos", run_video_item

    with contextlib.ExitStack() as stack:
        executor: LocalExecutor | DaskExecutor | None = None
        if scheduler is not None:  # before anything is written: an unreachable cluster leaves no trace
            executor = DaskExecutor(scheduler, connect_timeout_s)
            stack.callback(executor.close, True)
        out.mkdir(parents=True, exist_ok=True)
        try:
            stack.enter_context(export_lock(out))
        except RuntimeError:
            raise BatchInputError(f"another batch or export is already running in {out}") from None
        if penn:
            try:
                prepare_export_dir(out, rules, actions, src)
            except ValueError as e:
                raise BatchInputError(str(e)) from None

        journal_rows = read_journal(out)
        results: dict[str, dict] = {r["item"]: r for r in plan_errors}
        todo: list[BatchItem] = []
        for it in items:
            prev = journal_rows.get(it.name)
            if _already_done(it, prev, out, fingerprint):
                results[it.name] = prev if prev is not None and prev.get("status") == "ok" else _row_from_part(it, out)
            else:
                todo.append(it)
        skipped = len(items) - len(todo)
        if mode == "videos":  # biggest first: a long clip started last would leave the other workers idle
            todo.sort(key=lambda it: -_size(it.source))

        if todo and executor is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            executor = LocalExecutor(workers if workers is not None else max(1, min(cores, len(todo))))
            stack.callback(executor.close, True)  # also on errors and Ctrl-C: cancel what has not started
        journal = stack.enter_context(contextlib.closing(Journal(out / JOURNAL)))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = stack.enter_context(tqdm(
                total=len(items) + len(plan_errors), initial=skipped + len(plan_errors), unit="item",
                desc=f"batch ({executor.description})" if executor else "batch", file=sys.stderr,
                dynamic_ncols=True, leave=False, disable=None))

        def report_failure(row: dict) -> None:
            if row.get("status") != "ok" and log is not None:
                log(f"failed: {row['item']}: {row.get('error')}")

        def on_done(row: dict) -> None:
            results[row["item"]] = row
            journal.append(row)
            if bar is not None:
                bar.update(1)
            report_failure(row)

        for r in plan_errors:
            journal.append(r)
            report_failure(r)
        order = [it.name for it in items] + [r["item"] for r in plan_errors]
        try:
            if executor is not None:
                run_items(executor, fn, todo, (str(out), rules, write_video, fingerprint), on_done)
        except BaseException:  # KeyboardInterrupt: keep the table of what finished (the journal has it too)
            write_table(out / TABLE, [results[n] for n in order if n in results])
            raise
        rows = [results[n] for n in order]
        write_table(out / TABLE, rows)
        if penn:
            ok_ids = [it.name for it in items if results[it.name].get("status") == "ok"]
            write_manifest(out, ok_ids, export_columns(rules, actions))

    ok = sum(r.get("status") == "ok" for r in rows)
    return BatchReport(mode=mode, out_dir=str(out), items=len(rows), ok=ok, errors=len(rows) - ok, skipped=skipped,
                       seconds=round(time.perf_counter() - t0, 2),
                       workers=executor.workers if executor is not None else 0,
                       executor=executor.description if executor is not None else "none (nothing to do)", rows=rows)


# ------------------------------------------------------------------------------------ command line

def cmd_batch(args: argparse.Namespace) -> int:
    from ..core.rules import RulesError, load_rules

    def fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return code

    try:
        rules = load_rules(args.rules) if args.rules else load_rules()
    except RulesError as e:
        return fail(f"invalid rules file: {e}")
    out = Path(args.out) if args.out else Path("runs") / f"batch_{Path(args.input).resolve().name}"

    def log(msg: str) -> None:
        if not args.quiet:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)

    try:
        report = run_batch(args.input, out, exercise=None if args.from_folder_names else args.exercise,
                           penn=True if args.penn else None, workers=args.workers, scheduler=args.scheduler,
                           write_video=not args.no_video, rules=rules, split=args.split, limit=args.limit,
                           connect_timeout_s=args.connect_timeout, progress=not args.quiet, log=log)
    except BatchInputError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return fail(f"interrupted; finished items are kept in {out} (batch.jsonl): run the same command again "
                    "to resume", EXIT_INTERRUPTED)
    print(json.dumps(report.summary()))
    return 0


def add_batch_parser(subparsers) -> argparse.ArgumentParser:
    """Register `batch` on the CLI's sub-command parsers."""
    b = subparsers.add_parser(
        "batch", help="analyse a folder of videos or label a Penn Action folder, in parallel (local or Dask)",
        description="Analyse every video in a folder (or label every clip of a Penn Action folder) in parallel, "
                    "on local processes or a Dask cluster. Resumable: run the same command again after an "
                    "interruption. Results: one subfolder per video (or parts/ + manifest for Penn Action), "
                    "batch.csv and batch.jsonl in --out.")
    b.add_argument("input", help="a folder of videos (searched recursively) or a Penn Action folder (with labels/)")
    b.add_argument("--out", "-o", help="output folder (default: runs/batch_<input folder name>)")
    ex = b.add_mutually_exclusive_group()
    ex.add_argument("--exercise", "-e", help="videos: the exercise of all videos, or auto (recognised per video); "
                                             "Penn Action: label only this class")
    ex.add_argument("--from-folder-names", action="store_true",
                    help="videos (the default): exercise from the parent folder name or the file name prefix, "
                         "e.g. squat/clip.mp4 or squat_1.mp4")
    b.add_argument("--workers", "-j", type=int, help="local worker processes (default: all cores)")
    b.add_argument("--scheduler", help="run on a Dask cluster: the scheduler's address, e.g. tcp://10.0.0.5:8786")
    b.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the Dask scheduler and its first worker (default 10)")
    b.add_argument("--no-video", action="store_true",
                   help="videos: skip the annotated video (faster); Penn Action: skip the labelled images")
    b.add_argument("--penn", action="store_true", help="INPUT is a Penn Action folder (detected from labels/ anyway)")
    b.add_argument("--split", choices=("train", "test"), help="Penn Action: only this official split")
    b.add_argument("--limit", type=int, help="Penn Action: only the first N clips (by id)")
    b.add_argument("--rules", help="a rules TOML file overriding the packaged rules")
    b.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no per-item failure lines")
    b.set_defaults(func=cmd_batch)
    return b


__all__ = [
    "BATCH_COLUMNS", "BatchInputError", "BatchItem", "BatchReport", "DaskExecutor", "LocalExecutor", "add_batch_parser",
    "exercise_from_path", "find_videos", "plan_penn", "plan_videos", "read_journal", "run_batch", "run_items",
    "run_penn_item", "run_video_item",
]
