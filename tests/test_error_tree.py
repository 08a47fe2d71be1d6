"""The PierError tree is documented in one place (pier.domain.errors' docstring, and the
README's table) and every class in it has its own ``type``, its category's ``code``, and
comes back from the wire as itself."""

from __future__ import annotations

import re
from pathlib import Path

import pier
import pier.client
from pier.client import make_error
from pier.domain import errors

README = Path(__file__).parent.parent / "README.md"


def public_error_classes() -> list[type[pier.PierError]]:
    """Every PierError class of the SDK's public names (the gateway's own answers, such as
    its 408 and 431, live in pier.gateway.errors and are not SDK classes)."""
    found = [pier.PierError]
    for cls in found:
        found.extend(sub for sub in cls.__subclasses__() if sub not in found)
    return [cls for cls in found if cls.__module__ in ("pier.domain.errors", "pier.client.errors")]


def test_every_error_class_is_a_public_name() -> None:
    names = {cls.__name__ for cls in public_error_classes()}
    assert names <= set(pier.__all__)
    assert {"NodeNotFound", "ModelInUse", "BadRequest", "WaitTimedOut"} <= names


def test_each_class_has_its_own_type_and_its_categorys_code() -> None:
    classes = public_error_classes()
    types = [cls.error_type for cls in classes]
    assert len(types) == len(set(types)), types
    for cls in classes:
        category = next(
            base
            for base in cls.__mro__
            if pier.PierError in base.__bases__ or base is pier.PierError
        )
        assert cls.code == category.code, cls


def test_the_docstring_and_the_readme_list_each_class_with_code_type_and_status() -> None:
    doc = errors.__doc__ or ""
    readme = README.read_text()
    for cls in public_error_classes():
        name, code, kind = cls.__name__, cls.code, cls.error_type
        row = re.search(rf"\b{name}\s+{code}\s+{kind}\s+(\d+|-)", doc)
        assert row, f"{name} is not in pier.domain.errors' tree"
        assert row[1] in ("-", str(cls.http_status)), name
        readme_row = rf"\| `{name}` \| `{code}` \| `{kind}` \| ({cls.http_status}|SDK only)"
        assert re.search(readme_row, readme), f"{name} is not in the README's error table"


def test_each_class_the_server_sends_comes_back_as_itself() -> None:
    sent = [cls for cls in public_error_classes() if cls.__module__ == "pier.domain.errors"]
    assert set(sent) == set(errors.ERRORS_BY_TYPE.values())
    for cls in sent:
        error = make_error(cls.code, "m", error_type=cls.error_type, http_status=cls.http_status)
        assert type(error) is cls and error.message == "m"
