"""Adaptive budgets (explain/methods/budget.py): SHAP and LIME stop when their top features settle.

Checked on models that are exact functions of which features are kept (no training, so the
truth is planted): an input whose top settles early stops early with the cap's top features;
a model whose output is noise over coalitions runs to the cap and then equals the fixed
budget's answer; no row reaches the model twice (every row the model sees is recorded); a
fixed budget (adaptive=false) gives the values the code gave before adaptive budgets existed
(recorded from that code); and the results file carries the rule, the rounds and the sentence.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import explain
from explain.adapters.base import Adapter, Example, PerturbationView, contiguous_linkage
from explain.execution.runner import Runner
from explain.methods import budget, get
from explain.results.explanation import Explanation, InputRecord, ModelInfo, Target


class RecordingAdapter(Adapter):
    """A text-classifier adapter whose output is f(keep-mask) over d features; every row the model runs is recorded."""

    family = "text-classifier"

    def __init__(self, d: int, f: Callable[[torch.Tensor], torch.Tensor]) -> None:
        info = ModelInfo(family=self.family, path="<test>", content_hash="sha256:test", parameters=0, labels=("y",))
        super().__init__(torch.nn.Identity(), info, Runner(torch.device("cpu"), batch_size=32))
        self.d, self.f = d, f
        self.seen: list[bytes] = []

    def prepare(self, raw: Any, index: int, **_: Any) -> Example:
        record = InputRecord(index=index, kind="text", text=raw, prediction=Target(0, "y", 1.0))
        return Example(index=index, record=record, probs=np.ones(1))

    def gradient_view(self, example: Example, target: Target, **options: Any) -> Any:
        raise NotImplementedError

    def model_rows(self, batch: list[torch.Tensor]) -> torch.Tensor:
        x = torch.stack(batch)
        self.seen += [bytes(r.to(torch.uint8).tolist()) for r in x]
        return self.f(x)

    def perturbation_view(self, example: Example, target: Target, **options: Any) -> PerturbationView:
        def evaluate(keep: np.ndarray) -> np.ndarray:
            rows = list(torch.from_numpy(np.asarray(keep, dtype=np.float32).reshape(-1, self.d)))
            return self.runner.map(rows, self.model_rows).numpy()

        return PerturbationView(
            features=tuple(f"w{i}" for i in range(self.d)),
            evaluate=evaluate,
            clustering=contiguous_linkage(self.d),
            expand=lambda v: np.asarray(v, dtype=np.float32),
            granularity="word",
            mask="zero",
            output="logit",
        )


def run(adapter: Adapter, method: str, seed: int = 0, **settings: Any) -> Explanation:
    m = get(method)
    return m.explain(adapter, adapter.prepare("x", 0), Target(0, "y", 1.0), m.settings(settings), granularity="word", seed=seed)


def top(e: Explanation, k: int) -> list[int]:
    return [int(i) for i in np.argsort(-np.abs(e.scores), kind="stable")[:k]]


def planted(x: torch.Tensor) -> torch.Tensor:
    """Two planted words among many: one strong, one weaker with the opposite sign; a faint sum."""
    return 3 * x[:, 5] - x[:, 17] + 0.02 * x.sum(1)


def noise(x: torch.Tensor) -> torch.Tensor:
    """An output that is a fixed pseudo-random number per coalition: no top feature ever settles."""
    return torch.tensor([hashlib.sha256(bytes(r.to(torch.uint8).tolist())).digest()[0] / 255.0 for r in x])


# ---- the rule itself ------------------------------------------------------------------------------
def test_schedule_doubles_with_a_midpoint_and_ends_at_the_cap() -> None:
    assert budget.schedule(32, 500) == [32, 48, 64, 96, 128, 192, 256, 384, 500]
    assert budget.schedule(100, 500) == [100, 150, 200, 300, 400, 500]
    assert budget.schedule(32, 20) == [20] and budget.schedule(32, 32) == [32]
    assert budget.lime_start(5) == 100 and budget.lime_start(60) == 120


def test_same_top_needs_the_same_resolved_features_and_signs() -> None:
    v = np.array([0.9, -0.5, 0.3, 0.05, 0.01])
    assert budget.same_top(v, v * 1.1) == 3
    assert budget.same_top(v, np.array([0.9, -0.3, 0.5, 0.05, 0.01])) == 0  # ranks 2 and 3 swapped
    assert budget.same_top(v, np.array([0.9, 0.5, 0.3, 0.05, 0.01])) == 0  # a top feature changed sign
    assert budget.same_top(np.array([0.02, 0.9, 0.5, 0.3, 0.05]), v) == 0  # a different top
    split = np.array([0.3, 0.3, 0.3, 0.02, 0.0])  # an unexpanded cluster's even split names no top
    assert budget.same_top(split, split.copy(), first=True) == 0
    inside = np.array([0.22, 0.18, 0.18, -0.1, 0.0])  # a split cluster wholly inside the top 3: its order is unknown
    assert budget.same_top(inside, inside.copy(), first=True) == 0
    hidden = np.array([0.049, 0.0, 0.001] + [0.047] * 8)  # 8 words sharing a cluster's 0.376: one may beat 0.049
    assert budget.same_top(hidden, hidden.copy(), first=True) == 0
    small = np.array([0.5, 0.0, 0.01, 0.047, 0.047])  # a split cluster holding less than the top feature cannot hide one
    assert budget.same_top(small, small.copy(), first=True) == 1
    assert budget.same_top(np.array([1.0, 0.1, 0.0]), np.array([1.0, 0.12, 0.0])) == 1  # only a clear top counts


# ---- stopping ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["shap", "lime"])
def test_a_planted_input_stops_early_with_the_caps_top_features(method: str) -> None:
    d = 30
    adaptive = run(RecordingAdapter(d, planted), method)
    fixed = run(RecordingAdapter(d, planted), method, adaptive=False)
    record = adaptive.extras["budget"]
    assert record["stopped"] == "settled" and record["cap"] == (500 if method == "shap" else 1200)
    assert adaptive.rows <= 0.6 * fixed.rows  # measured: SHAP 256 of 500, LIME 147 of 1200
    assert top(adaptive, 2) == top(fixed, 2) == [5, 17]
    assert np.sign(adaptive.scores[[5, 17]]).tolist() == [1.0, -1.0]
    assert record["used"] == record["rounds"][-1] < record["cap"] and record["since"] in record["rounds"][:-1]
    assert sum(record["rows"]) == adaptive.rows and adaptive.reliable


def test_an_unexpanded_cluster_cannot_hide_the_top_feature() -> None:
    """82 words (benchmarks/planted_cues.py's pattern): the strongest word (27, +2.0) sits in a cluster SHAP
    expands late, its credit split evenly over 8 words, while an interacting pair (28 and 80) resolves early.
    Seen failing without the even-split rule: stopped at 48 evaluations with word 80 on top."""
    w = 0.06 * torch.randn(82, generator=torch.Generator().manual_seed(0))
    for i, v in {9: -0.6, 19: 1.0, 27: 2.0, 28: 0.2, 53: 0.35, 80: 0.2}.items():
        w[i] = v
    e = run(RecordingAdapter(82, lambda x: torch.sigmoid(x @ w + 1.5 * x[:, 28] * x[:, 80] - 2.0)), "shap")
    assert top(e, 1) == [27]


@pytest.mark.parametrize("method", ["shap", "lime"])
def test_a_noisy_input_runs_to_the_cap_and_then_equals_the_fixed_budget(method: str) -> None:
    d = 30
    adaptive = run(RecordingAdapter(d, noise), method)
    fixed = run(RecordingAdapter(d, noise), method, adaptive=False)
    record = adaptive.extras["budget"]
    assert record["stopped"] == "cap" and record["used"] == record["cap"]
    np.testing.assert_allclose(adaptive.scores, fixed.scores, rtol=0, atol=1e-6)
    assert [c.passed for c in adaptive.self_checks] == [c.passed for c in fixed.self_checks]
    assert "ran to its cap" in next(c for c in adaptive.self_checks if c.name == "stability").sentence


@pytest.mark.parametrize("method", ["shap", "lime"])
def test_no_row_reaches_the_model_twice(method: str) -> None:
    for f in (planted, noise):
        adapter = RecordingAdapter(40, f)
        e = run(adapter, method)
        assert len(e.extras["budget"]["rounds"]) >= 2
        assert len(adapter.seen) == len(set(adapter.seen)) == e.rows  # every row the model ran, once
        assert e.cached_rows > 0  # SHAP's rounds re-ask their earlier rows; LIME's draw repeats some


def test_a_tiny_cap_is_one_round_the_fixed_budget() -> None:
    adaptive = run(RecordingAdapter(30, planted), "shap", max_evals=20)
    fixed = run(RecordingAdapter(30, planted), "shap", max_evals=20, adaptive=False)
    assert adaptive.extras["budget"]["rounds"] == [20]
    np.testing.assert_array_equal(adaptive.scores, fixed.scores)


# ---- fixed budgets are unchanged ---------------------------------------------------------------------
def interacting(x: torch.Tensor) -> torch.Tensor:
    return 2.0 * x[:, 7] - 1.2 * x[:, 3] + 0.8 * x[:, 12] * x[:, 13] + 0.3 * x.mean(1) + 0.05 * x[:, 0] * x[:, 19]


# Recorded with the code before adaptive budgets (main at aabe359), RecordingAdapter(20, interacting), seed 5.
BEFORE = {
    ("shap", None): [0.04, 0.015, 0.015, -1.1850001, 0.015, 0.015, 0.015, 2.0149999, 0.015, 0.015, 0.015, 0.015,
                     0.415, 0.415, 0.015, 0.015, 0.015, 0.015, 0.015, 0.04],
    ("shap", 60): [-0.27875, -0.27875, -0.27875, -0.27875, 0.015, 0.015, 1.015, 1.015, 0.015, 0.015, 0.015, 0.015,
                   0.215, 0.215, 0.215, 0.215, 0.015, 0.015, 0.015, 0.04],
    ("lime", None): [0.0421315, -0.0080734, 0.0243535, -1.177364, -0.005615, 0.0281629, 0.0434197, 1.9815493, 0.0369214,
                     -0.0183183, 0.015354, 0.0265776, 0.5089071, 0.5615733, -0.0072739, 0.032536, 0.0343558, -0.0008811,
                     0.003642, 0.054048],
    ("lime", 150): [0.0392757, 0.0382057, 0.0105443, -1.0564992, -0.0442773, -0.0162106, 0.1485027, 1.82008, 0.0654054,
                    -0.0226643, 2.56e-05, 0.0009239, 0.4364727, 0.5564377, 0.0165068, 0.0061698, 0.0570788, 0.0904766,
                    0.0220017, -0.038536],
}
ROWS_BEFORE = {("shap", None): 364, ("shap", 60): 60, ("lime", None): 800, ("lime", 150): 150}


@pytest.mark.parametrize("method,budget_", list(BEFORE))
def test_a_fixed_budget_gives_the_values_of_before(method: str, budget_: int | None) -> None:
    key = {"shap": "max_evals", "lime": "num_samples"}[method]
    e = run(RecordingAdapter(20, interacting), method, seed=5, adaptive=False, **({key: budget_} if budget_ else {}))
    np.testing.assert_allclose(e.scores, BEFORE[(method, budget_)], rtol=0, atol=2e-7)
    assert e.rows == ROWS_BEFORE[(method, budget_)] and "budget" not in e.extras and e.settings["adaptive"] is False


# ---- what the results carry ------------------------------------------------------------------------
def test_the_results_file_carries_the_rule_rounds_and_sentence(tiny_bert: Path, tmp_path: Path) -> None:
    text = "the movie was great and the plot was very good with some acting"
    res = explain.explain(explain.load(tiny_bert, device="cpu"), [text], methods=["shap", "lime"])
    path = tmp_path / "results.json"
    explain.save(res, path)
    doc = json.loads(path.read_text())
    for e, d in zip(explain.open_results(path), doc["explanations"]):
        record = d["extras"]["budget"]
        assert record["rule"] == budget.RULE and record["stopped"] in ("settled", "exact", "cap")
        assert record["rounds"][-1] == record["used"] and sum(record["rows"]) == d["cost"]["rows"]
        assert d["settings"]["adaptive"] is True
        assert d["settings"]["max_evals" if e.method == "shap" else "num_samples"] == record["cap"]  # what was asked
        stability = next(c for c in e.self_checks if c.name == "stability")
        assert stability.sentence.endswith(record["sentence"])
        assert e.extras["budget"] == record


def test_adaptive_off_as_the_cli_gives_it(tiny_bert: Path) -> None:
    """`--set shap.adaptive=false` reaches the method as the string 'false' (cli/options.py)."""
    res = explain.explain(explain.load(tiny_bert, device="cpu"), ["the movie was great"], methods=["shap", "lime"],
                          shap={"adaptive": "false"}, lime={"adaptive": "off"})
    for e in res:
        assert e.settings["adaptive"] is False and "budget" not in e.extras


def test_the_docs_tables_are_the_study_json_rendered_with_todays_rule() -> None:
    """docs/speed.md shows benchmarks/results/quality_per_row.json as the study renders it, and that JSON was
    measured with the rule and starts the methods use now (change them: rerun the study)."""
    import sys

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    from quality_per_row import BEGIN, END, OUT, render  # type: ignore[import-not-found]

    data = json.loads(OUT.read_text())
    assert not data["quick"] and not data["partial"] and data["inputs_per_case"] >= 10
    assert data["rule"] == budget.RULE
    assert data["start"] == {"shap": budget.START_SHAP, "lime_per_feature": budget.START_LIME_PER_FEATURE, "lime_min": budget.START_LIME_MIN}
    doc = (root / "docs" / "speed.md").read_text()
    assert doc[doc.index(BEGIN): doc.index(END) + len(END)] == render(data)
