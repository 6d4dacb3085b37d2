"""Memory over a long run: explaining 1,000 inputs in one call must keep memory flat.

    python benchmarks/memory.py [--quick] [--out benchmarks/results/memory.json]

Explains N held-out sentences with the bundled sentiment classifier (IG and LIME) and samples
the process's resident memory after every 100 inputs. Growth beyond the results themselves
(which are kept: they are the output) would mean a leak, e.g. graphs or hooks that survive.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import explain  # noqa: E402
from planted_data import sentiment_examples  # noqa: E402


def rss_mb() -> float:
    """Return the current resident set size in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    """Run, print the memory table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "memory.json"))
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    texts = [t for t, _, _ in sentiment_examples(n, seed=5, split="heldout")]
    model = explain.load(ROOT / "examples" / "models" / "sentiment-bert", device="cpu")
    samples: list[tuple[int, float]] = [(0, rss_mb())]

    def sample(partial: explain.Results) -> None:
        done = len(partial.inputs)
        if done % 100 == 0:
            samples.append((done, rss_mb()))

    results = explain.explain(model, texts, methods=["ig", "lime"], lime={"num_samples": 300}, on_input=sample)
    print(f"{'inputs':>8}{'rss MiB':>10}")
    for done, mb in samples:
        print(f"{done:>8}{mb:>10.1f}")
    later = [mb for done, mb in samples if done >= 100]
    growth = later[-1] - later[0] if len(later) > 1 else 0.0
    print(f"growth from input 100 to {n}: {growth:.1f} MiB for {len(results)} explanations kept")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"inputs": n, "samples": samples, "growth_mb": growth}, indent=1) + "\n")


if __name__ == "__main__":
    main()
