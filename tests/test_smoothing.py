import math

import numpy as np
import pytest

from pose_core.core.smoothing import MovingBaseline, OneEuroFilter


def test_one_euro_reduces_jitter_on_a_still_signal():
    rng = np.random.default_rng(1)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    noisy = 120 + rng.normal(0, 3, 300)
    out = np.array([f(i / 30, v) for i, v in enumerate(noisy)])
    assert np.std(out[30:]) < 0.5 * np.std(noisy[30:])


def test_one_euro_follows_fast_motion_with_small_lag():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    t = np.arange(0, 4, 1 / 30)
    sig = 130 + 45 * np.cos(2 * np.pi * 0.5 * t)  # a 2-second rep
    out = np.array([f(ti, v) for ti, v in zip(t, sig)])
    # the minimum is reached within 0.15 s of the true one and within 5 degrees
    i_true, i_out = np.argmin(sig[15:]) + 15, np.argmin(out[15:]) + 15
    assert abs(t[i_out] - t[i_true]) <= 0.15
    assert abs(out.min() - sig.min()) < 5


def test_one_euro_nan_and_reset_after_gap():
    f = OneEuroFilter(reset_after_s=0.5)
    assert f(0.0, 100.0) == 100.0
    assert math.isnan(f(0.1, math.nan))
    assert f(2.0, 50.0) == 50.0  # long gap: restarts instead of dragging the old value


def test_one_euro_rejects_bad_parameters():
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)


def test_moving_baseline_removes_slow_drift():
    b = MovingBaseline(1.0)
    t = np.arange(0, 10, 1 / 30)
    drift = 5 * t
    out = [b.detrend(ti, x) for ti, x in zip(t, drift)]
    assert abs(out[-1]) < 6  # follows the drift, leaving a bounded lag
