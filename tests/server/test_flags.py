"""Engine flags derived from engine-argument fields, in vLLM's value syntax."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from glm_vllm_compat.server._engine_fields import EngineField, recorded_fields
from glm_vllm_compat.server._flags import (
    ENGINE_DEST_PREFIX,
    add_engine_flags,
    engine_kwargs,
    human_int,
    json_or_str,
    kind_of,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [("2048", 2048), ("32k", 32000), ("32K", 32768), ("1.5k", 1500), ("2m", 2_000_000), ("1M", 1 << 20), (" 7 ", 7)],
)
def test_human_int(text: str, value: int) -> None:
    assert human_int(text) == value


@pytest.mark.parametrize("text", ["32kb", "1.5K", "abc", ""])
def test_human_int_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        human_int(text)


def test_human_int_auto_only_where_allowed() -> None:
    assert human_int("auto", auto=True) == -1
    with pytest.raises(argparse.ArgumentTypeError):
        human_int("auto")


@pytest.mark.parametrize(
    ("text", "value"),
    [('{"a": 1}', {"a": 1}), ("[1, 2]", [1, 2]), ("plain", "plain"), ("ngram", "ngram")],
)
def test_json_or_str(text: str, value: Any) -> None:
    assert json_or_str(text) == value


def test_broken_json_is_an_error() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid JSON"):
        json_or_str('{"method": ')


@pytest.mark.parametrize(
    ("annotation", "kind", "optional", "choices"),
    [
        ("bool", "bool", False, None),
        ("bool | None", "bool", True, None),
        ("Optional[bool]", "bool", True, None),
        ("int", "int", False, None),
        ("Optional[int]", "int", True, None),
        ("int | None", "int", True, None),
        ("float", "float", False, None),
        ("str | list[str] | None", "list:str", True, None),
        ("Optional[Union[str, List[str]]]", "list:str", True, None),
        ("list[int] | None", "list:int", True, None),
        ("dict[str, Any] | None", "json", True, None),
        ("Optional[Dict[str, Any]]", "json", True, None),
        ("CompilationConfig", "json", False, None),
        ("HfOverrides", "json", False, None),
        ("Literal['mp', 'ray']", "str", False, ("mp", "ray")),
        ("typing.Optional[typing.Literal['lazy', 'eager']]", "str", True, ("lazy", "eager")),
        ("Literal[1, 8, 16]", "int", False, (1, 8, 16)),
        ("RunnerOption", "str", False, None),
        ("str | DistributedExecutorBackend | type[Executor] | None", "str", True, None),
        ("int | float", "float", False, None),
    ],
)
def test_kind_of(annotation: str, kind: str, optional: bool, choices: Any) -> None:
    assert kind_of(annotation) == (kind, optional, choices)


FIELDS = [
    EngineField("model", "str"),
    EngineField("max_model_len", "int | None"),
    EngineField("enable_prefix_caching", "bool | None"),
    EngineField("enforce_eager", "bool"),
    EngineField("tensor_parallel_size", "int"),
    EngineField("speculative_config", "dict[str, Any] | None"),
    EngineField("served_model_name", "str | list[str] | None"),
    EngineField("distributed_executor_backend", "str | DistributedExecutorBackend | None"),
    EngineField("enable_log_requests", "bool"),
    EngineField("kv_cache_dtype", "Literal['auto', 'fp8']"),
    EngineField("quantization", "str | None"),
    EngineField("device_ids", "list[int | str] | None"),
]


def _parse(argv: list[str], fields: list[EngineField] = FIELDS, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    add_engine_flags(parser, fields, skip, set())
    args = parser.parse_args(argv)
    return {k[len(ENGINE_DEST_PREFIX):]: v for k, v in vars(args).items()}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {}),  # unset flags stay unset: vLLM's defaults apply
        (["--max-model-len", "32k"], {"max_model_len": 32000}),
        (["--max-model-len=2K"], {"max_model_len": 2048}),
        (["--max-model-len", "auto"], {"max_model_len": -1}),
        (["--enable-prefix-caching"], {"enable_prefix_caching": True}),
        (["--no-enable-prefix-caching"], {"enable_prefix_caching": False}),
        (["--no-enforce-eager"], {"enforce_eager": False}),
        (["-tp", "2"], {"tensor_parallel_size": 2}),
        (["--speculative-config", '{"method": "ngram", "num_speculative_tokens": 3}'], {"speculative_config": {"method": "ngram", "num_speculative_tokens": 3}}),
        (["--served-model-name", "a", "b"], {"served_model_name": ["a", "b"]}),
        (["--distributed-executor-backend", "mp"], {"distributed_executor_backend": "mp"}),
        (["--quantization", "None"], {"quantization": None}),
        (["-q", "fp8"], {"quantization": "fp8"}),
        (["--kv-cache-dtype", "fp8"], {"kv_cache_dtype": "fp8"}),
        (["--disable-log-requests"], {"disable_log_requests": True}),  # historic spelling, a flag too
        (["--worker-use-ray"], {"worker_use_ray": True}),
        (["--device-ids", "2,3,GPU-a"], {"device_ids": [2, 3, "GPU-a"]}),
    ],
)
def test_engine_flags_parse_like_vllm(argv: list[str], expected: dict[str, Any]) -> None:
    assert _parse(argv) == expected


def test_spec_draft_tp_short_spelling() -> None:
    """vLLM 0.5.x - 0.7.x's parser has ``-spec-draft-tp`` for --speculative-draft-tensor-parallel-size (serve parity, 0.6.3)."""
    fields = [EngineField("speculative_draft_tensor_parallel_size", "Optional[int]")]
    assert _parse(["-spec-draft-tp", "1"], fields) == {"speculative_draft_tensor_parallel_size": 1}
    assert _parse(["--speculative-draft-tensor-parallel-size", "2"], fields) == {"speculative_draft_tensor_parallel_size": 2}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {}),
        (["--enable-chunked-prefill"], {"enable_chunked_prefill": True}),
        (["--enable-chunked-prefill", "False"], {"enable_chunked_prefill": False}),
        (["--enable-chunked-prefill=true"], {"enable_chunked_prefill": True}),
        (["--no-enable-chunked-prefill"], {"enable_chunked_prefill": False}),
    ],
)
def test_store_boolean_flags_take_an_optional_value(argv: list[str], expected: dict[str, Any]) -> None:
    """vLLM 0.5.x - 0.7.x's StoreBoolean flags: ``--enable-chunked-prefill [True|False]`` (serve parity, 0.5.5 / 0.6.3)."""
    assert _parse(argv, [EngineField("enable_chunked_prefill", "bool", optional_value=True)]) == expected


@pytest.mark.parametrize("argv", [["--enable-chunked-prefill", "maybe"], ["--no-enable-chunked-prefill", "True"]])
def test_store_boolean_flags_refuse_other_values(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(argv, [EngineField("enable_chunked_prefill", "bool", optional_value=True)])


def test_plain_boolean_flags_take_no_value() -> None:
    """Elsewhere a following word is not swallowed as the flag's value."""
    with pytest.raises(SystemExit):
        _parse(["--enable-chunked-prefill", "False"], [EngineField("enable_chunked_prefill", "bool")])


@pytest.mark.parametrize("argv", [["--kv-cache-dtype", "fp9"], ["--tensor-parallel-size", "two"], ["--model", "x"]])
def test_engine_flags_reject_bad_values(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(argv)


def test_server_owned_fields_are_skipped() -> None:
    parser = argparse.ArgumentParser()
    add_engine_flags(parser, FIELDS, {"served_model_name"}, set())
    assert "--served-model-name" not in {o for a in parser._actions for o in a.option_strings}


@pytest.mark.parametrize(
    ("argv", "expected", "notice"),
    [
        (["--disable-log-requests"], {"enable_log_requests": False}, "--disable-log-requests is the vLLM 0.4.0 .. 0.10.0 spelling"),
        (["--worker-use-ray"], {"distributed_executor_backend": "ray"}, "gets distributed_executor_backend='ray'"),
        (["--max-model-len", "1k"], {"max_model_len": 1000}, None),
    ],
)
def test_historic_spellings_are_translated_with_a_notice(argv: list[str], expected: dict[str, Any], notice: str | None) -> None:
    parser = argparse.ArgumentParser()
    add_engine_flags(parser, FIELDS, (), set())
    notices: list[str] = []
    assert engine_kwargs(parser.parse_args(argv), FIELDS, "0.32.0", notices.append) == expected
    assert (notice in notices[0]) if notice else notices == []


def test_historic_spelling_that_cannot_be_translated_names_the_releases() -> None:
    parser = argparse.ArgumentParser()
    add_engine_flags(parser, FIELDS, (), set())
    with pytest.raises(Exception, match=r"engine_use_ray.*0\.32\.0.*0\.4\.0 \.\. 0\.6\.1"):
        engine_kwargs(parser.parse_args(["--engine-use-ray"]), FIELDS, "0.32.0", print)


@pytest.mark.parametrize("version", ["0.32.0", "0.8.5", "0.6.3", "0.4.0", "0.10.1.1"])
def test_every_recorded_release_gets_its_own_flags(version: str) -> None:
    fields = recorded_fields(version)
    assert fields is not None
    parser = argparse.ArgumentParser(allow_abbrev=False)
    add_engine_flags(parser, fields, ("model",), set())
    options = {o for a in parser._actions for o in a.option_strings}
    names = {f.name for f in fields} - {"model"}
    assert {"--" + n.replace("_", "-") for n in names} <= options
    # a release's bool fields all take --no-
    bools = [f.name for f in fields if kind_of(f.annotation)[0] == "bool"]
    assert bools and all("--no-" + b.replace("_", "-") in options for b in bools)
