"""Alt text for every figure a notebook shows, built from the figure's own titles and labels.

`describe_figures()` wraps the PNG formatter IPython uses for matplotlib figures so that each
PNG output carries `alt` in its metadata; the HTML export (nbconvert with
notebooks/templates/page.html.j2) writes it into the page's `<img>`, for screen readers and
for when the image cannot be shown.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure


def alt_text(fig: Figure) -> str:
    """ "Figure: " and the figure's title, then each panel's title and axis labels."""
    parts = [fig.get_suptitle()] if fig.get_suptitle() else []
    for ax in fig.axes:
        title = ax.get_title() or ax.get_title(loc="left")
        labels = ", ".join(
            f"{axis}: {label}"
            for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel()))
            if label
        )
        if title or labels:
            parts.append(" - ".join(part for part in (title.replace("\n", ", "), labels) if part))
    text = "Figure: " + "; ".join(parts) if parts else "Figure without a title"
    return " ".join(text.split())


def describe_figures() -> None:
    """Give the PNG output of every matplotlib figure its alt text (`alt_text`); call it in
    a notebook after `%matplotlib inline`, which registers the formatter wrapped here."""
    from IPython import get_ipython

    png = get_ipython().display_formatter.formatters["image/png"]
    draw = png.lookup_by_type(Figure)

    def with_alt(fig: Figure) -> tuple[Any, dict[str, Any]]:
        data, metadata = draw(fig), {}
        if isinstance(data, tuple):  # retina PNGs come with their size
            data, metadata = data
        return data, {**metadata, "alt": alt_text(fig)}

    png.for_type(Figure, with_alt)
