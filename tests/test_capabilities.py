from __future__ import annotations

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from glm_vllm_compat import _capabilities, _history
from glm_vllm_compat._capabilities import (
    FLAGS,
    capabilities_for,
    engine_generation,
    flag_range,
    parse_vllm_version,
)
from glm_vllm_compat._errors import DevBuildWarning, UnknownParameter, UnsupportedVllmVersion

NEWEST = Version(_history.NEWEST)


@pytest.mark.parametrize(
    ("raw", "effective", "is_dev"),
    [
        ("0.4.0", "0.4.0", False),
        ("0.4.0+cu118", "0.4.0", False),
        ("0.6.3.post1", "0.6.3.post1", False),
        ("0.6.1.post2", "0.6.1.post2", False),
        ("0.10.1.1", "0.10.1.1", False),
        ("0.11.0rc1", "0.11.0", False),
        ("0.32.0+cpu", "0.32.0", False),
        ("0.8.5.post2", "0.8.5.post2", False),
        ("0.12.0.post2", "0.12.0.post2", False),
        ("0.1.dev5770+g0c80efd", str(NEWEST), True),
        ("0.11.1.dev12+gabcdef.d20251101", str(NEWEST), True),
        ("dev", str(NEWEST), True),
        ("", str(NEWEST), True),
        ("not-a-version", str(NEWEST), True),
    ],
)
def test_parse_vllm_version(raw: str, effective: str, is_dev: bool) -> None:
    assert parse_vllm_version(raw) == (Version(effective), is_dev)


def test_dev_build_warns_once() -> None:
    _capabilities._warn_dev.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse_vllm_version("0.1.dev1+gdeadbee", warn=True)
        parse_vllm_version("0.1.dev1+gdeadbee", warn=True)
    assert [w.category for w in caught] == [DevBuildWarning]
    assert "0.1.dev1+gdeadbee" in str(caught[0].message)


versions = st.builds(
    lambda minor, micro, post, local: f"0.{minor}.{micro}" + (f".post{post}" if post else "") + (f"+{local}" if local else ""),
    st.integers(4, 60),
    st.integers(0, 9),
    st.one_of(st.none(), st.integers(1, 3)),
    st.one_of(st.none(), st.sampled_from(["cu118", "cu129", "cpu", "rocm6.2", "xpu"])),
)


@given(versions)
def test_local_suffix_never_changes_capabilities(raw: str) -> None:
    effective, is_dev = parse_vllm_version(raw)
    assert not is_dev
    assert effective.local is None
    assert capabilities_for(effective) == capabilities_for(raw.split("+")[0])


@given(st.text(max_size=40))
def test_any_string_parses(raw: str) -> None:
    effective, _ = parse_vllm_version(raw)
    assert isinstance(effective, Version)


# flag, first version where it holds, and a version before that where it does not
FLAG_EDGES = [
    ("async_generate_inputs_keyword", "0.4.3", "0.4.2"),
    ("async_generate_prompt_keyword", "0.6.3", "0.6.2"),
    ("prompt_dicts", "0.4.3", "0.4.2"),
    ("bare_token_list_prompt", "0.16.0", "0.15.1"),
    ("async_generate_priority", "0.6.3", "0.6.2"),
    ("llm_generate_priority", "0.6.2", "0.6.1.post2"),
    ("async_generate_keyword_only_tail", "0.11.1", "0.11.0"),
    ("llm_keyword_only_init", "0.9.1", "0.9.0.1"),
    ("llm_chat", "0.5.5", "0.5.4"),
    ("llm_beam_search", "0.6.2", "0.6.1.post2"),
    ("guided_decoding", "0.6.3", "0.6.2"),
    ("structured_outputs", "0.11.0", "0.10.2"),
    ("sampling_msgspec", "0.5.5", "0.5.4"),
    ("sampling_output_kind", "0.6.1.post1", "0.6.1"),
    ("top_k_zero_disables", "0.9.0", "0.8.5.post1"),
    ("v1_engine_available", "0.6.4", "0.6.3.post1"),
    ("v1_default", "0.8.0", "0.7.3"),
    ("v0_removed", "0.11.0", "0.10.2"),
    ("sync_async_engine_get_tokenizer", "0.15.0", "0.14.1"),
    ("abort_many", "0.14.0", "0.13.0"),
    ("distributed_executor_backend", "0.4.3", "0.4.2"),
    ("enable_log_requests", "0.10.1", "0.10.0"),
    ("runner_convert", "0.10.1", "0.10.0"),
    ("vllm_glm45_parsers", "0.10.1", "0.10.0"),
    ("vllm_glm47_tool_parser", "0.14.0", "0.13.0"),
    ("thinking_token_budget", "0.19.0", "0.18.1"),
]
# flag, last version where it holds, and the first where it no longer does
FLAG_ENDS = [
    ("async_generate_legacy_kwargs", "0.4.2", "0.4.3"),
    ("async_generate_inputs_keyword", "0.6.2", "0.6.3"),
    ("llm_prompt_token_ids_kwarg", "0.10.1.1", "0.10.2"),
    ("sampling_use_beam_search", "0.6.2", "0.6.3"),
    ("sampling_best_of", "0.11.2", "0.12.0"),
    ("guided_decoding", "0.11.2", "0.12.0"),
    ("vllm_use_v1_env", "0.11.0", "0.11.1"),
    ("worker_use_ray", "0.6.6.post1", "0.7.0"),
    ("engine_task", "0.12.0", "0.13.0"),
    ("engine_task", "0.6.4", "0.6.3.post1"),
]


@pytest.mark.parametrize(("flag", "first", "before"), FLAG_EDGES)
def test_flag_starts(flag: str, first: str, before: str) -> None:
    assert capabilities_for(first)[flag] is True
    assert capabilities_for(before)[flag] is False
    assert capabilities_for(_history.NEWEST)[flag] is (FLAGS[flag].until is None)


@pytest.mark.parametrize(("flag", "last", "first_without"), FLAG_ENDS)
def test_flag_ends(flag: str, last: str, first_without: str) -> None:
    assert capabilities_for(last)[flag] is True
    assert capabilities_for(first_without)[flag] is False


def test_every_flag_is_tested_and_documented() -> None:
    tested = {f for f, _, _ in FLAG_EDGES} | {f for f, _, _ in FLAG_ENDS}
    assert tested == set(FLAGS)
    assert all(flag.doc for flag in FLAGS.values())


def test_unknown_flag_suggests() -> None:
    with pytest.raises(UnknownParameter, match="structured_outputs"):
        capabilities_for("0.11.0")["structured_output"]


@pytest.mark.parametrize(
    ("flag", "text"),
    [
        ("structured_outputs", ">=0.11.0"),
        ("guided_decoding", "0.6.3 .. 0.11.2"),
        ("sampling_best_of", "0.4.0 .. 0.11.2"),
        ("async_generate_priority", ">=0.6.3"),
    ],
)
def test_flag_range(flag: str, text: str) -> None:
    assert flag_range(flag) == text


@pytest.mark.parametrize(
    ("version", "env", "generation"),
    [
        ("0.4.0", {}, "v0"),
        ("0.6.3", {"VLLM_USE_V1": "1"}, "v0"),
        ("0.6.4", {"VLLM_USE_V1": "1"}, "v1"),
        ("0.7.3", {}, "v0"),
        ("0.8.0", {}, "v1"),
        ("0.8.5", {"VLLM_USE_V1": "0"}, "v0"),
        ("0.10.2", {"VLLM_USE_V1": "0"}, "v0"),
        ("0.11.0", {"VLLM_USE_V1": "0"}, "v1"),
        ("0.32.0", {}, "v1"),
    ],
)
def test_engine_generation(version: str, env: dict[str, str], generation: str) -> None:
    assert engine_generation(capabilities_for(version), env) == generation


def test_older_than_040_is_refused() -> None:
    with pytest.raises(UnsupportedVllmVersion, match="0.3.3"):
        _capabilities.check_supported(Version("0.3.3"), "0.3.3")
