"""The vega-lite spec: a Vega-Lite v5 document and how to encode it, within limits that keep it cheap.

The document itself is Vega-Lite's to judge (the converter refuses what it cannot compile); this
model refuses, before any render, what would fetch or what could generate unbounded work: every
``url`` and ``href``, a ``$schema`` other than v5, too large a document, and sequences, transforms
and expressions whose row counts can be computed to exceed ``MAX_ROWS``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any, ClassVar, Literal, TypeGuard

from pydantic import ConfigDict, Field, StrictInt, field_validator, model_validator

from plotjobs.spec.base import MEDIA_TYPES, FileFormatSpec, SpecRuleError

# The Vega-Lite release the converter compiles every document with (vl-convert-python 1.9 bundles 5.8 to 5.21,
# 6.1 and 6.4): the newest v5, so any document that declares a v5 schema compiles as its author saw it.
VEGA_LITE_VERSION = "5.21"
CONTENT_TYPES = MEDIA_TYPES
# The named themes of the converter's vega-themes.
Theme = Literal[
    "carbong10", "carbong100", "carbong90", "carbonwhite", "dark", "excel", "fivethirtyeight", "ggplot2",
    "googlecharts", "latimes", "powerbi", "quartz", "urbaninstitute", "vox",
]  # fmt: skip

# The document, as compact JSON.
MAX_DOCUMENT_BYTES = 256_000
MAX_DEPTH = 40
# Rows any data source may hold or generate, and any transform may produce, as far as it can be computed.
MAX_ROWS = 100_000
MAX_DENSITY_STEPS = 1_000
MAX_BINS = 1_000
MAX_QUANTILES = 1_000
MAX_TICKS = 1_000
# Any count computed from the document at or beyond this is refused without being computed exactly.
UNCOUNTABLE = 10**15
# Counts any key of these names may ask for, wherever it appears: bins, density steps, axis and legend ticks.
COUNT_LIMITS = {
    "maxbins": MAX_BINS,
    "steps": MAX_DENSITY_STEPS,
    "minsteps": MAX_DENSITY_STEPS,
    "maxsteps": MAX_DENSITY_STEPS,
    "tickCount": MAX_TICKS,
}
# A graticule draws 360 / step meridians and 180 / step parallels, each a point every `precision` degrees.
MIN_GRATICULE_STEP = 1
MIN_GRATICULE_PRECISION = 0.5
# Width or height of any view, in pixels before scale.
MAX_VIEW_SIZE = 4_000
# The encoded picture: width * height * (scale * ppi / 72) ** 2, checked on the compiled SVG before rasterizing.
MAX_OUTPUT_PIXELS = 16_000_000
MAX_SCALE = 4.0
# Vega-Lite's own pixel unit: an SVG user unit is a point at 72 ppi.
BASE_PPI = 72

V5_SCHEMA = re.compile(r"https?://vega\.github\.io/schema/vega-lite/v5(\.\d+){0,2}\.json")
# Keys whose string values are Vega expressions, besides every key ending in "Expr" (labelExpr, ...).
EXPRESSION_KEYS = frozenset({"calculate", "filter", "expr", "test", "update", "signal"})
# Vega's expression functions that build an array or a string of any length (flatten turns arrays into rows).
UNBOUNDED_EXPRESSION = re.compile(r"\b(sequence|pad|split)\s*\(")
# Transforms whose output rows depend on their input's: refused where those cannot be told from the document.
ROW_MULTIPLYING = ("fold", "flatten", "impute")
# Expressions whose value changes from one render to the next.
CHANGING_EXPRESSION = re.compile(r"\b(random|now)\s*\(")
IN_A_TRANSFORM = re.compile(r"(^|\.)transform\.\d+$")


class VegaLiteSpec(FileFormatSpec):
    """A Vega-Lite v5 document and how to encode it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vega_lite: dict[str, Any] = Field(
        title="Vega-Lite document",
        description="The Vega-Lite v5 document (https://vega.github.io/vega-lite/docs/spec.html): data inline only.",
        examples=[
            {
                "data": {"values": [{"a": "A", "b": 28}, {"a": "B", "b": 55}, {"a": "C", "b": 43}]},
                "mark": "bar",
                "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b", "type": "quantitative"}},
            }
        ],
    )
    format: Literal["png", "svg", "pdf"] = "png"
    scale: float = Field(
        default=1.0, strict=True, allow_inf_nan=False, gt=0, le=MAX_SCALE, description="PNG only: a size factor."
    )
    ppi: StrictInt = Field(default=BASE_PPI, ge=36, le=300, description="PNG only: pixels per inch (72 is 1:1).")
    theme: Theme | None = Field(default=None, description="A named Vega theme.")

    generator_name: ClassVar[str] = "vega-lite"

    @property
    def pixel_factor(self) -> float:
        """Output pixels per Vega-Lite pixel: scale times ppi over 72 (both 1 for svg and pdf)."""
        return self.scale * self.ppi / BASE_PPI

    def is_reproducible(self) -> bool:
        """PNG and SVG are the same bytes for the same document unless it asks for randomness or the clock.

        The converter's PDF orders its embedded fonts differently from one run to the next when a
        chart uses more than one, so a PDF is never shared between requests.
        """
        return self.format != "pdf" and not changes_between_renders(self.vega_lite)

    def irreproducibility(self) -> tuple[str, str]:
        """A PDF, or a document that calls random() or now()."""
        if self.format == "pdf":
            return "format", "the converter's PDF differs from one render to the next: use png or svg"
        return "vega_lite", "the document calls random() or now(), so it differs from one render to the next"

    @field_validator("vega_lite")
    @classmethod
    def _document_is_bounded(cls, document: dict[str, Any]) -> dict[str, Any]:
        check_document(document)
        return document

    @model_validator(mode="after")
    def _scale_and_ppi_are_for_png(self) -> VegaLiteSpec:
        # SVG and PDF are vector drawings: the document's own width and height size them.
        if self.format != "png" and self.ppi != BASE_PPI:
            raise SpecRuleError("ppi", "ppi applies to png only; size svg and pdf with the document's width and height")
        if self.format != "png" and self.scale != 1:
            raise SpecRuleError(
                "scale", "scale applies to png only; size svg and pdf with the document's width and height"
            )
        return self


def check_document(document: dict[str, Any]) -> None:
    """Refuse what fetches or could generate unbounded work; SpecRuleError names the path at fault."""
    size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_DOCUMENT_BYTES:
        raise SpecRuleError("vega_lite", f"{size} bytes as JSON; at most {MAX_DOCUMENT_BYTES}")
    schema = document.get("$schema")
    if schema is not None and not (isinstance(schema, str) and V5_SCHEMA.fullmatch(schema)):
        message = f"{str(schema)[:80]!r} is not a Vega-Lite v5 schema (https://vega.github.io/schema/vega-lite/v5.json)"
        raise SpecRuleError("vega_lite.$schema", message)
    for path, key, value in _walk(document):
        where = f"vega_lite.{path}" if path else "vega_lite"
        _check_member(f"{where}.{key}", key, value)
    datasets = document.get("datasets")
    _check_view_rows(document, "vega_lite", datasets if isinstance(datasets, dict) else {}, None)


def changes_between_renders(document: dict[str, Any]) -> bool:
    """Whether the document draws something new each time: random() or now() in an expression, or a sample."""
    for path, key, value in _walk(document):
        if _is_expression(key, value) and CHANGING_EXPRESSION.search(value):
            return True
        if key == "sample" and IN_A_TRANSFORM.search(path):
            return True
    return False


def _walk(document: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """Every (path of its object, key, value) of the document's grammar, depth first, without recursion.

    Data rows (``values`` lists, ``datasets``) are data, never read as the grammar: a column may be called ``url``.
    """
    stack: list[tuple[str, Any, int]] = [("", document, 0)]
    while stack:
        path, node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SpecRuleError(f"vega_lite.{path}", f"nested deeper than {MAX_DEPTH} levels")
        members = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in members:
            if isinstance(node, dict):
                yield path, str(key), value
                if (key == "values" and isinstance(value, list)) or (key == "datasets" and not path):
                    continue
            if isinstance(value, (dict, list)):
                stack.append((f"{path}.{key}" if path else str(key), value, depth + 1))


def _is_expression(key: str, value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and (key in EXPRESSION_KEYS or key.endswith("Expr"))


def _number(value: Any) -> float | None:
    """A finite JSON number as a float; None for anything else, an integer beyond float's range included."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _count(quotient: float) -> int:
    """ceil(quotient) as a count, UNCOUNTABLE when it is not finite or larger (a tiny step over a wide span)."""
    if math.isnan(quotient) or quotient >= UNCOUNTABLE:
        return UNCOUNTABLE
    if quotient <= -UNCOUNTABLE:
        return -UNCOUNTABLE
    return math.ceil(quotient)


def _said(count: int) -> str:
    return f"over {UNCOUNTABLE:.0e}" if count >= UNCOUNTABLE else str(count)


def _check_member(where: str, key: str, value: Any) -> None:
    """The rules that hold wherever a key appears."""
    if key == "url":
        raise SpecRuleError(where, "nothing is fetched by URL: give data inline as data.values (no image marks)")
    if key == "href":
        raise SpecRuleError(where, "links are not rendered: remove href")
    if _is_expression(key, value) and UNBOUNDED_EXPRESSION.search(value):
        message = "sequence(), pad() and split() in an expression build arrays or strings of any length"
        raise SpecRuleError(where, f"{message}; use data.sequence for rows")
    if key in ("sequence", "keyvals") and isinstance(value, dict):
        _check_sequence(where, value)
    elif key == "bin" and isinstance(value, dict):
        _check_bin(where, value)
    elif key == "graticule" and isinstance(value, dict):
        _check_graticule(where, value)
    elif key in ("width", "height"):
        size = _number(value)
        step = _number(value.get("step")) if isinstance(value, dict) else None
        if (size is not None and size > MAX_VIEW_SIZE) or (step is not None and step > MAX_VIEW_SIZE):
            raise SpecRuleError(where, f"at most {MAX_VIEW_SIZE} pixels")
    elif key in COUNT_LIMITS:
        count = _number(value)
        beyond_float = isinstance(value, int) and not isinstance(value, bool) and count is None
        if beyond_float or (count is not None and count > COUNT_LIMITS[key]):
            raise SpecRuleError(where, f"at most {COUNT_LIMITS[key]}")
    elif key == "probs" and isinstance(value, list) and len(value) > MAX_QUANTILES:
        raise SpecRuleError(where, f"{len(value)} probabilities; at most {MAX_QUANTILES}")


def _check_bin(where: str, parameters: dict[str, Any]) -> None:
    """A bin with an explicit step (or steps) makes at most MAX_BINS bins over its extent, which must then be given.

    Vega enumerates every bin boundary for the axis, so a tiny step over a wide extent is a loop of any length.
    """
    steps = parameters.get("steps")
    chosen = [parameters.get("step")] if "step" in parameters else steps if isinstance(steps, list) else None
    if chosen is None:
        return
    extent = parameters.get("extent")
    numbers = [_number(bound) for bound in extent] if isinstance(extent, list) and len(extent) == 2 else [None]  # noqa: PLR2004
    positive = [step for step in map(_number, chosen) if step is not None and step > 0]
    if None in numbers or not positive or len(positive) != len(chosen):
        raise SpecRuleError(where, "a bin step needs a positive number and the extent [low, high] it divides")
    low, high = numbers
    assert low is not None and high is not None
    count = _count(abs(high - low) / max(positive))
    if count > MAX_BINS:
        raise SpecRuleError(where, f"makes {_said(count)} bins; at most {MAX_BINS}")


def _check_graticule(where: str, parameters: dict[str, Any]) -> None:
    """A graticule's steps are at least MIN_GRATICULE_STEP degrees and its precision MIN_GRATICULE_PRECISION."""
    for name in ("step", "stepMinor", "stepMajor"):
        given = parameters.get(name)
        for step in given if isinstance(given, list) else [given] if given is not None else []:
            number = _number(step)
            if number is None or number < MIN_GRATICULE_STEP:
                raise SpecRuleError(f"{where}.{name}", f"at least {MIN_GRATICULE_STEP} degree")
    precision = parameters.get("precision")
    if precision is not None and ((_number(precision) or 0) < MIN_GRATICULE_PRECISION):
        raise SpecRuleError(f"{where}.precision", f"at least {MIN_GRATICULE_PRECISION} degree")


def _check_sequence(where: str, sequence: dict[str, Any]) -> None:
    """A generated sequence (data or impute keys) yields at most MAX_ROWS values."""
    start, stop = _number(sequence.get("start", 0)), _number(sequence.get("stop"))
    step = _number(sequence.get("step", 1))
    if start is None or stop is None or step is None or step == 0:
        raise SpecRuleError(where, "start, stop and step are finite numbers, step not 0")
    count = max(0, _count((stop - start) / step))
    if count > MAX_ROWS:
        raise SpecRuleError(where, f"generates {_said(count)} values; at most {MAX_ROWS}")


def _source_rows(data: Any, datasets: dict[str, Any]) -> int | None:
    """The rows a view's data source holds, when that can be told from the document alone."""
    if not isinstance(data, dict):
        return None
    values = data.get("values")
    if isinstance(values, list):
        return len(values)
    sequence = data.get("sequence")
    if isinstance(sequence, dict):
        start, stop = _number(sequence.get("start", 0)), _number(sequence.get("stop"))
        step = _number(sequence.get("step", 1))
        if start is not None and stop is not None and step:
            return max(0, _count((stop - start) / step))
    name = data.get("name")
    if isinstance(name, str) and isinstance(datasets.get(name), list):
        return len(datasets[name])
    return None


def _keyvals_count(keyvals: Any) -> int:
    """The key values an impute adds: a list's length, or a sequence's (checked apart), else none given."""
    if isinstance(keyvals, list):
        return len(keyvals)
    if isinstance(keyvals, dict):
        start, stop = _number(keyvals.get("start", 0)), _number(keyvals.get("stop"))
        step = _number(keyvals.get("step", 1))
        if start is not None and stop is not None and step:
            return max(0, _count((stop - start) / step))
    return 0


def _flatten_factor(data: Any, fields: list[Any]) -> float:
    """Rows out per row in of a flatten of inline data: its arrays' lengths over its rows (1 when not inline)."""
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, list) or not values:
        return 1.0
    out = sum(
        max((len(row[field]) for field in fields if isinstance(row.get(field), list)), default=1)
        for row in values
        if isinstance(row, dict)
    )
    return max(1.0, out / len(values))


def _check_view_rows(view: dict[str, Any], where: str, datasets: dict[str, Any], inherited: int | None) -> None:
    """Follow a view's rows through its transforms, then into its sub-views; refuse counts over MAX_ROWS."""
    # A view's own data (CSV text, say) may hold rows no check can count: then they are unknown, not inherited.
    own_data = isinstance(view.get("data"), dict)
    rows = _source_rows(view.get("data"), datasets) if own_data else inherited
    transforms = view.get("transform")
    if isinstance(transforms, list):
        for index, transform in enumerate(transforms):
            if not isinstance(transform, dict):
                continue
            if rows is None:
                multiplying = next((name for name in ROW_MULTIPLYING if name in transform), None)
                if multiplying is not None:
                    message = (
                        f"a {multiplying} needs data whose rows can be counted: inline values as a list, a sequence"
                    )
                    raise SpecRuleError(f"{where}.transform.{index}", message)
                continue
            rows = _rows_after(transform, rows, view.get("data"))
            if rows > MAX_ROWS:
                message = f"may produce {_said(rows)} rows; at most {MAX_ROWS}"
                raise SpecRuleError(f"{where}.transform.{index}", message)
    for key in ("layer", "concat", "hconcat", "vconcat"):
        children = view.get(key)
        if isinstance(children, list):
            for index, child in enumerate(children):
                if isinstance(child, dict):
                    _check_view_rows(child, f"{where}.{key}.{index}", datasets, rows)
    child = view.get("spec")
    if isinstance(child, dict):
        _check_view_rows(child, f"{where}.spec", datasets, rows)


def _rows_after(transform: dict[str, Any], rows: int, data: Any) -> int:
    """An upper bound of the rows out of one transform, given the rows in."""
    fold = transform.get("fold")
    if isinstance(fold, list):
        return rows * max(1, len(fold))
    flatten = transform.get("flatten")
    if isinstance(flatten, list):
        return _count(rows * _flatten_factor(data, flatten))
    if "impute" in transform:
        keyvals = _keyvals_count(transform.get("keyvals"))
        return rows * max(1, keyvals) if transform.get("groupby") else rows + keyvals
    if "density" in transform:
        steps = _number(transform.get("steps")) or 200
        return int(steps) * (rows if transform.get("groupby") else 1)
    if "quantile" in transform:
        probs = transform.get("probs")
        step = _number(transform.get("step")) or 0.025
        count = len(probs) if isinstance(probs, list) else _count(1 / step) if step > 0 else UNCOUNTABLE
        return count * (rows if transform.get("groupby") else 1)
    return rows
