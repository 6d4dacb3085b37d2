"""The report as a practitioner opens it, at 1440x900 in headless Chromium: the answer first, honest colour.

Each test asserts one point of issue 16's "Done when" on a real page: the prediction, class
probabilities and first explanation in the first viewport; the no-evidence state; the attention
colour range fixed at 0-1; no tick label outside its figure; the GPT grid's cells; the contrast
view; image panels of at least 256 px.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

import report_samples as samples
from explain import reports
from explain.reports.constants import MIN_PANEL

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
VIEWPORT = {"width": 1440, "height": 900}
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium (Debian's package, driven by Playwright); missing is a failure, not a skip."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reports of each family: text with three classes per input (input 2 has no evidence), GPT, images with three classes."""
    out = tmp_path_factory.mktemp("first-screen")
    made = {
        "text": samples.text_results(8, targets=3, hostile=False),
        "lm": samples.lm_results(hostile=False),
        "image": samples.image_results(2, size=28, targets=3, hostile=False),
    }
    return {k: reports.write_report(r, out / f"{k}.html") for k, r in made.items()}


def open_page(browser: Any, path: Path) -> tuple[Any, list[str]]:
    """Open a report at 1440x900; return the page and the list its errors are written to."""
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), wait_until="domcontentloaded")
    page.wait_for_function("() => window.__explainReady", timeout=WAIT_MS)
    return page, errors


def draw(page: Any, i: int) -> None:
    """Scroll input i's section into view and wait until it and its figures are drawn."""
    page.evaluate(f"document.querySelector('#input-{i}').scrollIntoView()")
    page.wait_for_function(f"() => document.querySelector('#input-{i}').dataset.state === 'done'", timeout=WAIT_MS)
    page.evaluate("window.__explain.settled()")


def box(page: Any, selector: str) -> dict[str, float]:
    """Return the bounding box of the first element matching `selector` (page coordinates at scroll 0)."""
    b = page.locator(selector).first.bounding_box()
    assert b is not None, f"{selector} is not rendered"
    return b


def test_answer_is_in_the_first_viewport(browser: Any, files: dict[str, Path]) -> None:
    page, errors = open_page(browser, files["text"])
    for i in (0, 1, 2):  # the first inputs: three answer cards per row at 1440 px
        card = f"#answers article.answer[data-i='{i}']"
        for part in (".pred-label", ".probs", ".heat"):
            b = box(page, f"{card} {part}")
            assert b["y"] >= 0 and b["y"] + b["height"] <= VIEWPORT["height"], f"input {i} {part} below the fold: {b}"
    probs = page.locator("#answers article.answer[data-i='0'] .probs .pb")
    assert probs.count() == 3  # every class of the model
    assert "✓ right" in page.inner_text("#answers article.answer[data-i='0']")
    assert "✗ wrong" in page.inner_text("#answers article.answer[data-i='1']")  # input 1's true label differs
    line = page.inner_text("#answers .runline")
    assert "accuracy 7/8" in line and "8 inputs" in line  # input 1's true label differs
    assert page.evaluate("document.querySelector('#overview').open") is False  # run details fold away
    assert errors == []
    page.close()


def test_near_zero_explanation_shows_no_evidence(browser: Any, files: dict[str, Path]) -> None:
    page, errors = open_page(browser, files["text"])
    answer = "#answers article.answer[data-i='2']"
    assert "noev" in (page.get_attribute(answer, "class") or "")
    assert "Weak evidence" in page.inner_text(f"{answer} .noev-line")
    draw(page, 2)
    cards = page.locator("#input-2 .group").first.locator(".card.noev")
    assert cards.count() == 3  # IG, SHAP, LIME (their scores are within the noise they measured); attention has no output units
    assert "Weak evidence: no word moves p(" in cards.first.inner_text() and "(±4.0e-06)" in cards.first.inner_text()
    grey = page.evaluate("getComputedStyle(document.querySelector('#input-2 .card.noev .heat .w')).backgroundColor")
    assert grey == "rgb(234, 234, 234)"  # greyed, not stretched to full colour
    # A card with evidence is coloured, on a scale stated in the method's units.
    draw(page, 0)
    assert "contribution to p(" in page.inner_text("#input-0 .card[data-method=shap] .scale")
    assert errors == []
    page.close()


def test_attention_range_is_fixed_and_answer_row_marked(browser: Any, files: dict[str, Path]) -> None:
    page, errors = open_page(browser, files["text"])
    draw(page, 0)
    card = page.locator("#input-0 .card[data-method=attention]").first
    n_heads = card.locator(".att-grid canvas").count()
    assert n_heads == 2 * 4  # every layer x head as a small multiple
    card.locator(".att-grid canvas").nth(5).click()  # layer 2, head 2 opens
    fig = "document.querySelector('#input-0 .card[data-method=attention] .att-fig')"
    page.wait_for_function(f"() => {fig}.data[0].type === 'heatmap'", timeout=WAIT_MS)
    trace = page.evaluate(f"(() => {{ const t = {fig}.data[0]; return [t.zmin, t.zmax, t.colorscale[0][1]]; }})()")
    assert trace[:2] == [0, 1] and trace[2] == "#fcfbfd"  # fixed 0-1, sequential, zero the quiet end (not the supports/opposes scale)
    # The opened head is outlined in the overview, and so is one chosen from the dropdowns.
    assert page.evaluate("[...document.querySelectorAll('#input-0 .card[data-method=attention] .att-grid canvas.active')].map(c => c.dataset.l + c.dataset.h)") == ["11"]
    card.locator("select.head").select_option("2")
    page.wait_for_function("() => document.querySelector('#input-0 .card[data-method=attention] .att-grid canvas.active').dataset.h === '2'", timeout=WAIT_MS)
    assert page.evaluate("document.querySelector('#input-0 .card[data-method=attention] select.layer').value") == "1"
    assert page.evaluate(f"{fig}.layout.shapes.length") == 1  # the answering row is outlined
    assert page.evaluate(f"{fig}.layout.yaxis.ticktext[0]").startswith("▶")  # and marked in its label
    assert errors == []
    page.close()


TICKS_INSIDE = """
(sel) => {
  const out = [];
  for (const fig of document.querySelectorAll(sel)) {
    const f = fig.querySelector('.main-svg').getBoundingClientRect();
    for (const t of fig.querySelectorAll('.xtick text, .ytick text, .g-xtitle text, .g-ytitle text, .colorbar text')) {
      const b = t.getBoundingClientRect();
      if (b.width === 0) continue;
      if (b.left < f.left - 1 || b.right > f.right + 1 || b.top < f.top - 1 || b.bottom > f.bottom + 1)
        out.push(t.textContent + ' ' + JSON.stringify([b.left, b.right, b.top, b.bottom]) + ' outside ' + JSON.stringify([f.left, f.right, f.top, f.bottom]));
    }
  }
  return out;
}
"""


@pytest.mark.parametrize("family", ["text", "lm"])
def test_no_label_is_clipped(browser: Any, files: dict[str, Path], family: str) -> None:
    page, errors = open_page(browser, files[family])
    draw(page, 0)
    if family == "text":
        page.locator("#input-0 .card[data-method=attention] .att-grid canvas").first.click()
        page.wait_for_function("() => document.querySelector('#input-0 .att-fig').data[0].type === 'heatmap'", timeout=WAIT_MS)
        page.evaluate("window.__explain.settled()")
    n = page.evaluate("document.querySelectorAll('#input-0 .js-plotly-plot').length")
    assert n >= 2
    assert page.evaluate(TICKS_INSIDE, "#input-0 .js-plotly-plot") == []
    assert errors == []
    page.close()


def test_gpt_grid_has_a_cell_per_prompt_word_and_generated_token(browser: Any, files: dict[str, Path]) -> None:
    page, errors = open_page(browser, files["lm"])
    draw(page, 0)
    grid = "document.querySelector('#input-0 .gen-grid')"
    page.wait_for_function(f"() => {grid}.data && {grid}.data[0].z", timeout=WAIT_MS)
    rows, cols = page.evaluate(f"[{grid}.dataset.rows, {grid}.dataset.cols].map(Number)")
    assert (rows, cols) == (6 + 3, 4)  # samples.lm_results: 6 prompt words, then the generated tokens a later one sees
    z, mask = page.evaluate(f"[{grid}.data[1].z, {grid}.data[0].z]")
    assert len(z) == rows and all(len(r) == cols for r in z) and all(v is not None for r in z[:6] for v in r)
    for g in range(3):  # generated token g is context from column g + 1 on; greyed where it comes at or after the column
        assert [v is not None for v in z[6 + g]] == [c > g for c in range(cols)]
        assert [v == 1 for v in mask[6 + g]] == [c <= g for c in range(cols)]
    drawn = [abs(v) for r in z for v in r if v is not None]
    assert page.evaluate(f"{grid}.data[1].zmax") == pytest.approx(max(drawn))  # one colour scale over every cell drawn
    assert page.evaluate(f"{grid}.layout.yaxis.ticktext")[6].startswith("▸")  # generated rows are marked
    ticks = page.evaluate(f"{grid}.layout.xaxis.ticktext")
    assert all("p " in t for t in ticks) and not any("Ġ" in t for t in ticks)  # step probability, clean tokens
    assert not any("Ġ" in w for w in page.evaluate(f"{grid}.layout.yaxis.ticktext"))
    # A click on a column opens that token's view.
    page.evaluate(f"{grid}.emit('plotly_click', {{ points: [{{ x: 2, y: 0 }}] }})")
    page.wait_for_function("() => document.querySelectorAll('#input-0 .chip.tok')[2].classList.contains('active')", timeout=WAIT_MS)
    assert "40 rows, 32 from cache" in page.inner_text("#input-0 .panel .card[data-method=ig] .cost")
    assert errors == []
    page.close()


def test_contrast_view_exists_for_a_classifier(browser: Any, files: dict[str, Path]) -> None:
    page, errors = open_page(browser, files["text"])
    draw(page, 0)
    box_ = page.locator("#input-0 [data-view=contrast]")
    assert box_.count() == 1
    words = box_.locator(".card").first.locator(".heat .w")
    assert words.count() == 12  # one per word: the difference of the two classes' scores
    assert "rather than" in box_.inner_text()
    assert errors == []
    page.close()


def test_image_panels_are_large_with_the_original_once(browser: Any, files: dict[str, Path]) -> None:
    page, errors = open_page(browser, files["image"])
    draw(page, 0)
    widths = page.evaluate("[...document.querySelectorAll('#input-0 .group .img-fig .main-svg')].map(s => s.getBoundingClientRect().width)")
    assert widths and min(widths) >= MIN_PANEL
    assert page.locator("#input-0 .img-orig img").count() == 1  # the original once per input
    assert box(page, "#input-0 .img-orig img")["width"] >= MIN_PANEL
    assert page.evaluate("document.querySelector('#input-0 .img-fig').data.filter(t => t.type === 'image').length") == 1
    note = page.inner_text("#input-0 .card[data-method=ig] .note")
    assert "clipped" in note and "contribution to p(" in note
    assert page.locator("#input-0 [data-view=contrast]").count() == 1  # three classes: why one rather than another
    assert errors == []
    page.close()


def test_shared_plotly_file_draws_figures(browser: Any, tmp_path: Path) -> None:
    """assets="shared": the page loads plotly.js from the file beside it (CSP 'self') and draws."""
    path = reports.write_report(samples.text_results(3, hostile=False), tmp_path / "a.html", assets="shared")
    page, errors = open_page(browser, path)
    draw(page, 0)
    assert page.evaluate("document.querySelectorAll('#input-0 .js-plotly-plot').length") >= 2
    assert page.evaluate("typeof window.Plotly.react") == "function"
    assert errors == []
    page.close()
