"""Configuration: YAML layers merged in a fixed order, ``--set a.b=c`` overrides, validation.

Order (later wins): ``defaults.yaml`` (beside this module) <- dataset YAML <- model YAML <-
experiment file (after the files it names under ``base:``) <- ``--set`` overrides. A layer may
only change keys that already exist, except that the dataset YAML declares the keys of the
``dataset`` section and the model YAML those of ``model``. An unknown key is an error naming
the file, line and key path, with the closest known key. Every file is read with
``yaml.safe_load`` rules, anchors and
aliases refused; the merged values are checked against :data:`VALUE_RULES`.
"""
from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from seldbench.errors import SeldbenchError

#: Every key a run understands, with its default: package data, found beside this module.
DEFAULTS_YAML = Path(__file__).with_name("defaults.yaml")


def _lines(node: yaml.Node, prefix: str = "", out: dict | None = None) -> dict[str, int]:
    """Key path -> 1-based line number of every mapping key in a composed YAML node; the
    mappings of a list are numbered from 0 (``entries.1.model``)."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}{key_node.value}"
            out[path] = key_node.start_mark.line + 1
            _lines(value_node, path + ".", out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, f"{prefix}{i}.", out)
    return out


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases: a config never needs them, and
    nested aliases (a "billion laughs" file) expand into more data than memory holds."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            kind = "alias '*" if isinstance(event, yaml.AliasEvent) else "anchor '&"
            raise yaml.composer.ComposerError(
                None, None, f"{kind}{anchor}': anchors and aliases are not allowed in config "
                "files; write the values out", event.start_mark)
        return super().compose_node(parent, index)


def parse_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """``(data, node)`` of one YAML document by ``yaml.safe_load`` rules, anchors and aliases
    refused; raises ``yaml.YAMLError``."""
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    return getattr(exc, "problem", None) or str(exc).splitlines()[0]


def load_yaml(path: str | Path) -> tuple[dict, dict[str, int]]:
    """Read a YAML mapping; returns ``(data, {key path: line})``. Errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeldbenchError(f"{path}: config file not found") from None
    except OSError as exc:
        raise SeldbenchError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise SeldbenchError(f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                             f"at offset {exc.start}); a config file is YAML text") from None
    try:
        data, node = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        if isinstance(exc, yaml.reader.ReaderError):  # e.g. a control byte in a binary file
            line = text.count("\n", 0, exc.position) + 1
        where = f"{path}:{line}" if line else str(path)
        raise SeldbenchError(f"{where}: invalid YAML: {_yaml_problem(exc)}") from None
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
          open_sections: Iterable[str] = (), origins: dict[str, str] | None = None) -> dict:
    """Return ``base`` updated by ``layer``; keys absent from ``base`` are errors unless they lie
    under one of ``open_sections`` (top-level names this layer declares) or under a section that
    is empty in ``base``. ``origins`` (optional) records ``key path -> "file:line"`` of each
    value set, for :func:`check_values`."""
    origins = {} if origins is None else origins
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
                origins[path] = where

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
        value, _ = parse_yaml(raw)
    except yaml.YAMLError as exc:
        raise SeldbenchError(f"{where}: not a valid YAML value ({_yaml_problem(exc)})") from None
    if isinstance(current, list) and not isinstance(value, list):
        raise SeldbenchError(f"{where}: expected a list, e.g. [a, b]")
    return value


def apply_overrides(cfg: dict, overrides: Iterable[str],
                    origins: dict[str, str] | None = None) -> dict:
    """Apply ``key.path=value`` strings; the key must exist; values take its type. An empty
    section (e.g. CRATI's ``model.trunk``) takes a whole YAML mapping: ``model.trunk={a: 1}``.
    ``origins`` (optional) records ``key path -> "--set key=value"``."""
    origins = {} if origins is None else origins
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
                origins[path] = f"--set {item}"
            else:
                node = node[part]
    return out


# ----------------------------------------------------------------------------- values

#: ``train.optimizer`` names (lower case) -> ``torch.optim`` class names.
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW"}

#: A rule takes a value and returns what is wrong with it ("must be ...") or None. The
#: ``rule_*`` constructors build them for VALUE_RULES and for other checked YAML (grid files).
Rule = Callable[[Any], "str | None"]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def rule_integer(lo: int, hi: int | None = None) -> Rule:
    want = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
    return lambda v: None if _is_int(v) and lo <= v and (hi is None or v <= hi) \
        else f"must be {want}"


def rule_number(gt: float | None = None, ge: float | None = None, le: float | None = None,
            step: float | None = None) -> Rule:
    """A finite int or float within the bounds given (``gt`` >, ``ge`` >=, ``le`` <=), a
    multiple of ``step`` when given."""
    bounds = [f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
              f"<= {le}" if le is not None else "",
              f"a multiple of {step}" if step is not None else ""]
    want = "must be a finite number" + "".join(f", {b}" for b in bounds if b)

    def rule(v: Any) -> str | None:
        if isinstance(v, str):
            try:
                float(v)
            except ValueError:
                return want
            return f"{want} (YAML reads {v} as text: write it with a dot, e.g. 1.0e-3)"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return want
        if (gt is not None and not v > gt) or (ge is not None and not v >= ge) \
                or (le is not None and not v <= le):
            return want
        if step is not None and abs(v / step - round(v / step)) > 1e-6:
            return want
        return None

    return rule


def rule_flag(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def rule_text(optional: bool = False) -> Rule:
    want = "must be a non-empty string" + (" or null" if optional else "")
    return lambda v: None if (optional and v is None) or (isinstance(v, str) and v.strip()) \
        else want


def rule_choice(*names: str) -> Rule:
    return lambda v: None if isinstance(v, str) and v.lower() in names \
        else f"must be one of {', '.join(names)}"


def rule_matches(pattern: str, want: str) -> Rule:
    regex = re.compile(pattern)
    return lambda v: None if isinstance(v, str) and regex.fullmatch(v) else f"must be {want}"


def rule_list_of(item: Rule, want: str, optional: bool = False) -> Rule:
    return lambda v: None if (optional and v is None) or \
        (isinstance(v, list) and all(item(x) is None for x in v)) else f"must be {want}"


#: ``train.augment`` entries: name -> {parameter: (rule, default)}. Counts and widths of
#: ``spec_mask`` are in feature frames and feature bins (README: Training recipes).
AUGMENTATIONS: dict[str, dict[str, tuple[Rule, Any]]] = {
    "channel_swap": {"p": (rule_number(ge=0, le=1), 1.0)},
    "spec_mask": {"time_masks": (rule_integer(0), 2), "time_width": (rule_integer(1), 20),
                  "freq_masks": (rule_integer(0), 2), "freq_width": (rule_integer(1), 8)},
    "mixup": {"p": (rule_number(ge=0, le=1), 0.5), "lam_min": (rule_number(ge=0, le=0.5), 0.3)},
}


def _augment_list(v: Any) -> str | None:
    """``train.augment``: a list of ``{name: ..., parameter: value}`` mappings."""
    if not isinstance(v, list):
        return "must be a list of {name: ...} mappings, e.g. [{name: channel_swap}]"
    for i, item in enumerate(v, 1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return f"must be a list of {{name: ...}} mappings; entry {i} is {item!r}"
        params = AUGMENTATIONS.get(item["name"])
        if params is None:
            close = difflib.get_close_matches(item["name"], AUGMENTATIONS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return (f"entry {i}: unknown augmentation '{item['name']}'{hint}; known: "
                    f"{', '.join(AUGMENTATIONS)}")
        for key, value in item.items():
            if key == "name":
                continue
            if key not in params:
                return (f"entry {i} ({item['name']}): unknown parameter '{key}'; known: "
                        f"{', '.join(params)}")
            problem = params[key][0](value)
            if problem is not None:
                return f"entry {i} ({item['name']}): {key} {problem}"
    return None


def _sha256_hex(v: Any) -> str | None:
    return None if v is None or (isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)) \
        else "must be null or a SHA-256 in hex (64 characters 0-9a-f)"


#: Every key of ``configs/defaults.yaml`` outside the plugins' ``model`` section, with what
#: its value must be. The ``dataset`` and ``model`` sections' other keys are the plugins' to
#: check (their builders do).
VALUE_RULES: dict[str, Rule] = {
    "seed": rule_integer(0, 2**32 - 1),  # numpy seeds take 32 bits
    "dataset.name": rule_text(),
    "dataset.root": rule_text(optional=True),
    "features.name": rule_text(optional=True),
    "features.cache_dir": rule_text(optional=True),
    "train.epochs": rule_integer(1),
    "train.batch_size": rule_integer(1),
    "train.chunk_s": rule_number(gt=0, step=0.1),  # whole 100-ms label frames
    "train.lr": rule_number(gt=0),
    "train.optimizer": rule_choice(*OPTIMIZERS),
    "train.weight_decay": rule_number(ge=0),
    "train.lr_milestones": rule_list_of(rule_integer(1),
                                        "a list of epochs (integers >= 1), e.g. [60, 75]"),
    "train.lr_gamma": rule_number(gt=0),
    "train.grad_clip": rule_number(ge=0),
    "train.early_stop_patience": rule_integer(0),
    "train.num_workers": rule_integer(0),
    "train.threads": rule_integer(0),
    "train.device": rule_matches(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, mps, cuda or cuda:N"),
    "train.amp": rule_flag,
    "train.deterministic": rule_flag,
    "train.max_clips": lambda v: None if v is None else rule_integer(1)(v),
    "train.augment": _augment_list,
    "train.init_from": rule_text(optional=True),
    "train.init_sha256": _sha256_hex,
    "train.freeze": rule_list_of(rule_text(), "a list of parameter name prefixes, e.g. [encoder.]"),
    "train.tensorboard": rule_flag,
    "eval.suites": rule_list_of(rule_text(),
                                "null or a list of metric suite names, e.g. [dcase2023]",
                                optional=True),
    "eval.jackknife": rule_flag,
    "eval.threshold": rule_number(gt=0, le=1),
    "eval.unify_deg": rule_number(ge=0, le=180),
    "output.runs_dir": rule_text(),
    "output.recipe": rule_text(),
}


def check_values(cfg: Mapping, origins: Mapping[str, str] | None = None,
                 rules: Mapping[str, Rule] | None = None) -> None:
    """Check every value ``rules`` (default :data:`VALUE_RULES`) covers (keys absent from
    ``cfg`` are skipped);
    the first bad one is a :class:`SeldbenchError` naming where it was set (``origins``:
    ``key path -> "file:line"`` or ``"--set key=value"``) and the key."""
    origins = origins or {}
    for path, rule in (VALUE_RULES if rules is None else rules).items():
        node: Any = cfg
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            problem = rule(node)
            if problem is None:
                continue
            origin = origins.get(path)
            if origin is not None and origin.startswith("--set "):
                raise SeldbenchError(f"{origin}: {path} {problem}")
            shown = repr(node) if len(repr(node)) <= 60 else repr(node)[:57] + "..."
            where = f"{origin}: " if origin else ""
            raise SeldbenchError(f"{where}{path} {problem}, got {shown}")


def resolve(*, dataset_yaml: str | Path | None = None, model_yaml: str | Path | None = None,
            experiment: str | Path | None = None, overrides: Iterable[str] = (),
            defaults: str | Path | None = None,
            layers: Iterable[tuple[str, Mapping]] = ()) -> dict:
    """The resolved configuration of a run, merged in the documented order; ``layers``
    (``(source name, mapping)``, e.g. a run record's config) go after the experiment file."""
    cfg, _ = load_yaml(defaults or DEFAULTS_YAML)
    origins: dict[str, str] = {}  # where each value was last set, for the error messages
    for path, open_sections in ((dataset_yaml, ("dataset",)), (model_yaml, ("model",))):
        if path is not None:
            data, lines = load_yaml(path)
            cfg = merge(cfg, data, str(path), lines, open_sections, origins)
    if experiment is not None:
        for path, data, lines in experiment_layers(experiment):
            cfg = merge(cfg, data, str(path), lines, origins=origins)
    for source, data in layers:
        cfg = merge(cfg, data, source, origins=origins)
    cfg = apply_overrides(cfg, overrides, origins)
    check_values(cfg, origins)
    return cfg


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


#: Core keys added after runs were recorded, with the value that keeps a run as it was before
#: them: at that value they are left out of the config hash (as a model's ``neutral_keys``).
CORE_NEUTRAL_KEYS: dict[str, Any] = {"train.augment": [], "train.freeze": [],
                                     "train.init_sha256": None, "train.max_clips": None}
#: ``train`` keys never hashed: how work is spread, where a file is, what is logged.
_UNHASHED_TRAIN = ("num_workers", "threads", "init_from", "tensorboard")


def config_hash(cfg: dict, neutral_keys: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of what defines an experiment: the resolved config without the seed (runs that
    differ only by seed are one configuration), where files go (``output``, ``dataset.root``,
    ``features.cache_dir``, ``train.init_from``: the source checkpoint counts by its
    ``train.init_sha256``), how work is spread (``train.num_workers``, ``train.threads``),
    logging (``train.tensorboard``), the core keys at their neutral value
    (:data:`CORE_NEUTRAL_KEYS`) and the model keys that hold their neutral value
    (``neutral_keys``, the model spec's: keys added later, whose value there keeps the model as
    it was before them)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(hashed_config(cfg, neutral_keys),
                                     sort_keys=True).encode()).hexdigest()


def hashed_config(cfg: dict, neutral_keys: Mapping[str, Any] | None = None) -> dict:
    """The part of a resolved config that :func:`config_hash` covers."""
    keep = {k: v for k, v in cfg.items() if k not in ("output", "seed")}
    keep["train"] = {k: v for k, v in cfg.get("train", {}).items()
                     if k not in _UNHASHED_TRAIN}
    keep = _without_neutral(keep, CORE_NEUTRAL_KEYS)
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
