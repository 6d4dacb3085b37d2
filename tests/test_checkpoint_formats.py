"""Checkpoints as people save them (issue 24, section 4), saved here from three small models.

The user's project is a folder with model.py (a tutorial CNN, a mean-pooled text classifier, a
GRU language model) imported as the module `model`, as a training script imports it; every
format is saved from the same seeded models: a PyTorch Lightning .ckpt (keys under `model.`,
`hyper_parameters` holding an argparse.Namespace and an object whose unpickling would run
code), nested wrapper prefixes (DDP `module.`, torch.compile `_orig_mod.`), the tutorials'
`model_state_dict` dict, TorchScript (script and trace), a whole pickled module
(`torch.save(model)`) and a bare state dict. Each goes through `explain pack` and is then
explained through the API and, for one per format, `explain run` in a subprocess: the answer
equals the model called directly, IG equals captum's on the model itself, or the refusal is
one line naming the cause.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

import explain
from explain.errors import CheckpointError, ExplainWarning, MethodError
from explain.loading.packing import pack

from conftest import ROOT, run_cli

sys.path.insert(0, str(ROOT / "examples" / "own_models"))
import planted  # noqa: E402

USER_CODE = '''
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F


class Net(nn.Module):
    """The tutorial CNN: conv, BatchNorm, pool, flatten, linear; 8x8 RGB images, 3 classes."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 4 * 4, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv1(x))), 2)
        return self.fc(torch.flatten(x, 1))


class TextNet(nn.Module):
    """Mean of the unmasked token embeddings, tanh, linear."""

    def __init__(self, vocab_size: int, dim: int = 16, num_classes: int = 2):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, dim)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = attention_mask.unsqueeze(-1).float()
        return self.fc(torch.tanh((self.emb(input_ids) * m).sum(1) / m.sum(1).clamp(min=1.0)))


class TinyLM(nn.Module):
    """Embedding, GRU, linear: logits (B, T, V)."""

    def __init__(self, vocab_size: int, dim: int = 16):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.emb(input_ids))
        return self.head(out)


def touch(path):
    """What a planted pickle calls when it is unpickled for real: it leaves a file behind."""
    Path(path).touch()
    return path
'''

CORPUS = ["the movie was great", "the film was awful", "a good plot", "bad acting and a dull story", "it was fine"] * 4
TEXT = "the movie was great"
PROMPT = "the film was"
IMAGE = np.random.RandomState(0).randint(0, 256, (8, 8, 3), dtype=np.uint8)
PREP = {"size": [8, 8], "channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
IG = {"baseline": "black", "adaptive": False, "n_steps": 32}  # captum's Gauss-Legendre, 32 points
pytestmark = pytest.mark.filterwarnings("ignore:IG did not converge")  # 32 fixed points, as captum is given


class Planted:
    """Unpickled for real, it calls model.touch(marker); read as data, it must leave no file."""

    def __init__(self, marker: Path, touch: Any) -> None:
        self.marker, self.touch = marker, touch

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return self.touch, (str(self.marker),)


class Project:
    """The user's folder: model.py, tokenizers, the three models and every saved format."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "model.py").write_text(USER_CODE, encoding="utf-8")
        wp, bpe = planted.wordpiece_tokenizer(CORPUS, vocab_size=60), planted.bpe_tokenizer(CORPUS)
        wp.save(str(root / "wp.json"))
        bpe.save(str(root / "bpe.json"))
        self.wp, self.bpe = wp, bpe
        self.marker = root / "pickled-code-ran"
        with _as_module("model", root / "model.py") as mod:
            torch.manual_seed(0)
            self.net = mod.Net().eval()
            with torch.no_grad():  # running statistics as after training, so that BatchNorm is not the identity
                self.net.bn.running_mean.uniform_(-0.5, 0.5)
                self.net.bn.running_var.uniform_(0.5, 2.0)
            self.text = mod.TextNet(wp.get_vocab_size()).eval()
            self.lm = mod.TinyLM(bpe.get_vocab_size()).eval()
            self._save(mod)

    def _save(self, mod: ModuleType) -> None:
        r = self.root
        for name, m in (("image", self.net), ("text", self.text), ("lm", self.lm)):
            sd = m.state_dict()
            opt = torch.optim.AdamW(m.parameters())
            torch.save({
                "epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0",
                "state_dict": {f"model.{k}": v for k, v in sd.items()},
                "hyper_parameters": {"args": argparse.Namespace(lr=1e-3, epochs=3), "planted": Planted(self.marker, mod.touch)},
                "optimizer_states": [opt.state_dict()], "lr_schedulers": [],
                "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": torch.tensor(0.25), "dirpath": str(r)}},
            }, r / f"{name}.ckpt")
            torch.jit.script(m).save(str(r / f"{name}.scripted.pt"))
            torch.save(m, r / f"{name}.whole.pt")
            torch.save(sd, r / f"{name}.pth")
        torch.jit.trace(self.net, torch.zeros(2, 3, 8, 8)).save(str(r / "image.traced.pt"))

    def image_probs(self, model: torch.nn.Module | None = None) -> np.ndarray:
        """The CNN called directly on IMAGE as its preprocessing gives it."""
        with torch.no_grad():
            return torch.softmax((model or self.net)(_normalised(_pixels())), -1)[0].numpy()

    def text_probs(self) -> np.ndarray:
        ids = torch.tensor([self.wp.encode(TEXT).ids])
        with torch.no_grad():
            return torch.softmax(self.text(ids, torch.ones_like(ids)), -1)[0].numpy()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(tmp_path_factory.mktemp("user-project"))


class _as_module:
    """Import a file as the top-level module `name` for the block (as `from model import Net` does), then forget it."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path

    def __enter__(self) -> Any:
        spec = importlib.util.spec_from_file_location(self.name, self.path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[self.name] = mod
        spec.loader.exec_module(mod)
        return mod

    def __exit__(self, *exc: object) -> None:
        sys.modules.pop(self.name, None)  # loading must find the class by itself, as a fresh process does


def _pixels() -> torch.Tensor:
    return torch.from_numpy(IMAGE).permute(2, 0, 1)[None].float() / 255.0


def _normalised(p: torch.Tensor) -> torch.Tensor:
    return (p - 0.5) / 0.5


def _pack_image(project: Project, weights: str, out: Path, **kw: Any) -> Path:
    arch = kw.pop("architecture", str(project.root / "model.py") + ":Net")
    return pack(arch, project.root / weights, "image-classifier", out, preprocessing=PREP, labels=["a", "b", "c"], **kw)


def close(ours: np.ndarray, ref: np.ndarray, rel: float = 1e-4) -> None:
    """Assert ours == ref within rel x max|ref|."""
    ref = np.asarray(ref, dtype=np.float64)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rel * np.abs(ref).max() + 1e-8)


def image_ig_reference(net: torch.nn.Module, target: int) -> np.ndarray:
    """captum's IG on the CNN itself from 0..1 pixels, black baseline, summed over channels."""
    from captum.attr import IntegratedGradients

    x = _pixels()
    attr = IntegratedGradients(lambda p: torch.softmax(net(_normalised(p)), -1)[:, target]).attribute(
        x, baselines=torch.zeros_like(x), n_steps=32, method="gausslegendre")
    return attr.detach().double().sum(1)[0].numpy()


def one_line_error(proc: Any, *needles: str) -> str:
    """Assert a CLI run ended with exit 2 and one stderr line holding every needle; return it."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return str(lines[0])


# ---- PyTorch Lightning .ckpt ---------------------------------------------------------------------
def test_lightning_ckpt_is_hard_for_torch_load_and_its_planted_object_is_live(project: Project) -> None:
    """The checkpoint is what the issue describes: weights_only refuses it, and a full unpickling runs code."""
    with pytest.raises(Exception, match="argparse.Namespace|Unsupported global"):
        torch.load(project.root / "image.ckpt", weights_only=True)
    with _as_module("model", project.root / "model.py"):
        torch.load(project.root / "image.ckpt", weights_only=False)
    assert project.marker.exists()  # the planted object does run when unpickled for real
    project.marker.unlink()


def test_lightning_image_ckpt_packs_without_running_pickles(project: Project, tmp_path: Path) -> None:
    folder = _pack_image(project, "image.ckpt", tmp_path / "lit")  # no allow_pickle
    assert not project.marker.exists()
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "model.py:Net" and cfg["weights"] == "model.safetensors"
    model = explain.load(folder, device="cpu", trust_remote_code=True)
    for k, v in project.net.state_dict().items():  # the very weights, 'model.' stripped
        torch.testing.assert_close(model.model.state_dict()[k], v)
    close(model.prepare(IMAGE, 0).probs, project.image_probs(), 1e-5)
    [e] = explain.explain(model, [IMAGE], methods=["ig"], ig=IG)
    close(e.scores, image_ig_reference(project.net, e.target.index))


def test_lightning_text_ckpt_answer_and_ig_equal_the_model_and_captum(project: Project, tmp_path: Path) -> None:
    from captum.attr import LayerIntegratedGradients

    folder = pack(str(project.root / "model.py") + ":TextNet", project.root / "text.ckpt", "text-classifier", tmp_path / "lit-text",
                  arch_args={"vocab_size": project.wp.get_vocab_size()}, tokenizer=project.root / "wp.json", labels=["neg", "pos"])
    model = explain.load(folder, device="cpu", trust_remote_code=True)
    close(model.prepare(TEXT, 0).probs, project.text_probs(), 1e-5)
    [e] = explain.explain(model, [TEXT], methods=["ig"], ig={"baseline": "pad", "adaptive": False, "n_steps": 32})
    enc = project.wp.encode(TEXT)  # [CLS] pieces of the four words [SEP]
    ids = torch.tensor([enc.ids])
    base = ids.clone()
    base[0, 1:-1] = project.wp.token_to_id("[PAD]")
    groups = [[i for i, w in enumerate(enc.word_ids) if w == k] for k in range(4)]

    def forward(i: torch.Tensor) -> torch.Tensor:
        return torch.softmax(project.text(i, torch.ones_like(i)), -1)[:, e.target.index]

    attr = LayerIntegratedGradients(forward, project.text.emb).attribute(ids, baselines=base, n_steps=32, method="gausslegendre")
    per_token = attr.detach().double().sum(-1)[0].numpy()
    assert e.features == tuple(TEXT.split()) and max(len(g) for g in groups) > 1  # a word of several pieces is summed
    close(e.scores, np.array([per_token[g].sum() for g in groups]))


def test_lightning_lm_ckpt_continuation_and_ig_equal_the_model_and_captum(project: Project, tmp_path: Path) -> None:
    from captum.attr import LayerIntegratedGradients

    folder = pack(str(project.root / "model.py") + ":TinyLM", project.root / "lm.ckpt", "causal-lm", tmp_path / "lit-lm",
                  arch_args={"vocab_size": project.bpe.get_vocab_size()}, tokenizer=project.root / "bpe.json")
    model = explain.load(folder, device="cpu", trust_remote_code=True)
    ids = torch.tensor([project.bpe.encode(PROMPT).ids])
    with torch.no_grad():
        want = int(project.lm(ids)[0, -1].argmax())
    assert list(model.prepare(PROMPT, 0, max_new_tokens=1).state.continuation) == [want]
    res = explain.explain(model, [PROMPT], methods=["ig"], ig={"baseline": "eos", "adaptive": False, "n_steps": 32}, max_new_tokens=1)
    e = next(x for x in res if x.target.position is not None)
    ctx = ids[:, : e.target.position]

    def forward(i: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(project.lm(i)[:, -1].float(), -1)[:, e.target.index]

    eos = project.bpe.token_to_id("<|endoftext|>")
    attr = LayerIntegratedGradients(forward, project.lm.emb).attribute(ctx, baselines=torch.full_like(ctx, eos), n_steps=32, method="gausslegendre")
    close(e.scores, attr.detach().double().sum(-1)[0].numpy())


# ---- prefixes and containers ---------------------------------------------------------------------
@pytest.mark.parametrize("wrap,left_out", [
    (lambda sd: {f"module.{k}": v for k, v in sd.items()}, False),  # DistributedDataParallel
    (lambda sd: {f"module.model.{k}": v for k, v in sd.items()}, False),  # DDP around a Lightning module
    (lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()}, False),  # torch.compile
    (lambda sd: {f"module._orig_mod.{k}": v for k, v in sd.items()}, False),  # both
    (lambda sd: {f"conv1._orig_mod.{k[6:]}" if k.startswith("conv1.") else k: v for k, v in sd.items()}, False),  # one compiled layer
    (lambda sd: {"epoch": 5, "model_state_dict": sd, "optimizer_state_dict": {}, "loss": torch.tensor(0.3)}, False),  # the PyTorch tutorial
    (lambda sd: {"net": {f"net.{k}": v for k, v in sd.items()}, "step": 7}, False),
    (lambda sd: {"state_dict": {**{f"model.{k}": v for k, v in sd.items()}, "loss_fn.weight": torch.ones(3)}}, True),  # more than the model
], ids=["ddp", "ddp-lightning", "compile", "ddp-compile", "compiled-layer", "tutorial-dict", "net-container", "extra-keys"])
def test_prefixes_and_containers_are_read(project: Project, tmp_path: Path, wrap: Any, left_out: bool) -> None:
    torch.save(wrap(project.net.state_dict()), tmp_path / "w.pt")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        folder = pack(str(project.root / "model.py") + ":Net", tmp_path / "w.pt", "image-classifier", tmp_path / "out", preprocessing=PREP)
    notes = [str(w.message) for w in said if issubclass(w.category, ExplainWarning)]
    assert notes == (["w.pt: read the model's weights under 'model.'; 1 other keys left out ('loss_fn.weight')"] if left_out else []), notes
    model = explain.load(folder, device="cpu", trust_remote_code=True)
    close(model.prepare(IMAGE, 0).probs, project.image_probs(), 1e-5)


def test_two_copies_of_the_model_are_refused_then_chosen(project: Project, tmp_path: Path) -> None:
    sd = project.net.state_dict()
    ema = {k: v + 0.01 if v.is_floating_point() else v for k, v in sd.items()}
    torch.save({"state_dict": {**{f"model.{k}": v for k, v in sd.items()}, **{f"ema_model.{k}": v for k, v in ema.items()}}}, tmp_path / "two.ckpt")
    with pytest.raises(CheckpointError, match=r"two\.ckpt hold the model's keys under 2 prefixes \('ema_model\.', 'model\.'\).*--weights-key"):
        pack(str(project.root / "model.py") + ":Net", tmp_path / "two.ckpt", "image-classifier", tmp_path / "a", preprocessing=PREP)
    folder = pack(str(project.root / "model.py") + ":Net", tmp_path / "two.ckpt", "image-classifier", tmp_path / "b",
                  preprocessing=PREP, weights_key="ema_model.")
    model = explain.load(folder, device="cpu", trust_remote_code=True)
    torch.testing.assert_close(model.model.state_dict()["fc.weight"], ema["fc.weight"])


def test_two_entries_holding_a_state_dict_read_the_first_and_say_so(project: Project, tmp_path: Path) -> None:
    sd = project.net.state_dict()
    ema = {k: v * 0.5 if v.is_floating_point() else v for k, v in sd.items()}
    torch.save({"model": sd, "ema": ema, "step": 9}, tmp_path / "both.pt")
    with pytest.warns(ExplainWarning, match=r"both\.pt: read the state dict under 'model'; it also holds one under 'ema'"):
        first = pack(str(project.root / "model.py") + ":Net", tmp_path / "both.pt", "image-classifier", tmp_path / "a", preprocessing=PREP)
    chosen = pack(str(project.root / "model.py") + ":Net", tmp_path / "both.pt", "image-classifier", tmp_path / "b", preprocessing=PREP,
                  weights_key="ema")
    a = explain.load(first, device="cpu", trust_remote_code=True).model.state_dict()
    b = explain.load(chosen, device="cpu", trust_remote_code=True).model.state_dict()
    torch.testing.assert_close(a["fc.weight"], sd["fc.weight"])
    torch.testing.assert_close(b["fc.weight"], ema["fc.weight"])


def test_weights_that_do_not_fit_name_the_given_file_and_both_sides_keys(project: Project, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        pack(str(project.root / "model.py") + ":TinyLM", project.root / "image.ckpt", "causal-lm", tmp_path / "x",
             arch_args={"vocab_size": 50}, tokenizer=project.root / "bpe.json")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("the weights image.ckpt do not fit model.py:TinyLM: first mismatched key 'emb.weight'"), msg
    assert "the weights' keys begin with 'model.conv1.weight', 'model.conv1.bias', 'model.bn.weight' (and 6 more), the model's with 'emb.weight'" in msg, msg
    assert not (tmp_path / "x").exists()


# ---- TorchScript ---------------------------------------------------------------------------------
@pytest.mark.parametrize("weights", ["image.scripted.pt", "image.traced.pt"])
def test_torchscript_image_answer_and_ig_equal_the_model_and_captum(project: Project, tmp_path: Path, weights: str) -> None:
    folder = pack(None, project.root / weights, "image-classifier", tmp_path / "ts", preprocessing=PREP)
    assert json.loads((folder / "config.json").read_text())["architecture"] == "torchscript"
    with pytest.raises(CheckpointError, match="TorchScript program.*--trust-remote-code"):
        explain.load(folder, device="cpu")
    model = explain.load(folder, device="cpu", trust_remote_code=True)
    assert isinstance(model.model, torch.jit.ScriptModule)
    close(model.prepare(IMAGE, 0).probs, project.image_probs(), 1e-5)
    res = explain.explain(model, [IMAGE], methods=["ig", "occlusion"], ig=IG)
    assert not res.failures
    e = res.by_method("ig")[0]
    close(e.scores, image_ig_reference(project.net, e.target.index))
    with pytest.raises(MethodError, match="'gradcam' cannot run on this model: Grad-CAM .* TorchScript program"):
        explain.explain(model, [IMAGE], methods=["gradcam"])


def test_torchscript_text_and_lm_answer_and_refuse_what_needs_hooks(project: Project, tmp_path: Path) -> None:
    text = explain.load(pack(None, project.root / "text.scripted.pt", "text-classifier", tmp_path / "t", tokenizer=project.root / "wp.json"),
                        device="cpu", trust_remote_code=True)
    close(text.prepare(TEXT, 0).probs, project.text_probs(), 1e-5)
    assert text.model.takes_mask  # read from the TorchScript schema: rows are batched with their mask
    res = explain.explain(text, [TEXT], methods=["ablation"])
    assert not res.failures and len(res.by_method("ablation")[0].scores) == 4
    for method in ("ig", "attention"):
        with pytest.raises(MethodError, match=f"'{method}' cannot run on this model: .*TorchScript"):
            explain.explain(text, [TEXT], methods=[method])
    lm = explain.load(pack(None, project.root / "lm.scripted.pt", "causal-lm", tmp_path / "l", tokenizer=project.root / "bpe.json"),
                      device="cpu", trust_remote_code=True)
    ids = torch.tensor([project.bpe.encode(PROMPT).ids])
    with torch.no_grad():
        want = int(project.lm(ids)[0, -1].argmax())
    assert list(lm.prepare(PROMPT, 0, max_new_tokens=1).state.continuation) == [want]
    with pytest.raises(MethodError, match="'ig' cannot run"):
        explain.explain(lm, [PROMPT], methods=["ig"], max_new_tokens=1)


# ---- a whole pickled module ----------------------------------------------------------------------
def test_whole_pickled_module_loads_with_its_folders_code(project: Project, tmp_path: Path) -> None:
    assert "model" not in sys.modules  # as in a fresh process: `model` is not importable
    with pytest.raises(CheckpointError, match=r"whole pickled module \(model\.Net\).*--allow-pickle"):
        _pack_image(project, "image.whole.pt", tmp_path / "no")
    folder = _pack_image(project, "image.whole.pt", tmp_path / "whole", allow_pickle=True)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.pickled.pt", "model.py"]
    with pytest.raises(CheckpointError, match="--allow-pickle"):
        explain.load(folder, device="cpu", trust_remote_code=True)
    with pytest.raises(CheckpointError, match=r"class model\.Net is code in model\.py.*--trust-remote-code"):
        explain.load(folder, device="cpu", allow_pickle=True)
    model = explain.load(folder, device="cpu", trust_remote_code=True, allow_pickle=True)
    close(model.prepare(IMAGE, 0).probs, project.image_probs(), 1e-5)


def test_a_module_pickled_from_a_script_finds_its_class_in_the_architecture_file(project: Project, tmp_path: Path) -> None:
    """`python train.py` pickles its own classes as __main__.Net: the architecture file stands for __main__."""
    with _as_module("model", project.root / "model.py") as mod:
        main = sys.modules["__main__"]
        cls = mod.Net
        net = cls().eval()
        net.load_state_dict(project.net.state_dict())
        cls.__module__ = "__main__"
        setattr(main, "Net", cls)
        try:
            torch.save(net, tmp_path / "main.pt")
        finally:
            delattr(main, "Net")
            cls.__module__ = "model"
    folder = pack(str(project.root / "model.py") + ":Net", tmp_path / "main.pt", "image-classifier", tmp_path / "m",
                  preprocessing=PREP, allow_pickle=True)
    model = explain.load(folder, device="cpu", trust_remote_code=True, allow_pickle=True)
    close(model.prepare(IMAGE, 0).probs, project.image_probs(), 1e-5)


# ---- through the command line --------------------------------------------------------------------
def _cli_pack(project: Project, weights: str, out: Path, *extra: str) -> Any:
    return run_cli("pack", "--weights", str(project.root / weights), "--family", "image-classifier", "--preprocessing", json.dumps(PREP),
                   "--labels", "a,b,c", "--out", str(out), *extra, cwd=project.root.parent)


def _cli_run(folder: Path, out: Path, *extra: str) -> Any:
    return run_cli("run", str(folder), "--image", str(out.parent / "image.png"), "--threads", "1", "--device", "cpu",
                   "--out", str(out), "--no-report", "--quiet", *extra)


@pytest.mark.slow
def test_cli_lightning_whole_module_and_torchscript_images(project: Project, tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(IMAGE).save(tmp_path / "image.png")
    arch = ["--architecture", str(project.root / "model.py") + ":Net"]
    want = project.image_probs()
    # Lightning: no --allow-pickle needed, and the planted object never ran.
    assert _cli_pack(project, "image.ckpt", tmp_path / "lit", *arch).returncode == 0
    assert not project.marker.exists()
    proc = _cli_run(tmp_path / "lit", tmp_path / "r1", "--methods", "ig,gradcam", "--trust-remote-code")
    assert proc.returncode == 0, proc.stderr
    rec = explain.open_results(tmp_path / "r1" / "results.json").inputs[0]
    close(np.array(rec.probabilities), want, 1e-5)
    # A whole pickled module: pack and run with --allow-pickle (was: No module named 'model', exit 3).
    packed = _cli_pack(project, "image.whole.pt", tmp_path / "whole", *arch, "--allow-pickle")
    assert packed.returncode == 0 and "--trust-remote-code --allow-pickle" in packed.stderr, packed.stderr
    one_line_error(_cli_run(tmp_path / "whole", tmp_path / "r2", "--trust-remote-code"), "whole pickled module (model.Net)", "--allow-pickle")
    proc = _cli_run(tmp_path / "whole", tmp_path / "r2", "--methods", "ig,shap", "--trust-remote-code", "--allow-pickle")
    assert proc.returncode == 0, proc.stderr
    close(np.array(explain.open_results(tmp_path / "r2" / "results.json").inputs[0].probabilities), want, 1e-5)
    # TorchScript: no --architecture; Grad-CAM refused in one line.
    assert _cli_pack(project, "image.traced.pt", tmp_path / "ts").returncode == 0
    one_line_error(_cli_run(tmp_path / "ts", tmp_path / "r3", "--methods", "ig,gradcam", "--trust-remote-code"),
                   "'gradcam' cannot run on this model", "TorchScript")
    proc = _cli_run(tmp_path / "ts", tmp_path / "r3", "--methods", "ig,occlusion", "--trust-remote-code")
    assert proc.returncode == 0, proc.stderr
    close(np.array(explain.open_results(tmp_path / "r3" / "results.json").inputs[0].probabilities), want, 1e-5)


def test_bare_weights_file_points_to_pack(project: Project, tmp_path: Path) -> None:
    line = one_line_error(run_cli("run", str(project.root / "image.pth"), "--image", "x.png", "--out", str(tmp_path / "o")),
                          "state dict", "explain pack --architecture", f"--weights {project.root / 'image.pth'}", "--family image-classifier")
    assert "--preprocessing" in line and "then: explain run image/ ... --trust-remote-code" in line
    with pytest.raises(CheckpointError) as err:
        explain.load(project.root / "text.scripted.pt", device="cpu")
    line = str(err.value)
    assert "TorchScript" in line and f"explain pack --weights {project.root / 'text.scripted.pt'} --family text-classifier" in line, line
    assert "--architecture" not in line and "--tokenizer" in line
    with pytest.raises(CheckpointError, match=r"whole pickled module.*explain pack --architecture YOUR_CODE\.py:YourModel --allow-pickle .*--family image-classifier.*--trust-remote-code --allow-pickle"):
        explain.load(project.root / "image.whole.pt", device="cpu")
