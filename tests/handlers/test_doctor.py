"""``python -m cli doctor`` against moto (STS, SSM, API Gateway, IAM, CloudFormation), the botocore-validating Bedrock
fake and a Service Quotas client stubbed with botocore's Stubber (requests and responses checked against the
service model): a fresh account that can deploy, a Legacy teacher, missing model access, a missing API Gateway
logging role, low and exhausted quotas, no bootstrap, expired credentials.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cli.app import Terminal
from cli.errors import EXIT_NOT_READY
from cli.main import main
from infra.config import load_config
from simulation.bedrock_fake import BedrockFake

REGION = "us-east-1"
NOVA_PRO_RPM = "Cross-region model inference requests per minute for Amazon Nova Pro"
NOVA_PRO_TPM = "Cross-region model inference tokens per minute for Amazon Nova Pro"


@dataclasses.dataclass
class Doctor:
    code: int
    out: str

    def line(self, title: str) -> str:
        """The checklist line of ``title`` (and its fix line, when it has one)."""
        lines = self.out.splitlines()
        for index, line in enumerate(lines):
            mark, _, rest = line.strip().partition(" ")
            if line.startswith("  ") and mark in ("✓", "!", "✗") and rest.lstrip().startswith(f"{title} "):
                fix = lines[index + 1] if index + 1 < len(lines) and "fix:" in lines[index + 1] else ""
                return f"{line}\n{fix}".strip()
        raise AssertionError(f"no line for {title!r} in:\n{self.out}")


def quotas(*entries: tuple[str, float]) -> dict[str, Any]:
    return {
        "Quotas": [
            {"ServiceCode": "bedrock", "QuotaName": name, "QuotaCode": f"L-{i:08d}", "Value": value}
            for i, (name, value) in enumerate(entries)
        ]
    }


@pytest.fixture
def account(aws: None) -> Iterator[None]:
    """A bootstrapped account (CDK bootstrap version 33) with nothing else set."""
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/cdk-bootstrap/hnb659fds/version", Value="33", Type="String"
    )
    yield


def run_doctor(
    bedrock: BedrockFake, *argv: str, quota_response: dict[str, Any] | None = None, config: Any = None, **clients: Any
) -> Doctor:
    service_quotas = boto3.client("service-quotas", region_name=REGION)
    stubber = Stubber(service_quotas)
    stubber.add_response(
        "list_service_quotas",
        quota_response if quota_response is not None else quotas((NOVA_PRO_RPM, 10_000), (NOVA_PRO_TPM, 10_000_000)),
        {"ServiceCode": "bedrock"},
    )
    stubber.activate()
    out = io.StringIO()
    options: dict[str, Any] = {"config": config} if config is not None else {}
    code = main(
        ["doctor", *argv],
        terminal=Terminal(out=out, err=out),
        clients={"bedrock": bedrock.control, "service-quotas": service_quotas, **clients},
        **options,
    )
    return Doctor(code, out.getvalue())


def test_a_fresh_bootstrapped_account_is_ready_and_auto_picks_the_first_usable_teacher(
    account: None, bedrock: BedrockFake
) -> None:
    doctor = run_doctor(bedrock)
    assert doctor.code == 0, doctor.out
    assert "✓ credentials" in doctor.out and "(account 123456789012)" in doctor.out
    assert "✓ CDK bootstrap" in doctor.line("CDK bootstrap") and "version 33" in doctor.out
    # No account-level logging role yet: the default (create) makes one
    assert "✓" in doctor.line("API Gateway logging role") and "api_gateway_cloudwatch_role=create" in doctor.out
    # auto: Nova Premier is LEGACY, so Nova Pro would be chosen, and the refusal says why
    teacher = doctor.line("teacher (auto)")
    assert "us.amazon.nova-pro-v1:0 would be chosen" in teacher
    assert "refused first: us.amazon.nova-premier-v1:0: it is LEGACY in us-east-1" in teacher
    for role in ("student (customization base)", "student (inference)", "baseline router", "judge", "router default"):
        assert "✓" in doctor.line(role), role
    # The quota is ample for 10 x 16 calls in flight
    assert "✓" in doctor.line("teacher quota") and NOVA_PRO_RPM in doctor.out
    assert doctor.out.rstrip().endswith("Next: make deploy, then python -m cli start.")


def test_a_legacy_teacher_set_explicitly_is_a_blocker(account: None, bedrock: BedrockFake) -> None:
    doctor = run_doctor(bedrock, "--set", "teacher_model_id=us.amazon.nova-premier-v1:0")
    assert doctor.code == EXIT_NOT_READY
    line = doctor.line("teacher (explicit)")
    assert "✗" in line and "it is LEGACY in us-east-1" in line and "change 'teacher_model_id'" in line
    assert "1 blocker(s): teacher (explicit)" in doctor.out


def test_missing_model_access_is_a_blocker_with_the_console_fix(account: None, bedrock: BedrockFake) -> None:
    bedrock.set_model_access("amazon.nova-pro-v1:0", authorization="NOT_AUTHORIZED")
    bedrock.set_model_access("anthropic.claude-sonnet-4-5-20250929-v1:0", entitlement="NOT_AVAILABLE")
    bedrock.set_model_access("anthropic.claude-haiku-4-5-20251001-v1:0", agreement="PENDING")
    doctor = run_doctor(bedrock)
    assert doctor.code == EXIT_NOT_READY
    teacher = doctor.line("teacher (auto)")
    assert "no usable teacher for teacher_model_id 'auto'" in teacher
    assert (
        "us.amazon.nova-pro-v1:0: model access is not granted to this account (authorizationStatus NOT_AUTHORIZED)"
        in teacher
    )
    judge = doctor.line("judge")
    assert "✗" in judge and "no entitlement to it (entitlementAvailability NOT_AVAILABLE)" in judge
    assert "fix: request or enable access to anthropic.claude-sonnet-4-5-20250929-v1:0 in the Amazon Bedrock" in judge
    # An agreement not yet in place is a note: the first call may accept it
    baseline = doctor.line("baseline router")
    assert baseline.startswith("!") and "end-user agreement is PENDING" in baseline
    # The judge is not needed when the run does not use it
    without = run_doctor(bedrock, "--set", "judge=false")
    with pytest.raises(AssertionError, match="no line for 'judge'"):
        without.line("judge")


def test_an_account_without_the_logging_role_needs_create(account: None, bedrock: BedrockFake) -> None:
    config = dataclasses.replace(load_config(), api_gateway_cloudwatch_role="existing")
    doctor = run_doctor(bedrock, config=config)
    assert doctor.code == EXIT_NOT_READY
    line = doctor.line("API Gateway logging role")
    assert "✗" in line and "has no API Gateway CloudWatch Logs role" in line
    assert "fix: deploy with api_gateway_cloudwatch_role=create" in line


def test_an_account_with_a_logging_role_is_told_to_keep_it(account: None, bedrock: BedrockFake) -> None:
    iam = boto3.client("iam", region_name=REGION)
    arn = iam.create_role(RoleName="apigw-logs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("apigateway", region_name=REGION).update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}]
    )
    with_create = run_doctor(bedrock)
    line = with_create.line("API Gateway logging role")
    assert "!" in line and arn in line and "api_gateway_cloudwatch_role=existing" in line
    assert with_create.code == 0  # a note, not a blocker
    existing = run_doctor(bedrock, config=dataclasses.replace(load_config(), api_gateway_cloudwatch_role="existing"))
    assert "✓" in existing.line("API Gateway logging role")


def test_a_low_teacher_quota_projects_the_labeling_time_and_the_concurrency_to_use(
    account: None, bedrock: BedrockFake
) -> None:
    doctor = run_doctor(bedrock, quota_response=quotas((NOVA_PRO_RPM, 200), (NOVA_PRO_TPM, 800_000)))
    line = doctor.line("teacher quota")
    assert "!" in line
    # 10,300 queries (10,000 + 300 held out) x 1.05 calls at 200 requests a minute: about 54 minutes, bound by the quota
    assert "160 calls in flight" in line and "labeling takes ~54 min limited by the quota" in line
    assert "keep concurrency x threads at or below 6" in line
    assert doctor.code == 0
    # At the recommended concurrency the plan fits the quota
    fitted = run_doctor(
        bedrock, "--set", "concurrency=1", "--set", "threads=6",
        quota_response=quotas((NOVA_PRO_RPM, 200), (NOVA_PRO_TPM, 800_000)),
    )  # fmt: skip
    assert "✓" in fitted.line("teacher quota")


def test_a_zero_quota_is_a_blocker(account: None, bedrock: BedrockFake) -> None:
    doctor = run_doctor(bedrock, quota_response=quotas((NOVA_PRO_RPM, 0), (NOVA_PRO_TPM, 800_000)))
    assert doctor.code == EXIT_NOT_READY and "✗" in doctor.line("teacher quota")


def test_a_full_deployment_quota_is_a_blocker(account: None, bedrock: BedrockFake) -> None:
    bedrock.job_polls_to_complete = 1
    from tests.handlers.test_bedrock_fake import active_deployment, completed_model

    active_deployment(bedrock, completed_model(bedrock))
    name = "On-demand custom model deployments per account"
    doctor = run_doctor(bedrock, quota_response=quotas((NOVA_PRO_RPM, 10_000), (NOVA_PRO_TPM, 10_000_000), (name, 1)))
    line = doctor.line("deployment quota")
    assert "✗" in line and "1 deployments exist" in line and "delete unused deployments" in line
    assert doctor.code == EXIT_NOT_READY


def test_an_unbootstrapped_account_is_told_to_bootstrap(aws: None, bedrock: BedrockFake) -> None:
    doctor = run_doctor(bedrock)
    assert doctor.code == EXIT_NOT_READY
    assert "fix: make bootstrap" in doctor.line("CDK bootstrap")


def test_expired_credentials_stop_the_checks_with_the_fix(aws: None, bedrock: BedrockFake) -> None:
    sts = boto3.client("sts", region_name=REGION)
    stubber = Stubber(sts)
    stubber.add_client_error(
        "get_caller_identity", "ExpiredToken", "The security token included in the request is expired"
    )
    stubber.activate()
    doctor = run_doctor(bedrock, sts=sts)
    assert doctor.code == EXIT_NOT_READY
    assert "✗ credentials" in doctor.out and "ExpiredToken" in doctor.out
    assert "Models" not in doctor.out  # nothing else can be checked


def test_doctor_help_describes_what_it_checks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["doctor", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("CDK bootstrap", "API Gateway CloudWatch Logs role", "lifecycle ACTIVE", "model access granted",
                   "teacher_model_id=auto", "quotas", "projected labeling time", "deployment quota"):  # fmt: skip
        assert phrase in text, phrase


def test_the_cli_does_not_import_powertools() -> None:
    # Powertools' Metrics fixes its namespace from the environment when first imported: the CLI (and the doctor's
    # shared checks) must not drag it in.
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = "import sys; import cli.main; print(sorted(m for m in sys.modules if m.startswith('aws_lambda_powertools')))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_deployed_stack_is_checked_with_its_own_models_and_logging_role(account: None, bedrock: BedrockFake) -> None:
    import json

    from tests.handlers.test_cli import deploy_stack

    # Given a stack deployed with another baseline (-c baseline_model_id=...) and its own logging role
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="stack-apigw-logs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("apigateway", region_name=REGION).update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}]
    )
    deploy_stack({"PreflightFunctionName": "Stack-Preflight", "ApiGatewayCloudWatchRoleArn": role})
    config = load_config()
    models = {"student_job": config.models.student_job, "student": config.models.student,
              "baseline": "us.amazon.nova-lite-v1:0", "judge": config.models.judge,
              "router": [m.model_id for m in config.router.models]}  # fmt: skip
    environment = {
        "MODELS": json.dumps(models),
        "TEACHER_PREFERENCE": json.dumps(list(config.teacher_preference)),
        "DISTILLATION_PAIRS": json.dumps({k: list(v) for k, v in config.distillation_pairs.items()}),
        "CANDIDATES": json.dumps([c.to_dict() for c in config.eval_candidates]),
    }
    lambda_client = boto3.client("lambda", region_name=REGION)
    stubber = Stubber(lambda_client)
    stubber.add_response(
        "get_function_configuration",
        {"FunctionName": "Stack-Preflight", "Environment": {"Variables": environment}},
        {"FunctionName": "Stack-Preflight"},
    )
    stubber.activate()
    doctor = run_doctor(bedrock, **{"lambda": lambda_client})
    # Then the models are the deployed ones, and the account's role is recognised as the stack's own
    assert "us.amazon.nova-lite-v1:0: ACTIVE" in doctor.line("baseline router")
    line = doctor.line("API Gateway logging role")
    assert "✓" in line and "the role this stack created" in line
    stubber.assert_no_pending_responses()


def test_judge_jobs_beyond_the_evaluation_job_quota_are_a_blocker(account: None, bedrock: BedrockFake) -> None:
    # The quota's name is not documented (unconfirmed): a count of evaluation jobs matches, a rate does not
    name = "Number of concurrent automatic model evaluation jobs"
    rates = ((NOVA_PRO_RPM, 10_000), (NOVA_PRO_TPM, 10_000_000), ("Model evaluation jobs prompts per job", 1000))
    candidates = len(load_config().eval_candidates)
    doctor = run_doctor(bedrock, "--set", "judge_repeats=3", quota_response=quotas(*rates, (name, 5)))
    line = doctor.line("judge job quota")
    assert "✗" in line and f"the judge starts {candidates * 3}" in line and "judge_repeats=1" in line
    assert doctor.code == EXIT_NOT_READY
    # One repeat fits; without any matching quota it is a note naming what the judge starts
    fits = run_doctor(bedrock, quota_response=quotas(*rates, (name, candidates)))
    assert "✓" in fits.line("judge job quota") and f"0 in progress + {candidates} to start" in fits.line(
        "judge job quota"
    )
    unknown = run_doctor(bedrock, quota_response=quotas(*rates))
    assert unknown.line("judge job quota").startswith("!") and "name is not documented" in unknown.line(
        "judge job quota"
    )
    # No judge, no check
    with pytest.raises(AssertionError, match="no line for 'judge job quota'"):
        run_doctor(bedrock, "--set", "judge=false", quota_response=quotas(*rates, (name, 0))).line("judge job quota")
