"""The plugin contract: the hooks a seldbench plugin may implement.

A plugin is a module (or package) with functions marked ``@hookimpl`` whose names are the hooks
below. Built-in plugins live in ``plugins/`` and third-party ones are found through the
``seldbench.plugins`` entry-point group; both are loaded the same way. A minimal third-party
plugin::

    # my_seld/__init__.py
    from seldbench.hookspecs import hookimpl
    from seldbench.specs import ModelSpec

    @hookimpl
    def seldbench_register_models():
        return [ModelSpec(name="my-net", version="1.0", build=build_my_net)]

    # pyproject.toml
    [project.entry-points."seldbench.plugins"]
    my_seld = "my_seld"

A plugin imports from three modules only: this one, :mod:`seldbench.specs` (the specs and the
interfaces it may rely on, e.g. :class:`~seldbench.specs.AudioTrunk`) and :mod:`seldbench.api`
(losses, dataset layouts, label and video helpers, the side-input cache, metric-suite building
blocks, ``get_model`` for another registered model). Everything else in seldbench may change.

Every hook returns a list of specs (:mod:`seldbench.specs`). The registry validates each spec
when it is loaded: a malformed spec, a name registered twice (by any two plugins) or an unknown
name is one clear error naming the plugin. Names are lower case: letters, digits, ``-``, ``_``.
"""
from __future__ import annotations

import pluggy

PROJECT = "seldbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------- models


@hookspec
def seldbench_register_models() -> list:
    """Return the models this plugin provides, as a list of :class:`~seldbench.specs.ModelSpec`.

    Called once when the registry loads. Fields:

    - ``name``, ``version``: what ``seldbench run --model NAME`` and the leaderboards show.
    - ``build(cfg, dataset, feature) -> nn.Module``: ``cfg`` is the model's config section
      (``model:``), ``dataset`` the :class:`~seldbench.specs.DatasetSpec` (for the class count),
      ``feature`` the :class:`~seldbench.specs.FeatureSpec` of the run (channels, bins, feature
      frames per label frame). A module attribute ``with_distance`` says whether the output
      carries distance. Input
      ``(batch, channels, feature_frames, bins)``, e.g. ``(B, 7, 250, 64)``; output
      ``(batch, label_frames, outputs)``.
    - ``features``: feature sets the model accepts (first = default).
    - ``output``: ``"multi_accdoa"`` (3 tracks x 3 axes x classes, track-major, a track active
      when its vector norm > 0.5; 4 values per track with ``with_distance``) or ``"track_wise"``
      (3 tracks x (class logits + x, y, z [+ distance]), track-major; sigmoid, threshold 0.5).
      A model whose config chooses its output (CRATI's ``backbone``) says so with a module
      attribute ``output_format``, which then wins, as ``with_distance`` does.
    - ``needs_video`` / ``needs_text``: multimodal inputs (text is a training signal only).
    - ``side_inputs(cfg, dataset, clips, frames, *, training, cache_dir, device)``: optional
      per-label-frame streams beside the features, ``{stem: {name: (frames, ...) array}}`` (e.g.
      cached image tokens and a video mask). The core chunks them with the features and calls
      ``model(features, **streams)`` in training, validation, test and ``seldbench predict``.
      ``training`` is True for the train split only. Cache encoder outputs per clip with
      ``seldbench.api.SideInputCache`` and give clips without a stream zeros and mask 0 with
      ``seldbench.api.fill_missing``. In ``eval()`` the model returns the SELD tensor; in
      ``train()`` it may return whatever its loss takes (e.g. a dict of embeddings).
    - ``training_streams``: names of side streams that are training signals only (text built
      from the annotations): the core drops them outside the train split, so validation, test
      and ``seldbench predict`` see what a user has.
    - ``loss``: a factory ``loss(cfg, dataset) -> (loss(output, target) -> Tensor)``, given the
      resolved ``model:`` section and the DatasetSpec (so settings such as loss weights come
      from the config, never through the forward output); target as the core builds it for
      ``output``. None: the core loss of ``output`` (multi-ACCDOA: ADPIT MSE; track-wise:
      frame-level PIT of BCE + MSE; ``seldbench.api.core_loss``).
    - A model another model can wrap (CRATI wraps a trunk) returns a module that is a
      :class:`~seldbench.specs.AudioTrunk`: ``embed(x)`` and ``decode(h)``, ``embed_width``,
      ``streams``. The wrapper gets it with ``seldbench.api.get_model(name).build(...)``.
    - ``config``: path of the model's default YAML. :mod:`seldbench.model_config` checks a
      ``model:`` section against the keys a builder understands.
    """


# --------------------------------------------------------------------------- datasets


@hookspec
def seldbench_register_datasets() -> list:
    """Return the datasets this plugin provides, as a list of :class:`~seldbench.specs.DatasetSpec`.

    Fields:

    - ``classes``: class names in index order (CSV class ``k`` is ``classes[k]``).
    - ``splits``: split names, e.g. ``("train", "val", "test")``; model selection uses ``val``.
    - ``list_clips(root, split) -> list[ClipFiles]``: the files of one split under ``root``.
    - ``metric_suites``: suite names to score with; the first selects and ranks.
    - ``formats`` (``"foa"``, ``"mic"``, ``"stereo"``), ``has_video``, ``metadata_columns`` (5 or
      6), ``metadata_format`` (``"dcase"`` or ``"dcase2025"``), ``video_projection``.
    - ``root_env`` / ``default_root``: where the data lives unless the config says otherwise.
    - ``prepare(root)``: optional, run before first use (e.g. generate a synthetic set).
    """


# --------------------------------------------------------------------------- metrics


@hookspec
def seldbench_register_metric_suites() -> list:
    """Return metric suites, as a list of :class:`~seldbench.specs.MetricSuiteSpec`.

    ``build(num_classes, **options)`` returns a scorer with ``read_reference(path)`` and
    ``read_prediction(path)`` (strict readers; a bad row raises ``SeldbenchError`` with
    ``file:line: problem``), ``counts(pairs) -> (files, counters, classes) array`` for a list of
    ``(reference, prediction)`` tables, and ``summarise(counts) -> dict`` over counters summed
    across files (keys: every name in ``figures`` and ``classwise``). Counters must add up over
    files: the core forms leave-one-file-out jackknife intervals by subtraction.
    ``rank_by`` names the figure that ranks systems; ``higher_is_better`` its direction.
    ``options`` lists non-parity switches (all off by default) with their default values.
    """


# --------------------------------------------------------------------------- features


@hookspec
def seldbench_register_features() -> list:
    """Return input feature sets, as a list of :class:`~seldbench.specs.FeatureSpec`.

    ``build(**cfg) -> nn.Module`` maps audio ``(batch, 4, samples)`` at 24 kHz to
    ``(batch, channels, feature_frames, bins)``; ``frames_per_label`` feature frames make one
    100-ms label frame.
    """
