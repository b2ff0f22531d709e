"""Configuration: YAML layers merged in a fixed order, ``--set a.b=c`` overrides, validation.

Order (later wins): ``defaults.yaml`` (beside this module) <- dataset YAML <- model YAML <-
experiment file (after the files it names under ``base:``) <- ``--set`` overrides. A layer may
only change keys that already exist, except that the dataset YAML declares the keys of the
``dataset`` section and the model YAML those of ``model``. An unknown key is an error naming
the file, line and key path, with the closest known key. Every file is read with
``yaml.safe_load`` rules.
"""
from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from seldbench.errors import SeldbenchError

#: Every key a run understands, with its default: package data, found beside this module.
DEFAULTS_YAML = Path(__file__).with_name("defaults.yaml")


def _lines(node: yaml.Node, prefix: str = "", out: dict | None = None) -> dict[str, int]:
    """Key path -> 1-based line number of every mapping key in a composed YAML node."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}{key_node.value}"
            out[path] = key_node.start_mark.line + 1
            _lines(value_node, path + ".", out)
    return out


def load_yaml(path: str | Path) -> tuple[dict, dict[str, int]]:
    """Read a YAML mapping; returns ``(data, {key path: line})``. Errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeldbenchError(f"{path}: config file not found") from None
    except OSError as exc:
        raise SeldbenchError(f"{path}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SeldbenchError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise SeldbenchError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data, _lines(node)


def _known_paths(cfg: Mapping, prefix: str = "") -> list[str]:
    out = []
    for k, v in cfg.items():
        out.append(prefix + str(k))
        if isinstance(v, Mapping):
            out += _known_paths(v, f"{prefix}{k}.")
    return out


def _unknown(where: str, path: str, base: Mapping) -> SeldbenchError:
    close = difflib.get_close_matches(path, _known_paths(base), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return SeldbenchError(f"{where}: unknown key '{path}'{hint}")


def merge(base: dict, layer: Mapping, source: str, lines: Mapping[str, int] | None = None,
          open_sections: Iterable[str] = ()) -> dict:
    """Return ``base`` updated by ``layer``; keys absent from ``base`` are errors unless they lie
    under one of ``open_sections`` (top-level names this layer declares) or under a section that
    is empty in ``base``."""
    lines = lines or {}
    out = copy.deepcopy(base)
    open_sections = set(open_sections)

    def walk(dst: dict, src: Mapping, prefix: str, free: bool) -> None:
        for key, value in src.items():
            path = f"{prefix}{key}"
            where = f"{source}:{lines[path]}" if path in lines else source
            if not isinstance(key, str):
                raise SeldbenchError(f"{where}: key {key!r} is not a string")
            is_free = free or (prefix == "" and key in open_sections)
            if key not in dst and not is_free:
                raise _unknown(where, path, out)
            if isinstance(value, Mapping):
                if key in dst and dst[key] is not None and not isinstance(dst[key], dict):
                    raise SeldbenchError(f"{where}: '{path}' is a value, not a section")
                # an empty section of the base is open (e.g. CRATI's model.trunk: {}): the
                # keys it takes belong to another builder, which checks them
                opened = is_free or dst.get(key) == {}
                if not isinstance(dst.get(key), dict):
                    dst[key] = {}
                walk(dst[key], value, path + ".", opened)
            else:
                if isinstance(dst.get(key), dict) and dst[key] and not is_free:
                    raise SeldbenchError(f"{where}: '{path}' is a section; set one of its keys")
                dst[key] = value

    walk(out, layer, "", False)
    return out


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(raw: str, current: Any, path: str) -> Any:
    """Parse an override value to the type of the value it replaces."""
    where = f"--set {path}={raw}"
    if isinstance(current, bool):
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SeldbenchError(f"{where}: expected true or false")
    if isinstance(current, int):
        try:
            return int(raw)
        except ValueError:
            raise SeldbenchError(f"{where}: expected an integer") from None
    if isinstance(current, float):
        try:
            return float(raw)
        except ValueError:
            raise SeldbenchError(f"{where}: expected a number") from None
    if isinstance(current, str):
        return raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise SeldbenchError(f"{where}: not a valid YAML value") from None
    if isinstance(current, list) and not isinstance(value, list):
        raise SeldbenchError(f"{where}: expected a list, e.g. [a, b]")
    return value


def apply_overrides(cfg: dict, overrides: Iterable[str]) -> dict:
    """Apply ``key.path=value`` strings; the key must exist; values take its type. An empty
    section (e.g. CRATI's ``model.trunk``) takes a whole YAML mapping: ``model.trunk={a: 1}``."""
    out = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise SeldbenchError(f"--set {item}: expected key.path=value")
        path, raw = item.split("=", 1)
        path = path.strip()
        node = out
        parts = path.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                raise _unknown(f"--set {item}", path, out)
            if i == len(parts) - 1:
                section = isinstance(node[part], dict)
                if section and node[part]:
                    raise SeldbenchError(f"--set {item}: '{path}' is a section; set one of its keys")
                value = coerce(raw, None if section else node[part], path)
                if section and not isinstance(value, dict):  # an empty, open section: a mapping
                    raise SeldbenchError(f"--set {item}: '{path}' is a section; give a mapping, "
                                         f"e.g. {{key: value}}")
                node[part] = value
            else:
                node = node[part]
    return out


def resolve(*, dataset_yaml: str | Path | None = None, model_yaml: str | Path | None = None,
            experiment: str | Path | None = None, overrides: Iterable[str] = (),
            defaults: str | Path | None = None,
            layers: Iterable[tuple[str, Mapping]] = ()) -> dict:
    """The resolved configuration of a run, merged in the documented order; ``layers``
    (``(source name, mapping)``, e.g. a run record's config) go after the experiment file."""
    cfg, _ = load_yaml(defaults or DEFAULTS_YAML)
    for path, open_sections in ((dataset_yaml, ("dataset",)), (model_yaml, ("model",))):
        if path is not None:
            data, lines = load_yaml(path)
            cfg = merge(cfg, data, str(path), lines, open_sections)
    if experiment is not None:
        for path, data, lines in experiment_layers(experiment):
            cfg = merge(cfg, data, str(path), lines)
    for source, data in layers:
        cfg = merge(cfg, data, source)
    return apply_overrides(cfg, overrides)


def experiment_layers(path: str | Path, _chain: tuple[Path, ...] = ()
                      ) -> list[tuple[Path, dict, dict[str, int]]]:
    """An experiment file and the files it builds on, outermost first: ``base: other.yaml``
    (or a list of files; paths relative to this file) is merged before this file's keys, so an
    ablation states only what it changes from the model it ablates."""
    path = Path(path)
    if path.resolve() in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path.resolve()))
        raise SeldbenchError(f"{path}: 'base' files form a cycle ({cycle})")
    data, lines = load_yaml(path)
    bases = data.pop("base", None)
    if bases is None:
        return [(path, data, lines)]
    where = f"{path}:{lines.get('base', '?')}"
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise SeldbenchError(f"{where}: 'base' must be a file name or a list of file names")
    out = []
    for b in bases:
        target = path.parent / b
        if not target.is_file():
            raise SeldbenchError(f"{where}: base file {b!r} not found (looked at {target})")
        out += experiment_layers(target, (*_chain, path.resolve()))
    return [*out, (path, data, lines)]


def cache_dir_of(cfg: dict) -> Path:
    """The feature cache folder of a resolved config (``features.cache_dir``; the model's
    cached side inputs live under it too)."""
    return Path(cfg["features"]["cache_dir"] or "~/.cache/seldbench/features").expanduser()


def config_hash(cfg: dict, neutral_keys: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of what defines an experiment: the resolved config without the seed (runs that
    differ only by seed are one configuration), where files go (``output``, ``dataset.root``,
    ``features.cache_dir``), how work is spread (``train.num_workers``, ``train.threads``) and
    the model keys that hold their neutral value (``neutral_keys``, the model spec's: keys added
    later, whose value there keeps the model as it was before them)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(hashed_config(cfg, neutral_keys),
                                     sort_keys=True).encode()).hexdigest()


def hashed_config(cfg: dict, neutral_keys: Mapping[str, Any] | None = None) -> dict:
    """The part of a resolved config that :func:`config_hash` covers."""
    keep = {k: v for k, v in cfg.items() if k not in ("output", "seed")}
    keep["train"] = {k: v for k, v in cfg.get("train", {}).items()
                     if k not in ("num_workers", "threads")}
    keep["dataset"] = {k: v for k, v in cfg.get("dataset", {}).items() if k != "root"}
    keep["features"] = {k: v for k, v in cfg.get("features", {}).items() if k != "cache_dir"}
    if neutral_keys and isinstance(cfg.get("model"), dict):
        keep["model"] = _without_neutral(cfg["model"], neutral_keys)
    return keep


def _without_neutral(section: dict, neutral_keys: Mapping[str, Any]) -> dict:
    """``section`` without each dotted key that holds its neutral value (a mapping left empty
    by that goes too: it did not exist before the key)."""
    out = copy.deepcopy(section)
    for path, value in neutral_keys.items():
        *parents, leaf = path.split(".")
        chain = [out]
        for p in parents:
            nxt = chain[-1].get(p)
            if not isinstance(nxt, dict):
                break
            chain.append(nxt)
        else:
            if leaf in chain[-1] and chain[-1][leaf] == value \
                    and type(chain[-1][leaf]) is type(value):
                del chain[-1][leaf]
                for d, p in zip(reversed(chain[:-1]), reversed(parents)):
                    if d[p]:
                        break
                    del d[p]
    return out
