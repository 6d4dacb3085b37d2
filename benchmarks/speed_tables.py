"""The speed page's tables, rendered from benchmarks/results/speed.json (no figure typed by hand).

    python benchmarks/speed_tables.py                      # print the Markdown
    python benchmarks/speed_tables.py --docs docs/speed.md # replace the block between the markers

Reads both layouts the benchmark has written: schema 2 (the same spans on both sides, ratios
per repeat with their spread, cold and warm, the gain's parts) and schema 1 (before: whole
process and warm compute only are like for like there, so the other columns say so).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
JSON = ROOT / "benchmarks" / "results" / "speed.json"
BEGIN = "<!-- speed.json tables: begin (python benchmarks/speed_tables.py --docs docs/speed.md) -->"
END = "<!-- speed.json tables: end -->"
TITLES = {"ig": "IG (captum)", "shap": "SHAP (shap)", "lime": "LIME (lime)"}


def paired(r: dict[str, Any], span: str) -> list[float] | None:
    """Return each repeat's own ours/direct ratio of `span` (whole, compute, warm), or None when not stored."""
    runs = r.get("runs", {})
    ours, direct = runs.get(f"{span}_s_ours"), runs.get(f"{span}_s_direct")
    if not ours or not direct or len(ours) != len(direct):
        return None
    return [a / b for a, b in zip(ours, direct)]


def ratio_cell(r: dict[str, Any], span: str) -> str:
    """Return "median (min-max)" of the repeats' ratios, or the one ratio when there was one run."""
    values = paired(r, span)
    if not values:
        return "-"
    mid = statistics.median(values)
    return f"{mid:.2f}" if len(values) == 1 else f"{mid:.2f} ({min(values):.2f}-{max(values):.2f})"


def _met(r: dict[str, Any], target: float) -> str:
    """Return whether the whole-process target held: in every run, at the median only, or not
    (schema 2 stores the verdict, `target_met`; schema 1's is read from its runs the same way)."""
    values = paired(r, "whole") or []
    if not values:
        return "-"
    verdict = r.get("target_met") or ("every run" if max(values) <= target else "median" if statistics.median(values) <= target else "no")
    held = sum(v <= target for v in values)
    if verdict == "every run":
        return "yes" + (f", in all {len(values)} runs" if len(values) > 1 else " (1 run)")
    return f"at the median only ({held} of {len(values)} runs)" if verdict == "median" else f"no ({held} of {len(values)} runs)"


def render(doc: dict[str, Any]) -> str:
    """Return the Markdown of the speed tables for one speed.json document."""
    m = doc["machine"]
    schema = int(doc.get("schema", 1))
    repeats, warm = doc.get("repeats"), doc.get("warm_repeats")
    out = [f"`benchmarks/results/speed.json` (schema {schema}), {m['date']}, {m['cpu_count']} CPUs ({m['processor']}), "
           f"torch {m['torch']} on {m['torch_threads']} threads, 1-minute load average {m['load_average']:.1f} when it ended; "
           f"{repeats} whole-process run(s) and {warm} warm run(s) per side. A ratio is ours ÷ direct: the median of each "
           f"repeat's own ratio, with the smallest and largest in brackets.", ""]
    targets = doc.get("targets_whole_ratio", {})
    for model in dict.fromkeys(r["model"] for r in doc["rows"]):
        rows = [r for r in doc["rows"] if r["model"] == model]
        out += [f"**{model}**", ""]
        out += ["| method | whole process, explain / direct | ours ÷ direct | target | met | compute, explain / direct | ours ÷ direct "
                "| warm, s per input, explain / direct | ours ÷ direct | first-call cost (cold − warm compute), explain / direct |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            n, t = r["inputs"], targets.get(r["method"], r.get("target_whole_ratio"))
            if schema >= 2:
                compute = f"{r['compute_s_ours']:.2f} / {r['compute_s_direct']:.2f} s"
                compute_ratio = ratio_cell(r, "compute")
                first = f"{r['first_call_s_ours']:.2f} / {r['first_call_s_direct']:.2f} s"
            else:  # schema 1's direct compute held the library's import and the prediction forwards
                compute = compute_ratio = first = "not measured alike"
            out.append(f"| {TITLES.get(r['method'], r['method'])} | {r['whole_s_ours']:.2f} / {r['whole_s_direct']:.2f} s | "
                       f"**{ratio_cell(r, 'whole')}** | ≤ {t:g} | {_met(r, t)} | {compute} | {compute_ratio} | "
                       f"{r['warm_s_ours'] / n:.3f} / {r['warm_s_direct'] / n:.3f} | {ratio_cell(r, 'warm')} | {first} |")
        out += ["", "| method | whole-process gain (direct − explain) | = compute | + library import | + the rest | "
                    "(the direct script's teardown) | rows per input, explain / direct | time ÷ pure forward | peak MB | same top word |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if schema >= 2:
                g = r["gain"]
                parts = (f"{g['whole_s']:+.2f} s | {g['compute_s']:+.2f} s | {g['import_s']:+.2f} s | {g['rest_s']:+.2f} s | "
                         f"{g['teardown_s_direct']:.2f} s")
            else:
                parts = f"{r['whole_s_direct'] - r['whole_s_ours']:+.2f} s | not measured alike | - | - | -"
            out.append(f"| {TITLES.get(r['method'], r['method'])} | {parts} | {r['rows_per_input_ours']:.0f} / {r['rows_per_input_direct']:.0f} | "
                       f"{r['t_over_fwd_ours']:.2f} / {r['t_over_fwd_direct']:.2f} | {r['peak_mb_ours']:.0f} / {r['peak_mb_direct']:.0f} | "
                       f"{round(r['top_agreement'] * r['inputs'])} of {r['inputs']} |")
        out.append("")
    if schema < 2:
        out += ["This file predates the like-for-like spans: its direct-side compute includes importing the library "
                "and each input's prediction forward (ours left both out), so compute, first-call costs and the gain's "
                "parts are left blank until it is measured again (`python benchmarks/speed.py`). Its whole-process and "
                "warm figures are like for like.", ""]
    return "\n".join(out).rstrip() + "\n"


def replace_block(page: str, block: str) -> str:
    """Return `page` with the text between the BEGIN and END markers replaced by `block`."""
    if BEGIN not in page or END not in page:
        raise SystemExit(f"the page has no {BEGIN!r} ... {END!r} block")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main() -> None:
    """Print the tables, or write them into a docs page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(JSON))
    parser.add_argument("--docs", help="a Markdown page holding the markers: its block is rewritten")
    args = parser.parse_args()
    block = render(json.loads(Path(args.json).read_text()))
    if not args.docs:
        sys.stdout.write(block)
        return
    page = Path(args.docs)
    page.write_text(replace_block(page.read_text(), block))
    print(f"written: {page}")


if __name__ == "__main__":
    main()
