"""Can this explanation be trusted? Faithfulness, sanity, agreement and ground-truth metrics.

    import explain
    from explain.metrics import evaluate
    model = explain.load("examples/models/sentiment-bert")
    results = explain.explain(model, texts, methods=["ig", "shap"])
    scored = evaluate(model, results, rationales={0: ["great"]})
    scored[0].metrics["deletion_auc"], scored[0].metrics["deletion_auc_random"]
    scored.run["metrics"]["methods"]["ig"]["comprehensiveness"]["mean"]

Modules, one concept each: `curves` (RISE deletion/insertion), `eraser` (comprehensiveness,
sufficiency), `faithfulness` (both through the model, with chance baselines), `sanity`
(cascading parameter randomisation, model-blind baselines), `agreement` (between methods),
`rationale` (precision@k, pointing game), `summary` (per-method mean/std), `evaluation`
(evaluate()).
"""

from __future__ import annotations

from .evaluation import METRICS, evaluate, prepare_record
from .sanity import baseline_explanation, edge_explanation, position_explanation
from .summary import METRIC_KEYS, SELF_CHECKS

__all__ = [
    "METRICS",
    "METRIC_KEYS",
    "SELF_CHECKS",
    "baseline_explanation",
    "edge_explanation",
    "evaluate",
    "position_explanation",
    "prepare_record",
]
