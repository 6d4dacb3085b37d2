"""Targets: one rule for ints and strings in the API and the CLI; --target all and --top-classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import explain
from explain.adapters.lm_targets import select_steps
from explain.adapters.targets import class_indices, top_indices
from explain.errors import TargetError

from conftest import run_cli, save_bert

DIGITS = ("1", "2", "3")  # labels that look like numbers: label "2" is index 1


@pytest.fixture(scope="module")
def digit_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT classifier whose labels are "1", "2", "3"."""
    folder = save_bert(tmp_path_factory.mktemp("digit-bert"))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["id2label"] = {str(i): name for i, name in enumerate(DIGITS)}
    cfg["label2id"] = {name: i for i, name in enumerate(DIGITS)}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize(
    "spec, expected",
    [
        (2, [1]),  # a Python int names the label "2" when one exists, exactly as the string does
        ("2", [1]),
        (np.int64(2), [1]),
        ("#2", [2]),  # '#N' and 'index:N' are always indices
        ("index:2", [2]),
        ("INDEX: 0", [0]),
        ("label:3", [2]),
        (0, [0]),  # no label "0": an index
        ("all", [0, 1, 2]),
    ],
)
def test_class_rule_with_digit_labels(spec: object, expected: list[int]) -> None:
    assert class_indices(spec, DIGITS) == expected


def test_class_rule_with_names_and_errors() -> None:
    labels = ("negative", "neutral", "positive")
    assert class_indices("Positive", labels) == [2]  # case-insensitive second
    assert class_indices(1, labels) == [1]  # no label spelt "1": the index
    assert class_indices("label:all", ("all", "some")) == [0]
    with pytest.raises(TargetError, match="out of range"):
        class_indices("#3", labels)
    with pytest.raises(TargetError, match="out of range"):
        class_indices(7, DIGITS)  # no label "7", and no index 7
    with pytest.raises(TargetError, match="unknown target label '4'"):
        class_indices("label:4", DIGITS)  # an explicit label never falls back on an index
    with pytest.raises(TargetError, match="not a whole number"):
        class_indices("#two", labels)
    with pytest.raises(TargetError, match="not understood"):
        class_indices(True, labels)


def test_lm_digit_strings_are_token_text_not_steps() -> None:
    labels = (" 7", " cats", "2", ".")
    assert select_steps("2", labels) == [2]  # the token "2" (at step 2 here by coincidence)
    assert select_steps("7", labels) == [0]  # the token " 7", not step 7
    assert select_steps("step:1", labels) == [1]
    assert select_steps("#-1", labels) == [3]
    assert select_steps(1, labels) == [1]  # a Python int is a step
    assert select_steps("token:2", labels) == [2]
    assert select_steps(["sum", "step:0"], labels) == [None, 0]
    with pytest.raises(TargetError, match="step:3"):
        select_steps("3", labels)  # no token "3": says how to ask for step 3
    with pytest.raises(TargetError, match="out of range"):
        select_steps("step:9", labels)
    assert select_steps("token:all", (" all", "x")) == [0]
    assert select_steps("all", (" all", "x")) == [0, 1, None]


def test_top_indices_order_and_ties() -> None:
    assert top_indices(np.array([0.2, 0.5, 0.2, 0.1]), 3) == [1, 0, 2]


def test_api_and_cli_name_the_same_class(digit_bert: Path, tmp_path: Path) -> None:
    model = explain.load(digit_bert, device="cpu")
    for spec, label in ((2, "2"), ("2", "2"), ("#2", "3"), ("index:0", "1")):
        results = explain.explain(model, ["a good film"], methods=["ig"], target=spec, ig={"n_steps": 8, "adaptive": False})
        assert [e.target.label for e in results] == [label], spec
    proc = run_cli("run", str(digit_bert), "--text", "a good film", "--methods", "ig", "--set", "ig.n_steps=8",
                   "--set", "ig.adaptive=false", "--target", "2", "--target", "#2", "--no-report", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [e["target"]["label"] for e in doc["explanations"]] == ["2", "3"]


def test_target_all_and_top_classes(digit_bert: Path) -> None:
    model = explain.load(digit_bert, device="cpu")
    texts = ["a good film", "awful plot"]
    every = explain.explain(model, texts, methods=["ig", "shap"], target="all", ig={"n_steps": 8, "adaptive": False}, shap={"max_evals": 20})
    assert len(every) == 2 * 2 * 3  # inputs x methods x classes
    assert {e.target.label for e in every} == set(DIGITS)
    top = explain.explain(model, texts, methods=["ig"], top_classes=2, ig={"n_steps": 8, "adaptive": False})
    assert top.run["top_classes"] == 2
    for i in range(2):
        mine = [e for e in top if e.input == i]
        probs = [e.target.probability for e in mine]
        assert len(mine) == 2 and probs == sorted(probs, reverse=True)
        others = [e.target.probability for e in every if e.input == i and e.method == "ig" and e.target.index not in {m.target.index for m in mine}]
        assert all(p <= min(probs) for p in others)
    with pytest.raises(TargetError, match="not both"):
        explain.explain(model, texts, top_classes=2, target="1")
    with pytest.raises(TargetError, match=">= 1"):
        explain.explain(model, texts, top_classes=0)


def test_cli_top_classes(digit_bert: Path, tmp_path: Path) -> None:
    proc = run_cli("run", str(digit_bert), "--text", "a good film", "--methods", "ig", "--set", "ig.n_steps=8",
                   "--top-classes", "3", "--no-report", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    assert sorted(e["target"]["label"] for e in doc["explanations"]) == list(DIGITS)
    assert doc["run"]["top_classes"] == 3
