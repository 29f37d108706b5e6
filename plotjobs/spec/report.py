"""The report spec: a title and parts (charts, Vega-Lite documents, text) in one PDF or PNG (docs/vega-lite.md)."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from plotjobs.spec import arrays
from plotjobs.spec.base import MEDIA_TYPES, FileFormatSpec, SpecRuleError, violations
from plotjobs.spec.chart import ChartSpec, listed_points
from plotjobs.spec.vega_lite import VegaLiteSpec

CONTENT_TYPES = {file_format: MEDIA_TYPES[file_format] for file_format in ("pdf", "png")}
PART_GENERATORS: dict[str, type[ChartSpec] | type[VegaLiteSpec]] = {"chart": ChartSpec, "vega-lite": VegaLiteSpec}

MAX_PARTS = 12
MAX_TITLE = 200
MAX_TEXT_BLOCK = 2_000
MAX_TEXT_LINES = 40
# The title and every text block together.
MAX_TOTAL_TEXT = 10_000
# Each drawn part is placed as a picture of at most this many pixels (e.g. 2000 x 2000).
MAX_PART_PIXELS = 4_000_000
# Points in all of the chart parts: a report's data travels inline in its job, never stored apart.
MAX_CHART_POINTS = arrays.LIST_POINTS
# Text keeps its line breaks and tabs; no other control character is drawn.
_ALLOWED_CONTROLS = frozenset("\n\t")


def _printable(value: str) -> str:
    for position, character in enumerate(value):
        if character not in _ALLOWED_CONTROLS and unicodedata.category(character) in ("Cc", "Cs"):
            raise PydanticCustomError(
                "control_character",
                "holds the control character {code} at position {position}; use printable text",
                {"code": f"U+{ord(character):04X}", "position": position},
            )
    return value


Title = Annotated[StrictStr, Field(max_length=MAX_TITLE), AfterValidator(_printable)]
TextBlock = Annotated[StrictStr, Field(min_length=1, max_length=MAX_TEXT_BLOCK), AfterValidator(_printable)]
PartSpec = ChartSpec | VegaLiteSpec


class ReportPart(BaseModel):
    """One part: a block of text, or a drawing by another generator (its ``spec`` as that generator takes it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: TextBlock | None = Field(default=None, description="A block of plain text; line breaks are kept.")
    generator: Literal["chart", "vega-lite"] | None = Field(default=None, description="What draws the part.")
    spec: dict[str, Any] | None = Field(
        default=None, description="The part's spec, as its generator takes it; its format is not used."
    )

    @property
    def kind(self) -> str:
        """``text``, ``chart`` or ``vega-lite``: a short label for progress and logs."""
        return self.generator or "text"

    @model_validator(mode="after")
    def _text_or_a_drawing(self) -> ReportPart:
        if self.text is not None and (self.generator is not None or self.spec is not None):
            raise SpecRuleError("text", "a part is either text or a drawing (generator and spec), not both")
        if self.text is None and (self.generator is None or self.spec is None):
            raise SpecRuleError("generator", "a part needs text, or a generator and its spec")
        return self

    def drawing(self) -> PartSpec | None:
        """The part's spec as its generator's model, as a PNG (the report places each drawing as a picture)."""
        if self.generator is None or self.spec is None:
            return None
        return PART_GENERATORS[self.generator].model_validate({**self.spec, "format": "png"})


class ReportSpec(FileFormatSpec):
    """A title and up to MAX_PARTS parts, laid out on A4 pages (PDF) or as a contact sheet (PNG)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Title = ""
    parts: list[ReportPart] = Field(
        min_length=1,
        max_length=MAX_PARTS,
        description="Text blocks and drawings, in order; each part has text, or a generator and its spec.",
        examples=[
            [
                {"text": "Sales rose in March."},
                {"generator": "chart", "spec": {"kind": "bar", "title": "Sales", "seed": 1}},
            ]
        ],
    )
    format: Literal["pdf", "png"] = "pdf"

    generator_name: ClassVar[str] = "report"

    def generators_used(self) -> list[tuple[str, str]]:
        """The report's own generator, then each drawn part's, named by the part's field."""
        return [
            *super().generators_used(),
            *(
                (f"parts.{index}.generator", part.generator)
                for index, part in enumerate(self.parts)
                if part.generator is not None
            ),
        ]

    def drawings(self) -> list[PartSpec | None]:
        """Each part's drawing spec, None for a text part."""
        return [part.drawing() for part in self.parts]

    def is_reproducible(self) -> bool:
        """Every drawn part is itself reproducible (its data or a seed given; no randomness in a document)."""
        return all(drawing is None or drawing.is_reproducible() for drawing in self.drawings())

    def irreproducibility(self) -> tuple[str, str]:
        """The first drawing that is not reproducible, and why."""
        for index, drawing in enumerate(self.drawings()):
            if drawing is not None and not drawing.is_reproducible():
                field, reason = drawing.irreproducibility()
                return f"parts.{index}.spec.{field}", reason
        return super().irreproducibility()

    def pinned(self, today: dt.date) -> ReportSpec:
        """Each part's spec pinned to ``today`` and written out in full, so equal reports name one key."""
        parts = []
        for part, drawing in zip(self.parts, self.drawings(), strict=True):
            if drawing is None:
                parts.append(part)
                continue
            parts.append(part.model_copy(update={"spec": drawing.pinned(today).model_dump(mode="json")}))
        return self.model_copy(update={"parts": parts})

    @model_validator(mode="after")
    def _parts_are_valid_and_bounded(self) -> ReportSpec:
        text = len(self.title) + sum(len(part.text or "") for part in self.parts)
        if text > MAX_TOTAL_TEXT:
            raise SpecRuleError("parts", f"{text} characters of text in all; at most {MAX_TOTAL_TEXT}")
        points = 0
        for index, part in enumerate(self.parts):
            # Counted before any part is validated, so a part too big to carry is not read value by value.
            points += listed_points(part.spec) if part.generator == "chart" else 0
            if points > MAX_CHART_POINTS:
                message = f"the report's chart parts hold {points} points so far; at most {MAX_CHART_POINTS} in all"
                raise SpecRuleError(f"parts.{index}.spec.series", message)
        for index, part in enumerate(self.parts):
            if part.text is not None and part.text.count("\n") >= MAX_TEXT_LINES:
                raise SpecRuleError(f"parts.{index}.text", f"at most {MAX_TEXT_LINES} lines")
            try:
                drawing = part.drawing()
            except ValidationError as error:
                field, message = violations(error)[0]
                where = f"parts.{index}.spec" if field == "spec" else f"parts.{index}.spec.{field}"
                raise SpecRuleError(where, message) from None
            if isinstance(drawing, ChartSpec) and drawing.width * drawing.height > MAX_PART_PIXELS:
                message = f"{drawing.width}x{drawing.height} pixels; a report part has at most {MAX_PART_PIXELS}"
                raise SpecRuleError(f"parts.{index}.spec.width", message)
        return self
