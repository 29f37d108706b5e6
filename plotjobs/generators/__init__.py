"""The generator registry: each generator is a name, a spec model and a pure render, loaded only where needed.

Generators register through the Python entry point group ``plotjobs.generators``: each entry point
names a :class:`Generator` declaration (the built-in ``chart`` is ``plotjobs.generators.builtin:CHART``).
A declaration holds the spec model and only the import path of its render, so loading one
imports its spec model, never its render: the web app serves every generator without loading
matplotlib (or any other renderer); the processes that render import it on first use.
Only the generators the operator allow-lists in ``GENERATORS`` are served, and only their
declarations are imported (see docs/generators.md).

The job layer (``plotjobs.queue``, ``plotjobs.worker``) knows generators only through this module.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from pydantic import ValidationError

from plotjobs.config import GENERATOR_NAME
from plotjobs.errors import GeneratorDeclarationError, InvalidSpecError, UnknownGeneratorError
from plotjobs.spec.base import GeneratorSpec, violations_text

ENTRY_POINT_GROUP = "plotjobs.generators"

# The request field that names the generator; no spec model may have a field of this name.
GENERATOR_FIELD = "generator"

ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class RenderResult:
    """What a render may return instead of bytes: the bytes and, when the spec does not decide it, their format."""

    data: bytes
    file_format: str
    content_type: str


Render = Callable[[Any, ProgressCallback | None], "bytes | RenderResult"]


@dataclass(frozen=True)
class Generator:
    """One kind of content: its spec model, and where its render and warm-up live (``module:function``).

    ``content_types`` maps each format the render can produce to its media type. ``isolated``
    renders run in a child process the worker kills after ``time_limit`` seconds (at most
    JOB_TIMEOUT) and, with ``memory_limit_mb``, limits to that much address space: for renders
    that hold the GIL (RQ's alarm cannot interrupt them) or may crash. ``bare_queues``: jobs go on
    the priority queues themselves (``high``, ``default``, ``low``) rather than ``<name>.<queue>``;
    only the chart, whose queues predate generators, has it.
    """

    name: str
    spec_model: type[GeneratorSpec]
    render_path: str
    warm_up_path: str | None = None
    title: str = ""
    description: str = ""
    content_types: Mapping[str, str] = field(default_factory=dict)
    isolated: bool = False
    time_limit: int | None = None
    memory_limit_mb: int | None = None
    bare_queues: bool = False

    def __post_init__(self) -> None:
        problems = declaration_problems(self)
        if problems:
            raise ValueError(f"generator {self.name!r}: {'; '.join(problems)}")

    def validate(self, document: Mapping[str, Any]) -> GeneratorSpec:
        """The spec as its model; InvalidSpecError naming every bad field."""
        try:
            return self.spec_model.model_validate(document)
        except ValidationError as error:
            raise InvalidSpecError(f"invalid {self.name} spec: {violations_text(error)}") from None

    def render(self) -> Render:
        """The render function (imported on first use: only rendering processes pay for it)."""
        render: Render = _load(self.render_path)
        return render

    def warm_up(self) -> None:
        """Load what the render needs before the first job, so that job pays no start-up cost.

        An isolated render runs in a child process of its own: warming this one would load it for nothing.
        """
        if self.warm_up_path is not None and not self.isolated:
            _load(self.warm_up_path)()

    def queue_name(self, priority_queue: str) -> str:
        """The RQ queue that holds this generator's jobs of a priority queue (``vega-lite.default``)."""
        return priority_queue if self.bare_queues else f"{self.name}.{priority_queue}"

    def describe(self) -> dict[str, Any]:
        """What a client needs to offer this generator: name, title, formats and the spec's JSON Schema."""
        return {
            "name": self.name,
            "title": self.title or self.name,
            "description": self.description,
            "formats": dict(self.content_types),
            "isolated": self.isolated,
            "schema": self.spec_model.model_json_schema(),
        }


def declaration_problems(generator: Generator) -> list[str]:
    """What is wrong with a declaration, in words (empty when it is sound)."""
    problems = []
    if not GENERATOR_NAME.match(generator.name):
        problems.append("the name must be 1-32 lowercase letters, digits and '-', starting with a letter")
    if not (isinstance(generator.spec_model, type) and issubclass(generator.spec_model, GeneratorSpec)):
        problems.append("spec_model must be a subclass of plotjobs.spec.base.GeneratorSpec")
    else:
        own = getattr(generator.spec_model, "generator_name", None)
        if own != generator.name:
            problems.append(f"its spec model's generator_name ({own!r}) must be the generator's name")
        if GENERATOR_FIELD in generator.spec_model.model_fields:
            problems.append(f"its spec model must not have a field called {GENERATOR_FIELD!r} (requests use it)")
    for path in (generator.render_path, generator.warm_up_path):
        if path is not None and (":" not in path or not all(path.partition(":")[::2])):
            problems.append(f"{path!r} is not an import path of the form module:function")
    if not generator.content_types:
        problems.append("content_types must name at least one format and its media type")
    if generator.time_limit is not None and generator.time_limit < 1:
        problems.append("time_limit must be at least 1 second")
    if generator.memory_limit_mb is not None and generator.memory_limit_mb < 1:
        problems.append("memory_limit_mb must be at least 1")
    return problems


def _load(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@functools.cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    """The entry points of the group, by name; reading them imports nothing."""
    found: dict[str, metadata.EntryPoint] = {}
    for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name):
        found.setdefault(entry_point.name, entry_point)  # the same distribution may be on sys.path twice
    return found


def installed_names() -> tuple[str, ...]:
    """The names of every generator installed in this environment (nothing of them is imported)."""
    return tuple(_entry_points())


@functools.cache
def load(name: str) -> Generator:
    """The declaration of the installed generator ``name``, imported on first use; GeneratorDeclarationError if bad."""
    entry_point = _entry_points().get(name)
    if entry_point is None:
        raise UnknownGeneratorError(f"no generator {name!r} is installed", field=GENERATOR_FIELD)
    try:
        declaration = entry_point.load()
    except Exception as error:  # noqa: BLE001  # a third-party package's import may fail in any way: say which
        raise GeneratorDeclarationError(
            f"generator {name!r} ({entry_point.value}) cannot be loaded: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(declaration, Generator):
        raise GeneratorDeclarationError(f"generator {name!r}: {entry_point.value} is not a Generator declaration")
    if declaration.name != name:
        raise GeneratorDeclarationError(f"entry point {name!r} names a generator called {declaration.name!r}")
    return declaration


def installed() -> dict[str, Generator]:
    """Every generator installed in this environment, by name (each declaration imported)."""
    return {name: load(name) for name in installed_names()}


def served(names: Iterable[str]) -> dict[str, Generator]:
    """The allow-listed generators, in the allow-list's order; UnknownGeneratorError for one not installed."""
    available = installed_names()
    chosen = {}
    for name in names:
        if name not in available:
            raise UnknownGeneratorError(
                f"GENERATORS names {name!r}, which is not installed (installed: {', '.join(available) or 'none'})",
                field=GENERATOR_FIELD,
            )
        chosen[name] = load(name)
    if sum(generator.bare_queues for generator in chosen.values()) > 1:
        raise GeneratorDeclarationError("only one served generator may use the bare priority queues")
    return chosen


def check_served(spec: GeneratorSpec, allowed: Iterable[str]) -> None:
    """UnknownGeneratorError, naming the field, for any generator the spec needs that ``allowed`` does not list."""
    allow_list = tuple(allowed)
    for where, name in spec.generators_used():
        if name not in allow_list:
            raise UnknownGeneratorError(
                f"no generator {name!r} is served here (served: {', '.join(allow_list)})", field=where
            )


def get(name: str, allowed: Iterable[str] | None = None) -> Generator:
    """The generator called ``name``, if installed and (given ``allowed``) allow-listed; else UnknownGeneratorError.

    A name outside ``allowed`` is refused without importing anything of it.
    """
    allow_list = tuple(allowed) if allowed is not None else None
    known = name in installed_names() and (allow_list is None or name in allow_list)
    if not known:
        offered = allow_list if allow_list is not None else installed_names()
        raise UnknownGeneratorError(
            f"no generator {name!r} is served here (served: {', '.join(offered)})", field=GENERATOR_FIELD
        )
    return load(name)
