"""One video's poses on every core: the model runs on time chunks of the video in worker processes, and the
poses come back joined in frame order, so the cheap part (Session: angles, smoothing, counting, judging) runs
once, in one place, over the whole sequence and never sees a chunk boundary.

- `plan_chunks` cuts the video's time line into chunks; each worker estimates a chunk with its own tracking
  model, starting `LEAD_IN_S` earlier (the lead-in's poses are thrown away) so tracking and MediaPipe's
  landmark smoothing have settled at the chunk's first frame.
- `PosePool`: long-lived worker processes (`workers.Worker`: spawned, dying with their parent, deaf to
  SIGINT) that take chunks from one queue (a free worker takes the next chunk in time order) and stream
  poses back in small batches. Each keeps a spare estimator warmed on a blank image (no person: no tracking
  state), so a pool that is kept (the dashboard's) starts the next video at once.
- `StreamedPoses` is what the pipeline's frame loop uses as its "estimator": `process(img, t)` returns the
  next pose in order (waiting for it when needed) after checking that it belongs to the frame at `t`; a
  mismatch (a file whose frames decode differently from the middle) raises ChunkMismatch and the pipeline
  runs the single-process path instead.

Memory: poses (~1 KB a frame, no images) wait only until the frame loop reaches them.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..core.types import PoseFrame
from ..media.video import VideoInfo
from .workers import Worker, spawn_context, stop_all

LEAD_IN_S = 1.0  # tracking from this much earlier than a chunk's start (0.5 s left bench_press_12 one rep short)
MIN_CHUNK_S = 4.0  # a chunk shorter than this costs more (lead-in, start-up) than it saves
BATCH_FRAMES = 6  # poses per message from a worker
# A kept worker warms its next estimator this long after a chunk, not at once: when the chunk ends the result
# is being published and the browser draws it (a model's start-up is ~0.6 CPU-s a worker, on the same cores).
SPARE_AFTER_S = 4.0
POLL_S = 0.1  # how often a waiting parent looks at its workers (and reports progress)


class ParallelError(RuntimeError):
    """The worker processes could not estimate the video (the single-process path is used instead)."""


class ChunkMismatch(ParallelError):
    """The poses from the workers do not line up with the frames decoded by the frame loop."""


@dataclass(frozen=True)
class Chunk:
    index: int
    start_s: float  # poses for start_s <= t < end_s (end_s None: to the end)
    end_s: float | None
    lead_in_s: float  # estimated from start_s - lead_in_s, poses thrown away


def plan_chunks(duration_s: float, workers: int, lead_in_s: float = LEAD_IN_S,
                chunks_per_worker: int = 1, min_chunk_s: float = MIN_CHUNK_S) -> list[Chunk]:
    """Chunks of equal work, `chunks_per_worker` per worker (a free worker takes the next one), none shorter
    than min_chunk_s. Equal work, not equal time: every chunk but the first also runs its lead-in through the
    model, so the first is longer by the lead-in and the workers end together (pushup_1, 23.6 s: 12.3 s of
    video each instead of 11.8 s and 11.8 + 1.0 s). One per worker by default: every boundary runs LEAD_IN_S
    of frames through the model twice and every further chunk on a worker starts a fresh estimator, while the
    frame loop keeps up with the first chunk anyway (squat_10, 22.7 s, whole process: 14.3 s with 2 chunks,
    16.0 s with 4)."""
    n = max(1, min(workers * chunks_per_worker, int(duration_s // min_chunk_s)))
    work = (duration_s + (n - 1) * lead_in_s) / n  # seconds through the model per chunk, lead-in included
    cuts = [0.0] + [work + i * (work - lead_in_s) for i in range(n - 1)]
    return [Chunk(i, s, cuts[i + 1] if i + 1 < n else None, 0.0 if i == 0 else lead_in_s)
            for i, s in enumerate(cuts)]


# ------------------------------------------------------------------------------------------ worker side

def _blank_warm(est) -> None:
    """Run the model once on a blank image: the graph's first-frame cost (~0.25 s) is paid now, and no
    person is found, so no tracking state carries over into the video."""
    import numpy as np

    est.process(np.zeros((64, 64, 3), np.uint8), 0.0)


def _worker_main(tasks, results, current, keep_spare: bool = True) -> None:
    """A pose worker (a `workers.Worker`): takes (job, chunk, video, info, max_side) tasks until None.
    keep_spare: warm the next chunk's estimator SPARE_AFTER_S after a chunk is done (a kept pool: the next
    video starts at once); else it is made when a next chunk comes (a one-shot pool does not spend a core on an
    estimator nobody uses)."""
    from ..media.estimator import PoseEstimator
    from .live_gate import waiter_from_env

    gate = waiter_from_env()  # the server's live frames go first (a dashboard's analysis process sets it)

    def fresh():
        est = PoseEstimator(static_image_mode=False)
        _blank_warm(est)
        return est

    spare = fresh()
    results.put(("ready", 0, -1, os.getpid()))
    warm_later = False  # a chunk was just done: its spare is warmed SPARE_AFTER_S later, unless a task comes
    while True:
        try:
            task = tasks.get(timeout=SPARE_AFTER_S) if warm_later else tasks.get()
        except queue.Empty:
            spare, warm_later = fresh(), False
            continue
        if task is None:
            break
        job, chunk, video, info, max_side = task
        if current.value != job:
            continue  # cancelled before we got to it
        est, spare = spare or fresh(), None
        try:
            n = _estimate_chunk(est, job, chunk, video, info, max_side, results, current, gate)
            results.put(("done", job, chunk.index, n))
        except Exception as e:  # reported to the parent, which falls back to one process
            results.put(("error", job, chunk.index, f"{type(e).__name__}: {e}"))
        finally:
            est.close()
        warm_later = keep_spare  # (for the next chunk; a task that comes first makes its own)
    if spare is not None:
        spare.close()


def _estimate_chunk(est, job: int, chunk: Chunk, video: str, info: VideoInfo, max_side: int, results, current,
                    gate) -> int:
    """One chunk's poses to the parent in small batches, each with its frame's picture signature (cut
    detection: the parent need not decode), and the stretches that could not be read before the frame after
    them. Returns how many poses were sent (the lead-in's are not)."""
    from ..media.shots import frame_signature
    from ..media.video import read_frames

    batch: list = []
    n = said = 0
    start = max(0.0, chunk.start_s - chunk.lead_in_s)
    tol = 0.25 / info.fps if info.fps else 0.0
    found: list = []  # stretches that could not be read (damage)
    for t, img in read_frames(video, max_side=max_side, backend="av", start_s=start, end_s=chunk.end_s,
                              info=info, for_model=True, gaps=found):
        if current.value != job:
            break
        if len(found) > said:
            if batch:
                results.put(("poses", job, chunk.index, batch))
                batch = []
            new = [tuple(g) for g in found[said:] if g[1] > chunk.start_s - tol]
            said = len(found)
            if new:
                results.put(("gaps", job, chunk.index, new))
        if gate is not None:
            gate.wait()
        pose = est.process(img, t)
        if t < chunk.start_s - tol:
            continue  # lead-in: tracking settles, the pose is not used
        batch.append((t, pose, frame_signature(img)))
        n += 1
        if len(batch) >= BATCH_FRAMES or n == 1:  # the first pose at once: the frame loop starts
            results.put(("poses", job, chunk.index, batch))
            batch = []
    if batch:
        results.put(("poses", job, chunk.index, batch))
    return n


# ------------------------------------------------------------------------------------------ parent side

class PosePool:
    """`workers` pose worker processes, started on first use (or at once with warm=True) and kept until
    close(). keep_spare (default: warm): each worker warms its next estimator as soon as a chunk is done. One video at a time: `acquire()` is False while another analysis holds the pool."""

    def __init__(self, workers: int = 2, warm: bool = False, nice: int = 0, keep_spare: bool | None = None):
        self.workers = max(1, int(workers))
        self.keep_spare = warm if keep_spare is None else keep_spare  # a kept pool warms the next estimator
        self.nice = nice  # > 0: the workers yield the CPU to interactive work (the dashboard's live page)
        self._ctx = spawn_context()
        self._procs: list[Worker] = []
        self._busy = threading.Lock()
        self._start_lock = threading.Lock()
        self._jobs = itertools.count(1)
        self._tasks = self._results = self._current = None
        self.started_at: float | None = None
        if warm:
            self.start()

    def start(self) -> None:
        with self._start_lock:
            if self.alive():
                return
            self._stop_procs()
            self._tasks, self._results = self._ctx.Queue(), self._ctx.Queue()
            self._current = self._ctx.Value("q", 0, lock=False)
            try:
                for i in range(self.workers):
                    self._procs.append(Worker(_worker_main, (self._tasks, self._results, self._current,
                                                             self.keep_spare), name=f"gympose-pose-{i}",
                                              nice=self.nice))
            except BaseException:
                self._stop_procs()
                raise
            self.started_at = time.monotonic()

    def alive(self) -> bool:
        return bool(self._procs) and all(p.alive() for p in self._procs)

    def acquire(self) -> bool:
        return self._busy.acquire(blocking=False)

    def release(self) -> None:
        self._busy.release()

    def submit(self, video: str | Path, info: VideoInfo, chunks: list[Chunk], max_side: int) -> int:
        """Queue a video's chunks; returns the job id."""
        self.start()
        job = next(self._jobs)
        self._current.value = job
        self._drain()
        for c in chunks:
            self._tasks.put((job, c, str(video), info, max_side))
        return job

    def cancel(self) -> None:
        if self._current is not None:
            self._current.value = 0  # workers stop at their next frame; leftover tasks are skipped

    def get(self, timeout: float):
        return self._results.get(timeout=timeout)

    def _drain(self) -> None:
        with contextlib.suppress(queue.Empty, OSError, ValueError):
            while True:
                self._results.get_nowait()

    def _stop_procs(self, grace_s: float = 2.0) -> None:
        if not self._procs:
            return
        self.cancel()
        with contextlib.suppress(Exception):
            for _ in self._procs:
                self._tasks.put(None)
        stop_all(self._procs, grace_s=grace_s)
        for q in (self._tasks, self._results):
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()
        self._procs = []

    def close(self, grace_s: float = 2.0) -> None:
        """Stop the workers: each has grace_s to end on its own, then is killed. 0: at once (a command that
        has its result: a worker's own exit, the model torn down, takes ~0.15 s and holds nothing)."""
        with self._start_lock:
            self._stop_procs(grace_s)

    def __enter__(self) -> "PosePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StreamedPoses:
    """The frame loop's "estimator" when the workers estimate: `process(img, t)` is the next pose in frame
    order. `estimated` counts the poses received so far (for progress)."""

    def __init__(self, pool: PosePool, job: int, chunks: list[Chunk], fps: float,
                 on_wait: Callable[[], None] | None = None, timeout_s: float = 120.0):
        self.pool, self.job, self.chunks = pool, job, chunks
        self.tol = 0.25 / fps if fps else 0.5
        self.frame_s = 1.0 / fps if fps else 1.0
        self.boundary = False  # the chunk changed since the last pose taken (frames() checks the join)
        self.on_wait = on_wait
        self.timeout_s = timeout_s
        self._buf: dict[int, collections.deque] = {c.index: collections.deque() for c in chunks}
        self._used: dict[int, int] = {c.index: 0 for c in chunks}
        self._done: dict[int, int | None] = {c.index: None for c in chunks}
        self._chunk = 0  # the chunk the frame loop is in
        self.estimated = 0
        self.first_pose_at: float | None = None

    def _receive(self, timeout: float) -> bool:
        try:
            kind, job, idx, payload = self.pool.get(timeout)
        except queue.Empty:
            return False
        if job != self.job:
            return True  # a cancelled job's leftovers (or a worker's "ready")
        if kind == "poses":
            self._buf[idx].extend(payload)
            self.estimated += len(payload)
        elif kind == "gaps":
            self._buf[idx].append((None, payload, None))  # in order: before the first frame after them
            if self.first_pose_at is None:
                self.first_pose_at = time.perf_counter()
        elif kind == "done":
            self._done[idx] = payload
        elif kind == "error":
            raise ParallelError(f"chunk {idx}: {payload}")
        return True

    def _wait(self) -> None:
        """Receive at least one message (or raise when the workers are gone or silent for too long)."""
        waited = 0.0
        while not self._receive(POLL_S):
            waited += POLL_S
            if not self.pool.alive():
                raise ParallelError("a pose worker process died")
            if waited > self.timeout_s:
                raise ParallelError(f"no pose from the workers for {self.timeout_s:.0f} s")
            if self.on_wait is not None:
                self.on_wait()

    def _pump(self) -> None:
        """Take whatever has arrived, without waiting."""
        while self._receive(0.0):
            pass

    def _next(self) -> tuple | None:
        """The next item in frame order: (t, pose, signature), or (None, gaps, None) for stretches that could
        not be read before the next frame; None after the last chunk's last pose."""
        self._pump()
        while True:
            if self._chunk >= len(self.chunks):
                return None
            i = self.chunks[self._chunk].index
            if self._buf[i]:
                item = self._buf[i].popleft()  # consumed: memory stays bounded
                if item[0] is not None:
                    self._used[i] += 1
                return item
            if self._done[i] is not None and self._used[i] >= self._done[i]:
                self._chunk += 1  # this chunk is finished: on to the next
                self.boundary = True
                continue
            self._wait()

    def process(self, image, t: float) -> PoseFrame | None:
        while True:
            item = self._next()
            if item is None:
                raise ChunkMismatch(f"the frame loop has a frame at {t:.3f} s after the workers' last pose")
            tp, pose, _ = item
            if tp is None:
                continue  # (the frame loop's own decoder finds the damage)
            if abs(tp - t) > self.tol:
                raise ChunkMismatch(f"pose at {tp:.3f} s for the frame at {t:.3f} s")
            return pose

    def frames(self, gaps: list) -> Iterator[tuple[float, PoseFrame | None, object]]:
        """(t, pose, picture signature) of every frame in order, without decoding a frame here (nothing is
        drawn). `gaps` receives the stretches that could not be read, before the first frame after them. The
        chunks must join up: a frame of both sides of a boundary is used once; a jump back in time, or a hole
        at a boundary with no damage to explain it, raises ChunkMismatch (the single-process path runs)."""
        last = None
        while (item := self._next()) is not None:
            t, pose, sig = item
            if t is None:
                gaps.extend(g for g in pose if not any(g[0] < e and s < g[1] for s, e in gaps))
                continue
            crossed, self.boundary = self.boundary, False
            if last is not None:
                if t <= last + self.tol:
                    if t < last - self.tol:
                        raise ChunkMismatch(f"a pose at {t:.3f} s after one at {last:.3f} s")
                    continue  # the same frame, estimated by both chunks
                if crossed and t - last > 3 * self.frame_s and not any(s <= t and e >= last for s, e in gaps):
                    raise ChunkMismatch(f"no frame between {last:.3f} s and {t:.3f} s at a chunk boundary")
            last = t
            yield t, pose, sig

    def finish(self) -> None:
        """After the frame loop: every pose must have been used."""
        self._pump()
        for c in self.chunks[self._chunk:]:
            while self._done[c.index] is None:
                self._wait()
            if any(it[0] is not None for it in self._buf[c.index]) or self._used[c.index] < self._done[c.index]:
                raise ChunkMismatch("the workers estimated more frames than the frame loop decoded")

    def close(self) -> None:  # an estimator's interface; the pool outlives us
        pass


def kept_pool(nice: int = 0) -> PosePool | None:
    """A warm pool to keep between analyses (one worker per core, GYMPOSE_WORKERS), or None on one core, with
    GYMPOSE_PARALLEL=off, or when the settings are invalid (the analyses then run in one process)."""
    from ..store.settings import SettingsError, parallel_mode, parallel_workers

    try:
        if parallel_mode() == "off" or parallel_workers() < 2:
            return None
        return PosePool(workers=parallel_workers(), warm=True, nice=nice)
    except (SettingsError, OSError):
        return None


# Above this many pixels a frame, decoding is a large part of the work, and one process already keeps the
# second core busy with it (FFmpeg's decode threads); chunks decode every frame twice (the workers for the
# model, the frame loop for drawing). Measured (no video written, same run): pushup_13, 1080x2320, 10 s:
# one process 10.0 s, chunked 17.0 s; squat_4, 1280x720, 30 s: one process 23.6 s, chunked 15.9 s.
MAX_CHUNKED_PIXELS = 1_000_000


def worthwhile(info: VideoInfo, workers: int, min_seconds: float) -> bool:
    """Chunked estimation pays off: at least two cores, a clip long enough for two chunks, and frames small
    enough that decoding them twice costs less than the second model saves (MAX_CHUNKED_PIXELS)."""
    return workers >= 2 and math.isfinite(info.duration_s) and info.duration_s >= max(min_seconds, 2 * MIN_CHUNK_S) \
        and info.width * info.height <= MAX_CHUNKED_PIXELS


def use_parallel(info: VideoInfo, parallel: bool | None, pool: PosePool | None = None) -> bool:
    """Whether this video's poses are estimated on time chunks in worker processes."""
    from ..store.settings import parallel_min_seconds, parallel_mode, parallel_workers

    if parallel is not None:
        return parallel
    mode = parallel_mode()
    if mode == "off":
        return False
    workers = pool.workers if pool is not None else parallel_workers()
    if mode == "on":
        return workers >= 2
    return worthwhile(info, workers, parallel_min_seconds())


def started_pool(video: str | Path) -> PosePool | None:
    """A one-shot pool for `video`, its workers started now, when its poses will be estimated on chunks (None
    otherwise, or when it cannot be probed: the analysis then says why). A command line starts it before it
    imports the rest of the analysis (~0.4 s): the workers' own start-up (their imports, the model: ~0.8 s
    each) overlaps that. The caller closes it."""
    from ..media.video import VideoError, probe
    from ..store.settings import SettingsError, parallel_workers

    try:
        if not use_parallel(probe(video), None):
            return None
        pool = PosePool(workers=parallel_workers())
    except (VideoError, SettingsError, OSError):
        return None
    try:
        pool.start()
    except OSError:  # (no processes to be had: the analysis decides again, and runs in one process)
        pool.close(grace_s=0.0)
        return None
    return pool
