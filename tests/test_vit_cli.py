"""`explain run VIT_FOLDER --image ... --methods attention,gradcam,ig` on every vision transformer's folder.

Folders are written here from tiny random models: Hugging Face ViT, DeiT with teacher, BEiT,
Dinov2, Dinov2 with registers (save_pretrained, no image processor: the loader assumes one and
says so), and the hand-written ViT (examples/own_models/vit.py) as explain-torch folders with
nn.MultiheadAttention and with F.scaled_dot_product_attention. ViT, DeiT and the SDPA ViT run
through the command line (a subprocess each: the slow part); the others through explain.load
and explain.explain on the same folders, which is what the command calls. Each gives the three
explanations. Swin and a CNN asked for attention stop before any input with one line naming
Grad-CAM (CLI: exit 2); `--methods all` and `explain inspect` leave attention out for them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli
from vit_models import HF, hf_model, image, own_vit

pytestmark = pytest.mark.slow
OWN = {"own-mha": {}, "own-sdpa-registers": {"attention": "sdpa", "registers": 2}}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vit-cli")
    out = {}
    for kind in (*HF, "swin"):
        hf_model(kind).save_pretrained(root / kind)
        out[kind] = root / kind
    for kind, args in OWN.items():
        from safetensors.torch import save_file

        folder = root / kind
        folder.mkdir()
        shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "own_models" / "vit.py", folder / "vit.py")
        save_file({k: v.contiguous() for k, v in own_vit(kind).state_dict().items()}, str(folder / "model.safetensors"))
        config = {"format": "explain-torch", "format_version": 1, "family": "image-classifier", "architecture": "vit.py:TinyViT",
                  "arch_args": {"in_channels": 3, "num_classes": 3, **args}, "labels": ["cat", "dog", "bird"], "answer_row": "first",
                  "preprocessing": {"size": [32, 32], "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3}}
        (folder / "config.json").write_text(json.dumps(config))
        out[kind] = folder
    Image.fromarray(image()).save(root / "input.png")
    out["image"] = root / "input.png"
    return out


def check(results: dict) -> None:
    """The three explanations, no failure; attention names the class token and the patch grid."""
    assert not results["failures"]
    assert sorted(e["method"] for e in results["explanations"]) == ["attention", "gradcam", "ig"]
    att = next(e for e in results["explanations"] if e["method"] == "attention")
    assert att["extras"]["special_tokens"][0] == "[CLS]" and att["extras"]["grid"] in ([4, 4], [8, 8])


@pytest.mark.parametrize("kind", ["vit", "deit", "own-sdpa-registers"])
def test_the_command_runs_attention_gradcam_and_ig(folders: dict[str, Path], kind: str, tmp_path: Path) -> None:
    trust = ["--trust-remote-code"] if kind in OWN else []
    done = run_cli("run", str(folders[kind]), "--image", str(folders["image"]), "--methods", "attention,gradcam,ig",
                   "--out", str(tmp_path / "out"), "-q", *trust)
    assert done.returncode == 0, done.stderr
    check(json.loads((tmp_path / "out" / "results.json").read_text()))
    assert (tmp_path / "out" / "report.html").stat().st_size > 0


@pytest.mark.parametrize("kind", ["beit", "dinov2", "dinov2-registers", "own-mha"])
def test_the_folder_runs_attention_gradcam_and_ig(folders: dict[str, Path], kind: str, tmp_path: Path) -> None:
    import explain

    model = explain.load(folders[kind], device="cpu", trust_remote_code=kind in OWN)
    results = explain.explain(model, [str(folders["image"])], methods=["attention", "gradcam", "ig"], errors="record")
    explain.save(results, tmp_path / "results.json")
    check(json.loads((tmp_path / "results.json").read_text()))


def test_swin_asked_for_attention_stops_in_one_line(folders: dict[str, Path], tmp_path: Path) -> None:
    done = run_cli("run", str(folders["swin"]), "--image", str(folders["image"]), "--methods", "attention,gradcam", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("explain: error:")]
    assert "shifted windows" in line and "gradcam" in line
    assert not (tmp_path / "out" / "results.json").exists()
    listed = run_cli("inspect", str(folders["swin"]))
    methods = next(x for x in listed.stdout.splitlines() if x.startswith("methods"))
    assert "gradcam" in methods and "attention" not in methods


def test_a_cnn_asked_for_attention_stops_before_any_input(folders: dict[str, Path], tmp_path: Path) -> None:
    import explain
    from explain.errors import MethodError
    from explain.methods import for_model
    from vit_models import planted

    model = explain.load(planted.save_cnn(tmp_path / "cnn", steps=1), device="cpu", trust_remote_code=True)
    rows = model.runner.rows
    with pytest.raises(MethodError, match="computes no attention maps .* use gradcam"):
        explain.explain(model, [str(folders["image"])], methods=["attention", "gradcam"])
    assert "attention" not in for_model(model) and "gradcam" in for_model(model) and model.runner.rows == rows
