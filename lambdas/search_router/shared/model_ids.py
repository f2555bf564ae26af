"""Bedrock model identifiers: the one place that knows how ids, inference-profile ids and customization ids relate.

- ``us.amazon.nova-pro-v1:0`` is a system (cross-Region) inference profile; its foundation model is
  ``amazon.nova-pro-v1:0``. On-demand Nova inference needs the profile id.
- ``amazon.nova-micro-v1:0:128k`` is the customization id of Nova Micro (the context-length suffix); it names the
  student of a distillation job and is not valid for Converse. Its base model is ``amazon.nova-micro-v1:0``.
- ``"auto"`` as a teacher means: pick the first usable teacher of the configured preference list at run time.

Pure string rules, shared by the CDK app (``infra/``), the functions and the CLI.
"""

from __future__ import annotations

import re
from typing import Final

AUTO_TEACHER: Final = "auto"
"""``teacher_model_id`` value that selects the teacher at run time (see :mod:`search_router.pipeline.model_checks`)."""

GEO_PREFIXES: Final = ("us.", "eu.", "apac.", "us-gov.", "ca.", "jp.", "au.", "global.")
"""Prefixes of system-defined cross-Region inference-profile ids."""

MODEL_ID_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9.:_-]{2,199}$")
"""A foundation-model, inference-profile or customization id (ARNs are checked separately)."""

_CONTEXT_SUFFIX: Final = re.compile(r":\d+k$")


def is_inference_profile_id(model_id: str) -> bool:
    """True for system inference-profile ids such as ``us.amazon.nova-micro-v1:0``."""
    return model_id.startswith(GEO_PREFIXES)


def foundation_model_id(model_id: str) -> str:
    """``us.amazon.nova-micro-v1:0`` → ``amazon.nova-micro-v1:0``; other ids are returned as they are."""
    if is_inference_profile_id(model_id):
        return model_id.split(".", 1)[1]
    return model_id


def base_model_id(model_id: str) -> str:
    """The model family an id belongs to, without profile prefix or context suffix:
    ``us.amazon.nova-pro-v1:0`` and ``amazon.nova-pro-v1:0:300k`` → ``amazon.nova-pro-v1:0``."""
    return _CONTEXT_SUFFIX.sub("", foundation_model_id(model_id))


def is_customization_id(model_id: str) -> bool:
    """True for ids with a context-length suffix (``amazon.nova-micro-v1:0:128k``)."""
    return bool(_CONTEXT_SUFFIX.search(model_id))
