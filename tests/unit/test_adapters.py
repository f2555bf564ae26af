"""The adapters' error classification (one ``error_code``, one named set of codes per kind of call), the model-call
errors they hand the domain, and the SSM parameter reader."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from search_router.adapters.aws_errors import (
    ROUTER_RETRY_CODES,
    TEACHER_RETRY_CODES,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    ClientError,
    error_code,
    error_message,
    reraise_transient,
)
from search_router.adapters.bedrock_runtime import call_error
from search_router.adapters.converse import BedrockConverse, converse_failure
from search_router.adapters.ssm import parameter_reader
from search_router.contract.errors import TransientError
from search_router.router.model_source import ParameterNotFound, ParameterUnavailable
from search_router.shared.model_calls import ModelCallError


def client_error(code: str | None, message: str = "it failed", operation: str = "Converse") -> ClientError:
    error: dict[str, str] = {"Message": message}
    if code is not None:
        error["Code"] = code
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


# --- one error_code ------------------------------------------------------------------------------------------------
def test_error_code_is_the_service_code_or_the_class_name() -> None:
    assert error_code(client_error("ThrottlingException")) == "ThrottlingException"
    assert error_code(client_error("404", operation="HeadObject")) == "404"
    assert error_code(client_error("throttlingException")) == "ThrottlingException"  # an in-stream member name
    assert error_code(client_error(None)) == "ClientError"
    assert error_code(ReadTimeoutError(endpoint_url="https://bedrock-runtime")) == "ReadTimeoutError"
    assert error_code(ValueError("x")) == "ValueError"


def test_error_message_is_the_service_message_or_the_text() -> None:
    assert error_message(client_error("ValidationException", "Input is too long")) == "Input is too long"
    assert "ValidationException" in error_message(client_error("ValidationException", ""))
    assert error_message(ValueError("broken")) == "broken"


# --- the named code sets, as each caller had them --------------------------------------------------------------------
def test_the_code_sets_of_each_kind_of_call() -> None:
    assert {"ThrottlingException", "ServiceUnavailableException"} == THROTTLING_CODES
    assert {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "TooManyRequestsException",
    } == TRANSIENT_CODES
    assert {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "InternalServerException",
    } == TEACHER_RETRY_CODES
    assert {
        "ThrottlingException",
        "ModelNotReadyException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ConnectionError",
    } == ROUTER_RETRY_CODES
    assert all(codes > THROTTLING_CODES for codes in (TRANSIENT_CODES, TEACHER_RETRY_CODES, ROUTER_RETRY_CODES))


def test_control_plane_throttling_becomes_a_transient_error_for_the_state_machine() -> None:
    with pytest.raises(TransientError, match="ThrottlingException: slow down"):
        reraise_transient(client_error("ThrottlingException", "slow down", "CreateEvaluationJob"))
    reraise_transient(client_error("ValidationException"))  # anything else is the caller's to word


# --- the pipeline's Converse calls ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "code", "retryable", "overload"),
    [
        (client_error("ThrottlingException"), "ThrottlingException", True, True),
        (client_error("ServiceUnavailableException"), "ServiceUnavailableException", True, True),
        (client_error("ModelNotReadyException"), "ModelNotReadyException", True, False),
        (client_error("ModelTimeoutException"), "ModelTimeoutException", True, False),
        (client_error("AccessDeniedException"), "AccessDeniedException", False, False),
        (ReadTimeoutError(endpoint_url="https://bedrock-runtime"), "ReadTimeoutError", True, False),
        (EndpointConnectionError(endpoint_url="https://bedrock-runtime"), "EndpointConnectionError", True, False),
        (ConnectionClosedError(endpoint_url="https://bedrock-runtime"), "ConnectionClosedError", False, False),
        (ParamValidationError(report="bad"), "ParamValidationError", False, False),
        (KeyError("text"), "KeyError", False, False),
    ],
)
def test_a_failed_converse_call_is_classified_for_labeling_and_evaluation(
    error: Exception, code: str, retryable: bool, overload: bool
) -> None:
    failure = converse_failure(error)
    assert (failure.code, failure.retryable, failure.overload) == (code, retryable, overload)


def test_bedrock_converse_raises_what_failed_as_a_model_call_error() -> None:
    class Refusing:
        def converse(self, **params: Any) -> dict[str, Any]:
            raise client_error("ValidationException", "Input is too long for requested model.")

    with pytest.raises(ModelCallError) as caught:
        BedrockConverse(Refusing())(model_id="m", system="", user="q", max_tokens=10, temperature=0.0)
    assert caught.value.code == "ValidationException"
    assert caught.value.detail == "Input is too long for requested model."
    assert not caught.value.retryable and isinstance(caught.value.__cause__, ClientError)


# --- the router's model calls ---------------------------------------------------------------------------------------
def test_the_router_retries_exactly_its_own_codes() -> None:
    assert call_error("ThrottlingException", "x").retryable
    assert call_error("ConnectionError", "x", private=False).retryable
    assert not call_error("ModelTimeoutException", "x").retryable  # a slow model: the next model, not again
    assert not call_error("Timeout", "x").retryable and not call_error("PoolExhausted", "x").retryable
    assert call_error("AccessDeniedException", "x").private and not call_error("Timeout", "x", private=False).private


# --- the promotion parameter ----------------------------------------------------------------------------------------
class Ssm:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def get_parameter(self, Name: str) -> dict[str, Any]:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return {"Parameter": {"Name": Name, "Value": self.outcome}}


def test_the_parameter_reader_returns_the_value_or_says_why_not() -> None:
    assert parameter_reader(lambda: Ssm('{"model_id": "m"}'), "/p")() == '{"model_id": "m"}'
    with pytest.raises(ParameterNotFound):
        parameter_reader(lambda: Ssm(client_error("ParameterNotFound", operation="GetParameter")), "/p")()
    with pytest.raises(ParameterUnavailable, match=r"^AccessDeniedException: "):
        parameter_reader(lambda: Ssm(client_error("AccessDeniedException", operation="GetParameter")), "/p")()
    with pytest.raises(ParameterUnavailable, match=r"^EndpointConnectionError: "):
        parameter_reader(lambda: Ssm(EndpointConnectionError(endpoint_url="https://ssm")), "/p")()
