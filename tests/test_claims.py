"""Computed verdicts: the words the prose uses follow the data and its uncertainty."""

import math

import pytest

from trainlab.claims import ClaimError, claim, compare, saturation_point


def test_clear_difference_is_resolved_and_worded():
    cmp = compare([0.90, 0.91, 0.92], [0.80, 0.81, 0.79], names=("warm-up", "plain"))
    assert cmp.resolved and cmp.direction == "higher"
    assert math.isclose(cmp.diff, 0.11, abs_tol=1e-12)
    assert cmp.verdict(better="helped", worse="hurt", same="no difference", higher_is_better=True) == "helped"
    assert cmp.verdict(better="helped", worse="hurt", same="no difference", higher_is_better=False) == "hurt"
    assert "warm-up: 0.910 ± 0.010 (3 seeds)" in cmp.summary()
    assert "(3 runs)" in compare([1, 2, 3], [1, 2, 3], unit="runs").summary()


def test_overlapping_groups_are_indistinguishable():
    cmp = compare([0.86, 0.80, 0.90], [0.84, 0.88, 0.82])
    assert not cmp.resolved and cmp.verdict(same="indistinguishable") == "indistinguishable"


def test_single_seed_is_never_resolved_and_nan_runs_are_dropped():
    assert not compare([1.0], [0.0]).resolved
    cmp = compare([1.0, float("nan"), 1.1], [0.0, 0.1])
    assert cmp.n_a == 2
    with pytest.raises(ValueError, match="diverge"):
        compare([float("nan")], [1.0])


def test_verdict_needs_direction_for_better_worse():
    with pytest.raises(ValueError, match="higher_is_better"):
        compare([1, 2], [3, 4]).verdict(better="b")


def test_claim_names_the_sentence():
    claim(True, "fine")
    with pytest.raises(ClaimError, match="warm-up helps"):
        claim(False, "warm-up helps")


def test_saturation_point():
    assert saturation_point([1, 2, 4, 8, 16], [10, 50, 91, 95, 100]) == 4
    assert saturation_point([16, 1], [100, 10], fraction=1.0) == 16
    with pytest.raises(ValueError):
        saturation_point([1, 2], [1])
