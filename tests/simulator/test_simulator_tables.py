"""The precomputed tables and error-mode compilation behind the generator."""

from __future__ import annotations

import math

import pytest

from schemas.events import Outcome
from stream_app.simulator.distributions import TABLE_SIZE, lognormal_table
from stream_app.simulator.outcomes import PROFILES, compile_error_mode


def test_lognormal_table_has_median_one_and_the_right_spread() -> None:
    table = lognormal_table(0.5)
    assert len(table) == TABLE_SIZE
    assert list(table) == sorted(table)
    assert abs(table[TABLE_SIZE // 2] - 1.0) < 1e-3
    # The 84.13% quantile of exp(0.5 Z) is exp(0.5).
    assert abs(table[int(TABLE_SIZE * 0.8413)] - math.exp(0.5)) < 0.01
    assert set(lognormal_table(0.0)) == {1.0}
    with pytest.raises(ValueError, match="sigma"):
        lognormal_table(-0.1)


def test_error_mode_picks_outcomes_by_weight() -> None:
    mode = compile_error_mode(0.3, {Outcome.TIMEOUT: 1.0, Outcome.RATE_LIMITED: 3.0})
    assert mode.probability == 0.3
    assert mode.profile_at(0.0).outcome is Outcome.TIMEOUT
    assert mode.profile_at(0.2499).outcome is Outcome.TIMEOUT
    assert mode.profile_at(0.25).outcome is Outcome.RATE_LIMITED
    assert mode.profile_at(0.9999999).outcome is Outcome.RATE_LIMITED
    with pytest.raises(ValueError, match="success"):
        compile_error_mode(0.1, {Outcome.SUCCESS: 1.0})
    with pytest.raises(ValueError, match="positive weight"):
        compile_error_mode(0.1, {Outcome.TIMEOUT: 0.0})


def test_every_outcome_has_a_profile_with_normalised_status_weights() -> None:
    assert set(PROFILES) == set(Outcome)
    for profile in PROFILES.values():
        assert profile.status_cumulative[-1] == 1.0
        assert len(profile.statuses) == len(profile.status_cumulative)
