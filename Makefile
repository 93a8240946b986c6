# GymPose. `make run` sets up and starts the dashboard; `make test` sets up and runs every test (what CI runs);
# `make check` runs the fast ones (no browser, no sweeps over real clips: see docs/testing.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
PORT   ?= 8501

.PHONY: run test check venv system-deps bench clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	@# mediapipe declares the GUI OpenCV build, which overwrites cv2/ and needs libGL: swap it for headless.
	$(BIN)/pip uninstall -y -q opencv-contrib-python
	$(BIN)/pip install -q --force-reinstall --no-deps opencv-python-headless==4.11.0.86
	@# The project itself, editable (pose_core, dashboard, the `gympose` command); its pins are above.
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -c "import cv2, mediapipe, streamlit, pose_core; print('venv ok: cv2', cv2.__version__, 'mediapipe', mediapipe.__version__)"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# Chromium (for the real-browser tests) and ffmpeg (fake camera files) from Debian. Needs root; without it
# the browser tests skip with a reason.
system-deps:
	@if [ -x /usr/bin/chromium ] && command -v ffmpeg >/dev/null; then echo "chromium and ffmpeg present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg fonts-dejavu-core >/dev/null; \
	else echo "note: cannot install chromium/ffmpeg (not root or no apt-get); browser tests will skip"; fi

run: venv
	$(BIN)/streamlit run dashboard/app.py --server.port $(PORT)

test: venv system-deps
	$(BIN)/python -m pytest -q

# Under 3 minutes on 2 cores: the tests marked neither `browser` nor `slow` (tests/conftest.py marks them).
check: venv
	$(BIN)/python -m pytest -q -m "not browser and not slow"

# Speed, memory, start-up, batch and live figures (the README's), in one go. Takes a while (~25 min idle).
bench: venv system-deps
	$(BIN)/python bench/bench_pipeline.py --json bench/out/bench_pipeline.json
	$(BIN)/python bench/bench_batch.py --repeat 1 --workers 1 2
	$(BIN)/python bench/bench_live.py --under-load
	$(BIN)/python -m bench.bench_live_browser
	$(BIN)/python -m bench.bench_live_browser --close-tab --json bench/out/bench_live_browser_close_tab.json
	$(BIN)/python -m bench.bench_upload_browser --clip squat_4.mp4 pushup_1.mp4 --hogs 0 --json bench/out/bench_upload_browser_long.json
	$(BIN)/python -m bench.bench_upload_browser --clip squat_1.mp4 --hogs 2 --rounds 2 --json bench/out/bench_upload_browser_loaded.json

clean:
	rm -rf $(VENV) .pytest_cache test-output
