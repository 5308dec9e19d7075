"""``_live.fields_of``: constructor fields through the class hierarchy, recorded fields as the floor."""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from packaging.version import Version

import glm_vllm_compat as gvc
from glm_vllm_compat import _capabilities, _history, _live
from glm_vllm_compat._live import constructor_fields, fields_of, recorded_fields
from glm_vllm_compat.testing import fake_vllm

pytestmark = [
    pytest.mark.filterwarnings("ignore::glm_vllm_compat.LegacyCallWarning"),
    pytest.mark.filterwarnings("ignore::glm_vllm_compat.CapabilityMismatchWarning"),
]


class Plain:
    def __init__(self, model: str, seed: int = 0, *, dtype: str = "auto") -> None:
        pass


class Forwarding(Plain):
    """A fork's subclass: everything goes to the base."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


class ForwardingWithOwn(Plain):
    def __init__(self, extra: int = 1, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


@dataclasses.dataclass
class Data:
    model: str = ""
    block_size: int = 16
    hidden: int = dataclasses.field(default=0, init=False)


class DataForwarding(Data):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


class NoInitSub(Data):
    pass


class Struct:
    __struct_fields__ = ("n", "top_k")


class StructForwarding(Struct):
    def __init__(self, **kwargs: Any) -> None:
        pass


class Opaque:
    """Only **kwargs all the way up: nothing to read."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


CASES = [
    (Plain, {"model", "seed", "dtype"}, False),
    (Forwarding, {"model", "seed", "dtype"}, False),
    (ForwardingWithOwn, {"extra", "model", "seed", "dtype"}, False),
    (Data, {"model", "block_size"}, False),
    (DataForwarding, {"model", "block_size"}, False),
    (NoInitSub, {"model", "block_size"}, False),
    (Struct, {"n", "top_k"}, False),
    (StructForwarding, {"n", "top_k"}, False),
    (Opaque, set(), True),
]


@pytest.mark.parametrize(("cls", "names", "still_open"), CASES, ids=[c[0].__name__ for c in CASES])
def test_constructor_fields_walk_the_hierarchy(cls: type, names: set[str], still_open: bool) -> None:
    assert constructor_fields(cls) == (frozenset(names), still_open)


def test_recorded_fields_fill_an_open_kwargs_class_only() -> None:
    assert fields_of(Opaque, ["model", "seed", "_private"]) == {"model", "seed"}
    assert fields_of(Forwarding, ["other"]) == {"model", "seed", "dtype"}
    assert fields_of(None, ["model"]) == frozenset()


def test_recorded_fields_by_version() -> None:
    old, new = recorded_fields(_history.SAMPLING_FIELDS, Version("0.6.2")), recorded_fields(
        _history.SAMPLING_FIELDS, Version("0.34.0")
    )
    assert "use_beam_search" in old and "use_beam_search" not in new
    assert "structured_outputs" in new and "structured_outputs" not in old


@pytest.fixture(params=["0.4.0", "0.6.2", "0.10.2", "0.34.0"])
def fake(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[fake_vllm.FakeVllm]:
    with fake_vllm.installed(request.param, tmp_path) as installed:
        gvc.reset()
        yield installed
    gvc.reset()


def _fork(monkeypatch: pytest.MonkeyPatch, module: str, name: str, opaque: bool) -> type:
    """Replace vllm.<module>.<name> by a **kwargs-only class: a subclass forwarding to the native
    class, or (opaque) a wrapper around it that shows no fields at all."""
    mod = importlib.import_module(module)
    native = getattr(mod, name)
    fork: type
    if opaque:

        class Wrapper:
            def __init__(self, **kwargs: Any) -> None:
                object.__setattr__(self, "inner", native(**kwargs))

            def __getattr__(self, attr: str) -> Any:
                return getattr(object.__getattribute__(self, "inner"), attr)

        fork = Wrapper
    else:

        def __init__(self: Any, **kwargs: Any) -> None:
            native.__init__(self, **kwargs)

        fork = type(name, (native,), {"__init__": __init__, "__module__": module})
    monkeypatch.setattr(mod, name, fork)
    return fork


@pytest.mark.parametrize("opaque", [False, True], ids=["forwarding", "opaque"])
def test_kwargs_only_engine_args_are_not_refused(
    fake: fake_vllm.FakeVllm, monkeypatch: pytest.MonkeyPatch, opaque: bool
) -> None:
    """The reported defect: every argument refused with "'model' is not supported ... >=0.4.0"."""
    _fork(monkeypatch, "vllm.engine.arg_utils", "AsyncEngineArgs", opaque)
    _fork(monkeypatch, "vllm.engine.arg_utils", "EngineArgs", opaque)
    gvc.reset()
    from glm_vllm_compat.vllm import AsyncEngineArgs, EngineArgs

    lv = _live.live()
    assert {"model", "tensor_parallel_size", "seed"} <= lv.async_engine_arg_fields
    assert {"model", "tensor_parallel_size", "seed"} <= lv.engine_arg_fields
    args = AsyncEngineArgs(model="/m", tensor_parallel_size=1, seed=3)
    assert (args.model, args.seed) == ("/m", 3)
    assert EngineArgs("/m").model == "/m"


def test_kwargs_only_sampling_params_are_not_refused(fake: fake_vllm.FakeVllm, monkeypatch: pytest.MonkeyPatch) -> None:
    _fork(monkeypatch, "vllm.sampling_params", "SamplingParams", opaque=False)
    gvc.reset()
    from glm_vllm_compat.vllm import SamplingParams

    assert {"max_tokens", "temperature", "n"} <= _live.live().sampling_fields
    assert SamplingParams(max_tokens=3, temperature=0.0).max_tokens == 3


def _ranges_containing(table: dict[str, tuple[str, str | None]], version: Version) -> set[str]:
    return {n for n, (first, until) in table.items() if _capabilities.version_in_range(version, first, until)}


def test_no_refusal_range_contains_the_installed_release(tmp_path: Any) -> None:
    """On every recorded release, every field matrix/ records for it is one the adapter takes."""
    for version in fake_vllm.known_versions():
        with fake_vllm.installed(version, tmp_path / version):
            gvc.reset()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lv = _live.live()
            v = Version(version)
            assert _ranges_containing(_history.SAMPLING_FIELDS, v) <= lv.sampling_fields, version
            assert _ranges_containing(_history.ENGINE_ARGS, v) <= lv.engine_arg_fields, version
            assert _ranges_containing(_history.ASYNC_ENGINE_ARGS, v) <= lv.async_engine_arg_fields, version
    gvc.reset()
