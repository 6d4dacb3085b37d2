"""Analysis script: where does the bundled digits CNN look? Pointing game per method.

    python examples/analyze_images.py [--out DIR]

Uses only the public API on numpy images from the planted-truth generator: the digit's box is
the true rationale, so the share of images whose most attributed pixel falls inside it is a
direct check of each method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import explain
from planted_data import digit_images

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Explain held-out digit images with four methods and print the pointing-game hit rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="analysis-images")
    parser.add_argument("-n", type=int, default=8)
    args = parser.parse_args()
    model = explain.load(HERE / "models" / "digits-cnn")
    rows = [r for r in digit_images(4 * args.n, seed=11, split="heldout") if r[2] is not None][: args.n]
    methods = ["ig", "gradcam", "shap", "lime"]
    results = explain.explain(model, [img for img, _, _ in rows], methods=methods)
    for method in methods:
        hits = 0
        for e in results.by_method(method):
            y, x = np.unravel_index(int(np.argmax(e.scores)), e.scores.shape)
            y0, x0, y1, x1 = rows[e.input][2]
            hits += y0 <= y < y1 and x0 <= x < x1
        print(f"{method:8s} most attributed pixel inside the digit: {hits}/{len(rows)}")
    out = Path(args.out)
    explain.save(results, out / "results.json")
    print("report:", explain.report(results, str(out / "report.html")))


if __name__ == "__main__":
    main()
