"""Partial updates as JSON Merge Patch (RFC 7396), the one rule for every PATCH.

A patch is a JSON object shaped like the document it changes. Each key it has replaces
that key's value; a key set to null removes it (the field goes back to its default); an
object merges key by key, at any depth, so ``{"env": {"B": "2"}}`` adds or changes B
and keeps every other variable, and ``{"env": {"A": null}}`` removes A. Lists and other
values are replaced whole. Keys the patch leaves out stay as they are.

``patch_model`` turns a pydantic model into the model of its patches: the same fields,
types, constraints and descriptions, each optional and nullable, so /openapi.json
documents what a PATCH may send.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

PATCH_RULE = (
    "JSON Merge Patch (RFC 7396): a key given replaces the value, null removes it (back to "
    "its default), objects (maps included) merge key by key, lists are replaced whole."
)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 section 2: ``patch`` applied to ``target`` (neither is changed)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


class _Patch(BaseModel):
    model_config = ConfigDict(extra="forbid")


def patch_model(model: type[BaseModel]) -> type[BaseModel]:
    """The model of merge patches of ``model``: every field optional and nullable (null
    removes it), nested models as their own patch models, maps with nullable values."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = _patch_type(info.annotation)
        if info.metadata:
            annotation = Annotated[annotation, *info.metadata]
        description = f"{info.description or name.replace('_', ' ')} Null: the default."
        fields[name] = (annotation | None, Field(default=None, description=description))
    patch: type[BaseModel] = create_model(
        f"{model.__name__}Patch",
        __base__=_Patch,
        __doc__=f"A merge patch of {model.__name__}: {PATCH_RULE}",
        **fields,
    )
    return patch


def _patch_type(annotation: Any) -> Any:
    """Nested models become patch models and map values become nullable, also inside an
    Optional; any other type stays as it is."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return typing.Union[tuple(_patch_type(arg) for arg in get_args(annotation))]  # noqa: UP007
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return patch_model(annotation)
    if origin is dict:
        key, value = get_args(annotation)
        return dict[key, value | None]  # type: ignore[valid-type]
    return annotation
