"""Report and results-file size and speed: the report of 100 text inputs, and issue 26's three results-file runs.

    python benchmarks/report_size.py           # 100 inputs, 5 loads in headless Chromium (medians), the three runs
    python benchmarks/report_size.py --quick   # 20 inputs, 1 load, the runs at smaller budgets (CI)
    python benchmarks/report_size.py --no-runs # the report only (no model runs)

The report: 100 text inputs x 4 methods, ~30 words each, attention of a 2-layer 4-head model
(tests/report_samples.py).
Measures the HTML's size, the Python render time, and in headless Chromium (Playwright driving
/usr/bin/chromium, page opened from file://): time to interactive (the page's own
`window.__explainReady` mark, from navigation start), when plotly.js is compiled and ready, the
time to draw a section scrolled to once plotly is ready, and the longest main-thread task while
loading (plotly.js's own start-up, compiled off the main thread but run on it). Budgets (issue
16): < 10 MB, interactive < 2 s.

The results files (issue 26; benchmarks/results_runs.py): a MiniLM-sized model on 4 texts with
attention (target: under 2 MB in all), the pretrained EfficientNet-Lite0 on 8 photos with 5
methods (under 8 MB), and a 1,000-image run re-rendered in a process of its own, its peak memory
against holding every map. Writes benchmarks/results/report_size.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explain import reports  # noqa: E402
sys.path.insert(0, str(ROOT / "tests"))  # the sample Results are test data
import report_samples as samples  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MAX_BYTES = 10_000_000
MAX_READY_MS = 2000.0
# Record long main-thread tasks from the first byte (injected before any page script).
LONGTASKS = """
window.__longest = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); })
  .observe({ type: "longtask", buffered: true });
"""


def browser_times(path: Path, loads: int, section: int) -> list[dict[str, float]]:
    """Open the report `loads` times in headless Chromium; return the timings of each load (ms)."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(loads):
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.add_init_script(LONGTASKS)
            page.goto(path.as_uri(), wait_until="commit")
            page.wait_for_function("() => window.__explainReady", timeout=60_000)
            ready = page.evaluate("window.__explainReady")
            plotly = page.evaluate("window.__explain.loadPlotly().then(() => performance.now())")
            longest = page.evaluate("window.__longest")
            page.evaluate("window.__explain.settled()")  # what the first screen asked for is drawn
            started = page.evaluate(f"(() => {{ document.querySelector('#input-{section}').scrollIntoView(); return performance.now(); }})()")
            page.wait_for_function(f"() => document.querySelector('#input-{section}').dataset.state === 'done'", timeout=60_000)
            done = page.evaluate("window.__explain.settled().then(() => performance.now())")
            figures = page.evaluate(f"document.querySelectorAll('#input-{section} .js-plotly-plot').length")
            out.append({"ready_ms": ready, "plotly_ready_ms": plotly, "longest_task_ms": longest,
                        "section_draw_ms": done - started, "section_figures": figures})
            page.close()
        browser.close()
    return out


TEN_INPUTS_BYTES = 1_500_000  # issue 16: a 10-input text report under 1.5 MB, self-contained


def ten_inputs(words: int) -> dict[str, int]:
    """Return the sizes of a 10-input text report: self-contained, and with a shared plotly.js."""
    results = samples.text_results(10, words, ("ig", "shap", "lime", "attention"), layers=2, heads=4, hostile=False)
    with tempfile.TemporaryDirectory() as tmp:
        inline = reports.write_report(results, Path(tmp) / "inline" / "report.html")
        shared = reports.write_report(results, Path(tmp) / "shared" / "report.html", assets="shared")
        asset = sum(f.stat().st_size for f in shared.parent.iterdir() if f.suffix == ".js")
        return {"inline_bytes": inline.stat().st_size, "shared_page_bytes": shared.stat().st_size, "shared_asset_bytes": asset}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table and write the JSON; return 0 when within budget."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 inputs and one browser load (CI)")
    ap.add_argument("--loads", type=int, default=None, help="browser loads (default 5; 1 with --quick)")
    ap.add_argument("--inputs", type=int, default=None, help="number of text inputs (default 100; 20 with --quick)")
    ap.add_argument("--words", type=int, default=30, help="words per input")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "report_size.json")
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    ap.add_argument("--no-runs", action="store_true",
                    help="skip the three results-file runs (they load and run models, half an hour on 2 CPU cores); "
                         "the runs already in --out are kept, with the date they were measured")
    ap.add_argument("--rerender-inputs", type=int, default=1000, help="inputs of the re-render run (default 1000)")
    ap.add_argument("--rerender-side", type=int, default=128, help="pixels per side of its maps (default 128)")
    args = ap.parse_args(argv)
    n = args.inputs or (20 if args.quick else 100)
    loads = args.loads or (1 if args.quick else 5)

    results = samples.text_results(n, args.words, ("ig", "shap", "lime", "attention"), layers=2, heads=4, hostile=False)
    renders = []
    for _ in range(1 if args.quick else 3):
        t = time.perf_counter()
        html = reports.render(results)
        renders.append(time.perf_counter() - t)
    size = len(html.encode("utf-8"))
    from explain.reports.plotly_bundle import gzip_base64

    plotly_bytes = len(gzip_base64().encode("ascii"))  # the partial bundle as a page embeds it
    row = {
        "inputs": n,
        "methods": 4,
        "words": args.words,
        "explanations": len(results),
        "bytes": size,
        "plotly_js_bytes": plotly_bytes,
        "bytes_per_input": round((size - plotly_bytes) / n),
        "render_s": round(min(renders), 3),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = reports.write_report(results, Path(tmp) / "report.html")
        browser = [] if args.no_browser or not os.path.exists(CHROMIUM) else browser_times(path, loads, n // 2)
    if browser:  # medians over the loads
        row.update({k: round(statistics.median(b[k] for b in browser), 1)
                    for k in ("ready_ms", "plotly_ready_ms", "section_draw_ms", "longest_task_ms")})
        row["section_figures"] = browser[0]["section_figures"]
    row["within_budget"] = size < MAX_BYTES and (not browser or row["ready_ms"] < MAX_READY_MS)
    ten = ten_inputs(args.words)

    print(f"report of {n} text inputs x 4 methods ({args.words} words, attention 2 layers x 4 heads)")
    print(f"{'bytes':>12} {'MB':>6} {'render s':>9} {'ready ms':>9} {'plotly ms':>10} {'section ms':>11} {'longest task':>13}")
    print(
        f"{size:>12,} {size / 1e6:>6.2f} {row['render_s']:>9.3f} {row.get('ready_ms', float('nan')):>9.1f} "
        f"{row.get('plotly_ready_ms', float('nan')):>10.1f} {row.get('section_draw_ms', float('nan')):>11.1f} "
        f"{row.get('longest_task_ms', float('nan')):>13.1f}"
    )
    print(f"budget: < {MAX_BYTES / 1e6:.0f} MB and interactive < {MAX_READY_MS / 1000:.0f} s: {'ok' if row['within_budget'] else 'EXCEEDED'}")
    print(f"10 text inputs x 4 methods: self-contained {ten['inline_bytes'] / 1e6:.2f} MB (target < {TEN_INPUTS_BYTES / 1e6:.1f} MB: "
          f"{'met' if ten['inline_bytes'] < TEN_INPUTS_BYTES else 'NOT met'}); with --assets shared {ten['shared_page_bytes'] / 1e6:.2f} MB "
          f"per page + {ten['shared_asset_bytes'] / 1e6:.2f} MB plotly.js once")
    runs: dict[str, object] = {}
    if args.no_runs and args.out.exists():  # the results files do not depend on the report's code: keep the last measurement
        before = json.loads(args.out.read_text(encoding="utf-8"))
        if before.get("results_files"):
            runs = dict(before["results_files"])
            written = time.strftime("%Y-%m-%d", time.localtime(args.out.stat().st_mtime))
            runs.setdefault("measured", before.get("machine", {}).get("date") or written)
    if not args.no_runs:
        import results_runs

        with tempfile.TemporaryDirectory() as tmp:
            runs["text4"] = results_runs.text4(Path(tmp), args.quick)
            runs["photos8"] = results_runs.photos8(Path(tmp), args.quick)
            runs["rerender"] = results_runs.rerender(Path(tmp), args.rerender_inputs, args.rerender_side)
            runs["measured"] = time.strftime("%Y-%m-%d")
        for name in ("text4", "photos8"):
            r = runs[name]
            assert isinstance(r, dict)
            print(f"results of {name}: {r['total_bytes'] / 1e6:.2f} MB in all (results.json {r['results_json_bytes'] / 1e6:.2f} MB + arrays "
                  f"{r['arrays_bytes'] / 1e6:.2f} MB; all inline {r['inline_json_bytes'] / 1e6:.1f} MB), target < {r['target_bytes'] / 1e6:.0f} MB: "
                  f"{'met' if r['within_target'] else 'NOT met'}")
        rr = runs["rerender"]
        assert isinstance(rr, dict)
        print(f"re-render of {rr['inputs']:,} images ({rr['maps_mb']} MB of maps): peak {rr['lazy']['peak_rss_mb']} MB lazily, "
              f"{rr['eager']['peak_rss_mb']} MB with every map loaded first")
        row["within_budget"] = bool(row["within_budget"]) and all(bool(runs[k]["within_target"]) for k in ("text4", "photos8")) \
            and not rr["lazy_holds_every_map"]  # type: ignore[index]
    doc = {
        "benchmark": "report_size",
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "date": time.strftime("%Y-%m-%d")},
        "budget": {"bytes": MAX_BYTES, "ready_ms": MAX_READY_MS},
        "result": row,
        "ten_inputs": ten,
        "browser_loads": browser,
        "results_files": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if row["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
