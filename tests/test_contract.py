"""Contract tests generated from the registry: every registered model (with each feature set it
accepts) and every metric suite gets them, so a new plugin is checked with no test of its own.

Models: build, forward shape against the declared output format, backward with the model's
loss (its spec's factory or the core loss) on targets the core builds, and decoding to CSV rows
that the selection suite reads back. Suites: per-file counters add up to the whole (the
jackknife subtracts them) and the result keys are the declared figures; a suite whose files are
not headerless DCASE CSVs (2025) writes the simulated tables itself through its scorer's
``write_reference``/``write_prediction`` hook.
"""
import numpy as np
import pytest
import torch

from seldbench.registry import get_registry

REG = get_registry()
#: small instances of the built-in architectures (a model not listed is built as configured)
SMALL = {
    "einv2": {"channels": [8, 16, 16, 32], "d_model": 32, "heads": 4, "conformer_blocks": 1},
    "crati": {"embed_dim": 32},
}
FRAMES = 20  # label frames per test chunk (2 s)


def _has_distance_option(spec) -> bool:
    """Whether the model's default YAML offers ``model.with_distance`` (the FOA/MIC formats'
    distance output; the stereo format always carries distance)."""
    from seldbench.config import load_yaml

    return spec.config is not None and \
        "with_distance" in (load_yaml(spec.config)[0].get("model") or {})


#: (model, feature set, with_distance): every model with every feature set it accepts, and again
#: with ``model.with_distance: true`` on the FOA/MIC sets where the model offers it
CASES = [(m, f, False) for m in REG.list("model") for f in REG.get_model(m).features] + \
    [(m, f, True) for m in REG.list("model") if _has_distance_option(REG.get_model(m))
     for f in REG.get_model(m).features if REG.get_feature(f).audio_format != "stereo"]


def _csv(path, rows):
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def dataset():
    return REG.get_dataset("synth-mini")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, dataset):
    """A metadata CSV (STARSS23 schema): two classes overlapping, one moving."""
    rows = [(f, 1, 0, 10 + 2 * f, 5, 150) for f in range(2, 15)] + \
        [(f, 4, 1, -90, -10, 300) for f in range(6, 18)]
    return _csv(tmp_path_factory.mktemp("ref") / "clip.csv", sorted(rows))


@pytest.fixture(scope="module")
def stereo_reference(tmp_path_factory):
    """A DCASE 2025 metadata CSV (header; azimuth, distance cm, onscreen)."""
    rows = [(f, 1, 0, 10 + 2 * f, 150, 1) for f in range(2, 15)] + \
        [(f, 4, 1, -90, 300, 0) for f in range(6, 18)]
    path = tmp_path_factory.mktemp("ref2025") / "clip.csv"
    path.write_text("frame,class,source,azimuth,distance,onscreen\n"
                    + "".join(",".join(str(v) for v in r) + "\n" for r in sorted(rows)))
    return path


def _declared_width(output, classes, with_distance):
    if output == "multi_accdoa_stereo":  # x, y, distance, onscreen logit
        return 3 * 4 * classes
    v = 4 if with_distance else 3
    return 3 * v * classes if output == "multi_accdoa" else 3 * (classes + 3 + with_distance)


@pytest.mark.parametrize("model_name,feature_name,distance", CASES,
                         ids=[f"{m}-{f}" + ("-distance" if d else "") for m, f, d in CASES])
def test_model_honours_the_contract(model_name, feature_name, distance, dataset, reference,
                                    stereo_reference, tmp_path, one_torch_thread):
    from seldbench.data.labels import read_metadata
    from seldbench.metrics.csvio import as_layout, write_dcase_csv
    from seldbench.training.data import make_targets
    from seldbench.training.plan import Assembled, make_loss
    from seldbench.training.predict import Predictor
    from seldbench.specs import model_output

    spec, feature = REG.get_model(model_name), REG.get_feature(feature_name)
    if feature.audio_format == "stereo":  # stereo features: the DCASE 2025 set and labels
        dataset, reference = REG.get_dataset("stereo-seld"), stereo_reference
    cfg = {**SMALL.get(model_name, {}), **({"with_distance": True} if distance else {})}
    torch.manual_seed(0)
    model = spec.build(cfg, dataset, feature)
    output, with_distance = model_output(model, spec)
    if distance:
        assert with_distance, f"model.with_distance: true, but {model_name} says no distance"
    C = len(dataset.classes)

    x = torch.randn(2, feature.channels, FRAMES * feature.frames_per_label, feature.bins)
    model.eval()
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, FRAMES, _declared_width(output, C, with_distance))
    if spec.side_inputs is not None:  # its streams of a clip without video feed the forward
        from seldbench.specs import ClipFiles

        clip = ClipFiles("fold1_room1_mix001", {}, None)
        side = spec.side_inputs(cfg, dataset, [clip], {clip.stem: FRAMES}, training=False,
                                cache_dir=tmp_path, device="cpu")[clip.stem]
        assert all(len(v) == FRAMES for v in side.values())
        with torch.no_grad():
            y_side = model(x, **{k: torch.from_numpy(np.stack([v] * 2)) for k, v in side.items()})
        assert y_side.shape == y.shape

    # backward with its loss, on targets the core builds from a metadata CSV
    table = read_metadata(reference, dataset.metadata_columns, C, dataset.metadata_format)
    target = torch.from_numpy(np.stack([make_targets(output, table, FRAMES, C, with_distance)] * 2))
    plan = type("Plan", (), {"model": spec, "cfg": {"model": cfg}, "dataset": dataset})
    loss_fn = make_loss(plan, Assembled(model, output, with_distance, None))
    model.train()
    out = model(x)
    if torch.is_tensor(out):
        out = out.float()
    loss = loss_fn(out, target)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)

    # decoding: rows the selection suite reads back
    predictor = Predictor(output, C, FRAMES, feature.frames_per_label, with_distance, "cpu",
                          {"threshold": 0.5, "unify_deg": 15.0})
    decoded = predictor.decode(y[0].numpy())
    scorer = REG.get_metric_suite(dataset.metric_suites[0]).build(C)
    path = tmp_path / "pred.csv"
    if hasattr(scorer, "write_prediction"):  # a suite with its own file format (2025)
        scorer.write_prediction(path, decoded)
    else:
        write_dcase_csv(path, as_layout(decoded, scorer.prediction_layout))
    back = scorer.read_prediction(path)
    assert len(back.frame) == len(decoded.frame)
    if len(back.frame):
        assert back.frame.max() < FRAMES and back.cls.max() < C
    if distance:
        _distance_rows_are_scored(y[0].numpy(), output, feature, dataset, reference, tmp_path)


def _distance_rows_are_scored(raw, output, feature, dataset, reference, tmp_path):
    """A distance output's decoded rows carry non-negative metres, and a run scores them with
    every suite of the dataset, the distance suites (dcase2024) included."""
    from seldbench.specs import ClipFiles
    from seldbench.training.predict import Predictor
    from seldbench.training.run import score_predictions

    C = len(dataset.classes)
    # a near-zero threshold: rows from an untrained model, so that there is a distance to read
    decoded = Predictor(output, C, FRAMES, feature.frames_per_label, True, "cpu",
                        {"threshold": 1e-3, "unify_deg": 15.0}).decode(raw)
    assert len(decoded.frame) and decoded.distance is not None
    assert np.all(decoded.distance >= 0) and np.any(decoded.distance > 0)
    clip = ClipFiles(stem="clip", audio={}, metadata=reference)
    results = score_predictions(REG, dataset.metric_suites, dataset, [clip], [decoded],
                                tmp_path / "run", True, jackknife=False)
    suites = [s for s in dataset.metric_suites
              if REG.get_metric_suite(s).build(C).needs_distance]
    assert suites, f"dataset {dataset.name} has no distance suite to check"
    for name in suites:
        assert "figures" in results[name], results[name]
        scorer = REG.get_metric_suite(name).build(C)
        back = scorer.read_prediction(tmp_path / "run" / "predictions" / name / "clip.csv")
        assert back.distance is not None
        np.testing.assert_allclose(np.sort(back.distance), np.sort(decoded.distance), atol=1e-4)


#: the layouts of `write_random_set`'s files, by side
SIMULATED_LAYOUTS = {"ref": {5: "fctae", 6: "fctaed"}, "pred": {6: "fctxyz", 7: "fctxyzd"}}


@pytest.mark.parametrize("suite", REG.list("metric suite"))
def test_suite_counters_add_up_and_figures_are_declared(suite, tmp_path):
    from seldbench.errors import SeldbenchError
    from seldbench.metrics.csvio import read_dcase_csv
    from seldbench.metrics.simulate import write_random_set
    from seldbench.specs import Scorer

    spec = REG.get_metric_suite(suite)
    scorer = spec.build(spec.default_classes)
    assert isinstance(scorer, Scorer)
    pairs = None
    for with_distance in (True, False):  # the CSV schema the suite reads (2021: no distance)
        out = tmp_path / str(with_distance)
        write_random_set(out, 3, spec.default_classes, seed=0, n_frames=300,
                         with_distance=with_distance)
        if hasattr(scorer, "write_reference"):  # a suite with its own file format (2025)
            for side, write in (("ref", scorer.write_reference), ("pred", scorer.write_prediction)):
                for p in sorted((out / side).iterdir()):
                    write(p, read_dcase_csv(p, SIMULATED_LAYOUTS[side]))
        try:  # through the suite's own readers, as `seldbench score` does
            pairs = [(scorer.read_reference(out / "ref" / f"mix{i:03d}.csv"),
                      scorer.read_prediction(out / "pred" / f"mix{i:03d}.csv")) for i in range(3)]
            break
        except SeldbenchError:
            continue
    assert pairs is not None, f"suite {suite} reads neither CSV schema"
    together = scorer.counts(pairs)
    assert together.shape[0] == 3 and together.shape[2] == spec.default_classes
    for i, pair in enumerate(pairs):  # each file's counters do not depend on the others
        np.testing.assert_array_equal(scorer.counts([pair])[0], together[i])
    figures = scorer.summarise(together.sum(0))
    assert set(figures) == {*spec.figures, "classwise"}
    assert spec.rank_by in spec.figures


@pytest.mark.e2e
@pytest.mark.parametrize("model_name", [m for m in REG.list("model")
                                        if REG.get_model(m).side_inputs is not None])
def test_side_streams_have_one_row_per_label_frame(model_name, synth_env, tmp_path):
    """On synth-mini: training streams on train only, every stream as long as its clip."""
    from seldbench.data.roots import resolve_root
    from seldbench.side_inputs import collect

    spec, ds = REG.get_model(model_name), REG.get_dataset("synth-mini")
    root = resolve_root(ds, None)
    ds.prepare(root)
    clip = ds.list_clips(root, "train")[0]
    frames = {clip.stem: 30}
    cfg = SMALL.get(model_name, {})
    train = collect(spec, cfg, ds, [clip], frames, training=True, cache_dir=tmp_path,
                    device="cpu")[clip.stem]
    test = collect(spec, cfg, ds, [clip], frames, training=False, cache_dir=tmp_path,
                   device="cpu")[clip.stem]
    assert train and all(len(v) == 30 for v in train.values())
    assert set(test) <= set(train) and not set(test) & set(spec.training_streams)


def test_a_wrong_output_shape_is_one_error_naming_the_model(dataset):
    from seldbench.errors import SeldbenchError
    from seldbench.training.plan import Assembled, make_loss
    from seldbench.training.predict import Predictor

    spec = REG.get_model("crnn")
    plan = type("Plan", (), {"model": spec, "cfg": {"model": {}}, "dataset": dataset})
    loss = make_loss(plan, Assembled(None, "multi_accdoa", False, None))
    target = torch.zeros(2, FRAMES, 6, 4, len(dataset.classes))
    with pytest.raises(SeldbenchError, match=r"model 'crnn': output of shape \(2, 20, 100\), "
                                             r"expected \(batch, 20, 117\) for multi_accdoa"):
        loss(torch.zeros(2, FRAMES, 100), target)
    predictor = Predictor("multi_accdoa", 13, FRAMES, 5, False, "cpu", {}, model_name="toy")
    with pytest.raises(SeldbenchError, match="model 'toy': output of shape"):
        predictor.raw(lambda x: torch.zeros(x.shape[0], FRAMES, 7), np.zeros((7, 100, 64)))
