"""The trust panel and summary table: metric checks written by explain.metrics shown beside their chance levels.

Results are built by hand with known metric values (no model), and once through
explain.metrics.evaluate with the model-free "agreement" metric, so the keys are the real ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import explain
from explain import reports
from explain.results.explanation import Explanation, InputRecord, ModelInfo, Results, SelfCheck, Target
import report_samples as samples
from explain.reports.trust import metric_keys

DATA = re.compile(r'<script type="application/json" id="(d\d+|explain-meta)">(.*?)</script>', re.S)
WORDS = ("a", "great", "film", "with", "dull", "bits")
# input -> method -> metric checks (known values; random baselines shared per input as evaluate() makes them)
RANDOM = {0: {"deletion_auc_random": 0.5, "insertion_auc_random": 0.4, "comprehensiveness_random": 0.1, "sufficiency_random": 0.3},
          1: {"deletion_auc_random": 0.6, "insertion_auc_random": 0.3, "comprehensiveness_random": 0.2, "sufficiency_random": 0.4}}
FIGS = {
    "ig": [{"deletion_auc": 0.2, "insertion_auc": 0.8, "comprehensiveness": 0.5, "sufficiency": 0.1},
           {"deletion_auc": 0.3, "insertion_auc": 0.7, "comprehensiveness": 0.6, "sufficiency": 0.2}],
    "shap": [{"deletion_auc": 0.25, "insertion_auc": 0.75, "comprehensiveness": 0.45, "sufficiency": 0.15},
             {"deletion_auc": 0.35, "insertion_auc": 0.65, "comprehensiveness": 0.55, "sufficiency": 0.25}],
    "lime": [{"deletion_auc": 0.55, "insertion_auc": 0.35, "comprehensiveness": 0.05, "sufficiency": 0.35},  # worse than random
             {"deletion_auc": 0.65, "insertion_auc": 0.25, "comprehensiveness": 0.15, "sufficiency": 0.45}],
}
SELF = {"ig": {"convergence_delta": 0.01, "delta_relative": 0.012, "output_change": 0.8},
        "shap": {"base_value": 0.2, "output": 0.9, "efficiency_gap": 2e-4},
        "lime": {"score": 0.71, "intercept": 0.1, "local_prediction": 0.8},
        "attention": {}}
SANITY = {"ig": 0.1, "shap": -0.05, "lime": 0.2, "attention": 0.93}
# The verdicts the methods write (explain/methods: ig.py, shap_partition.py, lime_surrogate.py), in their words.
VERDICTS = {
    "ig": (SelfCheck("completeness", True, 0.01, 0.012, "IG is complete: the scores add up to the output change within 1.2% of f(x) - f(baseline) = 0.8."),),
    "shap": (SelfCheck("stability", True, 0.83, 0.75, "the values at 500 and at 250 evaluations agree on the top 2 features (average overlap 0.83, at least 0.75)"),),
    "lime": (SelfCheck("surrogate_fit", True, 0.71, 0.5, "the linear surrogate explains 0.71 of the output's variance on its neighbours (R^2 at least 0.50)"),
             SelfCheck("stability", False, 0.5, 0.75, "fits on two independent halves of the 1000 neighbours disagree on the top 2 features "
                       "(average overlap 0.50, below 0.75): the estimate has not settled; raise the budget")),
    "attention": (),
}


def made(with_metrics: bool = True, methods: tuple[str, ...] = ("ig", "shap", "lime", "attention"), verdicts: bool = True) -> Results:
    """Two inputs x methods; attention has no faithfulness figures (a method evaluate() skipped), only sanity."""
    rng = np.random.default_rng(0)
    exps, inputs = [], []
    for i in range(2):
        target = Target(1, "positive", 0.9)
        inputs.append(InputRecord(i, "text", text=" ".join(WORDS), prediction=target))
        for m in methods:
            checks = dict(SELF[m])  # the method's own figures; what evaluate() adds goes to metrics
            metrics: dict = {}
            extras: dict = {}
            if with_metrics:
                if m in FIGS:
                    metrics.update(FIGS[m][i])
                    metrics.update(RANDOM[i])
                    x = np.linspace(0, 1, 6).astype(np.float32)
                    extras = {"curve_fractions": x, "deletion_curve": (1 - x) ** 3, "insertion_curve": 1 - (1 - x) ** 3,
                              "deletion_curve_random": 1 - x, "insertion_curve_random": x.copy(),
                              "faithfulness_removal": "mask", "faithfulness_output": "probability"}
                metrics["sanity_rank_corr"] = SANITY[m]
                metrics["sanity_flag"] = 1.0 if abs(SANITY[m]) > 0.5 else 0.0
                metrics["agreement_spearman"] = 0.4 + 0.1 * i
                if i == 0:
                    metrics["rationale_precision"], metrics["pointing_game"] = 1.0, 1.0
            scores = rng.normal(size=len(WORDS)).astype(np.float32)
            exps.append(Explanation(method=m, family="text-classifier", input=i, target=target, features=WORDS, scores=scores,
                                    granularity="word", seconds=0.1, rows=10, checks=checks, metrics=metrics, extras=extras,
                                    self_checks=VERDICTS[m] if verdicts else ()))
    model = ModelInfo("text-classifier", "models/bert", "sha256:abc", 1000, ("negative", "positive"))
    run: dict = {"methods": list(methods), "seed": 0}
    if with_metrics:
        run["metrics"] = {"settings": {"sanity_rho_limit": 0.5},
                          "agreement": {"pairs": {"ig|shap": {"spearman_mean": 0.61, "spearman_std": 0.05, "top_k_mean": 0.5, "top_k_std": 0.0, "n": 2.0}},
                                        "per_input": [{"input": 0, "target": "positive", "target_index": 1, "position": None, "a": "ig", "b": "shap",
                                                       "spearman": 0.66, "top_k": 0.5, "k": 2.0}]},
                          "sanity": {"blocks": ["classifier", "encoder", "embeddings"], "flagged": {"attention": True, "ig": False},
                                     "curves": {"ig": {"mean": [0.8, 0.4, 0.1], "std": [0.1, 0.1, 0.1]}}}}
    return Results(exps, model=model, inputs=inputs, run=run)


def blobs(html: str) -> dict[str, dict]:
    return {k: json.loads(v) for k, v in DATA.findall(html)}


def row(doc: dict, method: str) -> dict:
    return next(r for r in doc["groups"][0]["trust"]["rows"] if r["m"] == method)


def summary_cell(html: str, method: str, metric: str) -> str:
    m = re.search(rf'<td [^>]*data-method="{method}" data-metric="{metric}"[^>]*>(.*?)</td>', html, re.S)
    assert m, (method, metric)
    return " ".join(re.sub(r"<[^>]+>", " ", m.group(1)).split())


@pytest.fixture(scope="module")
def page() -> tuple[Results, str]:
    r = made()
    return r, reports.render(r)


def test_panel_reads_each_figure_against_its_random_baseline(page: tuple[Results, str]) -> None:
    _, html = page
    d0 = blobs(html)["d0"]
    ig = row(d0, "ig")
    faith = {f["key"]: f for f in ig["faith"]}
    assert faith["deletion_auc"] == {"key": "deletion_auc", "v": 0.2, "r": 0.5, "ok": True}
    assert faith["insertion_auc"]["ok"] and faith["comprehensiveness"]["ok"] and faith["sufficiency"]["ok"]
    lime = {f["key"]: f for f in row(d0, "lime")["faith"]}
    assert [lime[k]["ok"] for k in ("deletion_auc", "insertion_auc", "comprehensiveness", "sufficiency")] == [False] * 4
    assert [(c["key"], c["ok"], c["shown"]) for c in ig["self"]] == [("completeness", True, "1.2% off")]
    assert ig["self"][0]["s"].startswith("IG is complete: the scores add up")
    # SHAP's check is its stability (its efficiency gap adds up by construction); LIME has two, one failed
    assert [(c["key"], c["ok"], c["v"]) for c in row(d0, "shap")["self"]] == [("stability", True, 0.83)]
    assert row(d0, "shap")["self"][0]["s"].startswith("SHAP stability: the values at 500 and at 250 evaluations agree")
    assert [(c["key"], c["ok"], c["v"]) for c in row(d0, "lime")["self"]] == [("surrogate_fit", True, 0.71), ("stability", False, 0.5)]
    assert ig["curves"]["del"][0] == 1.0 and len(ig["curves"]["x"]) == 6
    assert d0["groups"][0]["trust"]["removal"] == "mask (each token of a removed word becomes the mask token ([MASK]))"


def test_panel_flags_sanity_and_shows_agreement_and_rationales(page: tuple[Results, str]) -> None:
    _, html = page
    d0, d1 = blobs(html)["d0"], blobs(html)["d1"]
    att = row(d0, "attention")
    assert att["sanity"] == {"rho": 0.93, "flag": True} and row(d0, "ig")["sanity"]["flag"] is False
    assert att["faith"] == [] and att["metrics"] is True  # no faithfulness, but sanity and agreement
    assert row(d0, "ig")["agree"] == {"rho": 0.4, "top": 0.5, "pairs": [["shap", 0.66, 0.5]]}
    assert row(d1, "ig")["agree"]["pairs"] == []  # no per-input rows for input 1: the mean only
    assert row(d0, "ig")["rat"] == {"rationale_precision": 1.0, "pointing_game": 1.0} and row(d1, "ig")["rat"] is None
    meta = blobs(html)["explain-meta"]
    assert "lower is better" not in meta["trust"]["deletion_auc"]["better"] and meta["trust"]["deletion_auc"]["better"] == "lower"
    assert meta["trust"]["insertion_auc"]["better"] == "higher" and "random" in meta["trust"]["deletion_auc"]["help"]


def test_metric_checks_leave_the_method_cards(page: tuple[Results, str]) -> None:
    _, html = page
    lines = [c["value"] for e in blobs(html)["d0"]["groups"][0]["exps"] for c in e["checks"]]
    assert any(x.startswith("IG is complete: the scores add up") for x in lines)
    assert "LIME surrogate fit: the linear surrogate explains 0.71 of the output's variance on its neighbours (R^2 at least 0.50)." in lines
    assert any(x.startswith("LIME stability: fits on two independent halves of the 1000 neighbours disagree") for x in lines)
    assert not any("efficiency" in x.lower() for x in lines)
    assert not any(k in x or k.replace("_", " ") in x for x in lines for k in metric_keys())


def test_summary_table_has_mean_spread_n_and_random(page: tuple[Results, str]) -> None:
    _, html = page
    assert 'id="trust"' in html and 'href="#trust"' in html
    cell = summary_cell(html, "ig", "deletion_auc")  # mean of 0.2 and 0.3, std 0.05, random mean of 0.5 and 0.6
    assert "0.25" in cell and "± 0.05" in cell and "random 0.55" in cell and "beats it 2/2" in cell and "n = 2" in cell
    assert "beats it 0/2" in summary_cell(html, "lime", "deletion_auc")
    assert re.search(r'class="num tcell bad" data-method="lime" data-metric="deletion_auc"', html)
    assert re.search(r'class="num tcell good" data-method="ig" data-metric="deletion_auc"', html)
    assert summary_cell(html, "ig", "self") == "completeness 2/2 passed · mean 1.20% off"  # IG completeness: the gap as a share
    assert summary_cell(html, "shap", "self") == "stability 2/2 passed · mean 0.83"
    assert summary_cell(html, "lime", "self") == "surrogate fit 2/2 passed · mean 0.71 stability 0/2 passed · mean 0.5"
    assert re.search(r'data-check="stability"><span class="lbl">stability</span> <span class="bad">0/2', html)
    flagged = summary_cell(html, "attention", "sanity")
    assert "flagged" in flagged and "0.93" in flagged and "2/2 flagged" in flagged
    assert "passes" in summary_cell(html, "ig", "sanity")
    assert "0.45" in summary_cell(html, "ig", "agreement_spearman")  # mean of 0.4 and 0.5
    assert "n = 1" in summary_cell(html, "ig", "pointing_game")
    assert "0.61" in html[html.index('id="trust"'):html.index('id="quality"')]  # the pair table
    assert blobs(html)["explain-meta"]["sanity"]["blocks"] == ["classifier", "encoder", "embeddings"]


def test_summary_reuses_explain_metrics_summary(page: tuple[Results, str]) -> None:
    from explain.metrics.summary import summarise

    r, html = page
    s = summarise(r)["shap"]["comprehensiveness"]
    assert s["n"] == 2 and f"{s['mean']:.4g}" in summary_cell(html, "shap", "comprehensiveness")


def test_method_without_metrics_shows_its_self_check_only() -> None:
    r = made()
    plain = [e.replace(metrics={}) if e.method == "lime" else e for e in r]
    html = reports.render(Results(plain, model=r.model, inputs=r.inputs, run=r.run))
    lime = row(blobs(html)["d0"], "lime")
    assert lime["metrics"] is False and lime["faith"] == [] and lime["self"][0]["v"] == 0.71


def test_no_metrics_no_panels() -> None:
    html = reports.render(made(with_metrics=False))
    docs = blobs(html)
    assert 'id="trust"' not in html and 'href="#trust"' not in html
    assert all("trust" not in g for k, d in docs.items() if k != "explain-meta" for g in d["groups"])
    assert "trust" not in docs["explain-meta"] and "sanity" not in docs["explain-meta"]


def test_real_agreement_metric_reaches_the_page(tmp_path: Path) -> None:
    from explain.metrics import evaluate

    scored = evaluate(None, samples.text_results(3, hostile=False), metrics=["agreement"])
    html = reports.render(scored)
    rows = blobs(html)["d0"]["groups"][0]["trust"]["rows"]
    ig = next(r for r in rows if r["m"] == "ig")
    assert ig["agree"]["rho"] == pytest.approx(scored.for_input(0)[0].metrics["agreement_spearman"])
    assert len(ig["agree"]["pairs"]) == 3 and ig["faith"] == [] and ig["self"] is not None
    assert 'data-metric="agreement_spearman"' in html and 'data-key="deletion_auc"' not in html
    back = explain.open_results(explain.save(scored, tmp_path / "results.json"))
    assert reports.render(back) == html  # deterministic, and the results file keeps everything shown


def test_hostile_text_stays_escaped_with_metrics() -> None:
    html = reports.render(samples.with_metrics(samples.text_results(3)))
    assert samples.HOSTILE not in html and 'id="trust"' in html


def test_image_panel_and_summary() -> None:
    r = samples.with_metrics(samples.image_results(2, hostile=False), flagged=("gradcam",))
    html = reports.render(r)
    rows = blobs(html)["d0"]["groups"][0]["trust"]["rows"]
    assert [x["m"] for x in rows] == ["gradcam", "ig", "lime"]
    assert rows[0]["sanity"]["flag"] and not rows[1]["sanity"]["flag"]
    assert "flagged" in summary_cell(html, "gradcam", "sanity")
