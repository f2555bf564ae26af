"""Training the micro-router (:mod:`search_router.shared.micro_router`) on the teacher-labeled training set, with
numpy (the pipeline's functions have it; the router, which only predicts, does not need it).

The model: ``softmax(b + x · W)`` over the hashed features of the query, fitted by full-batch gradient descent
(Adam steps) on the cross-entropy to the teacher's weights (soft targets) plus an L2 penalty on ``W``. The
confidence: a logistic model of "mean absolute error <= tolerance" fitted on a calibration slice that the weights
never saw. The slice is made of whole templates (or user queries) so that the confidence is calibrated on
patterns the model did not train on, like the hardest held-out split.
"""

from __future__ import annotations

import math
import random
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from search_router.pipeline.dataset import LabeledExample, TrainingGroup
from search_router.shared.micro_router import (
    Calibration,
    FeatureSettings,
    MicroRouter,
    confidence_inputs,
    features,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TrainingSettings:
    """How the micro-router is trained; the defaults are what the benchmark measures."""

    epochs: int = 150
    learning_rate: float = 0.1
    l2: float = 1e-6
    calibration_share: float = 0.15
    tolerance: float = 0.10
    """Agreement with the teacher: a mean absolute error over the channels of at most this."""
    seed: int = 0
    features: FeatureSettings = field(default_factory=FeatureSettings)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not 0.0 < self.calibration_share < 0.5:
            raise ValueError(f"calibration_share must be within (0, 0.5), got {self.calibration_share}")
        if not 0.0 < self.tolerance < 1.0:
            raise ValueError(f"tolerance must be within (0, 1), got {self.tolerance}")


@dataclass(frozen=True)
class _Sparse:
    """The features of ``n`` queries as coordinates: ``rows``, ``cols`` (column ids) and ``values``."""

    n: int
    rows: IntArray
    cols: IntArray
    values: FloatArray

    def times(self, weights: FloatArray) -> FloatArray:
        """``X · W`` (n × channels)."""
        out = np.zeros((self.n, weights.shape[1]))
        for channel in range(weights.shape[1]):
            out[:, channel] = np.bincount(
                self.rows, weights=self.values * weights[self.cols, channel], minlength=self.n
            )
        return out

    def transpose_times(self, gradient: FloatArray, width: int) -> FloatArray:
        """``Xᵀ · G`` (columns × channels)."""
        out = np.zeros((width, gradient.shape[1]))
        for channel in range(gradient.shape[1]):
            out[:, channel] = np.bincount(
                self.cols, weights=self.values * gradient[self.rows, channel], minlength=width
            )
        return out


def _sparse(feature_maps: Sequence[dict[int, float]], column_of: dict[int, int]) -> tuple[_Sparse, FloatArray]:
    """The matrix over the known columns and, per query, the share of its feature mass they cover."""
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    coverage = np.zeros(len(feature_maps))
    for index, mapping in enumerate(feature_maps):
        for bucket, value in mapping.items():
            column = column_of.get(bucket)
            if column is None:
                continue
            rows.append(index)
            cols.append(column)
            values.append(value)
            coverage[index] += value * value
    matrix = _Sparse(
        len(feature_maps), np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), np.asarray(values)
    )
    return matrix, coverage


def _softmax(logits: FloatArray) -> FloatArray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


CALIBRATION_BY_TEMPLATES = "templates"
"""``training["calibration_groups"]`` when the examples carry template ids: the slice is whole templates (a user's
query, which has none, is a group of its own)."""
CALIBRATION_BY_QUERIES = "queries"
"""``training["calibration_groups"]`` when no example carries a template id (a training file read without its
groups file): each query is its own group, so the slice shares templates with the fit."""


def _group_of(example: LabeledExample) -> str:
    return example.template or f"query:{example.query}"


def calibration_grouping(examples: Sequence[LabeledExample]) -> str:
    """:data:`CALIBRATION_BY_TEMPLATES` or :data:`CALIBRATION_BY_QUERIES`: what :func:`calibration_slice` groups
    ``examples`` by."""
    return CALIBRATION_BY_TEMPLATES if any(example.template for example in examples) else CALIBRATION_BY_QUERIES


def calibration_slice(examples: Sequence[LabeledExample], share: float, *, seed: int) -> set[int]:
    """Indices of whole groups (a template, or one user query) holding about ``share`` of the examples, and
    never every group."""
    groups: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(_group_of(example), []).append(index)
    names = sorted(groups)
    random.Random(f"calibration:{seed}").shuffle(names)  # noqa: S311 - reproducible sampling, not security
    chosen: set[int] = set()
    for name in names[:-1]:
        if len(chosen) >= share * len(examples):
            break
        chosen.update(groups[name])
    return chosen


def _fit_weights(
    matrix: _Sparse, targets: FloatArray, width: int, settings: TrainingSettings
) -> tuple[FloatArray, FloatArray, float]:
    """``W``, ``b`` and the final loss, by Adam steps on cross-entropy to soft targets + L2."""
    channels = targets.shape[1]
    params = [np.zeros((width, channels)), np.log(np.clip(targets.mean(axis=0), 1e-6, None))]
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    loss = math.inf
    for step in range(1, settings.epochs + 1):
        weights, bias = params
        probabilities = _softmax(matrix.times(weights) + bias)
        loss = float(-np.sum(targets * np.log(probabilities + 1e-12)) / matrix.n) + 0.5 * settings.l2 * float(
            np.sum(weights * weights)
        )
        error = (probabilities - targets) / matrix.n
        gradients = [matrix.transpose_times(error, width) + settings.l2 * weights, error.sum(axis=0)]
        for index, gradient in enumerate(gradients):
            moments[index] = beta1 * moments[index] + (1 - beta1) * gradient
            squares[index] = beta2 * squares[index] + (1 - beta2) * gradient * gradient
            corrected = moments[index] / (1 - beta1**step)
            scale = np.sqrt(squares[index] / (1 - beta2**step)) + eps
            params[index] = params[index] - settings.learning_rate * corrected / scale
    return params[0], params[1], loss


def _fit_calibration(inputs: FloatArray, agree: FloatArray, *, iterations: int = 2_000) -> tuple[float, ...]:
    """Logistic regression (bias first) by gradient descent with a small L2 penalty, so that a slice where
    every prediction agrees (or none does) still gives finite coefficients."""
    design = np.hstack([np.ones((inputs.shape[0], 1)), inputs])
    coef = np.zeros(design.shape[1])
    for _ in range(iterations):
        predicted = 1.0 / (1.0 + np.exp(-(design @ coef)))
        gradient = design.T @ (predicted - agree) / design.shape[0] + 1e-3 * coef
        coef -= 1.0 * gradient
    return tuple(float(value) for value in coef)


def train_micro_router(
    examples: Sequence[LabeledExample], channels: Sequence[str], settings: TrainingSettings | None = None
) -> MicroRouter:
    """A micro-router trained on ``examples`` (the teacher's weights as targets) for ``channels`` (in order).

    ``ValueError`` when there are too few examples to fit and calibrate (fewer than 20).
    """
    settings = settings or TrainingSettings()
    if len(examples) < 20:
        raise ValueError(f"the micro-router needs at least 20 training examples, got {len(examples)}")
    started = time.perf_counter()
    names = tuple(channels)
    feature_maps = [features(example.query, settings.features) for example in examples]
    targets = np.asarray([[example.weights[name] for name in names] for example in examples])
    held = calibration_slice(examples, settings.calibration_share, seed=settings.seed)
    fit = [index for index in range(len(examples)) if index not in held]
    calibrate = sorted(held)
    buckets = sorted({bucket for index in fit for bucket in feature_maps[index]})
    column_of = {bucket: column for column, bucket in enumerate(buckets)}
    fit_matrix, _ = _sparse([feature_maps[i] for i in fit], column_of)
    weights, bias, loss = _fit_weights(fit_matrix, targets[fit], len(buckets), settings)

    calibration_matrix, coverage = _sparse([feature_maps[i] for i in calibrate], column_of)
    probabilities = _softmax(calibration_matrix.times(weights) + bias)
    errors = np.abs(probabilities - targets[calibrate]).mean(axis=1)
    agree = (errors <= settings.tolerance).astype(float)
    inputs = np.asarray([confidence_inputs(list(p), float(c)) for p, c in zip(probabilities, coverage, strict=True)])
    a, b, c, d = _fit_calibration(inputs, agree)
    training: dict[str, Any] = {
        "examples": len(fit),
        "calibration_examples": len(calibrate),
        "features": len(buckets),
        "epochs": settings.epochs,
        "loss": round(loss, 6),
        "calibration_mae": round(float(errors.mean()), 6),
        "calibration_agreement": round(float(agree.mean()), 6),
        "calibration_groups": calibration_grouping(examples),
        "calibration_group_count": len({_group_of(examples[index]) for index in calibrate}),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return MicroRouter(
        channels=names,
        settings=settings.features,
        rows=array("I", buckets),
        weights=array("f", weights.astype(np.float32).ravel().tolist()),
        bias=tuple(float(v) for v in bias),
        calibration=Calibration(coef=(a, b, c, d), tolerance=settings.tolerance),
        training=training,
    )


class TrainingGroupsMismatch(ValueError):
    """The groups file is not the one written with the training file: another number of lines, or a line whose
    query is not the user text of the training line at the same position."""


def assign_training_groups(examples: Sequence[LabeledExample], groups: Sequence[TrainingGroup]) -> list[LabeledExample]:
    """``examples`` (read back from the training file, in its order) with each one's template, category and source
    from the groups file's line at the same position (:func:`~search_router.pipeline.dataset.read_training_groups`),
    so that :func:`calibration_slice` holds out whole templates.

    :class:`TrainingGroupsMismatch` when the files disagree: a different number of lines, or the first line whose
    query is not the training line's user text (a groups file of another run, or of another version of the file).
    """
    if len(groups) != len(examples):
        raise TrainingGroupsMismatch(
            f"the groups file has {len(groups)} lines for the training file's {len(examples)}: "
            "they must match one to one"
        )
    for number, (example, group) in enumerate(zip(examples, groups, strict=True), start=1):
        if group.query != example.query:
            raise TrainingGroupsMismatch(
                f"groups file line {number}: query {group.query!r} is not the training line's user text "
                f"{example.query!r}"
            )
    return [
        replace(example, template=group.template, category=group.category, source=group.source)
        for example, group in zip(examples, groups, strict=True)
    ]


def predict_heldout(router: MicroRouter, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One prediction line per held-out record (PrepareDataset's :func:`~search_router.pipeline.dataset.
    heldout_record`): its query, ``split``, ``category``, the teacher's ``reference``, the micro-router's
    ``micro`` weights, ``confidence``, ``mae`` against the reference (mean absolute error over the channels) and
    ``latency_ms``, the prediction's own time (pure Python, as in the router; no network call)."""
    lines: list[dict[str, Any]] = []
    for number, record in enumerate(records, start=1):
        reference = record.get("reference")
        if not isinstance(record.get("query"), str) or not isinstance(reference, dict):
            raise ValueError(f"held-out record {number} needs a string 'query' and a 'reference' object")
        missing = [name for name in router.channels if name not in reference]
        if missing:
            raise ValueError(f"held-out record {number}: the reference has no weight for {', '.join(missing)}")
        started = time.perf_counter()
        prediction = router.predict(record["query"])
        latency_ms = (time.perf_counter() - started) * 1000.0
        mae = math.fsum(abs(prediction.weights[n] - float(reference[n])) for n in router.channels) / len(
            router.channels
        )
        lines.append(
            {
                "query": record["query"],
                "split": record.get("split"),
                "category": record.get("category"),
                "reference": reference,
                "micro": prediction.weights,
                "confidence": prediction.confidence,
                "mae": round(mae, 6),
                "latency_ms": round(latency_ms, 4),
            }
        )
    return lines
