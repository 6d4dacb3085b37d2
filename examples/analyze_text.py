"""Analysis script: which words drive the bundled sentiment classifier, and do methods agree?

    python examples/analyze_text.py [--out DIR]

Uses only the public API: load, explain, Explanation.top, save, report.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import explain

HERE = Path(__file__).resolve().parent
TEXTS = [
    "the plot was unwatchable and the ending was long",
    "a delightful film with a young cast",
    "the music in this documentary is superb",
    "people walked out before the last scene",
]


def main() -> None:
    """Explain four reviews with three methods; print each method's top word and save a report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="analysis-text")
    args = parser.parse_args()
    model = explain.load(HERE / "models" / "sentiment-bert")
    results = explain.explain(model, TEXTS, methods=["ig", "shap", "lime"], lime={"num_samples": 1000})
    agree: Counter[int] = Counter()
    for i, text in enumerate(TEXTS):
        per_method = {e.method: e.top(1)[0][0] for e in results.for_input(i)}
        prediction = results.inputs[i].prediction
        print(f"{text!r} -> {prediction.label} ({prediction.probability:.2f}); top word: {per_method}")
        agree[len(set(per_method.values()))] += 1
    print(f"inputs where all methods name the same top word: {agree[1]} of {len(TEXTS)}")
    out = Path(args.out)
    explain.save(results, out / "results.json")
    print("report:", explain.report(results, str(out / "report.html")))


if __name__ == "__main__":
    main()
