"""What the job layer may ask of any generator's spec, and how validation failures are reported."""

from __future__ import annotations

import datetime as dt
from abc import abstractmethod
from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import BaseModel, ValidationError

# The serialization context key under which a spec's arrays are collected instead of written out.
ARRAYS_CONTEXT = "plotjobs.arrays"
# What stands for the n-th detached array in a spec document: {"$array": n}.
ARRAY_PLACEHOLDER = "$array"


# The media type of each file format a generator may produce.
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


class SpecRuleError(ValueError):
    """A rule across fields is broken; ``field`` is the dotted path of the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class GeneratorSpec(BaseModel):
    """Base of every generator's spec model: the few facts queueing, dedupe and metrics need."""

    generator_name: ClassVar[str]

    @property
    @abstractmethod
    def output_format(self) -> str:
        """The file format of the rendered bytes (``png``, ``svg``, ``pdf``, ...)."""

    @property
    @abstractmethod
    def content_type(self) -> str:
        """The media type of the rendered bytes."""

    @property
    def metric_label(self) -> str:
        """A short, bounded label for metrics and logs (never user text)."""
        return self.generator_name

    def is_reproducible(self) -> bool:
        """Whether rendering this spec twice gives the same bytes, so identical requests may share a render."""
        return False

    def irreproducibility(self) -> tuple[str, str]:
        """Why this spec is not reproducible, for a refusal: the field at fault and what to change."""
        return "spec", f"this {self.generator_name} spec draws something different each time it renders"

    def generators_used(self) -> list[tuple[str, str]]:
        """Each generator this spec needs rendered, with the field that names it: its own, and any it embeds."""
        return [("generator", self.generator_name)]

    def pinned(self, today: dt.date) -> Self:
        """This spec with every implicit input (such as today's date) made explicit."""
        return self


class FileFormatSpec(GeneratorSpec):
    """A spec whose ``format`` field names the file it renders, one of MEDIA_TYPES."""

    format: str

    @property
    def output_format(self) -> str:
        """The file format of the rendered bytes."""
        return self.format

    @property
    def content_type(self) -> str:
        """The media type of the rendered bytes."""
        return MEDIA_TYPES[self.format]


def violations(error: ValidationError) -> list[tuple[str, str]]:
    """Each (field, message) of a failed spec validation, fields as dotted paths."""
    found = []
    for item in error.errors():
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, SpecRuleError):
            found.append((cause.field, cause.message))
        else:
            found.append((".".join(str(part) for part in item["loc"]) or "spec", item["msg"]))
    return found


def violations_text(error: ValidationError) -> str:
    """Every violation in one line: ``field: message; field: message``."""
    return "; ".join(f"{field}: {message}" for field, message in violations(error))


def array_field_serializer(value: Any, handler: Any, info: Any) -> Any:
    """Serialize a field that may hold a numpy array: collected by reference under ARRAYS_CONTEXT, else as JSON data.

    For pydantic's ``WrapSerializer``: lists and other values go through the field's own serializer.
    """
    if not isinstance(value, np.ndarray):
        return handler(value)
    collector = (info.context or {}).get(ARRAYS_CONTEXT)
    if collector is not None:
        collector.append(value)
        return {ARRAY_PLACEHOLDER: len(collector) - 1}
    if info.mode == "python":
        return value
    return array_as_json(value)


def array_as_json(array: np.ndarray) -> list[Any]:
    """An array as JSON data: numbers, or ISO date-time strings for datetime64."""
    if array.dtype.kind == "M":
        # One form for the whole column: days when every value is a whole day, else seconds or milliseconds.
        unit: Literal["D", "s", "ms"] = "ms"
        for whole in ("s", "D"):
            if (array == array.astype(f"datetime64[{whole}]")).all():
                unit = whole
        return np.datetime_as_string(array, unit=unit).tolist()  # type: ignore[no-any-return]
    return array.tolist()  # type: ignore[no-any-return]


def detached_document(spec: GeneratorSpec) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The spec as JSON data with each array replaced by ``{"$array": n}``, and the arrays in that order."""
    arrays: list[np.ndarray] = []
    document = spec.model_dump(mode="json", context={ARRAYS_CONTEXT: arrays})
    return document, arrays


def attach_arrays(document: Any, arrays: list[Any]) -> Any:
    """``document`` with each ``{"$array": n}`` replaced by ``arrays[n]``; KeyError for a placeholder out of range."""
    if isinstance(document, dict):
        if set(document) == {ARRAY_PLACEHOLDER}:
            index = document[ARRAY_PLACEHOLDER]
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(arrays):
                raise KeyError(f"no array {index!r} among the {len(arrays)} stored")
            return arrays[index]
        return {name: attach_arrays(value, arrays) for name, value in document.items()}
    if isinstance(document, list):
        return [attach_arrays(value, arrays) for value in document]
    return document
