"""Each generator's form, read from its spec model's JSON Schema so new spec fields appear by themselves.

Every scalar field of the spec (a choice, a number, a string, a date, a flag) becomes an
input. Fields that hold lists or objects are, for the chart, filled by its own data mapping;
for any other generator they become a JSON text area (``FormLayout.structured``). A
generator's ``FormLayout`` says where each input sits: which fields apply only to some kinds,
which only to the demo data, and which fold under "more options"; a generator without one of
its own gets ``default_layout``, which folds every field the spec can do without.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from plotjobs.generators import Generator

# Where the schema's own title (derived from the field name) reads badly.
_LABELS = {"dpi": "DPI", "seed": "Random seed", "start": "First day", "kind": "Chart kind"}
# These read best on a row of their own.
_WIDE = {"title"}
# Kept in sight even when the spec has a default for it: what names the picture.
_ALWAYS_SHOWN = {"title"}
# The generator whose form is the page's own data and mapping steps.
CHART = "chart"


@dataclass(frozen=True)
class FormField:
    """One input of a generator's form."""

    name: str
    label: str
    widget: str  # select, number, text, date, checkbox or json
    value_type: str  # how the page converts the input: string, integer, number, boolean, object or array
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
    required: bool = False  # the spec has no default for it
    example: str = ""  # a JSON field's example document, as its placeholder

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
    structured: bool = False  # object and array fields become JSON text areas


def default_layout(schema: dict[str, Any]) -> FormLayout:
    """The layout of a generator that declares none: what the spec can do without folds under "more options"."""
    required = set(schema.get("required", ()))
    more = [
        name
        for name, node in schema.get("properties", {}).items()
        if name not in required and name not in _ALWAYS_SHOWN and "default" in node
    ]
    return FormLayout(more=more, structured=True)


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
    required: bool


def _example(node: dict[str, Any], inner: dict[str, Any], kind: str) -> str:
    """The schema's first example, a line per member or item, or an empty document of the field's type."""
    examples = node.get("examples") or inner.get("examples")
    if not (isinstance(examples, list) and examples):
        return "[]" if kind == "array" else "{}"
    example = examples[0]
    compact = functools.partial(json.dumps, ensure_ascii=False, separators=(", ", ": "))
    if isinstance(example, dict) and example:
        return "{\n" + ",\n".join(f"  {compact(key)}: {compact(value)}" for key, value in example.items()) + "\n}"
    if isinstance(example, list) and example:
        return "[\n" + ",\n".join(f"  {compact(item)}" for item in example) + "\n]"
    return compact(example)


def _structured_kind(inner: dict[str, Any]) -> str | None:
    kind = inner.get("type")
    return kind if kind in ("object", "array") else None


def _field(
    schema: dict[str, Any], name: str, node: dict[str, Any], layout: FormLayout, required: bool
) -> FormField | None:
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
        "required": required,
    }
    structured = _structured_kind(inner)
    if structured is None:
        return _scalar_field(inner, optional, common)
    if not layout.structured:
        return None
    common["wide"] = True
    return FormField(widget="json", value_type=structured, example=_example(node, inner, structured), **common)


def _scalar_field(inner: dict[str, Any], optional: bool, common: _CommonAttributes) -> FormField | None:
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
    """The inputs for the properties of ``schema``, in the model's order, placed by ``layout``."""
    fields = []
    required = set(schema.get("required", ()))
    for name, node in schema.get("properties", {}).items():
        form_field = _field(schema, name, node, layout or FormLayout(), name in required)
        if form_field is not None:
            fields.append(form_field)
    return fields


@dataclass(frozen=True)
class GeneratorForm:
    """A served generator as the page offers it: its name, title, description and form fields."""

    name: str
    title: str
    description: str
    fields: list[FormField]


def generator_forms(served: Iterable[Generator]) -> list[GeneratorForm]:
    """The forms of the served generators other than the chart (whose form is the page's own steps)."""
    forms = []
    for generator in served:
        if generator.name == CHART:
            continue
        schema = generator.spec_model.model_json_schema()
        fields = form_fields(schema, default_layout(schema))
        forms.append(GeneratorForm(generator.name, generator.title or generator.name, generator.description, fields))
    return forms
