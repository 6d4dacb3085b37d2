"""The run-level trust summary: per method and metric, mean, spread and count across inputs, beside chance.

The numbers come from `explain.metrics.summary.summarise` (mean, std and n of every metric and
self-check per method), so the report and `explain evaluate`'s table agree; this module adds
what a table in a page can show besides: how often each method beats its own random baseline,
the sanity verdict, and the agreement between method pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .data import method_title
from .encode import esc, fmt, number, plain
from .quality import check_title, check_value, verdicts
from .removal_text import faithfulness_sentence
from .trust import AGREEMENT, FAITHFULNESS, RATIONALE, SANITY, Figure, beats, has_metrics, metric_keys

if TYPE_CHECKING:
    from explain.results.explanation import Results

RHO_LIMIT = 0.5  # used when the results do not record evaluate()'s own sanity_rho_limit


def summary_doc(results: Results) -> dict[str, Any] | None:
    """Return the trust summary of `results` ({'methods': [...], 'columns', 'pairs', 'sanity'}), or None without metrics."""
    if not has_metrics(results):
        return None
    from explain.metrics.summary import stats, summarise

    per = summarise(results)
    metrics = _mapping(results.run.get("metrics"))
    sanity_run, settings = _mapping(metrics.get("sanity")), _mapping(metrics.get("settings"))
    limit = number(settings.get("sanity_rho_limit")) or RHO_LIMIT
    wins: dict[tuple[str, str], list[bool]] = {}
    abs_rho: dict[str, list[float]] = {}
    own: dict[str, dict[str, dict[str, Any]]] = {}  # method -> self-check -> passed, failed, values
    for e in results:
        c = dict(e.metrics or {})
        for v in verdicts(e):
            o = own.setdefault(e.method, {}).setdefault(v.name, {"key": v.name, "n": 0, "failed": 0, "judged": 0, "values": []})
            o["n"] += 1
            o["failed"] += int(v.passed is False)
            o["judged"] += int(v.passed is not None)
            figure = check_value(e, "delta_relative") if v.name == "completeness" else v.value
            if figure is not None:
                o["values"].append(figure)
        for f in FAITHFULNESS:
            ok = beats(f.key, number(c.get(f.key)), number(c.get(f.key + "_random")))
            if ok is not None:
                wins.setdefault((e.method, f.key), []).append(ok)
        rho = number(c.get(SANITY.key))
        if rho is not None:
            abs_rho.setdefault(e.method, []).append(abs(rho))
    rows: list[dict[str, Any]] = []
    for m, s in per.items():
        def cell(key: str) -> dict[str, Any] | None:
            st = s.get(key)
            if not st or not st.get("n"):
                return None
            return {"mean": number(st["mean"]), "std": number(st["std"]), "n": int(st["n"])}

        faith: dict[str, dict[str, Any]] = {}
        for f in FAITHFULNESS:
            fc = cell(f.key)
            if fc is not None:
                w = wins.get((m, f.key), [])
                fc["random"] = (cell(f.key + "_random") or {}).get("mean")
                fc["wins"], fc["of"] = sum(w), len(w)
                faith[f.key] = fc
        sanity = None
        if m in abs_rho:
            mean_abs = stats(abs_rho[m])["mean"]
            recorded = _mapping(sanity_run.get("flagged")).get(m)
            flagged = bool(recorded) if recorded is not None else bool(number(mean_abs) is not None and mean_abs > limit)
            flags = cell("sanity_flag")
            sanity = {"mean_abs": number(mean_abs), "n": len(abs_rho[m]), "flagged": flagged,
                      "flags": round((flags or {}).get("mean", 0) * (flags or {}).get("n", 0)) if flags else None}
        rows.append({
            "m": m,
            "faith": faith,
            "self": [{**{k: v for k, v in o.items() if k != "values"}, "mean": stats(o["values"])["mean"] if o["values"] else None}
                     for o in own.get(m, {}).values()] or None,
            "sanity": sanity,
            "agree": cell(AGREEMENT.key),
            "rat": {f.key: cell(f.key) for f in RATIONALE if cell(f.key)} or None,
        })
    pairs: list[dict[str, Any]] = []
    for name, p in _mapping(_mapping(metrics.get("agreement")).get("pairs")).items():
        a, _, b = str(name).partition("|")
        pairs.append({"a": a, "b": b, "rho": number(p.get("spearman_mean")), "rho_std": number(p.get("spearman_std")),
                      "top": number(p.get("top_k_mean")), "n": int(number(p.get("n")) or 0)})
    rank = {m: n for n, m in enumerate(per)}  # run order: the results file sorts the pair names, the page does not
    pairs.sort(key=lambda p: (rank.get(p["a"], len(rank)), rank.get(p["b"], len(rank)), p["a"], p["b"]))
    curves = _mapping(sanity_run.get("curves"))
    scored = set(metric_keys())
    return {
        "inputs": len({int(e.input) for e in results if scored & set(e.metrics or {})}),
        "methods": rows,
        "columns": [f.key for f in FAITHFULNESS if any(f.key in r["faith"] for r in rows)],
        "pairs": pairs,
        "limit": limit,
        "removal": faithfulness_sentence(results),
        "sanity": {"blocks": [str(b) for b in sanity_run.get("blocks") or []], "curves": plain(curves),
                   "titles": {str(m): method_title(str(m)) for m in curves}} if curves else None,
    }


def _self_cell(m: str, checks: list[dict[str, Any]]) -> str:
    """Return the summary cell of a method's self-checks: per check, how many passed, and the mean figure."""
    lines = []
    for c in checks:
        if c["key"] == "completeness":
            figure = f"mean {c['mean']:.2%} off" if c["mean"] is not None else ""
        else:
            figure = f"mean {fmt(c['mean'], 3)}" if c["mean"] is not None else ""
        judged = c["judged"]
        verdict = (f'<span class="{"bad" if c["failed"] else "good"}">{judged - c["failed"]}/{judged} passed</span>' if judged
                   else '<span class="muted">no verdict</span>')
        lines.append(f'<div class="line" data-check="{esc(c["key"])}"><span class="lbl">{esc(check_title(c["key"]))}</span> '
                     f'{verdict}{" · " + figure if figure else ""}</div>')
    return f'<td class="num" data-method="{esc(m)}" data-metric="self">{"".join(lines)}</td>'


def _mapping(v: Any) -> Mapping[str, Any]:
    """Return `v` when it is a mapping, else an empty one (run["metrics"] may be partial or absent)."""
    return v if isinstance(v, Mapping) else {}


def _arrow(f: Figure) -> str:
    return {"lower": " ↓", "higher": " ↑"}.get(f.better, "")


def _th(f: Figure, title: str | None = None) -> str:
    return f'<th class="num" title="{esc(f.help)}" data-key="{esc(f.key)}">{esc((title or f.title) + _arrow(f))}</th>'


def _stat(c: Mapping[str, Any], digits: int = 3, pct: bool = False, n: bool = True) -> str:
    mean = f"{c['mean']:.1%}" if pct and c.get("mean") is not None else fmt(c.get("mean"), digits)
    std = f"{c['std']:.1%}" if pct and c.get("std") is not None else fmt(c.get("std"), 2)
    count = f'<div class="rnd">n = {c.get("n", 0):,}</div>' if n else ""
    return f'<div class="line"><span class="v">{mean}</span> <span class="sd">± {std}</span></div>{count}'


def summary_html(doc: Mapping[str, Any] | None) -> str:
    """Return the 'Can these explanations be trusted?' section (empty text when there are no metrics)."""
    if not doc:
        return ""
    cols = [f for f in FAITHFULNESS if f.key in doc["columns"]]
    has_self = any(r["self"] for r in doc["methods"])
    has_sanity = any(r["sanity"] for r in doc["methods"])
    has_agree = any(r["agree"] for r in doc["methods"])
    rats = [f for f in RATIONALE if any((r["rat"] or {}).get(f.key) for r in doc["methods"])]
    head = "<th>Method</th>" + "".join(_th(f) for f in cols)
    if has_self:
        head += ('<th class="num" title="Each method\'s test of its own estimate, which could fail: IG completeness (the scores add up '
                 'to the output change), SHAP and LIME stability (two independent estimates pick the same top features), LIME surrogate '
                 'fit (R²). How many explanations passed.">Self-checks</th>')
    if has_sanity:
        head += _th(SANITY, "Sanity |ρ|")
    if has_agree:
        head += _th(AGREEMENT)
    head += "".join(_th(f) for f in rats)
    body = []
    for r in doc["methods"]:
        m = r["m"]
        tds = [f'<td><strong>{esc(method_title(m))}</strong></td>']
        for f in cols:
            c = r["faith"].get(f.key)
            if not c:
                tds.append('<td class="num muted">—</td>')
                continue
            share = c["wins"] / c["of"] if c["of"] else None
            cls = "good" if share is not None and share >= 0.5 else "bad"
            tip = f"{f.title}: mean over {c['n']} explanations; the same figure for random orders: {fmt(c.get('random'), 4)}"
            tds.append(
                f'<td class="num tcell {cls}" data-method="{esc(m)}" data-metric="{esc(f.key)}" title="{esc(tip)}">'
                f'{_stat(c, n=False)}<div class="rnd">random <span class="rv">{fmt(c.get("random"), 3)}</span></div>'
                f'<div class="rnd">beats it <span class="wins">{c["wins"]}/{c["of"]}</span> · n = {c["n"]:,}</div></td>'
            )
        if has_self:
            tds.append(_self_cell(m, r["self"]) if r["self"] else '<td class="num muted">—</td>')
        if has_sanity:
            s = r["sanity"]
            if s:
                verdict = ('<span class="pill bad sanity-flag">⚠ flagged</span><div class="why">barely changes when the model is randomised</div>'
                           if s["flagged"] else '<span class="pill good">passes</span>')
                flags = f'{s["flags"]}/{s["n"]} flagged' if s["flags"] is not None else f'n = {s["n"]:,}'
                tds.append(f'<td class="num sanity {"bad" if s["flagged"] else "good"}" data-method="{esc(m)}" data-metric="sanity">'
                           f'<div class="line"><span class="v">{fmt(s["mean_abs"], 3)}</span> {verdict}</div><div class="rnd">{flags}</div></td>')
            else:
                tds.append('<td class="num muted">—</td>')
        if has_agree:
            a = r["agree"]
            tds.append(f'<td class="num" data-method="{esc(m)}" data-metric="agreement_spearman">{_stat(a)}</td>' if a else '<td class="num muted">—</td>')
        for f in rats:
            c = (r["rat"] or {}).get(f.key)
            tds.append(f'<td class="num" data-method="{esc(m)}" data-metric="{esc(f.key)}">{_stat(c)}</td>' if c else '<td class="num muted">—</td>')
        body.append(f'<tr data-method="{esc(m)}">{"".join(tds)}</tr>')
    legend = (
        "Each cell: mean ± standard deviation over the explanations scored, and how many (n). "
        "↓ lower is better, ↑ higher is better; hover a column for its meaning. Faithfulness figures are read against "
        "the same figure for random feature orders (the 'random' line): a method worth trusting beats it on most inputs "
        f"(green when it does on at least half). Sanity: mean |ρ| after full model randomisation; above {fmt(doc['limit'], 2)} "
        "the method is flagged."
    ) + (" " + doc["removal"] if doc.get("removal") else "")
    pairs = ""
    if doc["pairs"]:
        trs = "".join(
            f'<tr><td>{esc(method_title(p["a"]))}</td><td>{esc(method_title(p["b"]))}</td><td class="num"><strong>{fmt(p["top"], 3)}</strong></td>'
            f'<td class="num">{fmt(p["rho"], 3)} <span class="sd">± {fmt(p["rho_std"], 2)}</span></td><td class="num">{p["n"]:,}</td></tr>'
            for p in doc["pairs"]
        )
        pairs = ('<div class="box"><h3>Agreement between methods</h3><table class="agree pairs"><thead><tr><th>Method</th><th>vs</th>'
                 '<th class="num" title="Mean share of the top 20 % features (by signed score) both methods pick">Top features shared</th>'
                 '<th class="num" title="Mean Spearman rank correlation over inputs (1 same order, −1 reversed); noisy on short texts">Spearman ρ</th><th class="num">n</th></tr></thead>'
                 f"<tbody>{trs}</tbody></table></div>")
    sanity_fig = ('<div class="box"><h3>Sanity: rank correlation as the model is randomised</h3>'
                  '<p class="note">Layers re-drawn at random from the output down; a sound explanation decorrelates (ρ → 0).</p>'
                  '<div class="fig" id="sanity-fig"></div></div>') if doc.get("sanity") else ""
    extra = f'<div class="tgrid">{pairs}{sanity_fig}</div>' if pairs or sanity_fig else ""
    return (
        '<section id="trust" class="sec"><div class="sec-head"><h2>Can these explanations be trusted?</h2>'
        f'<span class="count">{len(doc["methods"])} method{"s" if len(doc["methods"]) != 1 else ""} · {doc["inputs"]:,} input{"s" if doc["inputs"] != 1 else ""} scored</span></div>'
        f'<div class="twrap"><table class="trust-summary"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
        f'<p class="note">{esc(legend)}</p>{extra}</section>\n'
    )
