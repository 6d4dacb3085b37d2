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


# ---- schema 3: results.json as the readable index, large arrays in one .npz beside it, read lazily ----

import report_samples as samples  # noqa: E402
from explain.results import arrays as arrays_mod  # noqa: E402
from explain.results.arrays import INLINE_MAX, StoredExplanation  # noqa: E402


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_large_arrays_leave_the_index_and_come_back_exactly(tmp_path: Path) -> None:
    r = samples.image_results(3, size=40, targets=2)
    path = explain.save(r, tmp_path / "results.json")
    names = _files(tmp_path)
    assert names[0].startswith("results.arrays-") and names[0].endswith(".npz") and names[1] == "results.json"
    doc = json.loads(path.read_text())
    assert doc["schema"] == SCHEMA and doc["arrays"]["file"] == names[0]
    rec = doc["explanations"][0]
    assert rec["scores"] == {"array": "e0.scores", "dtype": "float32", "shape": [40, 40]}  # a reference, not 1,600 floats
    assert rec["extras"] == {} or all("data" not in v or len(v["data"]) <= INLINE_MAX for v in rec["extras"].values() if isinstance(v, dict))
    back = explain.open_results(path)
    assert back == r  # pixel maps are float32 in the archive: exact
    assert all(isinstance(e, StoredExplanation) for e in back)
    lime = next(e for e in back if e.method == "lime")
    assert np.array_equal(lime.extras["segments"], next(e for e in r if e.method == "lime").extras["segments"])
    # The archive is a plain .npz: numpy opens it, and its members are the arrays.
    with np.load(tmp_path / names[0]) as z:
        assert np.array_equal(z["e0.scores"], r[0].scores) and len(z.files) == doc["arrays"]["count"]


def test_attention_maps_are_stored_as_float16_and_words_stay_in_the_index(tmp_path: Path) -> None:
    r = samples.text_results(3, n_words=20, layers=2, heads=4)
    path = explain.save(r, tmp_path / "results.json")
    doc = json.loads(path.read_text())
    rec = next(d for d in doc["explanations"] if d["method"] == "attention")
    assert rec["extras"]["attention"]["stored"] == "float16" and rec["extras"]["attention"]["dtype"] == "float32"
    assert isinstance(rec["scores"], list) and rec["features"]  # scores per word: readable in the index
    back = explain.open_results(path)
    for a, b in zip(back, r):
        assert np.array_equal(a.scores, b.scores) and a.features == b.features and a.checks == b.checks
        if "attention" in b.extras:
            want = b.extras["attention"].astype(np.float16).astype(np.float32)
            assert a.extras["attention"].dtype == np.float32 and np.array_equal(a.extras["attention"], want)
            assert np.abs(a.extras["attention"] - b.extras["attention"]).max() <= 2.0**-11  # weights in [0, 1]
            assert a.extras["tokens"] == b.extras["tokens"]


def test_save_is_deterministic_and_replaces_its_old_archive(tmp_path: Path) -> None:
    r = samples.image_results(2)
    explain.save(r, tmp_path / "a" / "results.json")
    explain.save(r, tmp_path / "b" / "results.json")
    for name in ("results.json", _files(tmp_path / "a")[0]):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    first = _files(tmp_path / "a")
    explain.save(r, tmp_path / "a" / "results.json")
    assert _files(tmp_path / "a") == first  # an equal save: the same two files
    other = samples.image_results(2, seed=5)
    explain.save(other, tmp_path / "a" / "results.json")
    now = _files(tmp_path / "a")
    assert len(now) == 2 and now != first  # the new archive, and the old one removed
    assert explain.open_results(tmp_path / "a" / "results.json") == other


def test_an_interrupted_save_leaves_the_old_pair_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from explain.results import results_io

    r = samples.image_results(2)
    path = explain.save(r, tmp_path / "results.json")
    real = results_io.write_atomic

    def dies_on_the_index(p: Path, data: str | bytes) -> None:
        if p.name == "results.json":
            raise KeyboardInterrupt
        real(p, data)

    monkeypatch.setattr(results_io, "write_atomic", dies_on_the_index)
    with pytest.raises(KeyboardInterrupt):
        explain.save(samples.image_results(2, seed=9), path)
    monkeypatch.undo()
    assert len(_files(tmp_path)) == 3  # the new archive was written; the index still names the old one
    assert explain.open_results(path) == r


def test_reopened_results_keep_reading_after_a_save_replaces_their_archive(tmp_path: Path) -> None:
    """--resume: the saved run is open while the run saves over it."""
    path = explain.save(samples.image_results(2), tmp_path / "results.json")
    before = explain.open_results(path)
    explain.save(samples.image_results(2, seed=7), path)
    assert before == samples.image_results(2)


def test_missing_or_foreign_arrays_file_is_one_line(tmp_path: Path) -> None:
    path = explain.save(samples.image_results(2), tmp_path / "r" / "results.json")
    archive = next(p for p in path.parent.iterdir() if p.suffix == ".npz")
    archive.rename(tmp_path / "elsewhere.npz")
    with pytest.raises(InputError, match="is missing: the results file keeps its large arrays there"):
        explain.open_results(path)
    explain.save(samples.image_results(3), tmp_path / "s" / "results.json")
    foreign = next(p for p in (tmp_path / "s").iterdir() if p.suffix == ".npz")
    foreign.rename(archive)
    with pytest.raises(InputError, match="is not the arrays file its results file was saved with"):
        explain.open_results(path)
    doc = json.loads(path.read_text())
    doc["arrays"]["file"] = "../elsewhere.npz"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="must name a file beside the results file"):
        explain.open_results(path)


def test_schema_2_files_still_open(tmp_path: Path) -> None:
    r = samples.image_results(2)
    doc = json.loads(dumps(r))  # every array inline, as schema 2 wrote them
    assert "arrays" not in doc and isinstance(doc["explanations"][0]["scores"], list)
    doc["schema"] = "explain.results/2"
    (tmp_path / "old.json").write_text(json.dumps(doc))
    back = explain.open_results(tmp_path / "old.json")
    assert back == r and not any(isinstance(e, StoredExplanation) for e in back)


def test_arrays_are_read_when_used_and_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = explain.save(samples.image_results(3, size=32), tmp_path / "results.json")
    monkeypatch.setattr(arrays_mod, "CACHE_BYTES", 0)  # no cache: every use is a read
    reads: list[str] = []
    real = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda f, **kw: reads.append("x") or real(f, **kw))
    back = explain.open_results(path)
    assert reads == []  # opening reads the index only
    e = back[4]
    assert "_scores" in e.__dict__ and not isinstance(e.__dict__["_scores"], np.ndarray)
    assert e.scores.shape == (32, 32) and len(reads) == 1
    assert not isinstance(e.__dict__["_scores"], np.ndarray)  # used, not kept
    e.scores
    assert len(reads) == 2
    with pytest.raises(ValueError):
        e.scores[0, 0] = 1.0  # read-only: a cached map cannot be changed behind the results' back
    copy = e.replace(metrics={"x": 1.0})
    assert isinstance(copy.__dict__["_scores"], np.ndarray) and copy.metrics == {"x": 1.0}


def test_shards_keep_their_arrays_beside_them(tmp_path: Path) -> None:
    from explain.results.shards import LAYOUT, Store, clear, open_sharded, write_manifest, write_shard

    r = samples.image_results(4)

    def part(keep: set[int]) -> explain.Results:
        return explain.Results([e for e in r if e.input in keep], model=r.model, inputs=[x for x in r.inputs if x.index in keep], run=r.run)

    for root in (tmp_path / "local", (tmp_path / "uri").as_uri()):
        store = Store(root)
        write_manifest(store, {"layout": LAYOUT, "run": r.run, "inputs": 4})
        write_shard(store, part({0, 1}), 0)
        write_shard(store, part({2, 3}), 0)
        names = store.list("shards")
        assert len(names) == 4 and sum(n.endswith(".npz") for n in names) == 2
        merged = open_sharded(root)
        assert merged == r
        assert explain.open_results(root) == r
        assert clear(store) == 5 and store.list("shards") == []
