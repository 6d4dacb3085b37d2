"""Reports in headless Chromium: offline, no errors, figures drawn on demand, hostile text stays text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from explain import reports
import report_samples as samples

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL = ("file:", "data:", "blob:", "about:")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WAIT_MS = 30_000  # plotly.js compiles in the background: seconds on a small CI machine


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (Debian's package, driven by Playwright)."""
    # Never skipped: a report nobody opened in a browser is untested (CI installs chromium).
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright import sync_api
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def made() -> dict[str, Any]:
    """Sample Results of each family (30 text inputs, to test lazy sections)."""
    return {"text": samples.text_results(30), "lm": samples.lm_results(), "image": samples.image_results()}


@pytest.fixture(scope="module")
def files(made: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The reports of `made`, written to files."""
    out = tmp_path_factory.mktemp("reports")
    return {k: reports.write_report(r, out / f"{k}.html") for k, r in made.items()}


@dataclass
class Watch:
    """Everything a page did that a report must never do."""

    remote: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert self.remote == [], f"requests left the page: {self.remote}"
        assert self.console == [], f"console errors: {self.console}"
        assert self.errors == [], f"page errors: {self.errors}"
        assert self.dialogs == [], f"a dialog opened (injected script ran?): {self.dialogs}"


def open_report(browser: Any, path: Path) -> tuple[Any, Watch]:
    """Open a report from a file:// URL with every request, console error and dialog recorded."""
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    w = Watch()
    page.on("request", lambda r: None if r.url.startswith(LOCAL) else w.remote.append(r.url))
    page.on("console", lambda m: w.console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: w.errors.append(str(e)))
    page.on("dialog", lambda d: (w.dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="domcontentloaded")
    page.wait_for_function("() => window.__explainReady", timeout=WAIT_MS)
    return page, w


def settle(page: Any) -> int:
    """Wait until every figure asked for is drawn; return how many plotly figures the page holds."""
    return int(page.evaluate("window.__explain.settled()"))


def test_text_report_offline_lazy_interactive_and_safe(browser: Any, files: dict[str, Path], made: dict[str, Any]) -> None:
    n_tokens = len(made["text"].by_method("attention")[0].extras["tokens"])
    page, w = open_report(browser, files["text"])
    assert page.locator("#index tbody tr").count() == 30
    assert page.locator("#input-25 .js-plotly-plot").count() == 0  # far figures are not drawn until needed
    page.fill("#filter", "no input holds this")
    assert page.locator("#index tbody tr:visible").count() == 0
    page.fill("#filter", "")
    assert page.locator("#index tbody tr:visible").count() == 30

    page.click("a[href='#input-0'] >> nth=0")
    page.wait_for_selector("#input-0 .att-fig.js-plotly-plot", timeout=WAIT_MS)
    page.wait_for_selector("#input-0 .cmp-fig.js-plotly-plot", timeout=WAIT_MS)

    # Hostile text is shown as text, in the quote and in the heat map, and creates no element.
    assert samples.HOSTILE in page.inner_text("#input-0 .quote")
    assert samples.HOSTILE in page.locator("#input-0 .heat").first.inner_text()
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0

    # Hover: exact score and the word's sub-word tokens.
    page.locator("#input-0 .heat .w").nth(2).hover()
    tip = page.inner_text(".tip")
    assert "contribution to p(" in tip and "tokens:" in tip  # the value in the method's units

    # Attention: switch layer, head, level and view; the figure follows.
    fig = "document.querySelector('#input-0 .att-fig')"
    first = page.evaluate(f"JSON.stringify({fig}.data[0].z)")
    card = page.locator("#input-0 .card[data-method=attention]").first
    card.locator("select[aria-label=view]").select_option("att")
    page.wait_for_function(f"() => {fig}.data[0].type === 'heatmap'", timeout=WAIT_MS)
    first = page.evaluate(f"JSON.stringify({fig}.data[0].z)")
    card.locator("select.layer").select_option("1")
    page.wait_for_function(f"() => JSON.stringify({fig}.data[0].z) !== {first!r}", timeout=WAIT_MS)
    card.locator("select.head").select_option("2")
    card.locator("select[aria-label=level]").select_option("t")
    page.wait_for_function(f"() => {fig}.data[0].z.length === {n_tokens}", timeout=WAIT_MS)  # token level: T x T
    card.locator("select[aria-label=view]").select_option("roll")
    settle(page)
    assert page.evaluate(f"{fig}.data[0].type") == "heatmap"

    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("document.querySelector('#input-0').scrollIntoView()")
    page.screenshot(path=str(ARTIFACTS / "report.png"))

    # A far section draws when its index link is followed.
    page.click("#index a[href='#input-25'] >> nth=0")
    page.wait_for_function("() => document.querySelector('#input-25').dataset.state === 'done'", timeout=WAIT_MS)
    assert settle(page) >= 6
    w.check()
    page.close()


def test_causal_lm_token_click_shows_its_attribution(browser: Any, files: dict[str, Path]) -> None:
    page, w = open_report(browser, files["lm"])
    page.evaluate("document.querySelector('#input-0').scrollIntoView()")
    page.wait_for_selector("#input-0 .chip.tok", timeout=WAIT_MS)
    chips = page.locator("#input-0 .chip.tok")
    assert chips.count() == 5  # four generated tokens + the whole continuation
    chips.nth(1).click()  # the hostile token
    page.wait_for_function(
        "() => document.querySelector('#input-0 .panel .group-head .label').textContent.includes('onerror')", timeout=WAIT_MS
    )
    page.wait_for_selector("#input-0 .panel .js-plotly-plot", timeout=WAIT_MS)
    assert "active" in (chips.nth(1).get_attribute("class") or "")
    assert page.locator("#input-0 .panel .card").count() == 2  # ig and attention for that token
    assert settle(page) >= 2
    w.check()
    page.close()


def test_image_overlay_and_opacity(browser: Any, files: dict[str, Path]) -> None:
    page, w = open_report(browser, files["image"])
    page.evaluate("document.querySelector('#input-0').scrollIntoView()")
    page.wait_for_selector("#input-0 .img-fig.js-plotly-plot", timeout=WAIT_MS)
    settle(page)
    fig = "document.querySelector('#input-0 .img-fig')"
    assert page.evaluate(f"{fig}.data.map(t => t.type).join()") == "image,heatmap"  # the original once, above
    page.evaluate(
        "(() => { const r = document.querySelector('#input-0 input[type=range]'); r.value = '0.3';"
        " r.dispatchEvent(new Event('input')); })()"
    )
    page.wait_for_function(f"() => {fig}.data[1].opacity === 0.3", timeout=WAIT_MS)
    w.check()
    page.close()


def test_trust_panel_and_summary_table(browser: Any, tmp_path: Path) -> None:
    r = samples.with_metrics(samples.text_results(4))
    ig0 = next(e for e in r.for_input(0) if e.method == "ig").metrics
    path = reports.write_report(r, tmp_path / "trust.html")
    page, w = open_report(browser, path)

    # The summary table: per method, each figure beside its random baseline; attention fails the sanity check.
    assert page.locator("#trust table.trust-summary tbody tr").count() == 4
    summary_ig = page.inner_text("#trust td[data-method=ig][data-metric=deletion_auc]")
    assert "random" in summary_ig and "beats it 3/3" in summary_ig
    assert page.locator("#trust td[data-method=attention][data-metric=sanity] .sanity-flag").count() == 1
    assert page.locator("#trust td[data-method=ig][data-metric=sanity] .sanity-flag").count() == 0
    page.wait_for_selector("#sanity-fig.js-plotly-plot", timeout=WAIT_MS)

    # The panel of input 0: one row per method, values and baselines as computed, flags where they belong.
    page.evaluate("document.querySelector('#input-0').scrollIntoView()")
    page.wait_for_selector("#input-0 .trust-table", timeout=WAIT_MS)
    panel = page.locator("#input-0 .group").first.locator(".trust-table")
    assert panel.locator("tbody tr").count() == 4
    cell = panel.locator("tr[data-method=ig] td[data-metric=deletion_auc]")
    text = cell.inner_text()
    assert f"{ig0['deletion_auc']:.3g}" in text and f"random {ig0['deletion_auc_random']:.3g}" in text and "✓" in text
    assert "bad" in (panel.locator("tr[data-method=lime] td[data-metric=deletion_auc]").get_attribute("class") or "")
    assert "sanity-flagged" in (panel.locator("tr[data-method=attention]").get_attribute("class") or "")
    assert panel.locator("tr[data-method=attention] .sanity-flag").count() == 1
    # The self-checks: one line per verdict; input 0's IG and SHAP failed theirs (incomplete, unstable)
    ig_self = panel.locator("tr[data-method=ig] td[data-metric=self]")
    assert ig_self.count() == 1 and "completeness" in ig_self.inner_text().lower() and "⚠" in ig_self.inner_text()
    assert "bad" in (ig_self.get_attribute("class") or "")
    assert panel.locator("tr[data-method=shap] td[data-metric=self] [data-check=stability]").count() == 1
    assert panel.locator("tr[data-method=lime] td[data-metric=self] [data-check]").count() == 2  # surrogate fit and stability
    assert "efficiency" not in panel.inner_text().lower()
    panel.locator("tr[data-method=shap] td[data-metric=self]").hover()
    assert "SHAP stability: the values at 500 and at 250 evaluations disagree" in page.inner_text(".tip")
    panel.locator("th[data-key=deletion_auc]").hover()
    assert "Lower is better" in page.inner_text(".tip")
    page.wait_for_selector("#input-0 .curves-fig.js-plotly-plot", timeout=WAIT_MS)
    curves = page.evaluate("document.querySelector('#input-0 .curves-fig').data.length")
    assert curves == 2 * 4 + 2  # deletion and insertion per method, and the random order's two curves
    assert samples.HOSTILE in page.inner_text("#input-0 .quote")  # hostile text still text
    settle(page)
    page.screenshot(path=str(ARTIFACTS / "trust.png"))
    w.check()
    page.close()


def test_dataset_view_of_a_thousand_inputs(browser: Any, tmp_path: Path) -> None:
    r = samples.with_metrics(samples.planted_text_results(1000))
    path = reports.write_report(r, tmp_path / "big.html")
    assert path.stat().st_size < 7_000_000  # plotly.js (~4.8 MB) + 100 sections + the across-inputs view
    page, w = open_report(browser, path)
    assert "Showing 100 of 1,000 inputs" in page.inner_text("#sample-note")
    assert page.locator("#index tbody tr").count() == 100
    assert page.locator("section.input").count() == 100

    page.evaluate("document.querySelector('#dataset').scrollIntoView()")
    page.wait_for_selector("#agg-view .agg-card", timeout=WAIT_MS)
    assert page.locator("#agg-view .agg-card").count() == 3  # ig, shap, lime
    cue = {"positive": "great", "negative": "awful"}
    chips = page.locator("#agg-view .agg-classes .chip")
    assert chips.count() == 2
    for k in range(2):
        chips.nth(k).click()
        label = chips.nth(k).get_attribute("data-label")
        page.wait_for_function(
            f"() => document.querySelector('#agg-view .agg-card ol.words li').dataset.word === {cue[label]!r}", timeout=WAIT_MS)
        assert page.locator("#agg-view .agg-card ol.words li:first-child .wname").all_inner_texts() == [cue[label]] * 3
    page.select_option("#agg-view select[aria-label='rank words by']", "mean")
    page.wait_for_function("() => document.querySelectorAll('#agg-view .agg-card').length === 3", timeout=WAIT_MS)

    n_dists = len(reports.dataset.metric_distributions(r))
    page.evaluate("document.querySelector('#dist-grid').scrollIntoView()")
    page.wait_for_function(f"() => document.querySelectorAll('#dist-grid .dist-fig.js-plotly-plot').length >= 2", timeout=WAIT_MS)
    page.evaluate("document.querySelector('#quality').scrollIntoView()")
    page.wait_for_selector("#qh-ig-completeness.js-plotly-plot", timeout=WAIT_MS)
    assert page.locator("#dist-grid .dist").count() == n_dists
    assert page.inner_text(".slowest tbody tr:first-child td:first-child") == "7"
    page.click(".slowest a[href='#input-7']")
    page.wait_for_function("() => document.querySelector('#input-7').dataset.state === 'done'", timeout=WAIT_MS)
    settle(page)
    page.evaluate("document.querySelector('#dataset').scrollIntoView()")
    page.screenshot(path=str(ARTIFACTS / "dataset.png"))
    w.check()
    page.close()


# ---- issue 26: nothing on the page can leave it ----

MODEBAR_TITLES = {"Zoom", "Pan", "Zoom in", "Zoom out", "Reset axes", "Download plot as a PNG"}


def test_no_control_opens_a_window_or_a_request(browser: Any, files: dict[str, Path]) -> None:
    """Every chart's mode bar holds only local buttons, and clicking every control on a drawn page opens nothing."""
    page, w = open_report(browser, files["text"])
    popups: list[str] = []
    page.on("popup", lambda p: popups.append(p.url))
    page.context.on("page", lambda p: popups.append(p.url))
    page.evaluate("document.querySelector('#input-0').scrollIntoView()")
    page.wait_for_function("() => document.querySelector('#input-0').dataset.state === 'done'", timeout=WAIT_MS)
    settle(page)
    titles = page.evaluate("[...document.querySelectorAll('.modebar-btn')].map(b => b.getAttribute('data-title'))")
    assert titles and set(titles) <= MODEBAR_TITLES, set(titles) - MODEBAR_TITLES  # no "share" (sendDataToCloud) button
    assert page.evaluate("[...document.querySelectorAll('.modebar-btn')].every(b => b.tabIndex === -1)")
    selector = ("#answers button, #answers a[href], #input-0 button, #input-0 a[href], #input-0 select, #input-0 canvas, "
                "#input-0 .modebar-btn, header a[href]")
    # Every control once, by its click handler (one call: fast); a real mouse on one chart's whole mode bar.
    assert page.evaluate(f"(() => {{ const cs = [...document.querySelectorAll({selector!r})]; cs.forEach(c => c.click()); return cs.length; }})()") > 30
    fig = page.locator("#input-0 .js-plotly-plot").first
    fig.hover()
    for k in range(fig.locator(".modebar-btn").count()):
        fig.locator(".modebar-btn").nth(k).click(force=True)
    settle(page)
    assert popups == [], f"a control opened a window: {popups}"
    w.check()  # and no request left the page
    page.close()
