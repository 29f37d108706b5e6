"""The chart form's fields, read from the spec model's JSON Schema so new spec fields appear by themselves.

Every scalar field of the spec (a choice, a number, a string, a date, a flag) becomes an
input; fields that hold lists or objects (data series, say) need a purpose-built widget and
are left to the page. A generator's ``FormLayout`` says where each input sits: which fields
apply only to some kinds, which only to the demo data, and which fold under "more options".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

# Where the schema's own title (derived from the field name) reads badly.
_LABELS = {"dpi": "DPI", "seed": "Random seed", "start": "First day", "kind": "Chart kind"}
# These read best on a row of their own.
_WIDE = {"title"}


@dataclass(frozen=True)
class FormField:
    """One input of the chart form."""

    name: str
    label: str
    widget: str  # select, number, text, date or checkbox
    value_type: str  # how the page converts the input: string, integer, number or boolean
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    help: str = ""
    optional: bool = False
    wide: bool = False
    kinds: tuple[str, ...] = ()  # the kinds (of chart, say) it applies to; empty for all
    demo_only: bool = False  # applies only when no data of one's own is given
    more: bool = False  # folded under "more options"
    lead: bool = False  # shown before the generator's own data mapping

    @property
    def input_value(self) -> str:
        """The default as the input's initial text (empty when the server picks)."""
        if self.default is None or isinstance(self.default, bool):
            return ""
        return str(self.default)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        return dict(schema.get("$defs", {}).get(reference.removeprefix("#/$defs/"), {}))
    return node


def _unwrap_optional(schema: dict[str, Any], node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The non-null branch of ``X | None`` and whether null is allowed."""
    branches = node.get("anyOf")
    if not isinstance(branches, list):
        return _resolve(schema, node), False
    others = [branch for branch in branches if branch.get("type") != "null"]
    if len(others) != 1:
        return {}, True
    return _resolve(schema, others[0]), len(others) < len(branches)


@dataclass(frozen=True)
class FormLayout:
    """Where a generator's fields sit on the page: by kind, demo data only, or under "more options"."""

    kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    demo_only: Collection[str] = ()
    more: Collection[str] = ()
    lead: Collection[str] = ()


# Kinds with an x and a y axis; a histogram bins values, a pie has neither axis.
XY_KINDS = ("line", "bar", "scatter", "area")
CHART_LAYOUT = FormLayout(
    kinds={
        "bins": ("histogram",),
        "x_type": XY_KINDS,
        "x_label": (*XY_KINDS, "histogram"),
        "y_label": (*XY_KINDS, "histogram"),
    },
    demo_only=("seed", "start"),
    lead=("kind",),
    more=("x_type", "legend", "theme", "seed", "start", "format", "width", "height", "dpi"),
)


class _CommonAttributes(TypedDict):
    name: str
    label: str
    default: Any
    help: str
    optional: bool
    wide: bool
    kinds: tuple[str, ...]
    demo_only: bool
    more: bool
    lead: bool


def _field(schema: dict[str, Any], name: str, node: dict[str, Any], layout: FormLayout) -> FormField | None:
    inner, optional = _unwrap_optional(schema, node)
    common: _CommonAttributes = {
        "name": name,
        "label": _LABELS.get(name) or str(node.get("title") or inner.get("title") or name.replace("_", " ").title()),
        "default": node.get("default"),
        "help": str(node.get("description") or inner.get("description") or ""),
        "optional": optional,
        "wide": name in _WIDE,
        "kinds": tuple(layout.kinds.get(name, ())),
        "demo_only": name in layout.demo_only,
        "more": name in layout.more,
        "lead": name in layout.lead,
    }
    kind = inner.get("type")
    if "const" in inner or "enum" in inner:
        choices = tuple(str(choice) for choice in inner.get("enum", [inner.get("const")]))
        return FormField(widget="select", value_type="string", choices=choices, **common)
    if kind in ("integer", "number"):
        return FormField(
            widget="number",
            value_type=kind,
            minimum=inner.get("minimum"),
            maximum=inner.get("maximum"),
            **common,
        )
    if kind == "boolean" and optional:
        # A checkbox cannot leave the choice to the server: absent, yes or no.
        return FormField(widget="select", value_type="boolean", choices=("true", "false"), **common)
    if kind == "boolean":
        return FormField(widget="checkbox", value_type="boolean", **common)
    if kind == "string":
        widget = "date" if inner.get("format") == "date" else "text"
        return FormField(widget=widget, value_type="string", max_length=inner.get("maxLength"), **common)
    return None


def form_fields(schema: dict[str, Any], layout: FormLayout | None = None) -> list[FormField]:
    """The inputs for every scalar property of ``schema``, in the model's order, placed by ``layout``."""
    fields = []
    for name, node in schema.get("properties", {}).items():
        form_field = _field(schema, name, node, layout or FormLayout())
        if form_field is not None:
            fields.append(form_field)
    return fields
