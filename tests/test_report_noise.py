"""The noise floor SHAP and LIME measure for the report's weak-evidence state (explain/reports/evidence.py).

Both methods already make a second, independent estimate for their stability self-check (SHAP at
half its budget, LIME on two halves of its neighbours); the floor is how far the two estimates
are apart, in the output's units, recorded as checks["noise_floor"]. Checked against the two
estimates themselves, captured from the stability check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import explain
from explain.methods import stability

TEXT = "the movie was a great film and the acting of this story was very good with some plot that it is"


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, np.ndarray]]:
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = stability.stability

    def spy(values: np.ndarray, other: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        seen.append((np.asarray(values, dtype=np.float64), np.asarray(other, dtype=np.float64)))
        return real(values, other, *args, **kwargs)

    monkeypatch.setattr(stability, "stability", spy)
    return seen


def test_shap_floor_is_how_far_half_and_full_budget_are_apart(tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture(monkeypatch)
    model = explain.load(tiny_bert, device="cpu")
    e = explain.explain(model, [TEXT], methods=["shap"], shap={"max_evals": 60}, seed=0)[0]
    assert len(seen) == 1  # not exact at 60 evaluations for 22 words: a second estimate was made
    full, half = seen[0]
    assert e.checks["noise_floor"] == pytest.approx(float(np.abs(full - half).max()))
    assert e.checks["noise_floor"] > 0
    exact = explain.explain(model, ["a great film"], methods=["shap"], seed=0)[0]
    assert exact.checks["noise_floor"] == 0.0  # every cluster expanded: the values are exact


def test_lime_floor_is_half_the_disagreement_of_its_two_halves(tiny_bert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture(monkeypatch)
    model = explain.load(tiny_bert, device="cpu")
    e = explain.explain(model, [TEXT], methods=["lime"], lime={"num_samples": 200}, seed=0)[0]
    assert len(seen) == 1
    a, b = seen[0]
    assert e.checks["noise_floor"] == pytest.approx(float(np.abs(a - b).max()) / 2) and e.checks["noise_floor"] > 0


def test_floor_of_estimates_that_are_not_finite_is_unknown() -> None:
    assert np.isnan(stability.noise_floor(np.array([1.0, np.nan]), np.array([1.0, 2.0])))
    assert stability.noise_floor(np.array([0.1, -0.2]), np.array([0.1, 0.3])) == pytest.approx(0.5)
