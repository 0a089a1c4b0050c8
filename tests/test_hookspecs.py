"""The hook contract: SPEC §7 names and signatures, docstrings, and the integrator's docs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import FunctionType

import pytest

import dealdesk
from dealdesk import NAME, hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"

# SPEC §7, the contract: hook name -> argument names.
SPEC_HOOKS = {
    "dealdesk_policies": ["register"],
    "dealdesk_enrich": ["deal"],
    "dealdesk_actions": ["register"],
    "dealdesk_template_filters": ["register"],
    "dealdesk_readers": ["register"],
    "dealdesk_writers": ["register"],
    "dealdesk_decision": ["record"],
    "dealdesk_combine": ["records"],
}


def _hookspecs() -> dict[str, FunctionType]:
    """Every function in the module marked with dealdesk's hookspec marker."""
    return {
        name: obj
        for name, obj in vars(hookspecs).items()
        if inspect.isfunction(obj) and hasattr(obj, f"{NAME}_spec")
    }


HOOKS = sorted(_hookspecs())


def test_hookspecs_are_exactly_the_spec_hooks() -> None:
    found = {name: list(inspect.signature(func).parameters) for name, func in _hookspecs().items()}
    assert found == SPEC_HOOKS


def test_only_combine_is_firstresult() -> None:
    firstresult = {
        name for name, func in _hookspecs().items() if getattr(func, f"{NAME}_spec")["firstresult"]
    }
    assert firstresult == {"dealdesk_combine"}


def test_every_dealdesk_function_in_hookspecs_is_a_hookspec() -> None:
    # a dealdesk_* function without @hookspec would silently not be a hook
    functions = {
        name
        for name, obj in vars(hookspecs).items()
        if inspect.isfunction(obj) and name.startswith(f"{NAME}_")
    }
    assert functions == set(HOOKS)


def test_hookspec_marker_stays_private() -> None:
    assert not hasattr(dealdesk, "hookspec")
    assert hasattr(dealdesk, "hookimpl")


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_is_typed_and_documented(hook: str) -> None:
    func = _hookspecs()[hook]
    doc = inspect.getdoc(func) or ""
    params = inspect.signature(func).parameters
    for name, param in params.items():
        assert f":param {name}:" in doc, f"{hook}: no ':param {name}:' in the docstring"
        assert param.annotation is not inspect.Parameter.empty, f"{hook}: {name} has no type"
    assert ":returns:" in doc, f"{hook}: no ':returns:' in the docstring"
    assert "Called" in doc, f"{hook}: the docstring does not say when the hook is called"
    assert inspect.signature(func).return_annotation is not inspect.Signature.empty


def _documented_hooks() -> dict[str, list[str]]:
    """Hooks with a heading of their own in docs/plugins.md, with the arguments the heading shows."""
    heading = re.compile(r"^#{2,4} `(dealdesk_\w+)\(([^)]*)\)`", re.MULTILINE)
    return {
        name: [a.strip() for a in args.split(",") if a.strip()]
        for name, args in heading.findall(DOCS.read_text())
    }


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_are_documented(hook: str) -> None:
    documented = _documented_hooks()
    assert hook in documented, f"{hook} has no '### `{hook}(...)`' heading in docs/plugins.md"
    assert documented[hook] == list(inspect.signature(_hookspecs()[hook]).parameters)


def test_docs_document_no_hook_that_does_not_exist() -> None:
    assert set(_documented_hooks()) <= set(HOOKS)
