"""Issue 12, items 9 and 10 (the rest): a full disk while writing says "no space left on device" (the
encoder into /dev/full, the kernel's own ENOSPC; frames.csv through a file that fails like a full disk), and a
truncated file is analysed up to where it breaks with a note saying so (a complete file gets no such note)."""

from __future__ import annotations

import builtins
import errno
import json

import numpy as np
import pytest

from helpers import VIDEOS, needs_videos
from pose_core import cli
from pose_core.core.io import NoSpaceError, is_no_space
from pose_core.media.writer import H264Writer
from pose_core.run import pipeline

SHORT_CLIP = VIDEOS / "situp_3.mp4"  # 3.4 s, 800x600, index (moov) at the start: quick, and a cut copy opens
dev_full = pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="/dev/full not available")


def test_is_no_space_reads_errors_and_helper_text():
    assert is_no_space(OSError(errno.ENOSPC, "No space left on device"))
    assert is_no_space("video encoding failed: OSError: [Errno 28] No space left on device: '/x/a.mp4'")
    assert not is_no_space(OSError(errno.EACCES, "Permission denied"))
    assert not is_no_space("video encoding failed: encoder exited (1)")
    assert str(NoSpaceError("/data/out")) == "no space left on device: /data/out"


@dev_full
def test_encoder_writing_into_a_full_device_says_no_space():
    """/dev/full answers every write with ENOSPC: the encoder process hits a real full-disk error."""
    with pytest.raises(NoSpaceError, match="no space left on device: /dev"):
        with H264Writer("/dev/full", 64, 64, 30) as w:
            for k in range(300):
                w.write(k / 30, np.zeros((64, 64, 3), np.uint8))


def _run_cli(argv, capsys):
    args = cli.build_parser().parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@needs_videos
@dev_full
def test_cli_full_disk_while_encoding_exits_2_with_the_folder(tmp_path, monkeypatch, capsys):
    class FullDiskWriter(H264Writer):  # the real writer and encoder, its file on a device that is full
        def __init__(self, path, *a, **kw):
            super().__init__("/dev/full", *a, **kw)
            self.path = str(path)  # (the folder named in the message is the analysis folder)

    monkeypatch.setattr(pipeline, "H264Writer", FullDiskWriter)
    out = tmp_path / "out"
    code, stdout, err = _run_cli(["analyze", str(SHORT_CLIP), "-e", "situp", "--out", str(out), "-q"], capsys)
    assert code == cli.EXIT_BAD_INPUT
    assert err.strip() == f"error: no space left on device: {out}"
    assert "encoder exited" not in err and "unexpected" not in err
    assert not out.exists() or not any(out.iterdir())  # nothing half-written left behind


@needs_videos
def test_cli_full_disk_while_writing_frames_csv(tmp_path, monkeypatch, capsys):
    """The file layer fails like a full disk (OSError ENOSPC from write) once a few KB are written."""
    from pose_core.store import outputs

    real_open = builtins.open

    class FullFile:
        def __init__(self, f):
            self._f, self._n = f, 0

        def write(self, data):
            self._n += len(data)
            if self._n > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self._f.write(data)

        def __getattr__(self, name):
            return getattr(self._f, name)

    def full_open(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        return FullFile(f) if "w" in mode and "frames.csv" in str(path) else f

    monkeypatch.setattr(outputs, "open", full_open, raising=False)
    out = tmp_path / "out"
    code, _, err = _run_cli(["analyze", str(SHORT_CLIP), "-e", "situp", "--out", str(out), "--no-video", "-q"],
                            capsys)
    assert code == cli.EXIT_BAD_INPUT
    assert err.strip() == f"error: no space left on device: {out}"
    assert not out.exists() or not any(out.iterdir())


@pytest.fixture(scope="module")
def truncated_clip(tmp_path_factory):
    if not SHORT_CLIP.exists():
        pytest.skip(f"shared clip not found: {SHORT_CLIP} (set GYMPOSE_SHARED_DATA)")
    data = SHORT_CLIP.read_bytes()
    f = tmp_path_factory.mktemp("trunc") / "cut_situp_3.mp4"
    f.write_bytes(data[: len(data) * 60 // 100])
    return f


@needs_videos
def test_truncated_file_gets_an_ends_early_note(truncated_clip):
    from pose_core.media.video import probe

    info = probe(truncated_clip)
    result = pipeline.analyze_video(truncated_clip, "situp", write_video=False)
    s = result.summary
    early = [n for n in s.notes if "ends early" in n]
    assert len(early) == 1, s.notes
    assert early[0].startswith(f"The file ends early at {s.duration_s:.1f} s: analysed what could be read")
    assert s.duration_s < 0.9 * info.duration_s  # it really stopped early, and the note says where


@needs_videos
def test_complete_file_gets_no_ends_early_note():
    s = pipeline.analyze_video(SHORT_CLIP, "situp", write_video=False).summary
    assert not [n for n in s.notes if "ends early" in n], s.notes


@needs_videos
def test_cli_prints_the_ends_early_note(truncated_clip, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = _run_cli(["analyze", str(truncated_clip), "-e", "situp", "--out", str(out),
                                  "--no-video", "-q"], capsys)
    assert code == 0, err
    assert "note: The file ends early at" in err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert any("ends early" in n for n in summary["notes"])
    assert any("ends early" in n for n in json.loads((out / "summary.json").read_text())["notes"])
