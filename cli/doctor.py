"""``doctor``: check the AWS account before deploying and before a run, so nothing fails after money is spent.

Reads the real account with the caller's credentials (read-only calls) and prints a checklist, each line ✓ (fine),
! (works, but read the note) or ✗ (a blocker) with the exact fix:

- credentials and Region; the CDK bootstrap stack's version;
- the account-level API Gateway CloudWatch Logs role (which ``api_gateway_cloudwatch_role`` value to deploy with);
- every model a run and the router use — the teacher (and which one ``auto`` picks), the student, the baseline,
  the judge, the evaluation candidates, the router's default and fallbacks — with the same rules as the
  pipeline's Preflight (:mod:`search_router.adapters.bedrock_catalog`): lifecycle ACTIVE, model access granted,
  distillation offered and paired in the Region;
- the teacher's on-demand requests/tokens-per-minute quotas against the planned labeling concurrency, with the
  projected labeling time; the custom model deployment quota against the deployments that exist.

Exit code 0 when nothing blocks, :data:`EXIT_NOT_READY` when a blocker was found (1-5 as for every command).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cli.app import OUTPUT_API_GATEWAY_ROLE, OUTPUT_PREFLIGHT_FUNCTION, App
from cli.errors import EXIT_NOT_READY, CliError, NotFoundError
from cli.estimate import token_sizes
from cli.start import add_settings_arguments, local_pipeline_defaults, overrides_from, pipeline_defaults, validate
from infra.config import DISTILLED_CANDIDATE_MODEL, DOCUMENTED_DISTILLATION_REGIONS, SUPPORTED_REGIONS, AppConfig
from search_router.adapters.bedrock_catalog import BedrockCatalog, ModelPlan, assess_models, plan_from_environment
from search_router.contract.run import RunSettings
from search_router.pipeline.model_checks import Verdict, fix_for
from search_router.pipeline.quotas import (
    REQUESTS,
    TEACHER_CALL_SECONDS,
    TOKENS,
    Quota,
    custom_model_deployment_quotas,
    evaluation_job_quotas,
    find_model_quota,
    project_labeling,
)
from search_router.shared.model_ids import foundation_model_id, is_inference_profile_id

CDK_BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"  # the default qualifier's version parameter
MIN_BOOTSTRAP_VERSION = 6  # what aws-cdk-lib's default synthesizer requires (CheckBootstrapVersion rule)
RETRIES_PER_QUERY = 1.05  # labeling calls per query: invalid answers are asked again once (~5% of queries)

OK, WARN, FAIL = "ok", "warn", "fail"
_MARKS = {True: {OK: "✓", WARN: "!", FAIL: "✗"}, False: {OK: "OK", WARN: "!!", FAIL: "XX"}}
_ACCESS_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


@dataclass(frozen=True)
class Check:
    status: str
    title: str
    detail: str
    fix: str | None = None


@dataclass
class Section:
    title: str
    checks: list[Check] = field(default_factory=list)

    def add(self, status: str, title: str, detail: str, fix: str | None = None) -> None:
        self.checks.append(Check(status, title, detail, fix))


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "doctor",
        parents=[common],
        help="check the AWS account before deploying and before a run (read-only)",
        description="Check the account and Region with your credentials before any money is spent: credentials, "
        "CDK bootstrap, the API Gateway CloudWatch Logs role (and which api_gateway_cloudwatch_role to deploy with), "
        "every model a run and the router use (lifecycle ACTIVE, model access granted, distillation offered and "
        "paired in the Region; which teacher teacher_model_id=auto picks), the teacher's requests/tokens-per-minute "
        "quotas against the planned labeling concurrency with the projected labeling time, and the custom model "
        "deployment quota. Makes only read calls. Run settings are the deployed defaults (cdk.json before the "
        "first deploy) with --set / --input-file applied, as for `start`.",
        epilog=f"Exit code 0 when nothing blocks, {EXIT_NOT_READY} when a blocker (✗) was found.",
    )
    add_settings_arguments(parser, "check with this run setting (repeatable), e.g. --set concurrency=2 --set threads=4")
    parser.set_defaults(handler=run)


# ---------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------
def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))


def check_account(app: App, section: Section) -> bool:
    """Credentials and Region; False when nothing else can be checked."""
    try:
        identity = app.client("sts").get_caller_identity()
    except ClientError as exc:
        section.add(FAIL, "credentials", f"{_code(exc)}: {_message(exc)}", "refresh or configure credentials")
        return False
    section.add(OK, "credentials", f"{identity['Arn']} (account {identity['Account']})")
    region = app.region
    if region not in SUPPORTED_REGIONS:
        section.add(
            FAIL,
            "Region",
            f"{region}: on-demand custom model deployment is offered in {', '.join(SUPPORTED_REGIONS)} only",
            "set 'region' in cdk.json (or --region) to us-east-1",
        )
    elif region not in DOCUMENTED_DISTILLATION_REGIONS:
        section.add(
            WARN,
            "Region",
            f"{region}: the Bedrock user guide lists Nova Micro distillation in "
            f"{', '.join(DOCUMENTED_DISTILLATION_REGIONS)} only; the model checks below read this Region's catalog",
            "deploy to us-east-1 unless the student check below passes",
        )
    else:
        section.add(OK, "Region", f"{region}: distillation and on-demand custom model deployment are offered")
    return True


def check_bootstrap(app: App, section: Section) -> None:
    try:
        value = app.client("ssm").get_parameter(Name=CDK_BOOTSTRAP_PARAMETER)["Parameter"]["Value"]
    except ClientError as exc:
        if _code(exc) == "ParameterNotFound":
            section.add(
                FAIL,
                "CDK bootstrap",
                f"not bootstrapped in {app.region} ({CDK_BOOTSTRAP_PARAMETER} does not exist)",
                "make bootstrap (cdk bootstrap), once per account and Region",
            )
            return
        section.add(WARN, "CDK bootstrap", f"could not read {CDK_BOOTSTRAP_PARAMETER}: {_code(exc)}")
        return
    try:
        version = int(value)
    except ValueError:
        version = -1
    if version < MIN_BOOTSTRAP_VERSION:
        section.add(
            FAIL,
            "CDK bootstrap",
            f"version {value}, this app needs {MIN_BOOTSTRAP_VERSION} or later",
            "make bootstrap (re-bootstraps with the project's CDK CLI)",
        )
    else:
        section.add(OK, "CDK bootstrap", f"version {version} (needs {MIN_BOOTSTRAP_VERSION} or later)")


def check_api_gateway_role(app: App, section: Section) -> None:
    configured = app.config.api_gateway_cloudwatch_role
    title = "API Gateway logging role"
    try:
        role_arn = app.client("apigateway").get_account().get("cloudwatchRoleArn")
    except ClientError as exc:
        section.add(WARN, title, f"could not read the account setting: {_code(exc)}: {_message(exc)}")
        return
    if role_arn and not _role_exists(app, role_arn):
        role_arn_text = f"{role_arn} (that role does not exist any more)"
        if configured == "existing":
            section.add(
                FAIL,
                title,
                f"the account's setting names {role_arn_text}: stage logging would fail to deploy",
                'deploy with api_gateway_cloudwatch_role=create (make deploy CDK_ARGS="-c '
                'api_gateway_cloudwatch_role=create")',
            )
        else:
            section.add(OK, title, f"the account's setting names {role_arn_text}; the stack creates a new one")
        return
    if not role_arn:
        if configured == "existing":
            section.add(
                FAIL,
                title,
                f"this account has no API Gateway CloudWatch Logs role in {app.region}, and "
                "api_gateway_cloudwatch_role=existing: the stage would fail to deploy ('CloudWatch Logs role ARN "
                "must be set in account settings to enable logging')",
                "deploy with api_gateway_cloudwatch_role=create (the default)",
            )
        else:
            section.add(OK, title, "none set yet; api_gateway_cloudwatch_role=create makes one (retained on destroy)")
        return
    if role_arn == _stack_logging_role(app):
        section.add(OK, title, f"{role_arn}: the role this stack created (api_gateway_cloudwatch_role=create)")
        return
    if configured == "create":
        section.add(
            WARN,
            title,
            f"the account already has one ({role_arn}); api_gateway_cloudwatch_role=create would replace the account "
            "setting with the stack's own role (same permissions, kept on destroy)",
            "keep your role with api_gateway_cloudwatch_role=existing in cdk.json",
        )
    else:
        section.add(OK, title, f"{role_arn} (api_gateway_cloudwatch_role=existing uses it)")


def _stack_logging_role(app: App) -> str | None:
    """The API Gateway logging role the deployed stack created, if it is deployed and created one."""
    try:
        return app.outputs.get(OUTPUT_API_GATEWAY_ROLE)
    except NotFoundError:
        return None


def _role_exists(app: App, role_arn: str) -> bool:
    """False only when IAM says the role does not exist (no permission to look: assume it does)."""
    try:
        app.client("iam").get_role(RoleName=role_arn.rsplit("/", 1)[-1])
    except ClientError as exc:
        return _code(exc) != "NoSuchEntity"
    return True


def deployed_plan(app: App, settings: RunSettings) -> ModelPlan | None:
    """The deployed stack's own models (its Preflight function's environment), or None when not deployed (or
    deployed by a version without the output)."""
    try:
        name = app.outputs.get(OUTPUT_PREFLIGHT_FUNCTION)
    except NotFoundError:
        return None
    if not name:
        return None
    environ = app.client("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    return plan_from_environment(environ, teacher=settings.teacher_model_id, judge=settings.judge)


def model_plan(config: AppConfig, settings: RunSettings) -> ModelPlan:
    """The models ``cdk.json`` configures (what a deploy of this checkout would use)."""
    models = config.models
    return ModelPlan(
        teacher=settings.teacher_model_id,
        teacher_preference=config.teacher_preference,
        distillation_pairs=config.distillation_pairs,
        student_job=models.student_job,
        student=models.student,
        baseline=models.baseline,
        judge=models.judge if settings.judge else None,
        candidates=tuple(c.model for c in config.eval_candidates if c.model != DISTILLED_CANDIDATE_MODEL),
        router=tuple(m.model_id for m in config.router.models),
    )


def _verdict_check(section: Section, verdict: Verdict, region: str, title: str | None = None) -> None:
    r = verdict.requirement
    name = title or r.role
    if not verdict.usable:
        section.add(FAIL, name, f"{r.model_id}: {verdict.reason()}", fix_for(verdict, region))
    elif verdict.warnings:
        section.add(WARN, name, f"{r.model_id}: usable; " + "; ".join(verdict.warnings))
    else:
        section.add(OK, name, f"{r.model_id}: ACTIVE, model access granted")


def check_models(app: App, settings: RunSettings, section: Section) -> tuple[str | None, BedrockCatalog | None]:
    """The model checks of Preflight; returns the teacher a run would use (None when none fits)."""
    catalog = BedrockCatalog(app.client("bedrock"), app.region)
    try:
        readiness = assess_models(catalog, deployed_plan(app, settings) or model_plan(app.config, settings))
    except ClientError as exc:
        section.add(FAIL, "Bedrock catalog", f"{_code(exc)}: {_message(exc)}", "retry, or check the IAM permissions")
        return None, None
    choice = readiness.teacher
    label = f"teacher ({'auto' if choice.automatic else 'explicit'})"
    if choice.model_id is None:
        section.add(FAIL, label, choice.failure_message(), None)
    else:
        refused = [v for v in choice.considered if not v.usable]
        detail = f"{choice.model_id}" + (" would be chosen" if choice.automatic else "") + ": ACTIVE, access granted"
        if refused:
            detail += "; refused first: " + "; ".join(f"{v.requirement.model_id}: {v.reason()}" for v in refused)
        chosen = next(v for v in choice.considered if v.usable)
        section.add(WARN if chosen.warnings else OK, label, detail + "".join(f"; {w}" for w in chosen.warnings))
    if choice.not_in_preference:
        section.add(
            WARN,
            "other teachers",
            "distillation-capable here but not in teacher_preference: " + ", ".join(choice.not_in_preference),
            "to consider one, add its inference profile to teacher_preference and its pair to distillation_pairs",
        )
    for verdict in readiness.verdicts:
        _verdict_check(section, verdict, app.region)
    for verdict in readiness.router:
        _verdict_check(section, verdict, app.region)
    return choice.model_id, catalog


def _quotas(app: App) -> list[Quota]:
    paginator = app.client("service-quotas").get_paginator("list_service_quotas")
    return [Quota.from_response(q) for page in paginator.paginate(ServiceCode="bedrock") for q in page["Quotas"]]


def check_quotas(
    app: App, settings: RunSettings, teacher: str | None, catalog: BedrockCatalog | None, section: Section
) -> None:
    try:
        quotas = _quotas(app)
    except ClientError as exc:
        section.add(WARN, "Service Quotas", f"could not list Bedrock quotas: {_code(exc)}: {_message(exc)}")
        return
    if teacher is not None and catalog is not None:
        check_teacher_quota(app, settings, teacher, catalog=catalog, quotas=quotas, section=section)
    check_deployment_quota(app, quotas, section)
    if settings.judge:
        check_judge_quota(app, settings, quotas, section)


def check_judge_quota(app: App, settings: RunSettings, quotas: list[Quota], section: Section) -> None:
    """The judge starts one evaluation job per evaluated candidate and ``judge_repeats`` at once."""
    wanted = len(app.config.eval_candidates) * settings.judge_repeats
    limits = evaluation_job_quotas(quotas)
    if not limits:
        section.add(
            WARN,
            "judge job quota",
            f"no quota on concurrent model evaluation jobs was found in Service Quotas (its name is not documented); "
            f"the judge starts {wanted} at once ({len(app.config.eval_candidates)} candidates x judge_repeats "
            f"{settings.judge_repeats}); a job refused for quota is reported missing, never retried",
        )
        return
    try:
        pages = app.client("bedrock").get_paginator("list_evaluation_jobs").paginate(statusEquals="InProgress")
        running = sum(len(page.get("jobSummaries", [])) for page in pages)
    except ClientError as exc:
        section.add(WARN, "judge job quota", f"could not count evaluation jobs: {_code(exc)}: {_message(exc)}")
        return
    limit = min(limits, key=lambda q: q.value)
    if running + wanted > limit.value:
        section.add(
            FAIL,
            "judge job quota",
            f"'{limit.name}' = {limit.value:,.0f}, {running} in progress, and the judge starts {wanted} "
            f"({len(app.config.eval_candidates)} candidates x judge_repeats {settings.judge_repeats}): the jobs "
            "over the quota would be refused after hours of training",
            "lower judge_repeats (--set judge_repeats=1), wait for the running jobs, or request a quota increase",
        )
    else:
        section.add(
            OK, "judge job quota", f"'{limit.name}' = {limit.value:,.0f}; {running} in progress + {wanted} to start"
        )


def check_teacher_quota(
    app: App,
    settings: RunSettings,
    teacher: str,
    *,
    catalog: BedrockCatalog,
    quotas: list[Quota],
    section: Section,
) -> None:
    name = catalog.facts(teacher).model_name or foundation_model_id(teacher)
    cross = is_inference_profile_id(teacher)
    rpm = find_model_quota(quotas, name, kind=REQUESTS, cross_region=cross)
    tpm = find_model_quota(quotas, name, kind=TOKENS, cross_region=cross)
    sizes = token_sizes(app.config.channels, settings.seed)
    tokens_per_call = sizes.teacher_prompt + sizes.query + sizes.answer
    in_flight = settings.concurrency * settings.threads
    calls = round(settings.total_queries * RETRIES_PER_QUERY)
    plan = project_labeling(
        calls=calls,
        in_flight=in_flight,
        tokens_per_call=tokens_per_call,
        rpm_quota=rpm.value if rpm else None,
        tpm_quota=tpm.value if tpm else None,
    )
    found = "; ".join(f"'{q.name}' = {q.value:,.0f}" for q in (rpm, tpm) if q) or "none found"
    if rpm is None and tpm is None:
        section.add(
            WARN,
            "teacher quota",
            f"no requests/tokens-per-minute quota found for {name} ({teacher}) in Service Quotas; labeling at "
            f"{in_flight} calls in flight would take ~{plan.minutes:,.0f} min if unthrottled",
            "check: aws service-quotas list-service-quotas --service-code bedrock --query "
            f"\"Quotas[?contains(QuotaName, '{name}')]\"",
        )
        return
    if min(q.value for q in (rpm, tpm) if q) <= 0:
        section.add(FAIL, "teacher quota", f"{found}: the teacher cannot be called", "request a quota increase")
        return
    detail = (
        f"{found}; planned {settings.concurrency} shards x {settings.threads} threads = {in_flight} calls in flight "
        f"(~{plan.demand_rpm:,.0f} requests/min at ~{TEACHER_CALL_SECONDS:g} s a call, ~{tokens_per_call:,.0f} tokens "
        f"each) for {calls:,} calls: labeling takes ~{plan.minutes:,.0f} min"
    )
    if plan.quota_bound:
        section.add(
            WARN,
            "teacher quota",
            detail + f" limited by the quota (~{plan.effective_rpm:,.0f}/min), with throttling and backoff",
            f"keep concurrency x threads at or below {plan.max_in_flight} (e.g. --set concurrency=1 --set "
            f"threads={min(64, plan.max_in_flight or 1)} for start), or request a quota increase for '{name}'",
        )
    else:
        section.add(OK, "teacher quota", detail)


def check_deployment_quota(app: App, quotas: list[Quota], section: Section) -> None:
    limits = custom_model_deployment_quotas(quotas)
    if not limits:
        section.add(
            WARN,
            "deployment quota",
            "no quota on the number of custom model deployments was found in Service Quotas (its name is not "
            "documented); each run creates one on-demand deployment",
        )
        return
    try:
        pages = app.client("bedrock").get_paginator("list_custom_model_deployments").paginate()
        existing = sum(len(page.get("modelDeploymentSummaries", [])) for page in pages)
    except ClientError as exc:
        section.add(WARN, "deployment quota", f"could not count deployments: {_code(exc)}: {_message(exc)}")
        return
    limit = min(limits, key=lambda q: q.value)
    if existing >= limit.value:
        section.add(
            FAIL,
            "deployment quota",
            f"'{limit.name}' = {limit.value:,.0f} and {existing} deployments exist: a run would train for hours, then "
            "fail to deploy",
            "delete unused deployments (aws bedrock delete-custom-model-deployment) or request a quota increase",
        )
    else:
        section.add(OK, "deployment quota", f"'{limit.name}' = {limit.value:,.0f}; {existing} in use")


def check_stack(app: App, section: Section) -> bool:
    """Whether the stack is deployed (and usable); its defaults are then what a run uses."""
    try:
        outputs = app.outputs
    except NotFoundError as exc:
        section.add(OK, "stack", f"{exc.message}: checks use cdk.json's settings")
        return False
    section.add(OK, "stack", f"{outputs.stack_name} is {outputs.status}: checks use its deployed run defaults")
    return True


# ---------------------------------------------------------------------------------------------------------
# Running and printing
# ---------------------------------------------------------------------------------------------------------
def diagnose(app: App, overrides: dict[str, Any]) -> list[Section]:
    account = Section("Account")
    sections = [account]
    if not check_account(app, account):
        return sections
    check_bootstrap(app, account)
    check_api_gateway_role(app, account)
    deployed = check_stack(app, account)
    settings = validate(overrides, pipeline_defaults(app) if deployed else local_pipeline_defaults(app))
    models = Section(
        f"Models (teacher_model_id={settings.teacher_model_id}, judge {'on' if settings.judge else 'off'})"
    )
    sections.append(models)
    teacher, catalog = check_models(app, settings, models)
    quotas = Section("Quotas")
    sections.append(quotas)
    check_quotas(app, settings, teacher, catalog, quotas)
    return sections


def render(sections: list[Section], *, unicode: bool) -> list[str]:
    marks = _MARKS[unicode]
    width = max((len(c.title) for s in sections for c in s.checks), default=10)
    lines: list[str] = []
    for section in sections:
        lines.append(section.title)
        for check in section.checks:
            lines.append(f"  {marks[check.status]} {check.title:<{width}}  {check.detail}")
            if check.fix and check.status != OK:
                lines.append(f"    {'':<{width}}  fix: {check.fix}")
        lines.append("")
    blockers = [c for s in sections for c in s.checks if c.status == FAIL]
    warnings = [c for s in sections for c in s.checks if c.status == WARN]
    if blockers:
        lines.append(
            f"{len(blockers)} blocker(s): {', '.join(c.title for c in blockers)}. Fix them before deploying "
            "or starting a run."
        )
    else:
        lines.append(
            "No blocker"
            + (f" ({len(warnings)} note(s) above)." if warnings else ".")
            + " Next: make deploy, then python -m cli start."
        )
    return lines


def run(app: App, args: argparse.Namespace) -> int:
    overrides = overrides_from(args)
    try:
        sections = diagnose(app, overrides)
    except (BotoCoreError, ClientError) as exc:
        if isinstance(exc, ClientError) and _code(exc) in _ACCESS_CODES:
            raise
        raise CliError(f"the checks could not complete: {exc}") from exc
    terminal = app.terminal
    terminal.print(f"Doctor: stack {app.stack_name} in {app.region}")
    terminal.print("")
    for line in render(sections, unicode=terminal.supports_unicode()):
        terminal.print(line)
    return EXIT_NOT_READY if any(c.status == FAIL for s in sections for c in s.checks) else 0
