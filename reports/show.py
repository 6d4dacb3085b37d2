"""Jupyter display as a function (shap-style): `explain.reports.show(results)`; the result types do not import the renderer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, Results


def show(obj: Results | Explanation, *, display: bool = True) -> str:
    """Return the HTML view of Results (the full report in an iframe) or of one Explanation, displaying it in Jupyter.

    Outside IPython (or with display=False) only the HTML text is returned.
    """
    from explain.results.explanation import Explanation

    from .inline import explanation_html

    if isinstance(obj, Explanation):
        html = explanation_html(obj)
    elif isinstance(obj, list) and hasattr(obj, "model") and hasattr(obj, "inputs"):
        html = results_html(obj)  # type: ignore[arg-type]
    else:
        raise TypeError(f"show takes Results or an Explanation, not {type(obj).__name__}")
    if display:
        _display(html)
    return html


def _display(html: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        return
    shell: Any = get_ipython()
    if shell is not None:
        display(HTML(html))


def results_html(r: Results) -> str:
    """Return the full report for Results inside an iframe (its own document, scripts included)."""
    from .encode import esc
    from .page import render_page

    return (
        f"<iframe srcdoc=\"{esc(render_page(r))}\" sandbox=\"allow-scripts\" "
        "style='width:100%;height:760px;border:1px solid #d1d9e0;border-radius:4px'></iframe>"
    )
