"""The plugin manager and the one way to look up models, datasets, metric suites and features.

Built-in plugins are the packages under ``plugins/`` (installed as ``seldbench_plugins``);
third-party plugins are found through the ``seldbench.plugins`` entry-point group. Both are
registered the same way and every spec they return is validated here, once.
"""
from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import pkgutil
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any

import pluggy

from seldbench import hookspecs
from seldbench.errors import SeldbenchError, suggest
from seldbench.specs import (
    AUDIO_FORMATS,
    METADATA_FORMATS,
    OUTPUT_FORMATS,
    DatasetSpec,
    FeatureSpec,
    MetricSuiteSpec,
    ModelSpec,
)

ENTRY_POINT_GROUP = "seldbench.plugins"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

# kind -> (hook name, spec class)
_KINDS: dict[str, tuple[str, type]] = {
    "model": ("seldbench_register_models", ModelSpec),
    "dataset": ("seldbench_register_datasets", DatasetSpec),
    "metric suite": ("seldbench_register_metric_suites", MetricSuiteSpec),
    "feature": ("seldbench_register_features", FeatureSpec),
}


@dataclass(frozen=True)
class Entry:
    """A registered spec and the plugin that provided it."""

    spec: Any
    plugin: str


def _check(cond: bool, plugin: str, spec: Any, problem: str) -> None:
    if not cond:
        kind = type(spec).__name__
        name = getattr(spec, "name", "?")
        raise SeldbenchError(f"plugin '{plugin}': {kind} '{name}' {problem}")


def validate_spec(spec: Any, expected: type, plugin: str) -> None:
    """Raise :class:`SeldbenchError` naming ``plugin`` if ``spec`` is malformed."""
    if not isinstance(spec, expected):
        raise SeldbenchError(
            f"plugin '{plugin}': expected {expected.__name__}, got {type(spec).__name__}"
        )
    _check(isinstance(spec.name, str) and bool(_NAME.match(spec.name)), plugin, spec,
           "has an invalid name (use lower-case letters, digits, '-' and '_')")
    _check(isinstance(spec.version, str) and spec.version != "", plugin, spec, "has no version")
    _check(callable(spec.build) if hasattr(spec, "build") else True, plugin, spec,
           "has no builder (build must be callable)")
    if isinstance(spec, ModelSpec):
        _check(spec.output in OUTPUT_FORMATS, plugin, spec,
               f"has output '{spec.output}' (expected one of {', '.join(OUTPUT_FORMATS)})")
        _check(len(spec.features) > 0 and all(isinstance(f, str) for f in spec.features),
               plugin, spec, "declares no feature set")
        _check(spec.loss is None or callable(spec.loss), plugin, spec, "has a loss that is not callable")
        _check(spec.side_inputs is None or callable(spec.side_inputs), plugin, spec,
               "has side_inputs that is not callable")
    elif isinstance(spec, DatasetSpec):
        _check(len(spec.classes) > 0 and all(isinstance(c, str) for c in spec.classes),
               plugin, spec, "has no classes")
        _check(callable(spec.list_clips), plugin, spec, "has no list_clips function")
        _check(len(spec.splits) > 0, plugin, spec, "declares no splits")
        _check(len(spec.metric_suites) > 0, plugin, spec, "declares no metric suite")
        _check(set(spec.formats) <= set(AUDIO_FORMATS) and len(spec.formats) > 0, plugin, spec,
               f"has audio formats {list(spec.formats)} (expected a subset of {list(AUDIO_FORMATS)})")
        _check(spec.metadata_columns in (5, 6), plugin, spec, "has metadata_columns not 5 or 6")
        _check(spec.metadata_format in METADATA_FORMATS, plugin, spec,
               f"has metadata_format '{spec.metadata_format}' (expected one of "
               f"{list(METADATA_FORMATS)})")
        _check(spec.video_projection in ("equirectangular", "perspective"), plugin, spec,
               f"has video_projection '{spec.video_projection}' (expected equirectangular or "
               f"perspective)")
        _check(spec.prepare is None or callable(spec.prepare), plugin, spec, "has a prepare that is not callable")
    elif isinstance(spec, MetricSuiteSpec):
        _check(len(spec.figures) > 0, plugin, spec, "declares no figures")
        _check(spec.rank_by in spec.figures, plugin, spec,
               f"ranks by '{spec.rank_by}', which is not one of its figures {list(spec.figures)}")
        _check(isinstance(spec.default_classes, int) and spec.default_classes > 0, plugin, spec,
               "has no positive default_classes")
        _check(spec.unit in ("segment", "frame"), plugin, spec, "has unit not 'segment' or 'frame'")
    elif isinstance(spec, FeatureSpec):
        _check(spec.audio_format in AUDIO_FORMATS, plugin, spec,
               f"has audio_format '{spec.audio_format}'")
        for f in ("channels", "bins", "frames_per_label"):
            _check(isinstance(getattr(spec, f), int) and getattr(spec, f) > 0, plugin, spec,
                   f"has no positive {f}")


def builtin_plugin_modules() -> list[str]:
    """Module names of the built-in plugins: every package under ``plugins/``."""
    import seldbench_plugins

    return sorted(
        f"seldbench_plugins.{m.name}"
        for m in pkgutil.iter_modules(seldbench_plugins.__path__)
        if m.ispkg and not m.name.startswith("_")
    )


class Registry:
    """Loaded plugins and their validated specs, by kind and name."""

    def __init__(self, plugins: Iterable[ModuleType | object] = (), *, builtins: bool = True,
                 entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in _KINDS}
        if builtins:
            for modname in builtin_plugin_modules():
                self._register(importlib.import_module(modname), modname.split(".", 1)[1])
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                try:
                    module = ep.load()
                except Exception as exc:  # a broken third-party package must not hide the rest
                    raise SeldbenchError(
                        f"plugin '{ep.name}': cannot load entry point '{ep.value}': "
                        f"{type(exc).__name__}: {exc}") from exc
                self._register(module, ep.name)
        for plugin in plugins:
            self._register(plugin, getattr(plugin, "__name__", type(plugin).__name__))
        self._collect()

    def _register(self, plugin: object, name: str) -> None:
        if self.pm.is_registered(plugin):
            return
        if self.pm.get_plugin(name) is not None:
            raise SeldbenchError(f"plugin '{name}': a plugin of that name is already registered")
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise SeldbenchError(f"plugin '{name}': {str(exc).splitlines()[0]}") from exc
        unknown = [h for h in dir(plugin) if h.startswith("seldbench_") and callable(getattr(plugin, h))
                   and getattr(getattr(self.pm.hook, h, None), "spec", None) is None]
        if unknown:
            raise SeldbenchError(
                f"plugin '{name}': unknown hook '{unknown[0]}' "
                f"(hooks: {', '.join(k[0] for k in _KINDS.values())})")

    def _collect(self) -> None:
        for kind, (hook_name, spec_type) in _KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                plugin = impl.plugin_name
                try:
                    specs = impl.function()
                except SeldbenchError:
                    raise
                except Exception as exc:
                    raise SeldbenchError(
                        f"plugin '{plugin}': {hook_name}() failed: {type(exc).__name__}: {exc}") from exc
                if specs is None:
                    continue
                if not isinstance(specs, (list, tuple)):
                    raise SeldbenchError(f"plugin '{plugin}': {hook_name}() must return a list of "
                                         f"{spec_type.__name__}, got {type(specs).__name__}")
                for spec in specs:
                    validate_spec(spec, spec_type, plugin)
                    table = self._entries[kind]
                    if spec.name in table:
                        raise SeldbenchError(
                            f"{kind} '{spec.name}' is registered twice: by plugin "
                            f"'{table[spec.name].plugin}' and by plugin '{plugin}'")
                    table[spec.name] = Entry(spec, plugin)

    # ---------------------------------------------------------------- lookups

    def entries(self, kind: str) -> dict[str, Entry]:
        """All registered entries of ``kind`` ('model', 'dataset', 'metric suite', 'feature')."""
        return dict(sorted(self._entries[kind].items()))

    def get(self, kind: str, name: str) -> Any:
        """The spec registered as ``name``; an unknown name suggests the closest known ones."""
        table = self._entries[kind]
        if name not in table:
            raise SeldbenchError(suggest(name, table, kind))
        return table[name].spec

    def list(self, kind: str, pattern: str = "*") -> list[str]:
        """Registered names of ``kind`` matching the shell-style ``pattern``, sorted."""
        return sorted(n for n in self._entries[kind] if fnmatch.fnmatch(n, pattern))

    def get_model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def get_dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name)

    def get_metric_suite(self, name: str) -> MetricSuiteSpec:
        return self.get("metric suite", name)

    def get_feature(self, name: str) -> FeatureSpec:
        return self.get("feature", name)

    def plugin_of(self, kind: str, name: str) -> str:
        self.get(kind, name)
        return self._entries[kind][name].plugin


_DEFAULT: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry of built-in and installed plugins (loaded on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry()
    return _DEFAULT


def spec_summary(spec: Any) -> dict[str, Any]:
    """Capabilities of a spec for ``seldbench list`` (callables and paths left out)."""
    out: dict[str, Any] = {}
    for f in fields(spec):
        value = getattr(spec, f.name)
        if callable(value) or f.name in ("description", "config", "default_root", "options",
                                         "side_inputs", "prepare", "loss"):
            continue
        if f.name == "classes":
            value = len(value)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
