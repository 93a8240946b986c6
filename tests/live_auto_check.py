"""The live page in Auto mode, end to end in a real browser with a fake camera: pick Auto in the sidebar,
press START, wait until the page says which exercise it recognised and counts reps, take screenshots.

Must run inside a private network namespace (aiortc skips 127.0.0.1; see tests/browser_utils.py):

    unshare -n bash -c 'ip link set lo up; ip addr add 127.0.0.2/8 dev lo; exec "$@"' bash \\
        python tests/live_auto_check.py --y4m cam.y4m --home WORKSPACE --screenshots DIR

Prints one line `RESULT {json}` with what the page showed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import time
from pathlib import Path

from browser_utils import (SCREENSHOTS, VIEWPORT, StreamlitServer, _caption_numbers, _metric, browser,
                           screenshot, wait_for_app, wait_idle)

FAKE_CAMERA_FLAGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     "--allow-loopback-in-peer-connection"]


def live_auto_check(y4m: Path, home: Path, shots: Path, wait_s: float = 45.0, min_reps: int = 1) -> dict:
    result: dict = {"frames": 0, "reps": 0, "status": ""}
    flags = FAKE_CAMERA_FLAGS + [f"--use-file-for-fake-video-capture={y4m}"]
    with StreamlitServer(home) as server, browser(flags) as b:
        page = b.new_page(viewport=VIEWPORT)
        page.goto(f"{server.url}/live")
        wait_for_app(page, "Live coaching", 60)
        side = page.locator('[data-testid="stSidebar"]')
        side.locator('[data-testid="stSelectbox"]').filter(has_text="Exercise").first.click()
        page.get_by_role("option", name="Auto (recognise)").click()
        page.get_by_role("button", name="Recognise again").wait_for(timeout=30000)
        wait_idle(page)
        result["before_start"] = page.locator('[data-testid="stAlert"]').first.inner_text(timeout=5000)
        start = page.frame_locator("iframe").first.get_by_role("button", name="START")
        start.wait_for(timeout=30000)
        t0 = time.monotonic()
        start.click()
        seen_recognising = False
        while time.monotonic() < t0 + wait_s:
            with contextlib.suppress(Exception):
                status = page.locator('[data-testid="stAlert"]').first.inner_text(timeout=2000)
                result["status"] = status
                if "Recognising the exercise" in status and "START" not in status and not seen_recognising:
                    seen_recognising = True
                    time.sleep(1.5)  # a few frames with the "recognising" overlay
                    screenshot(page, "live_auto_recognising", shots)
                if "Recognised:" in status and result.get("recognised_after_s") is None:
                    result["recognised_after_s"] = round(time.monotonic() - t0, 1)
            with contextlib.suppress(Exception):
                caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="Frames processed").first
                result.update(_caption_numbers(caption.inner_text(timeout=2000)))
            reps = _metric(page, "Reps")
            result["reps"] = int(reps) if reps.isdigit() else 0
            if "Recognised:" in result["status"] and result["reps"] >= min_reps:
                break
            time.sleep(0.5)
        result["seen_recognising"] = seen_recognising
        m = re.search(r"Recognised: (.+?) \((\d+)% sure\)", result["status"])
        if m:
            result["recognised"], result["confidence_pct"] = m.group(1), int(m.group(2))
        result["elapsed_s"] = round(time.monotonic() - t0, 1)
        time.sleep(1.0)  # a frame with the final overlay
        screenshot(page, "live_auto", shots)
        video = page.frame_locator("iframe").first.locator("video").first
        with contextlib.suppress(Exception):
            video.screenshot(path=str(shots / "live_auto_overlay_frame.png"))
        with contextlib.suppress(Exception):
            page.frame_locator("iframe").first.get_by_role("button", name="STOP").click()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--y4m", type=Path, required=True)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--screenshots", type=Path, default=SCREENSHOTS)
    ap.add_argument("--wait", type=float, default=45.0)
    ap.add_argument("--min-reps", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        res = live_auto_check(args.y4m, args.home, args.screenshots, args.wait, args.min_reps)
    except Exception as e:  # reported to the test as data
        res = {"error": f"{type(e).__name__}: {e}"}
    print("RESULT " + json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
