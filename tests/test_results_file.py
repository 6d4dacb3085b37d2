"""The results file: documented fields, exact round trip, determinism, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import explain
from explain.errors import InputError
from explain.results.results_io import SCHEMA, dumps, loads

TEXTS = ["the movie was unwatchable", "a great film", "   "]


@pytest.fixture(scope="module")
def results(tiny_bert: Path) -> explain.Results:
    model = explain.load(tiny_bert, device="cpu")
    return explain.explain(model, TEXTS, methods=["ig", "attention", "shap", "lime"], lime={"num_samples": 100}, shap={"max_evals": 100},
                           errors="record")  # the empty text is recorded as a failure, the others written


def test_round_trip_gives_equal_explanations(results: explain.Results, tmp_path: Path) -> None:
    path = explain.save(results, tmp_path / "results.json")
    back = explain.open_results(path)
    assert back == results
    assert all(a == b for a, b in zip(back, results))
    assert isinstance(back[0].scores, np.ndarray) and back[0].scores.dtype == np.float32
    att = back.by_method("attention")[0]
    assert att.extras["token_attention"].shape == results.by_method("attention")[0].extras["token_attention"].shape


def test_documented_fields(results: explain.Results) -> None:
    doc = json.loads(dumps(results))
    assert doc["schema"] == SCHEMA
    assert {"family", "path", "content_hash", "parameters", "labels"} <= set(doc["model"])
    assert doc["model"]["family"] == "text-classifier"
    assert [i["text"] for i in doc["inputs"]] == TEXTS
    rec = doc["explanations"][0]
    assert {"input", "method", "target", "settings", "features", "scores", "cost"} <= set(rec)
    assert {"index", "label", "probability"} <= set(rec["target"])
    assert {"seconds", "rows", "cached_rows"} == set(rec["cost"])
    assert {"checks", "self_checks", "metrics"} <= set(rec)
    assert len(rec["features"]) == len(rec["scores"])
    assert doc["failures"] == [{"input": 2, "method": None, "error": "input 2: the text is empty"}]


def test_same_seed_gives_identical_files_apart_from_timings(tiny_bert: Path) -> None:
    def run() -> dict:
        model = explain.load(tiny_bert, device="cpu")
        doc = json.loads(dumps(explain.explain(model, TEXTS[:2], methods=["ig", "shap", "lime"], lime={"num_samples": 100}, seed=5)))
        for e in doc["explanations"]:
            e["cost"].pop("seconds")
        doc["run"].pop("created")
        doc["run"].pop("seconds")
        return doc

    assert json.dumps(run(), sort_keys=True) == json.dumps(run(), sort_keys=True)


def test_unknown_schema_and_garbage_are_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "explain.results/99"}')
    with pytest.raises(InputError, match="not supported"):
        explain.open_results(bad)
    bad.write_text("not json")
    with pytest.raises(InputError, match="not a valid explain results file"):
        explain.open_results(bad)
    with pytest.raises(InputError, match="no results file"):
        explain.open_results(tmp_path / "missing.json")


def test_save_leaves_no_temporary_files(results: explain.Results, tmp_path: Path) -> None:
    explain.save(results, tmp_path / "r.json")
    explain.save(results, tmp_path / "r.json")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert loads((tmp_path / "r.json").read_text()) == results


def test_top_and_records_helpers(results: explain.Results) -> None:
    e = results[0]
    top = e.top(2)
    assert len(top) == 2 and top[0][1] >= top[1][1]
    recs = e.to_records()
    assert [r["feature"] for r in recs] == list(e.features)
    assert sorted(r["rank"] for r in recs) == list(range(1, len(e.features) + 1))


def test_schema_1_files_still_open(results: explain.Results) -> None:
    """A schema-1 file (metrics inside `checks`, no cached rows) reads back with its metrics moved."""
    doc = json.loads(dumps(results))
    doc["schema"] = "explain.results/1"
    for rec in doc["explanations"]:
        rec["cost"].pop("cached_rows")
        rec.pop("self_checks")
        rec.pop("metrics")
        rec["checks"] = {**rec["checks"], "deletion_auc": 0.25, "sanity_flag": 0.0}
    old = loads(json.dumps(doc))
    assert old[0].metrics == {"deletion_auc": 0.25, "sanity_flag": 0.0}
    assert "deletion_auc" not in old[0].checks
    assert old[0].cached_rows == 0 and old[0].self_checks == ()
    assert [e.scores.tolist() for e in old] == [e.scores.tolist() for e in results]
    doc["schema"] = "explain.results/99"
    with pytest.raises(ValueError, match="not supported"):
        loads(json.dumps(doc))


def test_true_label_and_class_probabilities_round_trip(results: explain.Results) -> None:
    import dataclasses

    first = dataclasses.replace(results.inputs[0], label="negative", probabilities=(0.7, 0.1, 0.2))
    changed = explain.Results(list(results), model=results.model, inputs=[first, *results.inputs[1:]],
                              failures=results.failures, run=results.run)
    back = loads(dumps(changed))
    assert back.inputs[0].label == "negative" and back.inputs[0].probabilities == (0.7, 0.1, 0.2)
    assert back == changed
