"""Metrics against hand-computed cases: a linear "model" over word presence whose curves are known."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import explain
from explain.adapters.base import Adapter, Example, PerturbationView, contiguous_linkage
from explain.results.explanation import Explanation, InputRecord, ModelInfo, Results, Target
from explain.metrics import agreement, curves, eraser, evaluate, faithfulness, rationale, sanity, summary
from explain.execution.runner import Runner

WEIGHTS = {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}


class WordSum(torch.nn.Module):
    """f(keep) = sum of the kept words' weights: every curve of it can be computed by hand."""

    def __init__(self, vocab: list[str], weights: list[float]) -> None:
        super().__init__()
        self.vocab = vocab
        self.linear = torch.nn.Linear(len(vocab), 1, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([weights]))

    def forward(self, present: torch.Tensor) -> torch.Tensor:
        return self.linear(present.float())[:, 0]


class WordSumAdapter(Adapter):
    """A text-classifier adapter over WordSum: features are the words, removing one zeroes it."""

    family = "text-classifier"

    def __init__(self, weights: dict[str, float]) -> None:
        info = ModelInfo(family=self.family, path="<test>", content_hash="sha256:test", parameters=len(weights), labels=("score",))
        super().__init__(WordSum(list(weights), list(weights.values())), info, Runner(torch.device("cpu"), batch_size=7))

    def prepare(self, raw: Any, index: int, **_: Any) -> Example:
        words = tuple(raw.split())
        record = InputRecord(index=index, kind="text", text=raw, prediction=Target(0, "score", 1.0))
        return Example(index=index, record=record, probs=np.ones(1), state=words)

    def gradient_view(self, example: Example, target: Target, **options: Any) -> Any:
        raise NotImplementedError

    def perturbation_view(self, example: Example, target: Target, **options: Any) -> PerturbationView:
        words = example.state
        columns = [self.model.vocab.index(w) for w in words]

        def evaluate(keep: np.ndarray) -> np.ndarray:
            keep = np.asarray(keep, dtype=bool).reshape(-1, len(words))
            present = np.zeros((len(keep), len(self.model.vocab)), dtype=np.float32)
            for j, col in enumerate(columns):
                present[:, col] += keep[:, j]
            rows = list(torch.from_numpy(present))
            return self.runner.map(rows, lambda b: self.model(torch.stack(b))).numpy()

        return PerturbationView(
            features=words,
            evaluate=evaluate,
            clustering=contiguous_linkage(len(words)),
            expand=lambda v: np.asarray(v, dtype=np.float32),
            granularity="word",
            mask="zero",
            output="logit",
        )


def explanation(scores: list[float], features: tuple[str, ...] = ("a", "b", "c", "d"), method: str = "m", input: int = 0) -> Explanation:
    return Explanation(
        method=method,
        family="text-classifier",
        input=input,
        target=Target(0, "score", 1.0),
        features=features,
        scores=np.asarray(scores, dtype=np.float32),
        granularity="word",
    )


@pytest.fixture()
def linear() -> tuple[WordSumAdapter, Example, PerturbationView]:
    model = WordSumAdapter(WEIGHTS)
    example = model.prepare("a b c d", 0)
    return model, example, model.perturbation_view(example, Target(0, "score", 1.0))


# ---- curves and ERASER, by hand ---------------------------------------------------------------
def test_curve_counts_and_bins() -> None:
    assert curves.curve_counts(4, 20).tolist() == [0, 1, 2, 3, 4]
    assert curves.curve_counts(100, 20).tolist() == list(range(0, 101, 5))
    assert eraser.bin_counts(4).tolist() == [1, 1, 1, 1, 2]
    assert eraser.bin_counts(10).tolist() == [1, 1, 1, 2, 5]
    assert eraser.bin_counts(200).tolist() == [2, 10, 20, 40, 100]
    assert eraser.bin_counts(30).tolist() == [1, 2, 3, 6, 15]  # 0.1 * 30 is 3.0000000000000004 in floats


def test_masks_follow_the_order() -> None:
    order = np.array([2, 0, 1])
    assert curves.deletion_masks(order, np.array([0, 1, 3]), 3).tolist() == [[True, True, True], [True, True, False], [False, False, False]]
    assert curves.insertion_masks(order, np.array([0, 2]), 3).tolist() == [[False, False, False], [True, False, True]]
    assert curves.ranking(np.array([0.1, 0.5, 0.5, np.nan])).tolist() == [1, 2, 0, 3]


def test_deletion_insertion_and_eraser_by_hand(linear: tuple[WordSumAdapter, Example, PerturbationView]) -> None:
    model, example, view = linear
    fractions, (best,) = faithfulness.measure(view, [np.array([0, 1, 2, 3])], steps=20)
    assert fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert best.deletion.tolist() == [10, 6, 3, 1, 0]  # remove a(4), b(3), c(2), d(1) in turn
    assert best.insertion.tolist() == [0, 4, 7, 9, 10]
    figures = faithfulness.figures(fractions, best)
    assert figures["deletion_auc"] == pytest.approx(0.25 * (8 + 4.5 + 2 + 0.5))  # 3.75
    assert figures["insertion_auc"] == pytest.approx(0.25 * (2 + 5.5 + 8 + 9.5))  # 6.25
    # bins on 4 words: top 1, 1, 1, 1, 2 words
    assert figures["comprehensiveness"] == pytest.approx((4 * 4 + 7) / 5)  # 4.6
    assert figures["sufficiency"] == pytest.approx((4 * 6 + 3) / 5)  # 5.4
    _, (worst,) = faithfulness.measure(view, [np.array([3, 2, 1, 0])], steps=20)
    assert faithfulness.figures(fractions, worst)["deletion_auc"] == pytest.approx(6.25)
    assert curves.auc(np.array([0.0, 1.0]), np.array([1.0, 1.0])) == 1.0


def test_random_baseline_lies_between_best_and_worst(linear: tuple[WordSumAdapter, Example, PerturbationView]) -> None:
    model, example, view = linear
    faith = faithfulness.Faithfulness(model, random_orders=5, seed=3)
    checks, extras = faith.score(example, explanation([4, 3, 2, 1]))
    assert checks["deletion_auc"] == pytest.approx(3.75)
    assert 3.75 <= checks["deletion_auc_random"] <= 6.25
    assert 3.75 <= checks["insertion_auc_random"] <= 6.25
    assert checks["comprehensiveness_random"] <= checks["comprehensiveness"]
    assert checks["sufficiency_random"] >= checks["sufficiency"]
    assert extras["deletion_curve"].tolist() == [10, 6, 3, 1, 0]
    # For a linear model the expected random deletion curve is a straight line: AUC 5.
    fractions, many = faithfulness.measure(view, curves.random_orders(4, 400, 0), steps=20)
    assert np.mean([faithfulness.figures(fractions, s)["deletion_auc"] for s in many]) == pytest.approx(5.0, abs=0.1)


def test_rows_go_through_the_runner_once_each(linear: tuple[WordSumAdapter, Example, PerturbationView]) -> None:
    model, example, view = linear
    before = model.runner.rows
    faithfulness.measure(view, [np.array([0, 1, 2, 3]), np.array([3, 2, 1, 0])], steps=20)
    # distinct keep-masks only: the full and empty rows (and more) are shared between orders
    assert 0 < model.runner.rows - before < 2 * (2 * 5 + 2 * 5)


def test_image_maps_are_ranked_by_their_mean_in_each_segment() -> None:
    segments = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 2, 0), 2, 1)  # 4 x 4 pixels, 2 x 2 cells
    view = PerturbationView(("s0", "s1", "s2", "s3"), lambda k: np.zeros(len(k)), np.zeros((3, 4)), lambda v: v, "pixel", "blur", "probability", extras={"segments": segments})
    scores = np.zeros((4, 4), dtype=np.float32)
    scores[3, 3] = 8.0  # cell 3 has mean 2
    scores[0:2, 2:4] = 1.0  # cell 1 has mean 1
    e = Explanation("m", "image-classifier", 0, Target(0, "x", 1.0), (), scores, "pixel")
    assert faithfulness.feature_values(e, view).tolist() == [0.0, 1.0, 0.0, 2.0]


# ---- agreement and rationales -------------------------------------------------------------
def test_agreement_of_known_rankings() -> None:
    a, b = np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1])
    assert agreement.spearman(a, 10 * a) == pytest.approx(1.0)
    assert agreement.spearman(a, b) == pytest.approx(-1.0)
    assert agreement.spearman(a, np.array([1.0, 3, 2, 4])) == pytest.approx(1 - 6 * 2 / (4 * 15))  # 0.8
    assert np.isnan(agreement.spearman(a, np.ones(4)))
    assert agreement.top_k_overlap(a, b, 2) == 0.0
    assert agreement.top_k_overlap(a, np.array([0.0, 0, 5, 4]), 2) == 1.0
    assert agreement.top_k_overlap(a, np.array([0.0, 5, 0, 4]), 2) == 0.5
    rows = agreement.agreement([explanation([1, 2, 3, 4], method="x"), explanation([4, 3, 2, 1], method="y"), explanation([1, 2, 3, 4], method="z")])
    assert [(r["a"], r["b"], round(r["spearman"], 6), r["top_k"]) for r in rows] == [("x", "y", -1.0, 0.0), ("x", "z", 1.0, 1.0), ("y", "z", -1.0, 0.0)]
    assert agreement.pair_summary(rows)["x|z"]["spearman_mean"] == pytest.approx(1.0)


def test_precision_at_k_and_pointing_game() -> None:
    e = explanation([0.1, 0.9, 0.3, 0.2], features=("the", "great", "film", "!"))
    assert rationale.score(e, ["Great"]) == {"rationale_precision": 1.0, "pointing_game": 1.0}
    assert rationale.score(e, ["film", "great"])["rationale_precision"] == 1.0
    e2 = e.replace(scores=np.asarray([0.5, 0.9, 0.1, 0.2], dtype=np.float32))
    assert rationale.score(e2, ["film", "great."]) == {"rationale_precision": 0.5, "pointing_game": 1.0}
    assert rationale.score(e2, ["film"]) == {"rationale_precision": 0.0, "pointing_game": 0.0}
    assert rationale.score(e2, ["absent"]) == {}
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2, :2] = True
    peak = -np.ones((4, 4))
    peak[3, 3], peak[0, 0], peak[1, 1], peak[2, 2] = 9.0, 5.0, 4.0, 3.0
    assert rationale.precision_at_k(peak, mask) == 0.5  # top 4 pixels (k = mask size): 2 of them inside
    assert rationale.pointing_game(peak, mask) == 0.0
    peak[3, 3] = -1.0
    assert rationale.pointing_game(peak, mask) == 1.0


def test_summary_mean_and_std() -> None:
    es = [explanation([1, 2, 3, 4]).replace(metrics={"deletion_auc": v}, checks={"score": 0.5}) for v in (1.0, 3.0)]
    s = summary.summarise(es)["m"]
    assert s["deletion_auc"] == {"mean": 2.0, "std": 1.0, "n": 2.0}
    assert s["score"]["mean"] == 0.5


# ---- sanity ---------------------------------------------------------------------------------
def test_blocks_go_from_the_output_layer_down() -> None:
    from explain.loading.cnn import SmallCNN

    names = [n for n, _ in sanity.blocks(SmallCNN(1, 3, 4))]
    assert names == ["classifier", "features.8", "features.4", "features.0"]  # BatchNorms join their conv
    assert sanity.stages(7, 3) == [1, 4, 7]
    assert sanity.stages(7, 1) == [7]
    assert sanity.stages(2, 5) == [1, 2]


def test_randomise_keeps_scale_and_spares_the_original() -> None:
    model = WordSumAdapter({f"w{i}": float(i) for i in range(30)})
    before = model.model.linear.weight.detach().clone()
    (name, clone), = list(sanity.cascade(model, 1, seed=0))
    after = clone.model.linear.weight.detach()
    assert name == "linear" and clone.runner is model.runner
    assert torch.equal(model.model.linear.weight, before)
    assert not torch.equal(after, before)
    assert float(after.std()) == pytest.approx(float(before.std()), rel=0.5)


def test_sanity_flags_a_model_blind_explanation_and_passes_a_model_one() -> None:
    words = [f"w{i}" for i in range(30)]
    model = WordSumAdapter({w: float(i % 7) - 3.0 + 0.01 * i for i, w in enumerate(words)})
    text = " ".join(words)
    example = model.prepare(text, 0)
    target = Target(0, "score", 1.0)
    ablation = explain.methods.get("ablation")
    made = [ablation.explain(model, example, target, ablation.settings(), granularity="word", seed=0), sanity.position_explanation(model, example, target)]
    names, curves_, errors = sanity.sanity_curves(model, made, lambda a, i: a.prepare(text, i), steps=2, seed=0)
    assert errors == [] and names == ["linear"]  # one block: one stage, the whole network
    assert abs(curves_[0][-1]) < sanity.RHO_LIMIT and sanity.flag(curves_[0][-1]) == 0.0
    assert curves_[1] == [1.0] and sanity.flag(curves_[1][-1]) == 1.0
    assert sanity.correlation(made[0], made[0].replace(scores=np.zeros(30, dtype=np.float32))) == 0.0


def test_sanity_flag_needs_a_large_and_significant_correlation() -> None:
    assert sanity.flag(0.4) == 0.0 and sanity.flag(-0.6) == 1.0 and sanity.flag(float("nan")) == 0.0
    assert sanity.flag(0.6, n=10) == 0.0  # p = 0.067: ten words rank like this by chance
    assert sanity.flag(0.7, n=10) == 1.0  # p = 0.024
    assert sanity.flag(0.55, n=1024) == 1.0 and sanity.flag(1.0, n=3) == 1.0 and sanity.flag(0.9, n=2) == 0.0


# ---- evaluate() end to end ------------------------------------------------------------------
def results_of(model: WordSumAdapter) -> Results:
    inputs = [InputRecord(index=0, kind="text", text="a b c d"), InputRecord(index=1, kind="text", text="d c")]
    es = [
        explanation([4, 3, 2, 1], method="good"),
        explanation([1, 2, 3, 4], method="bad"),
        explanation([1, 2], features=("d", "c"), method="good", input=1),
    ]
    return Results(es, model=model.info, inputs=inputs, run={"seed": 0})


def test_evaluate_writes_checks_and_a_summary(tmp_path: Any) -> None:
    model = WordSumAdapter(WEIGHTS)
    results = results_of(model)
    scored = evaluate(model, results, metrics=("faithfulness", "agreement"), rationales={0: ["a"], 1: ["c"]})
    assert all("deletion_auc" not in e.metrics for e in results)  # the input is not changed
    good, bad, short = scored
    assert good.metrics["deletion_auc"] == pytest.approx(3.75) and bad.metrics["deletion_auc"] == pytest.approx(6.25)
    assert good.metrics["deletion_auc_random"] == bad.metrics["deletion_auc_random"]  # shared chance level
    assert good.metrics["pointing_game"] == 1.0 and bad.metrics["pointing_game"] == 0.0
    assert short.metrics["comprehensiveness"] == pytest.approx(2.0)  # d=2: bins 1,1,1,1,1 -> remove c (2)
    assert good.metrics["agreement_spearman"] == pytest.approx(-1.0)
    m = scored.run["metrics"]
    assert m["methods"]["good"]["deletion_auc"]["n"] == 2.0
    assert m["agreement"]["pairs"]["good|bad"]["spearman_mean"] == pytest.approx(-1.0)
    assert m["errors"] == [] and m["rows"] > 0
    path = explain.save(scored, tmp_path / "scored.json")
    assert explain.open_results(path) == scored


def test_evaluate_refuses_another_checkpoint_and_unknown_metrics() -> None:
    model = WordSumAdapter(WEIGHTS)
    results = results_of(model)
    other = Results(list(results), model=ModelInfo("text-classifier", "x", "sha256:other", 1, ("score",)), inputs=results.inputs)
    with pytest.raises(explain.ExplainError, match="another checkpoint"):
        evaluate(model, other)
    with pytest.raises(explain.ExplainError, match="available metrics"):
        evaluate(model, results, metrics=["faithfullness"])
    with pytest.raises(explain.ExplainError, match="need the model"):
        evaluate(None, results)
    assert "agreement_spearman" in evaluate(None, results, metrics=["agreement"])[0].metrics


def test_failed_inputs_are_skipped_and_reported() -> None:
    model = WordSumAdapter(WEIGHTS)
    results = results_of(model)
    results.failures.append(explain.Failure(input=1, method=None, error="boom"))
    scored = evaluate(model, results, metrics=["faithfulness"])
    assert "deletion_auc" in scored[0].metrics and "deletion_auc" not in scored[2].metrics
    assert scored.run["metrics"]["errors"][0]["input"] == 1


def test_a_removal_the_family_lacks_is_one_clear_error() -> None:
    class Strict(WordSumAdapter):
        def perturbation_view(self, example: Example, target: Target, baseline: str | None = None, **options: Any) -> PerturbationView:
            if baseline not in (None, "mask"):
                raise explain.InputError(f"unknown mask {baseline!r}: use one of mask")
            return super().perturbation_view(example, target)

    model = Strict(WEIGHTS)
    with pytest.raises(explain.ExplainError, match="unknown mask 'blur'"):
        evaluate(model, results_of(model), metrics=["faithfulness"], mask="blur")
    assert "deletion_auc" in evaluate(model, results_of(model), metrics=["faithfulness"], mask="mask")[0].metrics


def test_summary_table_prints_each_figure_beside_chance() -> None:
    model = WordSumAdapter(WEIGHTS)
    text = summary.table(evaluate(model, results_of(model), metrics=["faithfulness"]).run["metrics"])
    good = next(line for line in text.splitlines() if line.startswith("good"))
    assert "2.500 (rand" in good  # mean deletion AUC of its two inputs: (3.75 + 1.25) / 2
    assert "run explain.metrics.evaluate" in summary.table({})
