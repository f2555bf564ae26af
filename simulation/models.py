"""SIMULATED Bedrock models for ``make simulate``: deterministic stand-ins, not real model behaviour.

Everything here is a heuristic written to make the pipeline's moving parts visible on a laptop. The numbers it
leads to (MAE, rubric, judge scores, latencies, tokens, costs) say how these stand-ins were written, not how
Amazon Nova or Claude behave. Each model is a pure function of (seed, model, query) so that a run is repeatable.

* **Teacher** (any of the ``teacher_model_ids``: the stack's ``teacher_preference``, since Preflight picks one of
  them at run time): reads the query's words. Every channel gets a
  cue score from words of its own description and examples, plus a small built-in lexicon for the four default
  channels, plus surface cues (capitalized names, years and hashtags push weight to the keyword channel, quoted
  speech to the spoken-words channel). When the query is one the built-in synthesizer produced for this run,
  its category (``visual_dominant``, ``balanced``, ``complex`` ...) sets the shape: one clear leader, two
  channels about equal, or a spread. Weights come on a 0.05 grid, weights first, reasoning last. About 2% of
  first answers are cut off (``max_tokens``) so that the labeler's retry and counting are exercised.
* **Distilled student** (the custom model deployment): the teacher's weights plus small noise; always valid
  JSON, weights first, like a distilled model trained on those answers.
* **Base student** (the undistilled student prompted with the one-sentence student prompt): mostly prose or
  broken JSON, as the reference write-up observed for base Nova Micro, sometimes rough but valid JSON.
* **Baseline router** (any other model called with the teacher prompt, Claude Haiku 4.5 by default): the
  teacher's weights plus larger noise, occasionally confusing the two leading channels, sometimes wrapping its
  JSON in prose or a code fence.
* **Judge** (:meth:`SimulatedModels.write_judge_results`): scores each answer with the deterministic rubric
  (:func:`search_router.pipeline.metrics.rubric_score`) and writes the result files where Bedrock Model Evaluation
  would.

Latency: each call draws a latency from a log-normal distribution per model (:data:`LATENCY_PROFILES`;
distilled Nova Micro ~0.8 s and Claude Haiku 4.5 ~1.7 s mean, the reference write-up's figures). The answer
returns after a *short real sleep* (``time_scale`` × the latency) and the rest of the latency is added to a
per-thread virtual clock (:mod:`simulation.clock`) that the evaluation's latency measurement reads, so the
report's latencies follow the simulated distributions while the run stays fast.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import boto3

from search_router.contract.names import DISTILLED
from search_router.pipeline.metrics import rubric_score
from search_router.pipeline.queries.mix import BALANCED, DOMINANT_SUFFIX, largest_remainder
from search_router.pipeline.queries.query import normalize_query
from search_router.shared.answer.decision import RoutingDecision
from search_router.shared.answer.formatting import format_answer, round_weights
from search_router.shared.answer.parser import parse_routing_answer
from search_router.shared.channels import Channel, ChannelSet
from search_router.shared.prompts import keyword_like_channel, student_prompt
from simulation.bedrock.values import ConverseReply, ConverseRequest, EvaluationJobRequest
from simulation.clock import VirtualClock

SIMULATED: Final = "SIMULATED"

TEACHER: Final = "teacher"
BASE_STUDENT: Final = "base-student"
BASELINE: Final = "baseline"
ROLES: Final = (TEACHER, DISTILLED, BASE_STUDENT, BASELINE)


# ---------------------------------------------------------------------------------------------------------
# Latency
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatencyProfile:
    """A log-normal latency distribution: ``median_ms`` × e^N(0, sigma²), at least ``floor_ms``."""

    label: str
    median_ms: float
    sigma: float
    floor_ms: float = 150.0

    @property
    def mean_ms(self) -> float:
        return self.median_ms * math.exp(self.sigma**2 / 2)

    def sample(self, rng: random.Random) -> float:
        return max(self.floor_ms, self.median_ms * math.exp(rng.gauss(0.0, self.sigma)))


# Assumed, not measured: distilled Nova Micro and Claude Haiku 4.5 follow the reference write-up's means
# (833 ms and 1,741 ms); the others are plausible orders of magnitude for short answers.
DISTILLED_LATENCY: Final = LatencyProfile("distilled Nova Micro deployment", 790.0, 0.22)
LATENCY_PROFILES: Final[tuple[tuple[str, LatencyProfile], ...]] = (
    ("nova-micro", LatencyProfile("Nova Micro", 560.0, 0.30)),
    ("nova-lite", LatencyProfile("Nova Lite", 680.0, 0.30)),
    ("nova-pro", LatencyProfile("Nova Pro", 1_150.0, 0.30)),
    ("nova-premier", LatencyProfile("Nova Premier", 1_900.0, 0.35)),
    ("haiku", LatencyProfile("Claude Haiku 4.5", 1_650.0, 0.32)),
    ("sonnet", LatencyProfile("Claude Sonnet 4.5", 2_600.0, 0.35)),
)
DEFAULT_LATENCY: Final = LatencyProfile("other model", 1_200.0, 0.35)
NETWORK_MS: Final = 35.0
"""Client-side overhead outside the service's own ``latencyMs`` (simulated)."""


def latency_profile(model_id: str, *, deployment: bool) -> LatencyProfile:
    if deployment:
        return DISTILLED_LATENCY
    lowered = model_id.lower()
    return next((profile for key, profile in LATENCY_PROFILES if key in lowered), DEFAULT_LATENCY)


# ---------------------------------------------------------------------------------------------------------
# Cues
# ---------------------------------------------------------------------------------------------------------
def _lexicon(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Word stems (a query word counts when it starts with one) for the four default channels.
BUILTIN_CUES: Final[Mapping[str, frozenset[str]]] = {
    "visual": _lexicon(
        "shot close-up aerial drone view wide time-lapse landscape skyline sunset sunrise dusk "
        "golden light night fog mist snow mountain beach forest street city alley lake river field desert "
        "canyon bridge rooftop wearing dress jacket coat hoodie suit hat uniform shirt jeans colour color red "
        "blue yellow green black white orange purple pink silver turquoise neon running walking dancing riding "
        "jumping climbing swimming sitting crossing carrying painting juggling cooking hugging waving driving "
        "parked drifting racing car truck bicycle boat train bus balloon umbrella kite lighthouse castle "
        "waterfall volcano glacier reef vineyard cherry sunflower lavender raindrops candle rainbow lightning "
        "northern moon sky clouds dog cat horse fox bear panda tiger eagle dolphin zebra giraffe kitten cub "
        "toddler girl boy woman man couple surfer skateboarder ballerina chef cyclist hiker dancer"
    ),
    "audio": _lexicon(
        "sound music song melody soundtrack noise ambience ambient audio hear heard loud quiet barking bark "
        "thunder rumbl crash chirp crying shatter honk siren wail bell ring howl cheer applau clap footstep "
        "echo creak pop roar rev whistl rustl meow hoot rush tick chant gallop buzz typing explosion laser "
        "whoosh knock gunshot shutter boing heartbeat swoosh clink zipper click thunderclap drumroll scratch "
        "jazz piano orchestra rock electronic hip-hop acoustic guitar country reggae classical lo-fi techno "
        "blues folk metal latin synthwave gospel flamenco saxophone violin drum cello trumpet harmonica flute "
        "banjo bagpipe ukulele harp accordion bass sitar organ clarinet synthesizer choir vocal chorus beat "
        "upbeat calm relaxing energetic eerie epic cheerful melanchol funky dreamy soft uplifting duet solo"
    ),
    "transcription": _lexicon(
        "say says saying said speech speak spoke spoken talk talks talking tell telling explain discuss "
        "mention warn joke complain announce describ narrat narration voiceover dialogue conversation "
        "lecture monologue sermon debate argument quote line words ask asks asking shout whisper yell "
        "repeat podcast interview host presenter reporter words phrase"
    ),
    "metadata": _lexicon(
        "documentary trailer season episode commercial concert keynote highlights biography press conference "
        "behind red-carpet podcast ted award tagged subtitles captions closed movies films series genre "
        "horror comedy sci-fi western noir thriller fantasy musical animated crime recap coverage ceremony "
        "official brand campaign launch final olympics cup 1950s 1960s 1970s 1980s 1990s 2000s"
    ),
}
_STOPWORDS: Final = _lexicon(
    "a an the of to in on for with by at from and or is are be that this what which who how any other etc "
    "such like including e.g. it its as about can what's where when while into over under some something someone "
    # words of every video query, or of more than one channel description: no cue for any channel
    "video videos clip clips footage scene scenes find show me looking best compilation moments part segment "
    "people other"
)
_WORD = re.compile(r"[#\w][\w'\-]*", re.UNICODE)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_QUOTED = re.compile(r"[\"“][^\"”]+[\"”]")
_SPOKEN_HINTS: Final = ("spoken", "dialogue", "quote", "narration")
_MIN_STEM: Final = 4


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _channel_terms(channel: Channel) -> frozenset[str]:
    """Words of a channel's description and examples (stop words and very short words left out)."""
    words = _words(channel.description) + [w for example in channel.examples for w in _words(example)]
    return frozenset(w for w in words if len(w) >= _MIN_STEM and w not in _STOPWORDS)


@dataclass(frozen=True)
class Cues:
    scores: dict[str, float]
    hits: dict[str, list[str]]


class QueryReader:
    """Per-channel cue scores of a query (see the module docstring)."""

    def __init__(self, channels: ChannelSet) -> None:
        self.channels = channels
        self.terms = {c.name: _channel_terms(c) | BUILTIN_CUES.get(c.name, frozenset()) for c in channels}
        keyword = keyword_like_channel(channels)
        self.keyword_channel = keyword.name if keyword else None
        spoken = next((c for c in channels if any(h in c.description.lower() for h in _SPOKEN_HINTS)), None)
        self.spoken_channel = spoken.name if spoken else None

    def read(self, query: str) -> Cues:
        scores = dict.fromkeys(self.channels.names, 0.0)
        hits: dict[str, list[str]] = {name: [] for name in self.channels.names}
        for word in _words(query):
            if word in _STOPWORDS:
                continue
            for name, terms in self.terms.items():
                if word in terms or any(len(t) >= _MIN_STEM and word.startswith(t) for t in terms):
                    scores[name] += 1.0
                    hits[name].append(word)
        if self.keyword_channel is not None:
            names = _proper_nouns(query)
            years = _YEAR.findall(query)
            tags = [w for w in query.split() if w.startswith("#")]
            scores[self.keyword_channel] += 1.5 * len(names) + 1.0 * len(years) + 1.5 * len(tags)
            hits[self.keyword_channel] += names + years + tags
        if self.spoken_channel is not None:
            quotes = _QUOTED.findall(query)
            scores[self.spoken_channel] += 2.0 * len(quotes)
            hits[self.spoken_channel] += quotes
        return Cues(scores, hits)


def _proper_nouns(query: str) -> list[str]:
    """Runs of capitalized words that are not just the query's first word ("Taylor Swift", "BBC")."""
    runs: list[str] = []
    current: list[str] = []
    for index, token in enumerate(query.replace('"', " ").split()):
        word = token.strip(".,;:!?()'")
        capitalized = bool(word) and (word[0].isupper() or word.isupper()) and word.lower() not in _STOPWORDS
        if capitalized and not (index == 0 and word.istitle() and len(word) > 1 and not word.isupper()):
            current.append(word)
            continue
        if current:
            runs.append(" ".join(current))
            current = []
    if current:
        runs.append(" ".join(current))
    return runs


# ---------------------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------------------
def _rng(*parts: object) -> random.Random:
    """A generator seeded by the parts (str seeds are hashed with SHA-512: stable across processes)."""
    return random.Random("|".join(str(p) for p in parts))  # noqa: S311 - reproducible simulation, not security


def _grid(weights: Mapping[str, float], names: tuple[str, ...], units: int) -> dict[str, float]:
    """Weights on a 1/``units`` grid, summing to exactly 1."""
    parts = largest_remainder(units, {name: max(0.0, weights[name]) for name in names})
    return {name: parts[name] / units for name in names}


class SimulatedModels:
    """The responder (``BedrockFake.responder``) and judge (``on_evaluation_complete``) of a simulated Bedrock.

    ``categories`` maps normalized query texts to the synthesizer's category for this run (see
    :func:`simulation.runner.planned_categories`); ``clock`` receives the part of each simulated latency that is
    not slept for real; ``time_scale`` is the share of each latency that is slept for real (0: none).
    """

    def __init__(
        self,
        channels: ChannelSet,
        *,
        teacher_model_ids: Collection[str],
        seed: int = 0,
        categories: Mapping[str, str] | None = None,
        clock: VirtualClock | None = None,
        time_scale: float = 0.0,
    ) -> None:
        if not 0.0 <= time_scale <= 1.0:
            raise ValueError(f"time_scale must be within 0..1, got {time_scale}")
        self.channels = channels
        self.names = channels.names
        self.teacher_model_ids = frozenset(teacher_model_ids)
        self.seed = seed
        self.categories = dict(categories or {})
        self.clock = clock
        self.time_scale = time_scale
        self.reader = QueryReader(channels)
        self._student_prompts = frozenset(student_prompt(channels, reasoning=reasoning) for reasoning in (True, False))
        self._weights_only_prompt = student_prompt(channels, reasoning=False)
        self._lock = threading.Lock()
        self._attempts: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()  # by role

    # ------------------------------------------------------------------------------------------------ roles
    def role_of(self, request: ConverseRequest) -> str:
        if request.target_kind == "deployment":
            return DISTILLED
        if request.model_id in self.teacher_model_ids:
            return TEACHER
        if request.system_text.strip() in self._student_prompts:
            return BASE_STUDENT  # an undistilled model given only a one-sentence student prompt
        return BASELINE

    def __call__(self, request: ConverseRequest) -> ConverseReply:
        role = self.role_of(request)
        query = request.user_text
        with self._lock:
            attempt = self._attempts[f"{role}|{request.model_id}|{query}"]
            self._attempts[f"{role}|{request.model_id}|{query}"] += 1
        stop_reason = "end_turn"
        if role == TEACHER:
            text = self.teacher_answer(query)
            if attempt == 0 and _rng(self.seed, "teacher-cut", query).random() < 0.02:
                text, stop_reason = text[: len(text) // 3], "max_tokens"
        elif role == DISTILLED:  # trained on both student prompts: answers in the form the prompt asks for
            text = self.distilled_answer(query, reasoning=request.system_text.strip() != self._weights_only_prompt)
        elif role == BASE_STUDENT:
            text = self.base_student_answer(query)
        else:
            text = self.baseline_answer(query, request.model_id)
        latency_ms = latency_profile(request.model_id, deployment=role == DISTILLED).sample(
            _rng(self.seed, "latency", request.model_id, query, attempt)
        )
        self._wait(latency_ms / 1000.0)
        with self._lock:
            self.answers[role] += 1
        return ConverseReply(
            text=text,
            latency_ms=max(1, round(latency_ms - NETWORK_MS)),
            stop_reason=stop_reason,
        )

    def _wait(self, seconds: float) -> None:
        """Sleep ``time_scale`` of the latency for real; put the rest on this thread's virtual clock."""
        slept = 0.0
        if self.time_scale > 0:
            started = time.perf_counter()
            time.sleep(seconds * self.time_scale)
            slept = time.perf_counter() - started
        if self.clock is not None:
            self.clock.advance(max(0.0, seconds - slept))

    # ----------------------------------------------------------------------------------------------- teacher
    def category_of(self, query: str) -> str | None:
        return self.categories.get(normalize_query(query))

    def teacher_weights(self, query: str) -> dict[str, float]:
        """The simulated teacher's weights for ``query`` (0.05 grid, sum exactly 1)."""
        cues = self.reader.read(query).scores
        rng = _rng(self.seed, "teacher", query)
        category = self.category_of(query)
        names = self.names
        ranked = sorted(names, key=lambda n: (-cues[n], names.index(n)))
        raw: dict[str, float]
        if category and category.endswith(DOMINANT_SUFFIX) and category.removesuffix(DOMINANT_SUFFIX) in names:
            raw = self._lead(category.removesuffix(DOMINANT_SUFFIX), 0.65 + 0.2 * rng.random(), cues)
        elif category == BALANCED or (category is None and 0 < cues[ranked[1]] >= cues[ranked[0]] / 2):
            first, second = ranked[0], ranked[1]
            if cues[second] == 0 and self.reader.keyword_channel not in (None, first):
                second = str(self.reader.keyword_channel)
            raw = dict.fromkeys(names, 0.0)
            raw[first], raw[second] = 0.4 + 0.1 * rng.random(), 0.35 + 0.1 * rng.random()
            rest = 1.0 - raw[first] - raw[second]
            others = [n for n in names if n not in (first, second)]
            cue_sum = sum(cues[n] for n in others)
            for name in others:
                raw[name] = rest * cues[name] / cue_sum if cue_sum else 0.0
        elif any(cues.values()):  # complex, user queries, anything else: a spread by cue strength
            raw = {name: (cues[name] ** 1.3) * (0.9 + 0.2 * rng.random()) for name in names}
        else:  # nothing recognizable: lean on the first channel and the keyword channel
            raw = self._lead(names[0], 0.5, dict.fromkeys(names, 0.0))
        return _grid(raw, names, 20)

    def _lead(self, leader: str, share: float, cues: Mapping[str, float]) -> dict[str, float]:
        raw = dict.fromkeys(self.names, 0.0)
        raw[leader] = share
        others = [n for n in self.names if n != leader]
        cue_sum = sum(cues[n] for n in others)
        if cue_sum:
            for name in others:
                raw[name] = (1.0 - share) * cues[name] / cue_sum
        else:  # like the teacher prompt's worked examples: the keyword channel (or the next one) takes the rest
            keyword = self.reader.keyword_channel
            raw[keyword if keyword and keyword != leader else others[0]] = 1.0 - share
        return raw

    def reasoning(self, query: str, weights: Mapping[str, float]) -> str:
        hits = self.reader.read(query).hits
        ordered = sorted(self.names, key=lambda n: -weights[n])
        parts = []
        for name in ordered[:2]:
            if weights[name] <= 0:
                continue
            unique = {h.lower(): h for h in reversed(hits[name]) if h}  # first spelling of each cue, in order
            cue = ", ".join(f"'{h}'" for h in reversed(unique.values()))
            parts.append(f"{name} ({cue})" if cue else name)
        return "Weighted toward " + " and ".join(parts) + "." if parts else "No strong cue; spread the weight."

    def teacher_answer(self, query: str) -> str:
        weights = self.teacher_weights(query)
        return self._format(weights, self.reasoning(query, weights))

    # ------------------------------------------------------------------------------------------- candidates
    def _noisy(self, query: str, tag: str, spread: float, slip: float, confusion: float) -> dict[str, float]:
        """The teacher's weights with uniform noise of ``spread``; with probability ``slip`` 0.10-0.15 moves
        from the leading channel to another; with probability ``confusion`` the two leading channels swap."""
        weights = self.teacher_weights(query)
        rng = _rng(self.seed, tag, query)
        noisy = {name: max(0.0, w + rng.uniform(-spread, spread)) for name, w in weights.items()}
        ranked = sorted(self.names, key=lambda n: -noisy[n])
        if rng.random() < slip:
            moved = min(noisy[ranked[0]], rng.uniform(0.10, 0.15))
            noisy[ranked[0]] -= moved
            noisy[rng.choice(ranked[1:])] += moved
        if rng.random() < confusion:
            first, second = ranked[:2]
            noisy[first], noisy[second] = noisy[second], noisy[first]
        if not any(noisy.values()):
            noisy = dict(weights)
        total = sum(noisy.values())
        return round_weights({n: v / total for n, v in noisy.items()}, self.channels)

    def distilled_answer(self, query: str, *, reasoning: bool = True) -> str:
        """The distilled model's answer: the same weights for either student prompt, the reasoning only when asked."""
        weights = self._noisy(query, DISTILLED, spread=0.05, slip=0.12, confusion=0.02)
        return self._format(weights, self.reasoning(query, weights) if reasoning else None)

    def baseline_answer(self, query: str, model_id: str) -> str:
        weights = _grid(
            self._noisy(query, f"baseline:{model_id}", spread=0.1, slip=0.15, confusion=0.08), self.names, 20
        )
        text = self._format(weights, self.reasoning(query, weights))
        style = _rng(self.seed, "baseline-style", model_id, query).random()
        if style < 0.08:
            return f"Here is the routing for this query:\n```json\n{text}\n```"
        if style < 0.12:
            return f"{text}\nThe query mostly describes {max(weights, key=weights.__getitem__)} content."
        return text

    def base_student_answer(self, query: str) -> str:
        rng = _rng(self.seed, "base-student", query)
        weights = self.teacher_weights(query)
        lead = max(weights, key=weights.__getitem__)
        roll = rng.random()
        if roll < 0.55:  # prose
            return rng.choice(
                (
                    f"This search is mostly about {lead} content, so I would focus on the {lead} channel.",
                    f"Sure! For '{query}', the {lead} signal seems the most important, with some metadata.",
                    "I'd weight the channels based on what the user is looking for in the video.",
                )
            )
        if roll < 0.72:  # JSON cut off in the middle of the weights
            text = json.dumps({name: round(w, 2) for name, w in weights.items()})
            return text[: max(8, len(text) // 2)]
        if roll < 0.85:  # percentages and a sum far from 1
            return json.dumps({name: f"{round(w * 100)}%" for name, w in weights.items()})
        rough = self._noisy(query, "base-student-weights", spread=0.2, slip=0.3, confusion=0.3)
        return json.dumps({**rough, "reasoning": "Based on the query."})

    def _format(self, weights: Mapping[str, float], reasoning: str | None) -> str:
        decision = RoutingDecision.from_weights(weights, self.channels, reasoning=reasoning)
        return format_answer(decision, self.channels, with_reasoning=reasoning is not None)

    # -------------------------------------------------------------------------------------------------- judge
    def judge_score(self, response: str, reference: str) -> int:
        """The rubric score of one judged answer (1-5), computed from the weights alone."""
        parsed_reference = parse_routing_answer(reference, self.channels)
        if not parsed_reference.ok:
            raise ValueError(f"the judge dataset has an unreadable reference: {parsed_reference}")
        parsed = parse_routing_answer(response, self.channels)
        prediction = parsed.decision.weights if parsed.ok else None
        return rubric_score(prediction, parsed_reference.decision.weights, self.channels)

    def write_judge_results(self, job: EvaluationJobRequest) -> None:
        """``on_evaluation_complete``: write ``*_output.jsonl`` where Bedrock Model Evaluation writes its results."""
        s3 = boto3.client("s3", region_name="us-east-1")
        candidate = job.params["inferenceConfig"]["models"][0]["precomputedInferenceSource"][
            "inferenceSourceIdentifier"
        ]
        dataset_uri = job.params["evaluationConfig"]["automated"]["datasetMetricConfigs"][0]["dataset"][
            "datasetLocation"
        ]["s3Uri"]
        bucket, key = dataset_uri.removeprefix("s3://").split("/", 1)
        lines = []
        for record_text in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines():
            if not record_text.strip():
                continue
            record: dict[str, Any] = json.loads(record_text)
            score = self.judge_score(record["modelResponses"][0]["response"], record["referenceResponse"])
            result = {"metricName": "OverallQuality", "result": float(score)}
            lines.append(json.dumps({"inputRecord": record, "automatedEvaluationResult": {"scores": [result]}}))
        out_bucket, out_prefix = job.output_s3_uri.removeprefix("s3://").split("/", 1)
        s3.put_object(
            Bucket=out_bucket,
            Key=f"{out_prefix.rstrip('/')}/{job.job_name}/{job.job_id}/models/{candidate}/taskTypes/General/"
            f"datasets/heldout-{candidate}/simulated_output.jsonl",
            Body="\n".join(lines).encode(),
        )
