"""The tags every run-time resource carries: the only record of which stack and run created it.

No imports: the CDK app reads these too (IAM conditions on ``aws:ResourceTag``/``aws:RequestTag``).
"""

STACK_TAG = "stack"  # the stack's name: the cleanup on `cdk destroy` and IAM conditions select by it
RUN_TAG = "run-id"  # the run's id: a failed run's compensation selects by it
PROJECT_TAG = "project"
PROJECT = "search-router-distillation"


def run_tags(stack_name: str, run_id: str) -> dict[str, str]:
    return {STACK_TAG: stack_name, RUN_TAG: run_id, PROJECT_TAG: PROJECT}
