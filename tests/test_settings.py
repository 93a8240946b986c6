"""Settings (the environment, read in one place), upload storage and path confinement."""

from __future__ import annotations

import io
import os
import time

import pytest

from pose_core.core.confine import PathError, is_within, safe_join, sanitize_filename
from pose_core.store.settings import (PENN_DIR_ENV, SettingsError, configured_penn_root, ice_servers, load_settings,
                                      shared_data_dir, workspace_dir)
from pose_core.store.uploads import (EmptyUploadError, UploadTooLargeError, list_uploads, new_analysis_dir,
                                    remove_upload, store_upload, sweep_orphan_names, upload_display_name, upload_name)


def test_safe_join_refuses_escapes(tmp_path):
    assert safe_join(tmp_path, "a.mp4") == (tmp_path / "a.mp4").resolve()
    for bad in ("../x.mp4", "/etc/passwd", "a/../../x", "", "."):
        with pytest.raises(PathError):
            safe_join(tmp_path, bad)
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(PathError):
        safe_join(tmp_path, "link/passwd")


@pytest.mark.parametrize("name,expected", [("My Squat (1).MP4", "My_Squat_1.mp4"), ("../../etc/passwd", "passwd"),
                                           ("C:\\Users\\me\\vid.mov", "vid.mov"), ("..", "upload"),
                                           ("Kniebeuge_ü.mp4", "Kniebeuge_u.mp4"), (".hidden.mp4", "hidden.mp4")])
def test_sanitize_filename(name, expected):
    assert sanitize_filename(name) == expected


def test_store_upload_checks_size_and_type(tmp_path):
    p = store_upload(io.BytesIO(b"x" * 100), "../a b.mp4", tmp_path / "up", max_bytes=1000)
    assert p.parent == (tmp_path / "up").resolve() and p.name.endswith("_a_b.mp4") and p.read_bytes() == b"x" * 100
    with pytest.raises(UploadTooLargeError, match="limit"):
        store_upload(io.BytesIO(b"x" * 2000), "big.mp4", tmp_path / "up", max_bytes=1000, size=2000)
    with pytest.raises(UploadTooLargeError):  # size unknown: caught while copying, nothing left behind
        store_upload(io.BytesIO(b"x" * 2000), "big.mp4", tmp_path / "up", max_bytes=1000)
    with pytest.raises(PathError, match="video"):
        store_upload(b"hello", "notes.txt", tmp_path / "up", max_bytes=1000)
    with pytest.raises(EmptyUploadError, match="the file is empty"):  # 0 bytes: said so, nothing kept
        store_upload(io.BytesIO(b""), "empty.mp4", tmp_path / "up", max_bytes=1000)
    with pytest.raises(EmptyUploadError, match="the file is empty"):
        store_upload(io.BytesIO(b""), "empty.mp4", tmp_path / "up", max_bytes=1000, size=0)
    assert sorted(x.name.split("_", 1)[1] for x in (tmp_path / "up").iterdir() if not x.name.startswith(".")) \
        == ["a_b.mp4"]
    assert upload_name(p) == "../a b.mp4"  # the name as the user gave it, kept beside the sanitised file


def test_one_name_per_upload_and_one_entry_per_video(tmp_path):
    odd = "[click me](http://example.com) **bold** <b>x</b>.mp4"
    a = store_upload(b"abc", odd, tmp_path, max_bytes=100)
    assert upload_name(a) == odd and upload_display_name(a.name) != odd  # (the file on disk is sanitised)
    time.sleep(0.01)
    b = store_upload(b"abc", odd, tmp_path, max_bytes=100)  # the same video uploaded again
    os.utime(b, (time.time() + 5, time.time() + 5))
    c = store_upload(b"abcd", "other.mp4", tmp_path, max_bytes=100)
    listed = list_uploads(tmp_path)
    assert [u.name for u in listed] == [odd, "other.mp4"] and listed[0].path == b  # once, its newest copy
    remove_upload(b)
    assert not b.exists() and not (tmp_path / f".{b.name}.name.json").exists()
    (tmp_path / f".{c.name}.name.json").write_text("not json")
    assert upload_name(c) == "other.mp4"  # a damaged name file: the sanitised name stands in
    c.unlink()
    sweep_orphan_names(tmp_path)
    assert not (tmp_path / f".{c.name}.name.json").exists() and (tmp_path / f".{a.name}.name.json").exists()


def test_upload_and_analysis_names(tmp_path):
    stored = store_upload(b"x", "My squat.MOV", tmp_path, max_bytes=10)
    assert upload_display_name(stored.name) == "My_squat.mov"
    assert upload_display_name("plain.mp4") == "plain.mp4"
    d = new_analysis_dir(tmp_path / "analyses", stored.name, "squat")
    assert d.parent == (tmp_path / "analyses").resolve() and d.name.endswith("_My_squat_squat")
    d.mkdir(parents=True)
    assert new_analysis_dir(tmp_path / "analyses", stored.name, "squat") != d


def test_settings_from_environment(tmp_path):
    s = load_settings({"GYMPOSE_HOME": str(tmp_path), "GYMPOSE_MAX_UPLOAD_MB": "5"})
    assert s.uploads_dir == tmp_path.resolve() / "uploads" and s.history_db.parent == tmp_path.resolve()
    assert s.max_upload_bytes == 5 * 2**20
    assert s.live_gate == tmp_path.resolve() / "live.gate"  # the live page and the analyses share it
    with pytest.raises(SettingsError):
        load_settings({"GYMPOSE_MAX_UPLOAD_MB": "lots"})


def test_ice_servers_from_env_or_secrets():
    assert ice_servers({}) == []
    env = {"GYMPOSE_ICE_SERVERS": '[{"urls": "stun:stun.example.org:3478"}]'}
    assert ice_servers(env) == [{"urls": ["stun:stun.example.org:3478"]}]
    secrets = {"ice_servers": [{"urls": ["turn:t.example.org"], "username": "u", "credential": "p"}]}
    assert ice_servers({}, secrets)[0]["username"] == "u"
    for bad in ('{"urls": 1}', "[{}]", '[{"urls": ["http://x"]}]', "not json"):
        with pytest.raises(SettingsError):
            ice_servers({"GYMPOSE_ICE_SERVERS": bad})


def test_is_within(tmp_path):
    (tmp_path / "a").mkdir()
    assert is_within(tmp_path, tmp_path / "a" / "x.mp4")
    assert not is_within(tmp_path, tmp_path) and is_within(tmp_path, tmp_path, allow_root=True)
    assert not is_within(tmp_path / "a", tmp_path / "a" / ".." / "b")
    (tmp_path / "a" / "out").symlink_to("/etc")
    assert not is_within(tmp_path, tmp_path / "a" / "out" / "passwd")


def test_configured_root(tmp_path):
    assert configured_penn_root({PENN_DIR_ENV: str(tmp_path / "x")}) == (tmp_path / "x").resolve()
    shared = tmp_path / "shared"
    assert configured_penn_root({"GYMPOSE_SHARED_DATA": str(shared)}) is None  # no development copy
    (shared / "penn_action").mkdir(parents=True)
    assert configured_penn_root({"GYMPOSE_SHARED_DATA": str(shared)}) == (shared / "penn_action").resolve()
    assert load_settings({PENN_DIR_ENV: str(tmp_path / "x")}).penn_dir == (tmp_path / "x").resolve()


def test_folders_from_environment(tmp_path):
    env = {"GYMPOSE_HOME": str(tmp_path / "home"), "GYMPOSE_SHARED_DATA": str(tmp_path / "data")}
    assert workspace_dir(env) == (tmp_path / "home").resolve()
    assert shared_data_dir(env) == (tmp_path / "data").resolve()
    assert load_settings(env).workspace == (tmp_path / "home").resolve()
