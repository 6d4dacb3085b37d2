"""Speed with equal work on both sides: explain vs captum / shap / lime called directly.

    python benchmarks/speed.py [--quick] [--repeats N] [--out benchmarks/results/speed.json]

Headline configuration (issue 18): 12 short sentences (10-15 words), a 6-layer MiniLM-sized
BERT classifier built from a config (random weights: time does not depend on what they learnt;
the bundled tokenizer, vocabulary padded to 30,522), and the bundled sentiment classifier on
held-out sentences with a planted word (so the answers can be checked: hit rate). Per method
(IG, SHAP 500 evaluations, LIME at our per-input default) and side:

- whole process: `explain run` in a subprocess vs a subprocess running benchmarks/speed_direct.py
  (captum / shap / lime directly), each cold as a user meets it; beside it the compute inside
  (the results' own cost for ours, the timed loop for the direct script);
- warm compute: each side in its own process, one untimed input first, then the inputs;
  rows counted at the model's forward on both sides (a hook, nothing hard-coded); time / pure
  forward: the exact rows each side evaluated replayed as pure forwards (forward+backward to the
  embeddings for IG's gradient rows), weights frozen; peak memory of that process alone.

Equal work: the direct side gets, per input, the work ours did (IG: its final n_steps and rule;
SHAP: max_evals; LIME: num_samples), one target (the predicted class) on both sides, the same
whitespace words as features, removed as ours removes them by default (shap: a word-level Text
masker with [MASK]; lime: bow=False, mask_string [MASK]; IG: a [MASK] baseline). The machine is shared and noisy: whole-process figures are the median
of `--repeats` runs, warm figures of `--warm-repeats`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(ROOT / "examples")]

from benchlib import bert_classifier, machine, run_process, short_sentences, worker  # noqa: E402

METHODS = ("ig", "shap", "lime")
OUR_SETTINGS: dict[str, dict[str, Any]] = {"ig": {}, "shap": {"max_evals": 500}, "lime": {}}
LIBRARY = {"ig": "captum", "shap": "shap", "lime": "lime"}
EXPLAIN_CLI = Path(sys.executable).parent / "explain"


def configurations(quick: bool, tmp: Path) -> list[dict[str, Any]]:
    """Return the model folders and inputs measured (quick: one tiny model, two sentences)."""
    if quick:
        return [{"name": "tiny-bert", "folder": str(bert_classifier(tmp / "tiny", "tiny", vocab_size=1000)),
                 "texts": short_sentences(2), "truth": None}]
    from planted_data import sentiment_examples

    planted = [(t, w) for t, _, w in sentiment_examples(400, seed=99, split="heldout") if w and "[" not in t][:20]
    return [
        {"name": "minilm-6 (12 short sentences)", "folder": str(bert_classifier(tmp / "minilm", "minilm")),
         "texts": short_sentences(12), "truth": None},
        {"name": "sentiment-bert (bundled)", "folder": str(ROOT / "examples" / "models" / "sentiment-bert"),
         "texts": [t for t, _ in planted], "truth": [w for _, w in planted]},
    ]


def cli_run(folder: str, texts: list[str], method: str, tmp: Path) -> dict[str, Any]:
    """Run `explain run` cold in a subprocess; return wall, peak, compute (results' cost), work, rows."""
    import explain
    from speed_ours import work_of

    src, out = tmp / "inputs.txt", tmp / f"cli-{method}"
    src.write_text("\n".join(texts) + "\n")
    cmd = [str(EXPLAIN_CLI), "run", folder, "--input", str(src), "--methods", method, "--no-report",
           "--out", str(out), "--force", "--device", "cpu"]
    cmd += [f"--set={method}.{k}={v}" for k, v in OUR_SETTINGS[method].items()]
    wall, peak, err = run_process(cmd, ok=(0, 1))  # 1: some inputs failed, reported below
    res = explain.open_results(str(out / "results.json"))
    if res.failures or len(res) != len(texts):
        raise SystemExit(f"explain run: {len(res)} explanations, failures {res.failures}: {err}")
    return {"process_s": wall, "process_peak_mb": peak, "compute_s": sum(e.seconds for e in res),
            "work": [work_of(e) for e in res], "rows": [e.rows for e in res]}


def measure(cfg: dict[str, Any], method: str, repeats: int, tmp: Path, warm_repeats: int = 1) -> dict[str, Any]:
    """Return one equal-work row: both sides, whole process and warm compute, medians of repeats."""
    texts, folder = cfg["texts"], cfg["folder"]
    cold_ours, cold_direct, warm_ours, warm_direct = [], [], [], []
    for r in range(repeats):
        ours = cli_run(folder, texts, method, tmp)
        cold_ours.append(ours)
        spec = {"method": method, "folder": folder, "texts": texts, "work": ours["work"], "warm": False, "record": False}
        cold_direct.append(worker(HERE / "speed_direct.py", spec, tmp, f"cold-{method}-{r}"))
        if r >= warm_repeats:
            continue
        w_ours = worker(HERE / "speed_ours.py", {"method": method, "folder": folder, "texts": texts,
                                                 "settings": OUR_SETTINGS[method], "warm": True, "record": True}, tmp, f"ours-{method}-{r}")
        warm_ours.append(w_ours)
        warm_direct.append(worker(HERE / "speed_direct.py", {**spec, "work": w_ours["work"], "warm": True, "record": True},
                                  tmp, f"direct-{method}-{r}"))
    n = len(texts)

    def med(docs: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(d[key] for d in docs))

    o, d = warm_ours[-1], warm_direct[-1]
    row: dict[str, Any] = {
        "model": cfg["name"], "method": method, "library": LIBRARY[method], "inputs": n, "repeats": repeats, "warm_repeats": len(warm_ours),
        "work_ours": ours["work"], "work_direct": cold_direct[-1].get("work", ours["work"]),
        "whole_s_ours": med(cold_ours, "process_s"), "whole_s_direct": med(cold_direct, "process_s"),
        "compute_s_ours": med(cold_ours, "compute_s"), "compute_s_direct": med(cold_direct, "compute_s"),
        "warm_s_ours": med(warm_ours, "compute_s"), "warm_s_direct": med(warm_direct, "compute_s"),
        "fwd_s_ours": med(warm_ours, "fwd_s"), "fwd_s_direct": med(warm_direct, "fwd_s"),
        "rows_ours": o["recorded_rows"], "rows_direct": sum(d["rows"]),
        "rows_ours_results": sum(cold_ours[-1]["rows"]),
        "features_ours": o["n_features"], "features_direct": d["n_features"],
        "peak_mb_ours": med(warm_ours, "peak_mb"), "peak_mb_direct": med(warm_direct, "peak_mb"),
        "whole_peak_mb_ours": med(cold_ours, "process_peak_mb"), "whole_peak_mb_direct": med(cold_direct, "process_peak_mb"),
        "load_rss_mb_ours": o["load_rss_mb"], "load_rss_mb_direct": d["load_rss_mb"],
        "top_ours": o["top"], "top_direct": d["top"],
        "runs": {"whole_s_ours": [x["process_s"] for x in cold_ours], "whole_s_direct": [x["process_s"] for x in cold_direct],
                 "warm_s_ours": [x["compute_s"] for x in warm_ours], "warm_s_direct": [x["compute_s"] for x in warm_direct]},
    }
    if cfg["truth"]:
        row["hit_ours"] = _hits(o["top"], cfg["truth"])
        row["hit_direct"] = _hits(d["top"], cfg["truth"])
    return derive(row)


def _hits(tops: list[str], truth: list[str]) -> float:
    return sum(t.strip().lstrip("#").lower() == w.lower() for t, w in zip(tops, truth)) / len(truth)


def derive(row: dict[str, Any]) -> dict[str, Any]:
    """Add the ratios and per-input figures computed from the stored times and rows (ours / direct)."""
    n = row["inputs"]
    row["whole_ratio"] = row["whole_s_ours"] / row["whole_s_direct"]
    row["warm_ratio"] = row["warm_s_ours"] / row["warm_s_direct"]
    row["fixed_s_ours"] = row["whole_s_ours"] - row["compute_s_ours"]
    row["fixed_s_direct"] = row["whole_s_direct"] - row["compute_s_direct"]
    row["rows_per_input_ours"] = row["rows_ours"] / n
    row["rows_per_input_direct"] = row["rows_direct"] / n
    row["t_over_fwd_ours"] = row["warm_s_ours"] / row["fwd_s_ours"]
    row["t_over_fwd_direct"] = row["warm_s_direct"] / row["fwd_s_direct"]
    row["top_agreement"] = sum(a.strip().lstrip("#").lower() == b.strip().lstrip("#").lower()
                               for a, b in zip(row["top_ours"], row["top_direct"])) / n
    return row


TARGETS = {"ig": 1.0, "shap": 0.67, "lime": 0.5}  # issue 18: whole process, ours / direct


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the equal-work table: whole process and compute, both sides."""
    print(f"{'model':<31}{'meth':<5}{'whole ours':>11}{'direct':>8}{'ratio':>7}{'target':>7}{'comp ours':>10}{'direct':>8}"
          f"{'fixed':>7}{'warm s/in':>10}{'direct':>8}{'ratio':>7}{'rows/in':>8}{'direct':>8}{'t/fwd':>6}{'direct':>7}"
          f"{'MB':>6}{'direct':>7}{'top=':>6}{'hit':>10}")
    for r in rows:
        hit = f"{r['hit_ours']:.2f}/{r['hit_direct']:.2f}" if "hit_ours" in r else "-"
        print(f"{r['model']:<31}{r['method']:<5}{r['whole_s_ours']:>11.2f}{r['whole_s_direct']:>8.2f}{r['whole_ratio']:>7.2f}"
              f"{TARGETS[r['method']]:>7.2f}{r['compute_s_ours']:>10.2f}{r['compute_s_direct']:>8.2f}{r['fixed_s_ours']:>7.2f}"
              f"{r['warm_s_ours'] / r['inputs']:>10.3f}{r['warm_s_direct'] / r['inputs']:>8.3f}{r['warm_ratio']:>7.2f}"
              f"{r['rows_per_input_ours']:>8.0f}{r['rows_per_input_direct']:>8.0f}{r['t_over_fwd_ours']:>6.2f}{r['t_over_fwd_direct']:>7.2f}"
              f"{r['peak_mb_ours']:>6.0f}{r['peak_mb_direct']:>7.0f}{r['top_agreement']:>6.2f}{hit:>10}")
    print("whole: seconds for the whole process (cold); comp: compute inside it; fixed: whole - comp (ours);"
          " warm: in-process after one untimed input; rows counted at the model's forward on both sides;"
          " t/fwd: warm time over a pure forward of the exact rows; MB: peak RSS of that warm process alone;"
          " top=: share of inputs whose top word agrees; medians of the repeats")


def main() -> None:
    """Run the benchmark, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model and two sentences: checks the script, not the speed")
    parser.add_argument("--repeats", type=int, help="whole-process runs per side, median kept (default 3; quick 1)")
    parser.add_argument("--warm-repeats", type=int, default=1, help="warm in-process runs per side (default 1)")
    parser.add_argument("--configs", help="comma-separated indices of the configurations (default: all)")
    parser.add_argument("--methods", help="comma-separated (default ig,shap,lime; quick: ig,lime, as shap's numba compile costs the direct side ~5 s a process)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed.json"))
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="combine the rows of runs made apart (e.g. one per method) into --out")
    args = parser.parse_args()
    if args.merge:
        docs = [json.loads(Path(p).read_text()) for p in args.merge]
        doc = {**docs[0], "merged_from": [{"machine": d["machine"], "methods": [r["method"] for r in d["rows"]]} for d in docs],
               "rows": [r for d in docs for r in d["rows"]]}
        print_table(doc["rows"])
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"written: {args.out}")
        return
    repeats = args.repeats or (1 if args.quick else 3)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        chosen = configurations(args.quick, tmp)
        if args.configs:
            chosen = [chosen[int(i)] for i in args.configs.split(",")]
        for cfg in chosen:
            for method in (args.methods or ("ig,lime" if args.quick else ",".join(METHODS))).split(","):
                rows.append(measure(cfg, method, repeats, tmp, min(args.warm_repeats, repeats)))
                print(f"done: {cfg['name']} {method}", file=sys.stderr, flush=True)
    print_table(rows)
    doc = {"machine": machine(), "quick": args.quick, "repeats": repeats, "warm_repeats": min(args.warm_repeats, repeats), "targets_whole_ratio": TARGETS, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
