"""CPU seconds of one analysis, split: this process (the frame loop) and its children (pose workers, encoder).
Less sensitive to other load than wall-clock times: on a busy machine it still shows what each part costs.

    python bench/bench_cpu_split.py MODE VIDEO EXERCISE     MODE: bare | single | chunked | novideo
(novideo: chunked poses, no annotated video: `analyze --no-video` on a long clip)
"""

import json
import os
import resource
import sys
import tempfile
import time

if __name__ == "__main__":
    mode, video, ex = sys.argv[1], sys.argv[2], sys.argv[3]
    t0 = time.perf_counter()
    if mode == "bare":
        import cv2
        import mediapipe as mp

        pose = mp.solutions.pose.Pose(model_complexity=1, static_image_mode=False)
        cap = cv2.VideoCapture(video)
        while True:
            ok, f = cap.read()
            if not ok:
                break
            pose.process(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    else:
        from pose_core.run.pipeline import analyze_video

        with tempfile.TemporaryDirectory() as d:
            analyze_video(video, ex, d, write_video=mode != "novideo", parallel=mode != "single")
    wall = time.perf_counter() - t0
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"mode": mode, "wall": round(wall, 1), "main_cpu": round(s.ru_utime + s.ru_stime, 1),
                      "children_cpu": round(c.ru_utime + c.ru_stime, 1), "load": round(os.getloadavg()[0], 1)}))
