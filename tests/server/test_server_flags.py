"""The server-flag table: every row parses, refused rows stop start-up, no-op rows say so."""

from __future__ import annotations

import argparse

import pytest

from glm_vllm_compat.server._server_flags import NOOP, REFUSED, SERVER_FLAGS, add_server_flags, check_server_flags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    add_server_flags(parser, set())
    return parser


def test_names_are_unique() -> None:
    names = [n for f in SERVER_FLAGS for n in f.names]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("flag", [f for f in SERVER_FLAGS if f.use in (NOOP, REFUSED)], ids=lambda f: f.names[0])
def test_every_exception_has_a_reason(flag: object) -> None:
    assert getattr(flag, "reason")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--allowed-origins", '["https://a.example"]'], {"allowed_origins": ["https://a.example"]}),
        (["--api-key", "k1"], {"api_key": ["k1"]}),
        (["--no-enable-auto-tool-choice"], {"enable_auto_tool_choice": False}),
        (["--log-level", "DEBUG"], {"log_level": "debug"}),
        (["--uvicorn-log-level", "warning"], {"uvicorn_log_level": "warning"}),
        (["-asc", "1"], {"api_server_count": 1}),
        (["--served-model-name", "a", "b"], {"served_model_name": ["a", "b"]}),
    ],
)
def test_parse(argv: list[str], expected: dict[str, object]) -> None:
    assert vars(_parser().parse_args(argv)) == expected


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ({"api_server_count": 1}, None),  # vLLM's default value: fine
        ({"api_server_count": 2}, "--api-server-count is not supported by glm-vllm-compat serve: one API server"),
        ({"headless": True}, "--headless is not supported"),
        ({"response_role": "user"}, "--response-role is not supported"),
        ({"enable_log_deltas": True}, None),
    ],
)
def test_refused_flags(given: dict[str, object], error: str | None) -> None:
    notices: list[str] = []
    if error is None:
        check_server_flags(given, notices.append)
        return
    with pytest.raises(ValueError, match=error):
        check_server_flags(given, notices.append)


def test_noop_flags_print_one_notice() -> None:
    notices: list[str] = []
    check_server_flags({"disable_frontend_multiprocessing": True, "host": "0.0.0.0"}, notices.append)
    assert notices == ["--disable-frontend-multiprocessing has no effect here: the server talks to the engine in-process"]
