"""Plugin contract: loading, validation, one-line errors, third-party discovery."""
import json
import os
import subprocess
import sys
import textwrap
import types

import pytest
from click.testing import CliRunner

from seldbench.cli import main
from seldbench.errors import SeldbenchError
from seldbench.hookspecs import hookimpl
from seldbench.registry import Registry, builtin_plugin_modules
from seldbench.specs import MetricSuiteSpec, ModelSpec


def _plugin(name, **hooks):
    mod = types.ModuleType(name)
    for hook, value in hooks.items():
        setattr(mod, hook, hookimpl(lambda value=value: value))
    return mod


def _model(name="toy", **kw):
    return ModelSpec(name=name, version="1.0", build=lambda cfg, ds: None, **kw)


def test_builtins_register_the_dcase_suites():
    reg = Registry(entry_points=False)
    assert {"dcase2021", "dcase2022", "dcase2023", "dcase2024"} <= set(reg.list("metric suite"))
    assert reg.get_metric_suite("dcase2024").rank_by == "F"
    assert reg.plugin_of("metric suite", "dcase2023") == "dcase_metrics"
    assert "seldbench_plugins.dcase_metrics" in builtin_plugin_modules()


def test_plugin_model_is_listed_and_buildable():
    reg = Registry([_plugin("toyplug", seldbench_register_models=[_model()])], entry_points=False)
    assert reg.list("model", "to*") == ["toy"]
    assert reg.get_model("toy").build({}, None) is None


@pytest.mark.parametrize("spec,message", [
    (_model(name="Bad Name"), "invalid name"),
    (_model(output="heatmap"), "has output 'heatmap'"),
    (ModelSpec(name="x", version="", build=print), "has no version"),
    (ModelSpec(name="x", version="1", build=None), "has no builder"),
    (MetricSuiteSpec(name="m", version="1", build=print, figures=("F",), rank_by="ER",
                     higher_is_better=True, default_classes=3), "ranks by 'ER'"),
    ("not a spec", "expected ModelSpec, got str"),
])
def test_malformed_spec_names_the_plugin(spec, message):
    hook = "seldbench_register_metric_suites" if isinstance(spec, MetricSuiteSpec) \
        else "seldbench_register_models"
    with pytest.raises(SeldbenchError) as err:
        Registry([_plugin("brokenplug", **{hook: [spec]})], entry_points=False)
    assert "plugin 'brokenplug'" in str(err.value) and message in str(err.value)


def test_duplicate_name_is_an_error_naming_both_plugins():
    a = _plugin("plug_a", seldbench_register_models=[_model("same")])
    b = _plugin("plug_b", seldbench_register_models=[_model("same")])
    with pytest.raises(SeldbenchError, match="model 'same' is registered twice: by plugin 'plug_a' and by plugin 'plug_b'"):
        Registry([a, b], entry_points=False)


def test_unknown_hook_is_an_error():
    bad = _plugin("typo", seldbench_register_model=[_model()])  # missing 's'
    with pytest.raises(SeldbenchError, match="plugin 'typo': unknown hook 'seldbench_register_model'"):
        Registry([bad], entry_points=False)


def test_unknown_name_suggests_close_ones():
    reg = Registry(entry_points=False)
    with pytest.raises(SeldbenchError, match=r"unknown metric suite 'dcase223'; did you mean 'dcase2023'"):
        reg.get_metric_suite("dcase223")


def test_list_command_prints_versions_and_capabilities():
    r = CliRunner().invoke(main, ["list", "metrics", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)["metrics"]}
    assert rows["dcase2024"]["version"] and rows["dcase2024"]["unit"] == "frame"
    assert rows["dcase2023"]["figures"] == ["ER", "F", "LE", "LR", "SELD"]
    text = CliRunner().invoke(main, ["list", "metrics"]).output
    assert "dcase2021" in text and "rank_by=SELD" in text


def test_third_party_plugin_via_entry_point(tmp_path):
    """A package installed with an entry point in `seldbench.plugins` is listed and usable."""
    pkg = tmp_path / "toy_seld"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        import numpy as np
        from seldbench.hookspecs import hookimpl
        from seldbench.specs import MetricSuiteSpec, ModelSpec

        class Counter:
            """A throwaway suite: counts prediction rows."""
            def __init__(self, num_classes):
                self.c = num_classes
            def read_reference(self, path):
                return open(path).read().splitlines()
            read_prediction = read_reference
            def counts(self, pairs):
                return np.array([[[len(p)] * self.c] for _, p in pairs], float)
            def summarise(self, counts):
                return {"rows": float(counts[0, 0]), "classwise": []}

        @hookimpl
        def seldbench_register_models():
            return [ModelSpec(name="toy-net", version="0.3", build=lambda cfg, ds: None)]

        @hookimpl
        def seldbench_register_metric_suites():
            return [MetricSuiteSpec(name="rowcount", version="0.1", build=Counter,
                                    figures=("rows",), rank_by="rows", higher_is_better=True,
                                    default_classes=2)]
    '''))
    dist = tmp_path / "toy_seld-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-seld\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[seldbench.plugins]\ntoy_seld = toy_seld\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cli = [sys.executable, "-m", "seldbench.cli"]
    out = subprocess.run([*cli, "list", "models", "--json"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    models = json.loads(out.stdout)["models"]
    assert {"name": "toy-net", "plugin": "toy_seld", "version": "0.3"}.items() <= \
        next(m for m in models if m["name"] == "toy-net").items()
    # usable: its metric suite scores through the core CLI
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref" / "a.csv").write_text("x\n")
    (tmp_path / "pred" / "a.csv").write_text("1\n2\n3\n")
    out = subprocess.run([*cli, "score", "--suite", "rowcount", "--ref", str(tmp_path / "ref"),
                          "--pred", str(tmp_path / "pred"), "--json"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == 3.0


def test_a_dataset_spec_config_is_the_dataset_layer_of_a_run(tmp_path):
    """DatasetSpec.config (like ModelSpec.config) is merged after the defaults: it declares
    the dataset's own keys, which the model YAML and --set then see."""
    from seldbench.specs import DatasetSpec
    from seldbench.training.run import resolve_run_config

    yaml_file = tmp_path / "toyset.yaml"
    yaml_file.write_text("dataset:\n  min_overlap: 2\ntrain:\n  epochs: 7\n  grad_clip: 5.0\n")

    def toy(config):
        return DatasetSpec(name="toyset", version="1", classes=("a", "b"), splits=("train",),
                           list_clips=lambda root, split: [], metric_suites=("dcase2023",),
                           config=config)

    reg = Registry([_plugin("toyds", seldbench_register_datasets=[toy(yaml_file)])],
                   entry_points=False)
    cfg = resolve_run_config("crnn", "toyset", overrides=["dataset.min_overlap=3"], registry=reg)
    assert cfg["dataset"]["min_overlap"] == 3 and cfg["train"]["grad_clip"] == 5.0
    assert cfg["train"]["epochs"] == 100  # the model YAML (crnn.yaml) comes after it
    missing = Registry([_plugin("toyds", seldbench_register_datasets=[toy(tmp_path / "no.yaml")])],
                       entry_points=False)
    with pytest.raises(SeldbenchError, match=r"no\.yaml: config file not found"):
        resolve_run_config("crnn", "toyset", registry=missing)
