"""Every statement of every identity policy in the template, against the Service Authorization Reference.

No unknown action; ``"*"`` only for actions the SAR lists without a resource type (X-Ray, Bedrock List* and
the like, where AWS offers nothing narrower); every granted ARN of a resource type one of the statement's
actions is authorized on, and every action granted on a resource type it uses, so no grant silently never
matches. (That every call the functions make is allowed is tests/workflow/test_iam_against_sar.py.)
"""

from __future__ import annotations

from simulation.harness import TemplateResolver
from simulation.synth import Synthesized
from tests.policy.checks import statement_findings
from tests.policy.template import role_statements


def test_every_identity_policy_statement_matches_the_service_authorization_reference(synth: Synthesized) -> None:
    statements = role_statements(synth.template, TemplateResolver.for_template(synth.template))
    assert sum(len(found) for found in statements.values()) > 50  # every role's policy was read
    assert statement_findings(statements) == []


def test_the_api_key_and_waf_variants_are_clean_too(synth_with) -> None:  # type: ignore[no-untyped-def]
    variant = synth_with({"api_auth": "api_key", "api_waf": "true", "api_gateway_cloudwatch_role": "existing"})
    statements = role_statements(variant.template, TemplateResolver.for_template(variant.template))
    assert statement_findings(statements) == []
