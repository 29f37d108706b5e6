"""The chart form's fields, read from the spec model's JSON Schema so new spec fields appear by themselves.

Every scalar field of the spec (a choice, a number, a string, a date, a flag) becomes an
input; fields that hold lists or objects (data series, say) need a purpose-built widget and
are left to the page.
"""

from __future__ import annotations

from dataclasses import dataclass
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


class _CommonAttributes(TypedDict):
    name: str
    label: str
    default: Any
    help: str
    optional: bool
    wide: bool


def _field(schema: dict[str, Any], name: str, node: dict[str, Any]) -> FormField | None:
    inner, optional = _unwrap_optional(schema, node)
    common: _CommonAttributes = {
        "name": name,
        "label": _LABELS.get(name) or str(node.get("title") or inner.get("title") or name.replace("_", " ").title()),
        "default": node.get("default"),
        "help": str(node.get("description") or inner.get("description") or ""),
        "optional": optional,
        "wide": name in _WIDE,
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
    if kind == "boolean":
        return FormField(widget="checkbox", value_type="boolean", **common)
    if kind == "string":
        widget = "date" if inner.get("format") == "date" else "text"
        return FormField(widget=widget, value_type="string", max_length=inner.get("maxLength"), **common)
    return None


def form_fields(schema: dict[str, Any]) -> list[FormField]:
    """The inputs for every scalar property of ``schema``, in the model's order."""
    fields = []
    for name, node in schema.get("properties", {}).items():
        field = _field(schema, name, node)
        if field is not None:
            fields.append(field)
    return fields
