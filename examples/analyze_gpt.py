"""Analysis script: why did the bundled GPT write what it wrote? Attribution per generated token.

    python examples/analyze_gpt.py [--out DIR]

Uses only the public API: each generated token gets its own explanation over the context.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import explain

HERE = Path(__file__).resolve().parent
PROMPTS = ["the old farmer near the barn and a cow", "one quiet night the owl sits in the tree"]


def main() -> None:
    """Generate three tokens per prompt and print, per token, the context word that drove it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="analysis-gpt")
    args = parser.parse_args()
    model = explain.load(HERE / "models" / "planted-gpt2")
    results = explain.explain(model, PROMPTS, methods=["ig", "shap"], max_new_tokens=3)
    for i, prompt in enumerate(PROMPTS):
        print(f"{prompt!r} -> {results.inputs[i].continuation!r}")
        for e in results.for_input(i):
            word, score = e.top(1)[0]
            print(f"  {e.method:5s} {e.target.label!r:>14}: driven most by {word!r} ({score:+.3f})")
    out = Path(args.out)
    explain.save(results, out / "results.json")
    print("report:", explain.report(results, str(out / "report.html")))


if __name__ == "__main__":
    main()
