"""The micro-router: a linear model over hashed lexical features that predicts the channel weights inside the
router function, with a calibrated confidence, and its artifact.

Shared by the pipeline (which trains it with numpy, :mod:`search_router.pipeline.micro_router_training`) and
the router (which predicts with this module only): prediction is pure Python, a sparse dot product over the
active hashed features of the query, so the router gains no dependency and no cold-start cost.

Features (:func:`features`) of the normalized query (:func:`~search_router.pipeline.queries.query.normalize_query`,
the dataset's de-duplication key): hashed word unigrams and bigrams and character n-grams of the padded words,
L2-normalized. The model: ``softmax(bias + x · W)`` onto the channel simplex. The confidence: a logistic model,
fitted on a calibration slice, of the chance that the prediction agrees with the teacher (mean absolute error at
most ``calibration.tolerance``), from the top probability, the normalized entropy and the share of the query's
feature mass that training has seen (low on words and patterns training never saw).

The artifact (:meth:`MicroRouter.to_bytes`, :meth:`MicroRouter.from_bytes`): the magic ``SRMR``, a 4-byte
little-endian header length, a JSON header (``format``, ``version``, ``channels``, ``buckets``, the feature
settings, ``rows``, ``bias``, ``calibration``, ``training`` statistics, the payload's ``sha256``), then the
payload: ``rows`` uint32 bucket indices (ascending) and ``rows × channels`` float32 weights, little-endian. Only
the buckets training saw are stored, so a 10,000-query model is well under a few MB. Loading checks everything
and raises :class:`MicroRouterArtifactError` naming what is wrong.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import struct
import sys
import zlib
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from search_router.pipeline.queries.query import normalize_query

FORMAT: Final = "search-router-micro"
VERSION: Final = 1
MAGIC: Final = b"SRMR"
DEFAULT_BUCKETS: Final = 1 << 18
DEFAULT_CHAR_NGRAMS: Final = (3, 4)
MAX_ARTIFACT_BYTES: Final = 8_000_000
"""A larger artifact is refused: the router loads it into memory on a cold start."""
_WORD: Final = re.compile(r"\w+")
_HEADER_LENGTH: Final = struct.Struct("<I")


class MicroRouterArtifactError(ValueError):
    """The artifact cannot be used; the message names what is wrong."""


# ---------------------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureSettings:
    """How a query becomes hashed features: ``buckets`` hash buckets, word uni- and bigrams, and the character
    n-gram lengths ``char_ngrams`` of each word padded with spaces."""

    buckets: int = DEFAULT_BUCKETS
    char_ngrams: tuple[int, ...] = DEFAULT_CHAR_NGRAMS

    def __post_init__(self) -> None:
        if not 16 <= self.buckets <= 1 << 24:
            raise ValueError(f"buckets must be within 16..{1 << 24}, got {self.buckets}")
        if not self.char_ngrams or not all(1 <= n <= 8 for n in self.char_ngrams):
            raise ValueError(f"char_ngrams must be lengths within 1..8, got {self.char_ngrams}")


def features(text: str, settings: FeatureSettings) -> dict[int, float]:
    """The L2-normalized hashed features of ``text``: bucket -> value (empty for a query with no word)."""
    words = _WORD.findall(normalize_query(text))
    buckets = settings.buckets
    crc32 = zlib.crc32
    counts: dict[int, float] = {}

    def add(gram: str) -> None:
        bucket = crc32(gram.encode("utf-8")) % buckets
        counts[bucket] = counts.get(bucket, 0.0) + 1.0

    previous = ""
    for word in words:
        add(f"w:{word}")
        if previous:
            add(f"b:{previous} {word}")
        previous = word
        padded = f" {word} "
        for n in settings.char_ngrams:
            for start in range(max(1, len(padded) - n + 1)):
                add("c:" + padded[start : start + n])
    norm = math.sqrt(math.fsum(value * value for value in counts.values()))
    return {bucket: value / norm for bucket, value in counts.items()} if norm else {}


def softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(value - top) for value in logits]
    total = math.fsum(exps)
    return [value / total for value in exps]


def confidence_inputs(probabilities: Sequence[float], coverage: float) -> tuple[float, float, float]:
    """What the calibration model reads: the top probability, the entropy over ``log(channels)`` and the
    covered share of the feature mass."""
    entropy = -math.fsum(p * math.log(p) for p in probabilities if p > 0)
    return max(probabilities), entropy / math.log(len(probabilities)), coverage


def sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)


# ---------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """``P(agree) = sigmoid(coef · (1, top probability, normalized entropy, coverage))``, agree meaning a mean
    absolute error of at most ``tolerance`` against the teacher."""

    coef: tuple[float, float, float, float]
    tolerance: float

    def confidence(self, probabilities: Sequence[float], coverage: float) -> float:
        top, entropy, covered = confidence_inputs(probabilities, coverage)
        bias, a, b, c = self.coef
        return sigmoid(bias + a * top + b * entropy + c * covered)


@dataclass(frozen=True)
class MicroPrediction:
    """Channel weights in channel order (summing to 1) and the calibrated chance that they agree with the
    teacher."""

    weights: dict[str, float]
    confidence: float


@dataclass(frozen=True, eq=False)
class MicroRouter:
    """A trained micro-router: ``rows`` (the buckets training saw, ascending), their ``weights`` (row-major,
    ``len(rows) × len(channels)``), the ``bias`` per channel and the ``calibration``."""

    channels: tuple[str, ...]
    settings: FeatureSettings
    rows: array[int]
    weights: array[float]
    bias: tuple[float, ...]
    calibration: Calibration
    training: Mapping[str, Any] = field(default_factory=dict)
    _row_of: dict[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_row_of", {bucket: row for row, bucket in enumerate(self.rows)})

    def predict(self, text: str) -> MicroPrediction:
        """Weights and confidence for ``text``; pure Python, about a microsecond per active feature."""
        width = len(self.channels)
        logits = list(self.bias)
        covered = 0.0
        weights = self.weights
        for bucket, value in features(text, self.settings).items():
            row = self._row_of.get(bucket)
            if row is None:
                continue
            covered += value * value
            base = row * width
            for channel in range(width):
                logits[channel] += value * weights[base + channel]
        probabilities = softmax(logits)
        return MicroPrediction(
            weights=_simplex(self.channels, probabilities),
            confidence=self.calibration.confidence(probabilities, covered),
        )

    # -----------------------------------------------------------------------------------------------------
    # The artifact
    # -----------------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        payload = _little_endian(array("I", self.rows)) + _little_endian(array("f", self.weights))
        header = {
            "format": FORMAT,
            "version": VERSION,
            "channels": list(self.channels),
            "buckets": self.settings.buckets,
            "char_ngrams": list(self.settings.char_ngrams),
            "rows": len(self.rows),
            "bias": list(self.bias),
            "calibration": {"coef": list(self.calibration.coef), "tolerance": self.calibration.tolerance},
            "training": dict(self.training),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        encoded = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
        return MAGIC + _HEADER_LENGTH.pack(len(encoded)) + encoded + payload

    @classmethod
    def from_bytes(cls, data: bytes) -> MicroRouter:
        """The micro-router in ``data``; :class:`MicroRouterArtifactError` names what is wrong."""
        header, payload = _split_artifact(data)
        channels = _channels(header.get("channels"))
        rows = _int(header, "rows", 0, 1 << 24)
        try:
            settings = FeatureSettings(
                buckets=_int(header, "buckets", 16, 1 << 24), char_ngrams=tuple(header.get("char_ngrams") or ())
            )
        except (TypeError, ValueError) as exc:
            raise MicroRouterArtifactError(f"micro-router artifact: {exc}") from None
        expected = rows * 4 * (1 + len(channels))
        if len(payload) != expected:
            raise MicroRouterArtifactError(
                f"micro-router artifact: payload has {len(payload)} bytes, {rows} rows of {len(channels)} channels "
                f"need {expected}"
            )
        if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
            raise MicroRouterArtifactError("micro-router artifact: the payload does not match its sha256")
        indices = _native(array("I"), payload[: rows * 4])
        if any(b <= a for a, b in itertools.pairwise(indices)) or (rows and indices[-1] >= settings.buckets):
            raise MicroRouterArtifactError("micro-router artifact: rows must be ascending buckets below 'buckets'")
        weights = _native(array("f"), payload[rows * 4 :])
        if not all(math.isfinite(value) for value in weights):
            raise MicroRouterArtifactError("micro-router artifact: weights must be finite")
        return cls(
            channels=channels,
            settings=settings,
            rows=indices,
            weights=weights,
            bias=_floats(header.get("bias"), "bias", len(channels)),
            calibration=_calibration(header.get("calibration")),
            training=training if isinstance(training := header.get("training"), dict) else {},
        )


def _simplex(channels: Sequence[str], probabilities: Sequence[float]) -> dict[str, float]:
    """Probabilities as weights that sum to 1 within float rounding (the last channel takes the remainder)."""
    values = [min(1.0, max(0.0, p)) for p in probabilities]
    values[-1] = max(0.0, 1.0 - math.fsum(values[:-1]))
    total = math.fsum(values)
    return {name: value / total for name, value in zip(channels, values, strict=True)}


def _little_endian(values: array[Any]) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _native(values: array[Any], data: bytes) -> array[Any]:
    values.frombytes(data)
    if sys.byteorder == "big":
        values.byteswap()
    return values


def _split_artifact(data: bytes) -> tuple[dict[str, Any], bytes]:
    if len(data) > MAX_ARTIFACT_BYTES:
        raise MicroRouterArtifactError(f"micro-router artifact has {len(data)} bytes; at most {MAX_ARTIFACT_BYTES}")
    if data[:4] != MAGIC or len(data) < 8:
        raise MicroRouterArtifactError(f"not a micro-router artifact (it must start with {MAGIC!r})")
    (length,) = _HEADER_LENGTH.unpack(data[4:8])
    if 8 + length > len(data):
        raise MicroRouterArtifactError("micro-router artifact: the header is cut short")
    try:
        header = json.loads(data[8 : 8 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MicroRouterArtifactError(f"micro-router artifact: the header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise MicroRouterArtifactError(f"micro-router artifact: format must be {FORMAT!r}")
    if header.get("version") != VERSION:
        raise MicroRouterArtifactError(
            f"micro-router artifact version {header.get('version')!r} is not supported (this router reads {VERSION})"
        )
    return header, data[8 + length :]


def _channels(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(name, str) and name for name in value):
        raise MicroRouterArtifactError("micro-router artifact: channels must be a list of at least two names")
    if len(set(value)) != len(value):
        raise MicroRouterArtifactError("micro-router artifact: channels must be distinct")
    return tuple(value)


def _int(header: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MicroRouterArtifactError(f"micro-router artifact: {key} must be an integer within {low}..{high}")
    return value


def _floats(value: Any, key: str, count: int) -> tuple[float, ...]:
    if (
        not isinstance(value, list)
        or len(value) != count
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise MicroRouterArtifactError(f"micro-router artifact: {key} must be {count} finite numbers")
    return tuple(float(v) for v in value)


def _calibration(value: Any) -> Calibration:
    if not isinstance(value, dict):
        raise MicroRouterArtifactError("micro-router artifact: calibration must be an object")
    a, b, c, d = _floats(value.get("coef"), "calibration.coef", 4)
    tolerance = _floats([value.get("tolerance")], "calibration.tolerance", 1)[0]
    return Calibration(coef=(a, b, c, d), tolerance=tolerance)
