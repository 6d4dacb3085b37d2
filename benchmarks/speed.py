"""Speed with equal work on both sides: explain vs captum / shap / lime called directly.

    python benchmarks/speed.py [--quick] [--repeats N] [--out benchmarks/results/speed.json]
    python benchmarks/speed_tables.py --docs docs/speed.md   # the docs' tables, from the JSON

Headline configuration (issue 18): 12 short sentences (10-15 words), a 6-layer MiniLM-sized
BERT classifier built from a config (random weights: time does not depend on what they learnt;
the bundled tokenizer, vocabulary padded to 30,522), and the bundled sentiment classifier on
held-out sentences with a planted word (so the answers can be checked: hit rate). Per method
(IG, SHAP 500 evaluations, LIME at our per-input default) and side:

- whole process (cold, as a user meets it): `explain run` in a subprocess vs a subprocess
  running benchmarks/speed_direct.py (captum / shap / lime directly); inside it, the same spans
  on both sides: `compute` (each input's prediction forward and the method's work: our results'
  run seconds; the direct script's timed loop), `import` (the library's import: our
  run.setup_seconds; the direct script's import before its loop), and the rest (interpreter,
  torch and transformers, the model's load, writing files, exit; the direct script's teardown
  measured apart from its timestamps);
- warm compute: each side in its own process, one untimed input first, then the inputs, so
  first-call costs (SHAP: numba's compile in shap) are out: cold compute minus warm compute is
  `first_call_s`. Rows counted at the model's forward on both sides (a hook, nothing typed in);
  time / pure forward: the exact rows each side evaluated replayed as pure forwards
  (forward+backward to the embeddings for IG's gradient rows), weights frozen; peak memory of
  that process alone.

Equal work: the direct side gets, per input, the work ours did (IG: its final n_steps and rule;
SHAP: max_evals, a cap on shap's evaluations; LIME: num_samples; SHAP and LIME run at fixed
budgets here, and where a budget was adaptive, the budget its values came from, extras.budget.used), one target (the predicted
class) on both sides, the same whitespace words as features, removed as ours removes them by
default (shap: a word-level Text masker with [MASK]; lime: bow=False, mask_string [MASK]; IG: a
[MASK] baseline). Each repeat runs both sides back to back (alternating which goes first), and
each ratio is the median of the repeats' own ratios, stored with their min and max.
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
# SHAP and LIME at fixed budgets: this table compares the work per row at equal rows; what the
# adaptive budgets (the default) save in rows is quality_per_row.py's question.
OUR_SETTINGS: dict[str, dict[str, Any]] = {"ig": {}, "shap": {"max_evals": 500, "adaptive": False}, "lime": {"adaptive": False}}
LIBRARY = {"ig": "captum", "shap": "shap", "lime": "lime"}
TARGETS = {"ig": 1.0, "shap": 0.67, "lime": 0.5}  # issue 18: whole process, ours / direct
SCHEMA = 2  # 2: the same spans on both sides, per-repeat ratios with spread, cold and warm, the gain's parts
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
    """Run `explain run` cold in a subprocess; return wall, peak, the spans its results record, work, rows."""
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
    # run["seconds"]: every input's prepare (its prediction forward) and methods, after the
    # libraries' import (run["setup_seconds"]): the span the direct script's timed loop covers
    return {"process_s": wall, "process_peak_mb": peak, "compute_s": float(res.run["seconds"]),
            "import_s": float(res.run.get("setup_seconds", 0.0)), "load_s": float(res.run.get("load_seconds", 0.0)),
            "work": [work_of(e) for e in res], "rows": [e.rows for e in res]}


def measure(cfg: dict[str, Any], method: str, repeats: int, tmp: Path, warm_repeats: int = 1) -> dict[str, Any]:
    """Return one equal-work row: both sides, whole process and warm compute, per repeat and summarised."""
    texts, folder = cfg["texts"], cfg["folder"]
    cold_ours: list[dict[str, Any]] = []
    cold_direct: list[dict[str, Any]] = []
    warm_ours: list[dict[str, Any]] = []
    warm_direct: list[dict[str, Any]] = []
    for r in range(repeats):
        def ours_cold() -> None:
            cold_ours.append(cli_run(folder, texts, method, tmp))

        def direct_cold() -> None:  # handed the work ours did in repeat 0 (the same every run: seeded)
            spec = {"method": method, "folder": folder, "texts": texts, "work": cold_ours[0]["work"], "warm": False, "record": False}
            cold_direct.append(worker(HERE / "speed_direct.py", spec, tmp, f"cold-{method}-{r}"))

        # both sides back to back; odd repeats start with the direct side, so drift in the
        # machine's load does not always fall on the same side (repeat 0 must run ours first)
        for run in ((ours_cold, direct_cold) if r % 2 == 0 else (direct_cold, ours_cold)):
            run()
        if r >= warm_repeats:
            continue
        w_ours = worker(HERE / "speed_ours.py", {"method": method, "folder": folder, "texts": texts,
                                                 "settings": OUR_SETTINGS[method], "warm": True, "record": True}, tmp, f"ours-{method}-{r}")
        warm_ours.append(w_ours)
        warm_direct.append(worker(HERE / "speed_direct.py", {"method": method, "folder": folder, "texts": texts, "work": w_ours["work"],
                                                             "warm": True, "record": True}, tmp, f"direct-{method}-{r}"))
    o, d = warm_ours[-1], warm_direct[-1]
    row: dict[str, Any] = {
        "model": cfg["name"], "method": method, "library": LIBRARY[method], "inputs": len(texts), "repeats": repeats,
        "warm_repeats": len(warm_ours), "work_ours": cold_ours[0]["work"], "work_direct": cold_direct[0].get("work", cold_ours[0]["work"]),
        "rows_ours": o["recorded_rows"], "rows_direct": sum(d["rows"]), "rows_ours_results": sum(cold_ours[-1]["rows"]),
        "features_ours": o["n_features"], "features_direct": d["n_features"],
        "fwd_s_ours": _med([x["fwd_s"] for x in warm_ours]), "fwd_s_direct": _med([x["fwd_s"] for x in warm_direct]),
        "peak_mb_ours": _med([x["peak_mb"] for x in warm_ours]), "peak_mb_direct": _med([x["peak_mb"] for x in warm_direct]),
        "whole_peak_mb_ours": _med([x["process_peak_mb"] for x in cold_ours]),
        "whole_peak_mb_direct": _med([x["process_peak_mb"] for x in cold_direct]),
        "load_rss_mb_ours": o["load_rss_mb"], "load_rss_mb_direct": d["load_rss_mb"],
        "top_ours": o["top"], "top_direct": d["top"],
        "runs": {
            "whole_s_ours": [x["process_s"] for x in cold_ours], "whole_s_direct": [x["process_s"] for x in cold_direct],
            "compute_s_ours": [x["compute_s"] for x in cold_ours], "compute_s_direct": [x["compute_s"] for x in cold_direct],
            "import_s_ours": [x["import_s"] for x in cold_ours], "import_s_direct": [x["import_s"] for x in cold_direct],
            "load_s_ours": [x["load_s"] for x in cold_ours], "load_s_direct": [x["load_s"] for x in cold_direct],
            "teardown_s_direct": [x["teardown_s"] for x in cold_direct], "startup_s_direct": [x["startup_s"] for x in cold_direct],
            "warm_s_ours": [x["compute_s"] for x in warm_ours], "warm_s_direct": [x["compute_s"] for x in warm_direct],
        },
    }
    if cfg["truth"]:
        row["hit_ours"] = _hits(o["top"], cfg["truth"])
        row["hit_direct"] = _hits(d["top"], cfg["truth"])
    return derive(row)


def _hits(tops: list[str], truth: list[str]) -> float:
    return sum(t.strip().lstrip("#").lower() == w.lower() for t, w in zip(tops, truth)) / len(truth)


def _med(values: list[float]) -> float:
    return float(statistics.median(values))


SPANS = ("whole", "compute", "warm")  # the spans compared as ratios, each per repeat


def derive(row: dict[str, Any]) -> dict[str, Any]:
    """Add every summary computed from the stored runs: medians, ratios with their spread, the
    gain's parts, first-call costs, per-input figures and whether the target was met."""
    n, runs = row["inputs"], row["runs"]
    for key, values in runs.items():
        row[key] = _med(values)  # e.g. whole_s_ours: the median of the repeats
    spread: dict[str, list[float]] = {}
    for span in SPANS:
        ours, direct = runs[f"{span}_s_ours"], runs[f"{span}_s_direct"]
        paired = [a / b for a, b in zip(ours, direct)]  # each repeat's own ratio (both sides back to back)
        row[f"{span}_ratio"] = _med(paired)
        spread[f"{span}_ratio"] = [min(paired), _med(paired), max(paired)]
    row["spread"] = spread
    target = TARGETS[row["method"]]
    low, _, high = spread["whole_ratio"]
    row["target_whole_ratio"] = target
    row["target_met"] = "every run" if high <= target else "median" if row["whole_ratio"] <= target else "no"
    # what the whole-process gain is made of (direct minus ours, seconds; medians): the same
    # spans on both sides, and the rest (interpreter, torch, transformers, the model, files, exit)
    rest_ours = row["whole_s_ours"] - row["compute_s_ours"] - row["import_s_ours"]
    rest_direct = row["whole_s_direct"] - row["compute_s_direct"] - row["import_s_direct"]
    row["rest_s_ours"], row["rest_s_direct"] = rest_ours, rest_direct
    row["gain"] = {
        "whole_s": row["whole_s_direct"] - row["whole_s_ours"],
        "compute_s": row["compute_s_direct"] - row["compute_s_ours"],
        "import_s": row["import_s_direct"] - row["import_s_ours"],
        "rest_s": rest_direct - rest_ours,
        "teardown_s_direct": row["teardown_s_direct"],  # part of the direct side's rest; ours exits without one
    }
    row["first_call_s_ours"] = row["compute_s_ours"] - row["warm_s_ours"]  # cold minus warm: first-call costs
    row["first_call_s_direct"] = row["compute_s_direct"] - row["warm_s_direct"]
    row["rows_per_input_ours"] = row["rows_ours"] / n
    row["rows_per_input_direct"] = row["rows_direct"] / n
    row["t_over_fwd_ours"] = row["warm_s_ours"] / row["fwd_s_ours"]
    row["t_over_fwd_direct"] = row["warm_s_direct"] / row["fwd_s_direct"]
    row["top_agreement"] = sum(a.strip().lstrip("#").lower() == b.strip().lstrip("#").lower()
                               for a, b in zip(row["top_ours"], row["top_direct"])) / n
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the equal-work table: ratios with their spread, then what the gain is made of."""
    from speed_tables import ratio_cell

    print(f"{'model':<31}{'meth':<5}{'whole ours':>11}{'direct':>8}{'ratio (min-max)':>18}{'target':>7}{'met':>10}"
          f"{'comp ours':>10}{'direct':>8}{'ratio (min-max)':>18}{'warm ratio (min-max)':>22}{'1st call':>9}{'direct':>8}")
    for r in rows:
        print(f"{r['model']:<31}{r['method']:<5}{r['whole_s_ours']:>11.2f}{r['whole_s_direct']:>8.2f}{ratio_cell(r, 'whole'):>18}"
              f"{r['target_whole_ratio']:>7.2f}{r['target_met']:>10}{r['compute_s_ours']:>10.2f}{r['compute_s_direct']:>8.2f}"
              f"{ratio_cell(r, 'compute'):>18}{ratio_cell(r, 'warm'):>22}{r['first_call_s_ours']:>9.2f}{r['first_call_s_direct']:>8.2f}")
    print(f"\n{'model':<31}{'meth':<5}{'gain whole':>11}{'compute':>9}{'import':>8}{'rest':>7}{'teardown':>9}"
          f"{'rows/in':>8}{'direct':>8}{'t/fwd':>6}{'direct':>7}{'MB':>6}{'direct':>7}{'top=':>6}{'hit':>10}")
    for r in rows:
        g = r["gain"]
        hit = f"{r['hit_ours']:.2f}/{r['hit_direct']:.2f}" if "hit_ours" in r else "-"
        print(f"{r['model']:<31}{r['method']:<5}{g['whole_s']:>11.2f}{g['compute_s']:>9.2f}{g['import_s']:>8.2f}{g['rest_s']:>7.2f}"
              f"{g['teardown_s_direct']:>9.2f}{r['rows_per_input_ours']:>8.0f}{r['rows_per_input_direct']:>8.0f}{r['t_over_fwd_ours']:>6.2f}"
              f"{r['t_over_fwd_direct']:>7.2f}{r['peak_mb_ours']:>6.0f}{r['peak_mb_direct']:>7.0f}{r['top_agreement']:>6.2f}{hit:>10}")
    print("whole: the whole process (cold), median of the repeats; ratio: median of each repeat's ours/direct (min-max);"
          " comp: each input's prediction and the method, libraries' import apart; warm: in-process after one untimed input;"
          " 1st call: cold compute minus warm (first-call costs, e.g. numba's compile); gain: direct minus ours, seconds,"
          " = compute + import + rest (teardown: the direct script's, part of its rest); rows counted at the model's forward;"
          " t/fwd: warm time over a pure forward of the exact rows; MB: peak RSS of the warm process; top=: same top word")


def main() -> None:
    """Run the benchmark, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model and two sentences: checks the script, not the speed")
    parser.add_argument("--repeats", type=int, help="whole-process runs per side, median kept (default 3; quick 1)")
    parser.add_argument("--warm-repeats", type=int, help="warm in-process runs per side (default: as --repeats)")
    parser.add_argument("--configs", help="comma-separated indices of the configurations (default: all)")
    parser.add_argument("--methods", help="comma-separated (default ig,shap,lime)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed.json"))
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="combine the rows of runs made apart (e.g. one per method) into --out")
    args = parser.parse_args()
    if args.merge:
        docs = [json.loads(Path(p).read_text()) for p in args.merge]
        if len({d.get("schema", 1) for d in docs}) > 1:
            raise SystemExit("--merge: the files were written by different versions of this script (schema); rerun them")
        doc = {**docs[0], "merged_from": [{"machine": d["machine"], "methods": [r["method"] for r in d["rows"]]} for d in docs],
               "rows": [r for d in docs for r in d["rows"]]}
        print_table(doc["rows"])
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"written: {args.out}")
        return
    repeats = args.repeats or (1 if args.quick else 3)
    warm_repeats = min(args.warm_repeats or repeats, repeats)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        chosen = configurations(args.quick, tmp)
        if args.configs:
            chosen = [chosen[int(i)] for i in args.configs.split(",")]
        for cfg in chosen:
            for method in (args.methods or ",".join(METHODS)).split(","):
                rows.append(measure(cfg, method, repeats, tmp, warm_repeats))
                print(f"done: {cfg['name']} {method}", file=sys.stderr, flush=True)
    print_table(rows)
    doc = {"schema": SCHEMA, "machine": machine(), "quick": args.quick, "repeats": repeats, "warm_repeats": warm_repeats,
           "targets_whole_ratio": TARGETS, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
