"""Live frames first (pose_core.run.live_gate): a background analysis waits while a live frame is in the model."""

from __future__ import annotations

import struct

import pytest

from pose_core.run import live_gate
from pose_core.run.live_gate import GateWaiter, LiveGate


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def waiter(path, clock: FakeClock) -> GateWaiter:
    return GateWaiter(path, clock=clock, sleep=clock.sleep)


def test_the_analysis_waits_while_a_live_frame_is_held_and_goes_on_once_released(tmp_path):
    clock = FakeClock()
    path = tmp_path / "live.gate"
    gate, w = LiveGate(path, clock=clock), waiter(path, clock)
    assert w.wait() == 0.0  # no live page yet: no file, no wait
    with gate.held():
        assert w.wait() == 0.0  # a missing file is looked for again only once a second (no open per frame)
    clock.t += live_gate.REOPEN_S
    with gate.held():
        # The live frame takes 40 ms: release it from "another thread" when the waiter has slept that long.
        start = clock.t
        real_sleep = clock.sleep

        def sleep(s):
            real_sleep(s)
            if clock.t - start >= 0.040 and path.read_bytes() != struct.pack("d", 0.0):
                gate._write(0.0)  # the frame is done
        w.sleep = sleep
        waited = w.wait()
    assert 0.040 <= waited <= 0.045
    assert w.wait() == 0.0  # released: the next frame goes at once
    gate.close()


def test_a_held_gate_delays_a_frame_at_most_max_wait_and_a_dead_servers_lease_expires(tmp_path):
    clock = FakeClock()
    path = tmp_path / "live.gate"
    gate, w = LiveGate(path, clock=clock), waiter(path, clock)
    gate._write(clock() + live_gate.HOLD_S)  # held, and never released (the server died mid-frame)
    waited = w.wait()
    assert live_gate.MAX_WAIT_S - 0.01 <= waited <= live_gate.MAX_WAIT_S + 0.01  # never starved
    clock.t += live_gate.HOLD_S  # the lease has run out
    assert w.wait() == 0.0


@pytest.mark.parametrize("content", [b"", b"\x01\x02", struct.pack("d", float("nan")),
                                     struct.pack("d", 1e12), struct.pack("d", -5.0)])
def test_a_gate_file_that_makes_no_sense_never_holds_the_analysis(tmp_path, content):
    clock = FakeClock()
    path = tmp_path / "live.gate"
    path.write_bytes(content)
    assert waiter(path, clock).wait() == 0.0


def test_two_live_sessions_release_the_gate_only_when_both_frames_are_done(tmp_path):
    clock = FakeClock()
    path = tmp_path / "live.gate"
    a, b = LiveGate(path, clock=clock), LiveGate(path, clock=clock)
    w = waiter(path, clock)
    with a.held():
        with b.held():
            assert w._held_until() > 0
        assert w._held_until() > 0  # b is done, a's frame is still in the model
    assert w._held_until() == 0.0
    a.close()
    b.close()


def test_a_gate_that_cannot_be_written_does_not_stop_the_live_frame(tmp_path):
    gate = LiveGate(tmp_path / "missing-folder" / "live.gate")
    with gate.held():
        done = True
    assert done


def test_fresh_frames_hold_the_gate_exactly_while_a_frame_is_analysed(tmp_path):
    from tests.test_live import RULES, SlowEstimator, frame

    from pose_core.run.live import FreshFrames, LiveSession

    path = tmp_path / "live.gate"
    seen: list[bool] = []

    class Watching(SlowEstimator):
        def process(self, rgb, t):
            seen.append(GateWaiter(path)._held_until() > 0)  # what an analysis sees while the model runs
            return super().process(rgb, t)

    s = LiveSession(RULES["squat"], RULES.defaults, estimator_factory=lambda: Watching(0.01, reps=1))
    fresh = FreshFrames(s, wait_s=1.0, gate=LiveGate(path))
    try:
        for i in range(3):
            fresh.process_frame(frame(), 100.0 + i / 30)
    finally:
        fresh.close()
    assert seen == [True, True, True]
    assert GateWaiter(path)._held_until() == 0.0  # released after each frame


def test_waiter_from_env_reads_the_gate_the_analysis_process_was_given(tmp_path, monkeypatch):
    monkeypatch.delenv(live_gate.GATE_ENV, raising=False)
    assert live_gate.waiter_from_env() is None
    monkeypatch.setenv(live_gate.GATE_ENV, str(tmp_path / "live.gate"))
    assert live_gate.waiter_from_env().path == tmp_path / "live.gate"
