"""The Lambda factory: one set of defaults, Docker-free packaging, the shared domain package in every asset."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Match, Template

from infra.config import ConfigError, load_config, read_cdk_json_context
from infra.lambda_factory import FunctionSpec, LambdaFactory
from simulation.synth import Synthesized


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Path, dict]:
    outdir = tmp_path_factory.mktemp("factory")
    app = App(context=read_cdk_json_context(), outdir=str(outdir))
    config = load_config(app.node.get_all_context())
    stack = Stack(app, "FactoryTest", env=Environment(region=config.region))
    factory = LambdaFactory(stack, "Functions", config=config)
    factory.create(
        stack,
        "Example",
        FunctionSpec(
            handler="search_router.handlers.example.handler", description="test", timeout_seconds=120, memory_mb=512
        ),
    )
    assembly = app.synth()
    artifact = assembly.get_stack_artifact("FactoryTest")
    template = json.loads(Path(artifact.template_full_path).read_text())
    return Template.from_json(template), outdir, template


def test_functions_get_the_project_defaults(built: tuple[Template, Path, dict]) -> None:
    template, _, _ = built
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "Handler": "search_router.handlers.example.handler",
            "Timeout": 120,
            "MemorySize": 512,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON", "ApplicationLogLevel": "INFO"}),
            "Layers": [
                "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27",
                {"Ref": Match.string_like_regexp("^FunctionsSdkLayer")},
            ],
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_SERVICE_NAME": "example",
                        "CHANNELS": Match.string_like_regexp('"name":"visual"'),
                    }
                )
            },
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_the_code_asset_is_the_plain_lambdas_folder_with_the_domain_package(
    built: tuple[Template, Path, dict],
) -> None:
    _, outdir, _ = built
    manifest = json.loads((outdir / "FactoryTest.assets.json").read_text())
    file_assets = manifest["files"].values()
    code_dirs = [outdir / a["source"]["path"] for a in file_assets if a["source"].get("packaging") == "zip"]
    code = next((d for d in code_dirs if (d / "search_router").is_dir()), None)
    assert code is not None, "no zip asset holds the lambdas/ folder"
    assert (code / "search_router" / "shared" / "channels.py").is_file()
    assert (code / "search_router" / "adapters" / "clients.py").is_file()
    assert not list(code.rglob("__pycache__"))
    # Docker-free: no container image assets and no bundling step
    assert not manifest.get("dockerImages")
    assert all("executable" not in a["source"] for a in file_assets)


def test_every_function_ships_the_pinned_sdk_the_tests_ran_with(built: tuple[Template, Path, dict]) -> None:
    # The Lambda runtime's boto3 version is unpublished and the Powertools layer removes boto3: the functions get
    # exactly the boto3 and botocore that requirements.txt pins and this test suite runs with.
    import boto3
    import botocore

    _, outdir, template = built
    layer_id = next(k for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::LayerVersion")
    layer = template["Resources"][layer_id]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    key = layer["Properties"]["Content"]["S3Key"]
    manifest = json.loads((outdir / "FactoryTest.assets.json").read_text())
    (asset,) = [a for a in manifest["files"].values() if any(d["objectKey"] == key for d in a["destinations"].values())]
    folder = outdir / asset["source"]["path"] / "python"
    versions = {}
    for package in ("boto3", "botocore"):
        (info,) = folder.glob(f"{package}-*.dist-info")
        versions[package] = info.name.removeprefix(f"{package}-").removesuffix(".dist-info")
    assert versions == {"boto3": boto3.__version__, "botocore": botocore.__version__}
    pins = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text()
    assert f"boto3=={versions['boto3']}" in pins and f"botocore=={versions['botocore']}" in pins
    # and that this botocore knows the newer Bedrock operations the pipeline and the router call
    operations = {}
    for service, version in (("bedrock", "2023-04-20"), ("bedrock-runtime", "2023-09-30")):
        model = json.loads(
            gzip.decompress((folder / "botocore" / "data" / service / version / "service-2.json.gz").read_bytes())
        )
        operations[service] = set(model["operations"])
    assert {"CreateCustomModelDeployment", "GetFoundationModelAvailability", "CreateEvaluationJob"} <= operations[
        "bedrock"
    ]
    assert {"Converse", "ConverseStream"} <= operations["bedrock-runtime"]


def test_an_environment_over_lambdas_4kb_limit_names_the_channels_key() -> None:
    app = App(context=read_cdk_json_context())
    context = dict(app.node.get_all_context())
    context["channels"] = [
        {"name": f"channel_{i}", "description": "d" * 400, "examples": ["e" * 200] * 10} for i in range(3)
    ]
    config = load_config(context)
    stack = Stack(app, "TooBig")
    factory = LambdaFactory(stack, "Functions", config=config)
    with pytest.raises(ConfigError, match="'channels': the Lambda environment would be"):
        factory.create(stack, "Fn", FunctionSpec(handler="search_router.handlers.x.handler", description="x"))


def test_the_lambda_asset_is_one_package_and_each_function_is_named_after_its_handler_module(
    synth: Synthesized,
) -> None:
    from infra import LAMBDAS_DIR  # the asset folder
    from infra.lambda_factory import HANDLERS_PACKAGE, service_name

    # One import root: the asset folder holds the one package and nothing else
    assert sorted(p.name for p in LAMBDAS_DIR.iterdir() if p.name != "__pycache__") == ["search_router"]
    handlers = LAMBDAS_DIR / HANDLERS_PACKAGE.replace(".", "/")
    for function in synth.resources("AWS::Lambda::Function").values():
        handler = function["Properties"].get("Handler", "")
        if not handler.startswith(HANDLERS_PACKAGE + "."):
            continue  # CDK's own provider functions
        module = service_name(handler)
        assert (handlers / f"{module}.py").is_file(), handler
        assert function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == module
    with pytest.raises(ValueError, match=r"is not a function of search_router\.handlers"):
        service_name("routing.handler.handler")


def test_the_lambda_asset_ships_the_query_vocabulary_data_file(synth: Synthesized) -> None:
    from search_router.pipeline.queries.vocabulary import DATA_FILE

    # Given the staged assets of the functions (the folder lambdas/, as cdk synth stages it)
    staged = [path for path in synth.outdir.glob("asset.*") if (path / "search_router" / "handlers").is_dir()]

    # Then the synthesizer's vocabulary travels with its modules
    assert staged
    for asset in staged:
        assert (asset / "search_router" / "pipeline" / "queries" / DATA_FILE).is_file()
