"""The control plane's Prometheus endpoint: the API's request figures and the store's
nodes, instances and aliases (see services/control_metrics.py); the installation
admin's to scrape, as it covers every project."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from pier.api.errors import error_responses

router = APIRouter(tags=["system"], responses=error_responses(401, 403, 503))


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
def metrics(request: Request) -> Response:
    """Prometheus text: pier_api_requests_total and pier_api_request_duration_seconds by
    method, route template and status; pier_nodes by project and status;
    pier_node_instances by project, node and status; pier_aliases by project; and the
    gateway's traffic as last sampled: pier_node_requests_total, _request_duration_seconds,
    _in_flight_requests, _bytes_total by project and node; pier_alias_* by project, alias
    and node; pier_instance_requests_total, _bytes_total, _cpu_percent, _memory_bytes by
    project, node and instance."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
