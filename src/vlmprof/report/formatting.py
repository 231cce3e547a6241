"""How the report prints things: numbers, percentages, ratios, styled tables and lists, one
format for both notebooks."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from vlmprof.stages import BY_NAME, label

MISSING = "-"


def format_number(value: Any) -> str:
    """How every number is printed: 2 decimals (thousands separated) from 1 up, else 3
    significant digits (zeros kept); integers as they are; missing values as a dash."""
    if value is None or (isinstance(value, numbers.Real) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:#.3g}"


def whole(count: float | None) -> int | float | None:
    """A count (pages, tokens, a mean batch size) as it prints: a whole number where it is
    one, else as it is; pages per day, a count too large for its fraction to matter, rounded."""
    if count is None or isinstance(count, bool):
        return count
    if float(count).is_integer() or abs(count) >= 1000:
        return round(count)
    return count


def styled(table: pd.DataFrame) -> Styler:
    """`table` for display: numbers through `format_number`, text left-aligned, a default
    index hidden."""
    style = table.style.format(format_number)
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        style = style.set_properties(subset=text, **{"text-align": "left"})
    if isinstance(table.index, pd.RangeIndex):
        style = style.hide(axis="index")
    return style


def as_percent(fraction: float | None) -> float | None:
    """A fraction as a number of percent for a table column (None stays None)."""
    return None if fraction is None else 100.0 * float(fraction)


def percent(fraction: float) -> str:
    """A fraction as a percentage: one decimal, or two significant digits below 0.1%."""
    value = 100.0 * fraction
    return f"{value:.1f}%" if abs(value) >= 0.1 or value == 0 else f"{value:.2g}%"


def times(ratio: float) -> str:
    """A ratio for reading: whole from 10 up ("12x"), else two decimals ("1.52x")."""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


def bullets(sentences: list[str], literal: bool = False) -> str:
    """Sentences as a Markdown list (empty text for none); `literal` escapes Markdown's
    emphasis and code marks, for text written as plain prose (e.g. "2*m*k*n")."""
    if literal:
        sentences = [re.sub(r"([*_`\\])", r"\\\1", sentence) for sentence in sentences]
    return "\n".join(f"- {sentence}" for sentence in sentences)


def display_name(name: str) -> str:
    """The display name of stage `name` (`vlmprof.stages`), or `name` itself where it is
    no stage (an operator's "unattributed", a table's "model")."""
    return label(name) if name in BY_NAME else name
