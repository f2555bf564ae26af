"""Reading the router's promotion parameter from SSM Parameter Store, its failures as the model source's errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from search_router.adapters.aws_errors import error_code
from search_router.router.model_source import ParameterNotFound, ParameterUnavailable


def parameter_reader(ssm: Callable[[], Any], name: str) -> Callable[[], str]:
    """A ``read_parameter`` for :class:`~search_router.router.model_source.PromotedModelSource`: the value of
    parameter ``name`` through the client ``ssm()`` returns; :class:`ParameterNotFound` when it does not exist,
    :class:`ParameterUnavailable` (``"<code>: <error>"``) when it cannot be read now."""

    def read() -> str:
        try:
            response = ssm().get_parameter(Name=name)
        except ClientError as error:
            code = error_code(error)
            if code == "ParameterNotFound":
                raise ParameterNotFound(name) from None
            raise ParameterUnavailable(f"{code}: {error}") from None
        except BotoCoreError as error:
            raise ParameterUnavailable(f"{error_code(error)}: {error}") from None
        return str(response["Parameter"]["Value"])

    return read
