"""Hand-written PyTorch models (examples/own_models/) from explain-torch folders, through the CLI.

Three models are trained here in seconds on planted-truth data (a null answer, the cause
removed -> null, noise elsewhere; see examples/own_models/planted.py): a nanoGPT-style GPT
with hand-written attention that answers its last position only, an nn.TransformerEncoder
classifier with a WordPiece `tokenizers` tokenizer, and a small CNN. Each is checked first
(held-out accuracy, and removing the cause gives the null answer), then explained by
`explain run ... --trust-remote-code` in a subprocess: IG, SHAP and LIME must put the planted
cause first for >= 90% of held-out inputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import explain
from explain.errors import CheckpointError, InputError

from conftest import ROOT, run_cli
from test_image_planted import pointed_pixel

sys.path.insert(0, str(ROOT / "examples" / "own_models"))
import planted  # noqa: E402

N = 10  # held-out inputs carrying a planted cause, explained per model
METHODS = ("ig", "shap", "lime")


def _label(model: object, raw: object) -> str:
    """Return the model's predicted label for one input."""
    pred = model.prepare(raw, 0).record.prediction  # type: ignore[attr-defined]
    assert pred is not None
    return str(pred.label)


def _hits(results: explain.Results, method: str, causes: list[str]) -> float:
    exps = results.by_method(method)
    assert len(exps) >= N, f"{method}: {len(exps)} explanations, failures {results.failures}"
    return float(np.mean([e.features[int(np.argmax(e.scores))] == causes[e.input] for e in exps]))


# ---- the GPT -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpt_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return planted.save_gpt(tmp_path_factory.mktemp("own") / "gpt")


@pytest.fixture(scope="module")
def gpt(gpt_folder: Path) -> explain.Results:
    return explain.load(gpt_folder, device="cpu", trust_remote_code=True)  # type: ignore[return-value]


def test_gpt_planted_truth_holds(gpt: object) -> None:
    rows = [r for r in planted.gpt_prompts(80, 777) if r[2]][:30]
    answers = [gpt.prepare(p, 0, max_new_tokens=1).record.continuation for p, _, _ in rows]  # type: ignore[attr-defined]
    assert np.mean([a == want for a, (_, want, _) in zip(answers, rows)]) >= 0.9
    dropped = [" ".join(w for w in p.split() if w != cue) for p, _, cue in rows]
    nulls = [gpt.prepare(p, 0, max_new_tokens=1).record.continuation for p in dropped]  # type: ignore[attr-defined]
    assert np.mean([a == planted.NULL for a in nulls]) >= 0.9, nulls


@pytest.mark.slow
def test_gpt_cli_planted_cause_top1(gpt_folder: Path, tmp_path: Path) -> None:
    rows = [r for r in planted.gpt_prompts(80, 777) if r[2]][:N]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(p for p, _, _ in rows) + "\n")
    out = tmp_path / "out"
    proc = run_cli("run", str(gpt_folder), "--input", str(prompts), "--methods", ",".join(METHODS), "--max-new-tokens", "1",
                   "--target", "steps", "--trust-remote-code", "--threads", "1", "--device", "cpu", "--out", str(out), "--no-report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    results = explain.open_results(out / "results.json")
    for m in METHODS:
        assert _hits(results, m, [c for _, _, c in rows]) >= 0.9, m


def test_folder_refused_without_trust(gpt_folder: Path, tmp_path: Path) -> None:
    proc = run_cli("run", str(gpt_folder), "--prompt", "the cat", "--out", str(tmp_path / "o"), "--device", "cpu")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--trust-remote-code" in lines[0] and "gpt.py" in lines[0], proc.stderr
    with pytest.raises(CheckpointError, match="trust_remote_code=True"):
        explain.load(gpt_folder, device="cpu")


def test_last_position_model_gives_every_position(gpt: object) -> None:
    """The shim's per-prefix logits (nanoGPT answers its last position only) equal the full-sequence logits."""
    shim = gpt.model  # type: ignore[attr-defined]
    ids = torch.tensor([[5, 9, 17, 33, 2, 40]])
    with torch.no_grad():
        got = shim(input_ids=ids).logits  # (1, 6, V) from 6 prefix forwards
        full, _ = shim.inner(ids, targets=torch.zeros_like(ids))  # nanoGPT's training path: every position
        kept = shim(input_ids=ids, logits_to_keep=2).logits
    assert got.shape == full.shape
    torch.testing.assert_close(got, full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(kept, full[:, -2:], rtol=1e-5, atol=1e-5)
    # Left padding (as the prefix scorer batches rows) gives each row its unpadded answer.
    mask = torch.tensor([[0, 0, 1, 1, 1, 1]])
    with torch.no_grad():
        padded = shim(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits
        alone, _ = shim.inner(ids[:, 2:])
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)


def test_gpt_every_generated_token_and_attention(gpt: object) -> None:
    prompt = [p for p, _, c in planted.gpt_prompts(40, 5) if c][0]
    res = explain.explain(gpt, [prompt], methods=["ig", "ablation", "attention"], max_new_tokens=3)
    assert not res.failures, res.failures
    for m in ("ig", "ablation", "attention"):
        exps = res.by_method(m)
        assert len(exps) == 4  # three generated tokens and the whole continuation
        assert all(np.isfinite(e.scores).all() for e in exps)
    att = res.by_method("attention")[0]
    maps = np.asarray(att.extras["token_attention"])
    assert maps.shape[:2] == (2, 2)  # 2 layers x 2 heads, read through transformer.h.*.attn.attn_dropout
    assert np.allclose(maps.sum(-1), 1.0, atol=1e-4)  # probabilities: rows sum to one
    assert np.allclose(np.triu(maps, 1), 0.0)  # causal


def test_attention_capture_through_sdpa_equals_the_handwritten_maps(gpt_folder: Path) -> None:
    """Without attention_probs, F.scaled_dot_product_attention is captured with its reference maths: same maps."""
    cfg = json.loads((gpt_folder / "config.json").read_text())
    flash = gpt_folder.parent / "gpt-flash"
    flash.mkdir(exist_ok=True)
    for f in gpt_folder.iterdir():
        (flash / f.name).write_bytes(f.read_bytes())
    cfg.pop("attention_probs")
    cfg["arch_args"]["flash"] = True
    (flash / "config.json").write_text(json.dumps(cfg))
    by_glob = explain.load(gpt_folder, device="cpu", trust_remote_code=True)
    by_sdpa = explain.load(flash, device="cpu", trust_remote_code=True)
    ids = torch.tensor([[5, 9, 17, 33]])
    a = by_glob.model(input_ids=ids, output_attentions=True)
    b = by_sdpa.model(input_ids=ids, output_attentions=True)
    assert len(a.attentions) == len(b.attentions) == 2
    for x, y in zip(a.attentions, b.attentions):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-5, atol=1e-5)
    # The hand-written path without attention_probs: its inline F.softmax maps are read, the same maps.
    cfg["arch_args"]["flash"] = False
    (flash / "config.json").write_text(json.dumps(cfg))
    inline = explain.load(flash, device="cpu", trust_remote_code=True)
    c = inline.model(input_ids=ids, output_attentions=True)
    assert len(c.attentions) == 2
    for x, y in zip(a.attentions, c.attentions):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.logits, c.logits, rtol=1e-5, atol=1e-5)


def test_state_dict_that_does_not_fit_names_the_first_key(gpt_folder: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in gpt_folder.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((bad / "config.json").read_text())
    cfg["arch_args"]["n_layer"] = 3
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"first mismatched key 'transformer\.h\.2\.[a-z_0-9.]+' is missing from the weights"):
        explain.load(bad, device="cpu", trust_remote_code=True)
    proc = run_cli("run", str(bad), "--prompt", "a cat", "--trust-remote-code", "--out", str(tmp_path / "o"), "--device", "cpu")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_pickled_module_needs_allow_pickle(gpt: object, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    torch.save(gpt.model.inner, folder / "model.pt")  # type: ignore[attr-defined]
    src = Path(gpt.info.path)  # type: ignore[attr-defined]
    (folder / "tokenizer.json").write_bytes((src / "tokenizer.json").read_bytes())
    (folder / "gpt.py").write_bytes((src / "gpt.py").read_bytes())
    (folder / "config.json").write_text(json.dumps({"format": "explain-torch", "format_version": 1, "family": "causal-lm",
                                                    "architecture": "gpt.py:GPT", "weights": "model.pt", "tokenizer": "tokenizer.json"}))
    with pytest.raises(CheckpointError, match="--allow-pickle"):
        explain.load(folder, device="cpu", trust_remote_code=True)
    again = explain.load(folder, device="cpu", trust_remote_code=True, allow_pickle=True)
    assert again.family == "causal-lm"


# ---- the nn.TransformerEncoder classifier --------------------------------------------------------
@pytest.fixture(scope="module")
def enc_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The encoder classifier's folder; its config states that the head reads the mean of every token."""
    folder = planted.save_encoder(tmp_path_factory.mktemp("own") / "encoder")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "answer_row": "mean"}))
    return folder


def _ref_relevance(att: list[torch.Tensor], grads: tuple[torch.Tensor, ...]) -> np.ndarray:
    """Chefer, Gur & Wolf 2021 (arXiv 2103.15679) relevance minus the identity, (T, T), in float64."""
    t = att[0].shape[-1]
    r = np.eye(t)
    for a, g in zip(att, grads):
        r = r + np.maximum(g[0].double().numpy() * a[0].detach().double().numpy(), 0.0).mean(0) @ r
    return r - np.eye(t)


def test_encoder_mean_pooled_relevance_equals_a_direct_reference(enc_folder: Path) -> None:
    """A head on the mean token answers from every row: relevance is the mean of all rows, not row 0 (or their sum)."""
    model = explain.load(enc_folder, device="cpu", trust_remote_code=True)
    text = "this film was delightful and the plot"
    [e] = explain.explain(model, [text], methods=["attention"])
    ex = model.prepare(text, 0)
    ids = torch.tensor([ex.state.ids])
    out = model.model(input_ids=ids, output_attentions=True)
    y = torch.softmax(out.logits[0].float(), -1)[e.target.index]
    rel = _ref_relevance(list(out.attentions), torch.autograd.grad(y, out.attentions))
    ref = rel.mean(0)
    scale = float(np.abs(ref).max())
    assert scale > 0
    assert e.extras["answer_rule"] == "mean" and e.extras["answer_rows"] == list(range(ids.shape[1]))
    np.testing.assert_allclose(e.extras["token_relevance"], ref, atol=1e-4 * scale, rtol=0)
    groups = [list(g) for g in ex.state.word_tokens]
    np.testing.assert_allclose(e.scores, [ref[g].sum() for g in groups], atol=1e-4 * scale, rtol=0)
    for wrong in (rel[0], rel.sum(0)):  # the first row alone, or the rows summed, would be caught
        assert float(np.abs(e.extras["token_relevance"] - wrong).max()) > 0.1 * scale


def test_own_classifier_without_a_stated_rule_says_it_assumed_one(enc_folder: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "enc"
    shutil.copytree(enc_folder, folder)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["answer_row"]
    (folder / "config.json").write_text(json.dumps(cfg))
    [e] = explain.explain(explain.load(folder, device="cpu", trust_remote_code=True), ["a great film"], methods=["attention"])
    assert e.extras["answer_rule"] == "first (assumed)" and e.extras["answer_rows"] == [0]
    (folder / "config.json").write_text(json.dumps({**cfg, "answer_row": "middle"}))
    with pytest.raises(CheckpointError, match="answer_row is 'middle': use one of first, last, mean"):
        explain.load(folder, device="cpu", trust_remote_code=True)


@pytest.mark.slow
def test_encoder_cli_planted_word_top1(enc_folder: Path, tmp_path: Path) -> None:
    model = explain.load(enc_folder, device="cpu", trust_remote_code=True)
    rows = [r for r in planted.sentiment_texts(120, 4242) if r[2]][:N]
    assert [_label(model, t) for t, _, _ in rows] == [label for _, label, _ in rows]
    removed = [" ".join(w for w in t.split() if w != word) for t, _, word in rows]
    assert np.mean([_label(model, t) == "neutral" for t in removed]) >= 0.9
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(t for t, _, _ in rows) + "\n")
    out = tmp_path / "out"
    proc = run_cli("run", str(enc_folder), "--input", str(texts), "--methods", ",".join(METHODS), "--trust-remote-code",
                   "--device", "cpu", "--out", str(out), "--no-report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    results = explain.open_results(out / "results.json")
    for m in METHODS:
        assert _hits(results, m, [w for _, _, w in rows]) >= 0.9, m


def test_encoder_attention_through_multihead_attention(enc_folder: Path) -> None:
    """nn.MultiheadAttention weights are captured per head, and the layer's output is unchanged by the capture."""
    model = explain.load(enc_folder, device="cpu", trust_remote_code=True)
    ids = torch.tensor([model.prepare("a great film", 0).state.ids])
    with torch.no_grad():
        plain = model.model(input_ids=ids).logits
    out = model.model(input_ids=ids, output_attentions=True)
    torch.testing.assert_close(out.logits, plain, rtol=1e-5, atol=1e-5)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (1, 2, ids.shape[1], ids.shape[1])
    # Reference: the first layer's attention module called directly on the embeddings, asking for weights.
    inner = model.model.inner
    x = inner.tok_emb(ids) + inner.pos_emb(torch.arange(ids.shape[1]))
    layer = inner.encoder.layers[0]
    _, ref = layer.self_attn(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out.attentions[0], ref, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(out.logits[0, 2], out.attentions)  # in the graph of the output
    assert all(float(g.abs().sum()) > 0 for g in grads)
    res = explain.explain(model, ["a great film"], methods=["attention", "ablation"])
    assert not res.failures and len(res) == 2


# ---- the CNN -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnn_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return planted.save_cnn(tmp_path_factory.mktemp("own") / "cnn")


@pytest.mark.slow
def test_cnn_cli_planted_square(cnn_folder: Path, tmp_path: Path) -> None:
    from PIL import Image

    model = explain.load(cnn_folder, device="cpu", trust_remote_code=True)
    rows = [r for r in planted.square_images(200, 31) if r[2]][:N]
    assert [_label(model, img) for img, _, _ in rows] == ["square"] * N
    covered = []
    for img, _, (y0, x0, y1, x1) in rows:
        c = img.copy()
        c[y0:y1, x0:x1] = 128
        covered.append(_label(model, c))
    assert np.mean([c == "none" for c in covered]) >= 0.9
    folder = tmp_path / "images"
    folder.mkdir()
    for i, (img, _, _) in enumerate(rows):
        Image.fromarray(img).save(folder / f"img{i:02d}.png")
    out = tmp_path / "out"
    methods = (*METHODS, "gradcam", "occlusion")
    proc = run_cli("run", str(cnn_folder), "--image", str(folder), "--methods", ",".join(methods), "--trust-remote-code",
                   "--device", "cpu", "--out", str(out), "--no-report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    results = explain.open_results(out / "results.json")
    for m in methods:
        exps = results.by_method(m)
        assert len(exps) == N
        hits = []
        for e in exps:
            y0, x0, y1, x1 = rows[e.input][2]
            y, x = pointed_pixel(e.scores)
            hits.append(y0 <= y < y1 and x0 <= x < x1)
        # Grad-CAM's map is at the last conv's half resolution and occlusion's windows straddle
        # the square's edges, so they point a pixel off more often: 80% for them.
        assert np.mean(hits) >= (0.9 if m in METHODS else 0.8), f"{m}: {np.mean(hits):.0%}"


# ---- from_model ----------------------------------------------------------------------------------
class _CharTokenizer:
    """A tiktoken-like encode/decode tokenizer: one id per character of a fixed alphabet ("_" unknown)."""

    alphabet = "_ abcdefghijklmnopqrstuvwxyz"
    n_vocab = len(alphabet)

    def encode(self, text: str) -> list[int]:
        return [self.alphabet.index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.alphabet[i] for i in ids)


def test_from_model_with_an_encode_decode_tokenizer() -> None:
    enc = planted._import("encoder_classifier")
    torch.manual_seed(0)
    module = enc.EncoderClassifier(_CharTokenizer.n_vocab, 2, d_model=16, nhead=2, num_layers=1, max_len=32)
    model = explain.from_model(module, _CharTokenizer(), family="text-classifier", labels=["no", "yes"], device="cpu",
                               special_tokens={"unk": "_", "pad": "_"})
    ex = model.prepare("good film", 0)
    assert ex.state.words == ("good", "film")  # whole words from the decoded prefixes' offsets
    assert ex.state.word_tokens == ((0, 1, 2, 3), (4, 5, 6, 7, 8))  # the space joins the word it starts
    res = explain.explain(model, ["good film"], methods=["ig", "shap", "lime", "ablation", "attention"])
    assert not res.failures and len(res) == 5
    # Without a token to stand for removed words, an all-removed row is refused in one line, not scored as NaN.
    bare = explain.from_model(module, _CharTokenizer(), family="text-classifier", device="cpu")
    with pytest.raises(InputError, match="no tokens reached the model"):
        bare.model(input_ids=torch.zeros((1, 0), dtype=torch.long))
    # With one, an all-removed row (no tokens, or all under the mask) is the pad token alone.
    pad_alone = model.model(input_ids=torch.zeros((1, 1), dtype=torch.long)).logits
    for ids, mask in ((torch.zeros((1, 0), dtype=torch.long), None), (torch.tensor([[3, 4]]), torch.tensor([[0, 0]]))):
        torch.testing.assert_close(model.model(input_ids=ids, attention_mask=mask).logits, pad_alone)
    with pytest.raises(CheckpointError, match="3 labels given but the model has 2 outputs"):
        explain.from_model(module, _CharTokenizer(), family="text-classifier", labels=["a", "b", "c"], device="cpu")


def test_forward_contract_errors_name_the_shape() -> None:
    class Bad(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(27, 4)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.emb(ids)  # (B, T, 4): not (B, classes)

    with pytest.raises(CheckpointError, match=r"logits \(batch, classes\) = \(1, C\); got \(1, 3, 4\)"):
        explain.from_model(Bad(), _CharTokenizer(), family="text-classifier", device="cpu")
    with pytest.raises(CheckpointError, match="the model scores 4 tokens but the tokenizer has 28"):
        explain.from_model(Bad(), _CharTokenizer(), family="causal-lm", device="cpu")

    class Pooled(Bad):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.emb(ids).sum(1)] * 7, -1)  # (B, 28): no position axis

    with pytest.raises(CheckpointError, match=r"causal LM must return logits \(batch, T, vocab\).* got \(1, 28\)"):
        explain.from_model(Pooled(), _CharTokenizer(), family="causal-lm", device="cpu")
