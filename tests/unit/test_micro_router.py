"""The micro-router: features, training on teacher weights, calibrated confidence, the artifact and its checks
(search_router.shared.micro_router, search_router.pipeline.micro_router_training).

The labels come from the simulation's teacher (simulation.models.SimulatedModels.teacher_weights), the same one
``make simulate`` labels the training set with."""

from __future__ import annotations

import hashlib
import json
import math
import struct
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from search_router.pipeline.dataset import LabeledExample
from search_router.pipeline.micro_router_training import TrainingSettings, calibration_slice, train_micro_router
from search_router.pipeline.queries.planning import plan_queries
from search_router.pipeline.queries.query import normalize_query
from search_router.shared.answer.decision import RoutingDecision
from search_router.shared.channels import DEFAULT_CHANNELS
from search_router.shared.micro_router import (
    MAGIC,
    FeatureSettings,
    MicroRouter,
    MicroRouterArtifactError,
    features,
)
from simulation.models import SimulatedModels

ROOT = Path(__file__).resolve().parents[2]
NAMES = DEFAULT_CHANNELS.names


@cache
def labeled(n: int = 1_600, seed: int = 5) -> tuple[LabeledExample, ...]:
    planned = plan_queries(DEFAULT_CHANNELS, n_total=n, seed=seed, user=None, mix_user=True)
    teacher = SimulatedModels(
        DEFAULT_CHANNELS,
        teacher_model_ids=(),
        seed=seed,
        categories={normalize_query(q.text): q.category for q in planned},
    )
    return tuple(
        LabeledExample(q.text, q.category, q.source, teacher.teacher_weights(q.text), None, q.template) for q in planned
    )


@cache
def trained() -> tuple[MicroRouter, tuple[LabeledExample, ...]]:
    examples = labeled()
    train, test = examples[:1_400], examples[1_400:]
    return train_micro_router(
        train, NAMES, TrainingSettings(epochs=80, features=FeatureSettings(buckets=1 << 16))
    ), test


def mae(weights: dict[str, float], reference: dict[str, float]) -> float:
    return sum(abs(weights[name] - reference[name]) for name in NAMES) / len(NAMES)


def test_features_are_normalized_and_follow_the_dataset_normalization() -> None:
    settings = FeatureSettings(buckets=1 << 12)
    one = features("  Sunset over MOUNTAINS?! ", settings)
    assert one == features("sunset over mountains", settings)
    assert math.isclose(sum(v * v for v in one.values()), 1.0)
    assert all(0 <= bucket < 1 << 12 for bucket in one)
    assert features("?!", settings) == {}
    assert features("sunset over mountains", settings) != features("mountains over sunset", settings)  # bigrams


def test_trained_model_beats_the_teachers_average_answer_on_new_queries() -> None:
    # Given a micro-router trained on 1,400 teacher-labeled queries
    model, test = trained()
    prior = {name: sum(e.weights[name] for e in labeled()[:1_400]) / 1_400 for name in NAMES}
    # When it predicts 200 queries it never saw
    model_error = sum(mae(model.predict(e.query).weights, e.weights) for e in test) / len(test)
    prior_error = sum(mae(prior, e.weights) for e in test) / len(test)
    # Then it is far closer to the teacher than always answering the average weights
    assert model_error < 0.6 * prior_error


def test_predictions_are_valid_routing_weights_in_channel_order() -> None:
    model, test = trained()
    for example in test[:50]:
        prediction = model.predict(example.query)
        assert tuple(prediction.weights) == NAMES
        RoutingDecision.from_weights(prediction.weights, DEFAULT_CHANNELS)  # raises on a bad sum or range
        assert 0.0 < prediction.confidence < 1.0
    assert tuple(model.predict("").weights) == NAMES  # no words: the bias alone


def test_confidence_is_calibrated_on_its_slice() -> None:
    # The logistic model's mean confidence matches the agreement rate of the slice it was fitted on
    model, _ = trained()
    examples = labeled()[:1_400]
    held = calibration_slice(examples, 0.15, seed=0)
    slice_ = [examples[i] for i in sorted(held)]
    tolerance = model.calibration.tolerance
    agreement = sum(mae(model.predict(e.query).weights, e.weights) <= tolerance for e in slice_) / len(slice_)
    confidence = sum(model.predict(e.query).confidence for e in slice_) / len(slice_)
    assert abs(confidence - agreement) < 0.05
    assert model.training["calibration_examples"] == len(slice_)


def test_calibration_slice_is_whole_templates() -> None:
    examples = labeled()
    held = calibration_slice(examples, 0.15, seed=0)
    inside = {examples[i].template for i in held}
    outside = {e.template for i, e in enumerate(examples) if i not in held}
    assert inside and not inside & outside
    assert 0.15 * len(examples) <= len(held) < 0.5 * len(examples)


def test_artifact_round_trip_gives_the_same_predictions_and_is_compact() -> None:
    model, test = trained()
    data = model.to_bytes()
    loaded = MicroRouter.from_bytes(data)
    assert len(data) < 2_000_000
    assert loaded.channels == NAMES
    for example in test[:20]:
        assert loaded.predict(example.query) == model.predict(example.query)


def _with_header(data: bytes, **changes: object) -> bytes:
    (length,) = struct.unpack("<I", data[4:8])
    header = json.loads(data[8 : 8 + length])
    header.update(changes)
    encoded = json.dumps(header).encode()
    return MAGIC + struct.pack("<I", len(encoded)) + encoded + data[8 + length :]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: b"NOPE" + d[4:], "not a micro-router artifact"),
        (lambda d: d[:6], "not a micro-router artifact"),
        (lambda d: d[:8] + b"[" + d[9:], "header is not JSON"),
        (lambda d: _with_header(d, version=2), "version 2 is not supported"),
        (lambda d: _with_header(d, format="other"), "format must be"),
        (lambda d: _with_header(d, channels=["visual"]), "at least two names"),
        (lambda d: _with_header(d, bias=[0.0, "x", 0.0, 0.0]), "bias must be 4 finite numbers"),
        (lambda d: _with_header(d, buckets=3), "buckets must be an integer"),
        (lambda d: d[:-4], "payload has"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 0xFF]), "does not match its sha256"),
        (lambda d: _with_header(d, calibration={"coef": [1, 2, 3], "tolerance": 0.1}), "calibration.coef"),
    ],
)
def test_a_broken_artifact_is_refused_with_what_is_wrong(damage, message) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained()
    with pytest.raises(MicroRouterArtifactError, match=message):
        MicroRouter.from_bytes(damage(model.to_bytes()))


def test_non_finite_weights_are_refused_even_with_a_matching_checksum() -> None:
    model, _ = trained()
    data = bytearray(model.to_bytes())
    data[-4:] = struct.pack("<f", math.nan)
    (length,) = struct.unpack("<I", data[4:8])
    payload = bytes(data[8 + length :])
    fixed = _with_header(bytes(data), sha256=hashlib.sha256(payload).hexdigest())
    with pytest.raises(MicroRouterArtifactError, match="weights must be finite"):
        MicroRouter.from_bytes(fixed)


def test_too_few_examples_or_bad_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="at least 20 training examples"):
        train_micro_router(labeled()[:10], NAMES)
    with pytest.raises(ValueError, match="calibration_share"):
        TrainingSettings(calibration_share=0.9)


def test_prediction_imports_no_numpy() -> None:
    # The router function loads and predicts with the shared module only: no numpy, no cold-start cost
    script = (
        "import sys; from search_router.shared.micro_router import FeatureSettings, MicroRouter, features;"
        "features('a dog on a beach', FeatureSettings()); print('numpy' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'lambdas'}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
