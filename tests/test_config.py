"""Config layers, overrides with type coercion, unknown keys with their location."""
import pytest

from seldbench.config import DEFAULTS_YAML, apply_overrides, load_yaml, merge, resolve
from seldbench.errors import SeldbenchError


def test_defaults_load_and_overrides_take_the_type_of_the_key():
    cfg = resolve(overrides=["train.lr=3e-4", "train.epochs=7", "train.amp=no",
                             "eval.suites=[dcase2023, dcase2024]", "dataset.name=synth"])
    assert cfg["train"]["lr"] == pytest.approx(3e-4) and isinstance(cfg["train"]["lr"], float)
    assert cfg["train"]["epochs"] == 7 and cfg["train"]["amp"] is False
    assert cfg["eval"]["suites"] == ["dcase2023", "dcase2024"]
    assert cfg["dataset"]["name"] == "synth"


def test_layer_order_and_open_sections(tmp_path):
    ds = tmp_path / "ds.yaml"
    ds.write_text("dataset:\n  name: toy\n  val_rooms: [4, 6]\ntrain:\n  epochs: 5\n")
    model = tmp_path / "m.yaml"
    model.write_text("model:\n  hidden: 128\ntrain:\n  epochs: 9\n  lr: 0.01\n")
    exp = tmp_path / "exp.yaml"
    exp.write_text("model:\n  hidden: 64\n")
    cfg = resolve(dataset_yaml=ds, model_yaml=model, experiment=exp, overrides=["train.lr=0.5"])
    assert cfg["dataset"]["val_rooms"] == [4, 6]  # declared by the dataset layer
    assert cfg["train"]["epochs"] == 9  # model after dataset
    assert cfg["model"]["hidden"] == 64  # experiment after model
    assert cfg["train"]["lr"] == 0.5  # --set last


def test_unknown_key_in_file_names_file_line_and_suggestion(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("train:\n  epochs: 3\n  batch_sise: 8\n")
    with pytest.raises(SeldbenchError) as err:
        resolve(experiment=exp)
    assert str(err.value) == f"{exp}:3: unknown key 'train.batch_sise'; did you mean 'train.batch_size'?"


def test_experiment_cannot_invent_model_keys(tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text("model:\n  hidden: 128\n")
    exp = tmp_path / "exp.yaml"
    exp.write_text("model:\n  hiden: 64\n")
    with pytest.raises(SeldbenchError, match="unknown key 'model.hiden'; did you mean 'model.hidden'"):
        resolve(model_yaml=model, experiment=exp)


def test_experiment_builds_on_base_files_in_order(tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text("model:\n  hidden: 128\n  depth: 2\n  drop: 0.0\n")
    (tmp_path / "full.yaml").write_text("model:\n  hidden: 64\n  depth: 4\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "drop.yaml").write_text("model:\n  drop: 0.5\n  depth: 3\n")
    ab = tmp_path / "ab.yaml"
    ab.write_text("base: [full.yaml, sub/drop.yaml]\nmodel:\n  hidden: 32\n")
    cfg = resolve(model_yaml=model, experiment=ab)
    # bases in the order listed, then the file itself; paths relative to the file
    assert cfg["model"] == {"hidden": 32, "depth": 3, "drop": 0.5}
    # a typo in a base names the base file and line
    (tmp_path / "sub" / "drop.yaml").write_text("model:\n  dorp: 0.5\n")
    with pytest.raises(SeldbenchError, match=r"drop.yaml:2: unknown key 'model.dorp'"):
        resolve(model_yaml=model, experiment=ab)
    (tmp_path / "full.yaml").write_text("base: ab.yaml\n")
    with pytest.raises(SeldbenchError, match=r"cycle \(ab.yaml -> full.yaml -> ab.yaml\)"):
        resolve(model_yaml=model, experiment=ab)
    ab.write_text("base: nope.yaml\n")
    with pytest.raises(SeldbenchError, match=r"ab.yaml:1: base file 'nope.yaml' not found"):
        resolve(model_yaml=model, experiment=ab)
    ab.write_text("base: {a: 1}\n")
    with pytest.raises(SeldbenchError, match="'base' must be a file name or a list"):
        resolve(model_yaml=model, experiment=ab)


@pytest.mark.parametrize("override,message", [
    ("train.epochs=ten", "--set train.epochs=ten: expected an integer"),
    ("train.amp=maybe", "expected true or false"),
    ("train.nope=1", "unknown key 'train.nope'"),
    ("train=1", "'train' is a section"),
    ("trainepochs", "expected key.path=value"),
])
def test_bad_overrides(override, message):
    with pytest.raises(SeldbenchError, match=message.replace("[", r"\[")):
        apply_overrides(load_yaml(DEFAULTS_YAML)[0], [override])


def test_an_empty_open_section_takes_a_whole_mapping():
    cfg = {"model": {"trunk": {}, "width": 4}}
    out = apply_overrides(cfg, ["model.trunk={channels: [8, 16], d_model: 32}"])
    assert out["model"]["trunk"] == {"channels": [8, 16], "d_model": 32} and cfg["model"]["trunk"] == {}
    with pytest.raises(SeldbenchError, match="'model.trunk' is a section; give a mapping"):
        apply_overrides(cfg, ["model.trunk=3"])
    with pytest.raises(SeldbenchError, match="'model' is a section; set one of its keys"):
        apply_overrides(cfg, ["model={width: 2}"])  # a section with keys: one key at a time
    # and in a config file
    merged = merge(cfg, {"model": {"trunk": {"channels": [8]}}}, "exp.yaml")
    assert merged["model"]["trunk"] == {"channels": [8]}
    with pytest.raises(SeldbenchError, match="unknown key 'model.widht'"):
        merge(cfg, {"model": {"widht": 2}}, "exp.yaml")


def test_yaml_is_loaded_safely_and_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(SeldbenchError, match=r"bad.yaml:2: invalid YAML"):
        load_yaml(bad)
    with pytest.raises(SeldbenchError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")


def test_config_hash_ignores_seed_and_output_locations():
    from seldbench.config import config_hash

    a = resolve(overrides=["seed=0", "output.runs_dir=x", "features.cache_dir=/tmp/a"])
    b = resolve(overrides=["seed=7", "output.runs_dir=y", "features.cache_dir=/tmp/b",
                           "train.threads=1"])
    assert config_hash(a) == config_hash(b)  # seeds of one configuration group together
    assert config_hash(a) != config_hash(resolve(overrides=["train.lr=0.01"]))


def test_a_key_at_its_neutral_value_hashes_as_if_it_were_absent():
    """A model key added later (listed in the spec's neutral_keys) must not orphan the runs
    recorded before it: at its neutral value it leaves the hash alone; at any other value, or
    with another type that compares equal (False == 0), it counts."""
    from seldbench.config import config_hash, hashed_config

    def with_model(**model):
        cfg = resolve()
        cfg["model"] = model
        return cfg

    neutral = {"image.finetune_blocks": 0, "fuse_into": "all"}
    before = with_model(width=8)
    after = with_model(width=8, fuse_into="all", image={"finetune_blocks": 0})
    assert "image" not in hashed_config(after, neutral)["model"]  # emptied parent goes too
    assert config_hash(after, neutral) == config_hash(before, neutral) == config_hash(before)
    assert config_hash(after) != config_hash(before)  # without the spec's list: a new config
    for changed in ({"fuse_into": "sed"}, {"image": {"finetune_blocks": 3}},
                    {"image": {"finetune_blocks": False}}):
        other = with_model(**{"width": 8, "fuse_into": "all", "image": {"finetune_blocks": 0},
                              **changed})
        assert config_hash(other, neutral) != config_hash(before), changed
    kept = with_model(width=8, image={"finetune_blocks": 0, "stage": 3})
    assert hashed_config(kept, neutral)["model"]["image"] == {"stage": 3}
    assert kept["model"]["image"]["finetune_blocks"] == 0  # the config itself is left alone


# ---------------------------------------------------------------- hostile and binary files

def test_anchors_and_aliases_are_refused_so_an_alias_bomb_cannot_expand(tmp_path):
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    bomb = tmp_path / "bomb.yaml"  # 10**12 list items once expanded
    bomb.write_text("train:\n  lr_milestones:\n    " + "\n    ".join(levels) + "\n")
    with pytest.raises(SeldbenchError) as err:
        resolve(experiment=bomb)
    assert str(err.value) == (f"{bomb}:3: invalid YAML: anchor '&a0': anchors and aliases are not "
                              "allowed in config files; write the values out")
    alias = tmp_path / "alias.yaml"
    alias.write_text("train:\n  lr_milestones: [1]\neval:\n  unify_deg: *x\n")
    with pytest.raises(SeldbenchError, match=rf"alias.yaml:4: invalid YAML: alias '\*x'"):
        load_yaml(alias)
    with pytest.raises(SeldbenchError, match=r"--set train.lr_milestones=.*: not a valid YAML value "
                                             r"\(anchor '&a'"):
        resolve(overrides=["train.lr_milestones=[&a [1, 2], *a]"])


def test_a_binary_or_non_utf8_config_is_one_error_naming_the_file(tmp_path):
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("train:\n  epochs: 3 # é\n".encode("latin-1"))
    with pytest.raises(SeldbenchError, match=rf"^{latin}:2: not UTF-8 text \(byte 0xe9 at offset 21\); "
                                              "a config file is YAML text$"):
        resolve(experiment=latin)
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"train:\n  epochs: 3\n\x00\x01\x02")
    with pytest.raises(SeldbenchError, match=rf"^{binary}:3: invalid YAML: unacceptable character"):
        resolve(experiment=binary)


# ---------------------------------------------------------------- values checked at the door

@pytest.mark.parametrize("override,problem", [
    ("train.epochs=0", "train.epochs must be an integer >= 1"),
    ("train.epochs=-3", "train.epochs must be an integer >= 1"),
    ("train.batch_size=0", "train.batch_size must be an integer >= 1"),
    ("eval.threshold=-1", "eval.threshold must be a finite number, > 0, <= 1"),
    ("eval.threshold=0", "eval.threshold must be a finite number, > 0, <= 1"),
    ("eval.unify_deg=181", "eval.unify_deg must be a finite number, >= 0, <= 180"),
    ("train.lr=nan", "train.lr must be a finite number, > 0"),
    ("train.lr=inf", "train.lr must be a finite number, > 0"),
    ("train.chunk_s=0", "train.chunk_s must be a finite number, > 0, a multiple of 0.1"),
    ("train.chunk_s=2.55", "train.chunk_s must be a finite number, > 0, a multiple of 0.1"),
    ("train.device=tpu", "train.device must be auto, cpu, mps, cuda or cuda:N"),
    ("train.device=cuda:x", "train.device must be auto, cpu, mps, cuda or cuda:N"),
    ("train.optimizer=sgd", "train.optimizer must be one of adam, adamw"),
    ("train.lr_milestones=[0, 5]", "train.lr_milestones must be a list of epochs (integers >= 1)"),
    ("train.lr_milestones=[2.5]", "train.lr_milestones must be a list of epochs"),
    ("train.grad_clip=-1", "train.grad_clip must be a finite number, >= 0"),
    ("train.lr_gamma=0", "train.lr_gamma must be a finite number, > 0"),
    ("train.num_workers=-1", "train.num_workers must be an integer >= 0"),
    ("seed=100000000000000000000000", "seed must be an integer in [0, 4294967295]"),
    ("seed=-1", "seed must be an integer in [0, 4294967295]"),
    ("eval.suites=dcase2023", "eval.suites must be null or a list of metric suite names"),
    ("output.runs_dir=", "output.runs_dir must be a non-empty string"),
])
def test_nonsense_values_are_refused_naming_the_override_and_key(override, problem):
    with pytest.raises(SeldbenchError) as err:
        resolve(overrides=[override])
    assert str(err.value).startswith(f"--set {override}: {problem}"), str(err.value)


@pytest.mark.parametrize("override", [
    "train.chunk_s=2.5", "train.chunk_s=0.1", "eval.threshold=1", "eval.unify_deg=0",
    "train.device=cuda:1", "train.device=cpu", "train.optimizer=AdamW", "seed=4294967295",
    "train.lr_milestones=[]", "eval.suites=[dcase2023]", "train.grad_clip=0"])
def test_sensible_edge_values_pass(override):
    resolve(overrides=[override])


def test_a_bad_value_in_a_file_names_file_line_key_and_value(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("train:\n  epochs: 3\n  lr: 1e-3\n")  # YAML 1.1 reads 1e-3 as a string
    with pytest.raises(SeldbenchError) as err:
        resolve(experiment=exp)
    assert str(err.value) == (f"{exp}:3: train.lr must be a finite number, > 0 (YAML reads 1e-3 "
                              "as text: write it with a dot, e.g. 1.0e-3), got '1e-3'")
    exp.write_text("train:\n  epochs: 2.0\n")
    with pytest.raises(SeldbenchError, match=rf"^{exp}:2: train.epochs must be an integer >= 1, "
                                             "got 2.0$"):
        resolve(experiment=exp)
    exp.write_text("train:\n  amp: 1\n")
    with pytest.raises(SeldbenchError, match=rf"^{exp}:2: train.amp must be true or false, got 1$"):
        resolve(experiment=exp)


def test_every_default_key_has_a_rule_and_every_committed_config_passes():
    from seldbench.config import VALUE_RULES, _known_paths, check_values

    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    defaults = load_yaml(DEFAULTS_YAML)[0]
    leaves = {p for p in _known_paths(defaults)
              if not isinstance(eval_path(defaults, p), dict)}
    assert leaves == set(VALUE_RULES)
    check_values(defaults)
    models = {p.stem: p for p in (root / "plugins").glob("*/*.yaml")}
    assert {"crnn", "einv2", "crati"} <= set(models)
    for model in models.values():
        resolve(model_yaml=model)
    for exp in sorted((root / "configs" / "experiments").glob("*.yaml")):
        resolve(model_yaml=models[exp.stem.split("-")[0]], experiment=exp)


def eval_path(cfg, path):
    for part in path.split("."):
        cfg = cfg[part]
    return cfg
