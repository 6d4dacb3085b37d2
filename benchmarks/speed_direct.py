"""captum / shap / lime called directly, as a careful user would, on a text classifier folder.

    python benchmarks/speed_direct.py SPEC.json OUT.json

SPEC: {"method": "ig"|"shap"|"lime", "folder", "texts", "work": [per-input settings], "warm",
"record"}. Per-input work is what our side did on that input (IG: its final n_steps and rule;
SHAP: max_evals; LIME: num_samples), so both sides do the same work. Each input explains its
predicted class only; features are whitespace words (shap: a word-level Text masker with
[MASK]; lime: bow=False, removed words replaced by [MASK], as ours by default). Imports no `explain`: run as its own
process, its wall time is what a user's short script costs. With "warm", one untimed input
first; with "record", the exact rows are replayed as a pure forward for the time/forward ratio.

Spans, the same as ours measures them: `compute_s` is each input's prediction forward and the
method's work (ours: the results' run seconds), without the library's import, timed apart as
`import_s` (ours: run.setup_seconds); `load_s` the tokenizer and model; epoch timestamps
(`t_top` at the script's first line, `t_end` as it finishes) let the parent split the process's
wall time into start-up, the work and the interpreter's teardown.
"""

from __future__ import annotations

import time

T_TOP = time.time()  # before any import: the parent's launch time to here is the interpreter's start

import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RowRecorder, peak_mb, replay_seconds, rss_mb  # noqa: E402

# What each method imports from its library, imported before the compute clock starts (as ours does)
LIBRARY_MODULES = {"ig": "captum.attr", "shap": "shap", "lime": "lime.lime_text"}


def main(spec_path: str, out_path: str) -> None:
    """Explain the spec's texts with the library directly; write the figures as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(spec["folder"])
    model = AutoModelForSequenceClassification.from_pretrained(spec["folder"]).eval()
    load_s = time.perf_counter() - t0
    loaded_mb = rss_mb()
    texts, work, method = spec["texts"], spec["work"], spec["method"]
    t0 = time.perf_counter()
    importlib.import_module(LIBRARY_MODULES[method])
    import_s = time.perf_counter() - t0
    explain_one = {"ig": ig_one, "shap": shap_one, "lime": lime_one}[method]
    if spec.get("warm"):
        explain_one(model, tok, texts[0], work[0])
    recorder = RowRecorder(model)
    tops, rows, n_features, input_s = [], [], [], []
    t0 = time.perf_counter()
    for text, w in zip(texts, work):
        before, started = recorder.rows, time.perf_counter()
        top, d = explain_one(model, tok, text, w)
        input_s.append(time.perf_counter() - started)
        tops.append(top)
        n_features.append(d)
        rows.append(recorder.rows - before)
    compute = time.perf_counter() - t0
    recorder.remove()
    out: dict[str, Any] = {"compute_s": compute, "input_s": input_s, "import_s": import_s, "load_s": load_s, "rows": rows,
                           "top": tops, "n_features": n_features, "load_rss_mb": loaded_mb}
    if spec.get("record"):
        out["fwd_s"] = replay_seconds(model, recorder.calls)
    out["peak_mb"] = peak_mb()
    out["t_top"], out["t_end"] = T_TOP, time.time()
    Path(out_path).write_text(json.dumps(out))


def _predict_fn(model: Any, tok: Any) -> Any:
    @torch.inference_mode()
    def predict(strings: Any) -> np.ndarray:
        strings = [str(s) for s in strings]
        outs = []
        for i in range(0, len(strings), 64):
            enc = tok(strings[i : i + 64], return_tensors="pt", padding=True, truncation=True).to(model.device)
            outs.append(torch.softmax(model(**enc).logits, -1).float().cpu().numpy())
        return np.concatenate(outs)

    return predict


def _target(model: Any, tok: Any, text: str) -> int:
    with torch.inference_mode():
        return int(model(**tok(text, return_tensors="pt").to(model.device)).logits.argmax())


def ig_one(model: Any, tok: Any, text: str, w: dict[str, Any]) -> tuple[str, int]:
    """captum LayerIntegratedGradients on the embeddings, [MASK] baseline (specials kept, as ours), one class."""
    from captum.attr import LayerIntegratedGradients

    ids = tok(text, return_tensors="pt")["input_ids"].to(model.device)
    target = _target(model, tok, text)
    special = torch.tensor(tok.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)).bool().to(ids.device)
    base = torch.where(special, ids, torch.full_like(ids, tok.mask_token_id))
    for p in model.parameters():  # input gradients only, as a careful user (and ours) runs it
        p.requires_grad_(False)
    lig = LayerIntegratedGradients(lambda x: torch.softmax(model(input_ids=x).logits, -1)[:, target], model.get_input_embeddings())
    rule = {"trapezoid": "riemann_trapezoid"}.get(w.get("method", "gausslegendre"), w.get("method", "gausslegendre"))
    attr, _ = lig.attribute(ids, baselines=base, n_steps=int(w["n_steps"]), method=rule,
                            internal_batch_size=int(w.get("batch", 64)), return_convergence_delta=True)
    # sub-word tokens summed into whitespace words, as ours reports them (the same features)
    token_scores = attr.sum(-1)[0].detach().float().cpu().numpy()
    words = text.split()
    word_scores = np.zeros(len(words))
    for i, word in enumerate(tok(text).word_ids()):
        if word is not None:
            word_scores[word] += token_scores[i]
    return words[int(np.argmax(word_scores))], len(words)


def shap_one(model: Any, tok: Any, text: str, w: dict[str, Any]) -> tuple[str, int]:
    """shap's Partition explainer over whitespace words, each masked by [MASK], one class."""
    import shap

    target = _target(model, tok, text)
    predict = _predict_fn(model, tok)
    masker = shap.maskers.Text(tokenizer=r"\s+", mask_token="[MASK] ", collapse_mask_token=False)
    explainer = shap.Explainer(lambda s: predict(s)[:, target], masker)
    values = explainer([text], max_evals=int(w["max_evals"]), batch_size=64, silent=True)
    v = values[0].values
    return str(values[0].data[int(np.argmax(v))]).strip(), len(v)


def lime_one(model: Any, tok: Any, text: str, w: dict[str, Any]) -> tuple[str, int]:
    """lime's text explainer, every word occurrence a feature (bow=False), removed words replaced by [MASK]."""
    from lime.lime_text import LimeTextExplainer

    target = _target(model, tok, text)
    d = len(text.split())
    exp = LimeTextExplainer(bow=False, mask_string="[MASK]", split_expression=r"\s+", random_state=0).explain_instance(
        text, _predict_fn(model, tok), labels=(target,), num_features=d, num_samples=int(w["num_samples"])
    )
    return str(exp.as_list(label=target)[0][0]), d


if __name__ == "__main__":
    main(*sys.argv[1:3])
