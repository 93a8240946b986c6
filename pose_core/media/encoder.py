"""The H.264 encoder helper process behind `pose_core.media.writer.H264Writer` (not a user command).

    python -m pose_core.media.encoder OUT.mp4 WIDTH HEIGHT FPS CRF PRESET SHM_NAME SLOT_BYTES

stdin: one line per frame, "SLOT PTS_MS", then "END". stdout: the slot number once its frame has been copied
out (the writer may reuse it), then "OK <frames>" at the end. Errors go to stderr, exit code 1.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from multiprocessing import resource_tracker, shared_memory

import numpy as np


def main(argv: list[str]) -> int:
    import av

    path, width, height, fps, crf, preset, shm_name, slot_bytes = argv
    width, height, fps, slot_bytes = int(width), int(height), int(fps), int(slot_bytes)
    shm = shared_memory.SharedMemory(name=shm_name)
    # The writer owns the segment; this process must not unlink it on exit.
    resource_tracker.unregister(shm._name, "shared_memory")
    n = 0
    try:
        with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": crf, "preset": preset}
            tb = Fraction(1, 1000)
            stream.codec_context.time_base = tb
            for line in sys.stdin:
                if line.startswith("END"):
                    break
                slot, pts = (int(x) for x in line.split())
                buf = np.ndarray((height * 3 // 2, width), np.uint8, buffer=shm.buf, offset=slot * slot_bytes)
                frame = av.VideoFrame.from_ndarray(buf, format="yuv420p")  # a copy: the slot is free again
                del buf
                sys.stdout.write(f"{slot}\n")
                sys.stdout.flush()
                frame.pts, frame.time_base = pts, tb
                for packet in stream.encode(frame):
                    container.mux(packet)
                n += 1
            for packet in stream.encode():
                container.mux(packet)
    finally:
        shm.close()
    sys.stdout.write(f"OK {n}\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
