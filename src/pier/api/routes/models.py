from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from pier.api.deps import ActorDep, ServicesDep
from pier.api.errors import error_responses
from pier.domain.names import MAX_ID
from pier.domain.specs import ModelFormat
from pier.domain.views import ModelList, ModelsDeleted, ModelVersion, ModelVersions
from pier.services.model_examples import EXAMPLE_HEADER

router = APIRouter(
    prefix="/api/v1/projects/{project}/models",
    tags=["models"],
    responses=error_responses(401, 403, 404, 422, 503),
)
UPLOAD = {
    "requestBody": {
        "required": True,
        "description": "The model file, or a gzip tar of a Python model directory.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/{name}", status_code=201, openapi_extra=UPLOAD, responses=error_responses(413))
async def push_model(
    project: str,
    name: str,
    request: Request,
    services: ServicesDep,
    actor: ActorDep,
    format: Annotated[
        str,
        Query(
            description="The model's format.",
            json_schema_extra={"enum": [f.value for f in ModelFormat]},
        ),
    ],
    trust: Annotated[
        bool, Query(description="Allow a pickle (sklearn): loading it runs code from it.")
    ] = False,
    filename: Annotated[str | None, Query(description="The uploaded file's name.")] = None,
    example_length: Annotated[
        int | None,
        Header(
            alias=EXAMPLE_HEADER,
            ge=1,
            description="The body starts with this many bytes of an example V2 inference "
            "request, which each instance's warm-up runs; the model follows.",
        ),
    ] = None,
) -> ModelVersion:
    """Upload a model file (raw body) as the next version of ``name``. Over
    ``models.max_upload_bytes`` it is 413, told by Content-Length before the body is read."""
    length = request.headers.get("content-length", "")
    return await services.models.push(
        project, name, request.stream(), fmt=format, trust=trust, actor=actor,
        declared_bytes=int(length) if length.isdigit() else None, example_bytes=example_length,
    )  # fmt: skip


@router.get("")
def list_models(project: str, services: ServicesDep) -> ModelList:
    """Every version of every model in the project."""
    return ModelList(models=services.models.list(project))


@router.get("/{name}")
def get_model(project: str, name: str, services: ServicesDep) -> ModelVersions:
    """A model with all its versions."""
    return ModelVersions(name=name, versions=services.models.list(project, name))


@router.delete("/{name}", responses=error_responses(409))
def delete_model(
    project: str,
    name: str,
    services: ServicesDep,
    actor: ActorDep,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this version.")] = None,
) -> ModelsDeleted:
    """Delete a model's versions (all, or one); 409 naming the nodes while any uses them."""
    deleted = services.models.delete(project, name, version, actor=actor)
    return ModelsDeleted(name=name, deleted=deleted)
