"""What the model server does, independent of HTTP: metadata, readiness, inference.

One process serves one model version. :meth:`DataPlane.load` runs once, off the event
loop, while the server already answers liveness probes; the model only becomes
visible to requests (ready) after a warm-up inference on synthetic input passed.

Inference never runs on the event loop: :meth:`DataPlane.submit` hands a request to
the model's :class:`~pier.modelserver.workers.InferencePool` (decode, predict and
encode on a worker thread, one hand-over per request), or, when the node asks for
dynamic batching and the model has a batch dimension, decodes it on the loop and gives
it to the :class:`~pier.modelserver.batching.Batcher`, which runs several requests as
one ``predict`` on a worker thread and splits the rows back. Either way the request is
counted against the pool's queue limit from arrival to answer.

The infer path is the hot path: a tiny model answers in microseconds, so the JSON and
numpy work around it dominates. Everything that can be known per model (specs by name,
output names, the metadata document) is computed at load time, and requests are
checked against the specs before the model sees them, so that bad input is a 400 with
a message rather than an error deep inside the runtime.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import structlog

from pier import __version__
from pier.modelserver.batching import Batcher
from pier.modelserver.classification import class_count, classify
from pier.modelserver.loaders import LoadedModel, describe, load_model
from pier.modelserver.metrics import ModelServerMetrics
from pier.modelserver.model_config import model_config
from pier.modelserver.statistics import InferenceStatistics, Phases
from pier.modelserver.v2 import (
    BadRequest,
    InferenceFailed,
    ModelNotFound,
    ModelNotReady,
    TensorSpec,
    V2Error,
    encode_response,
    tensor_from_binary,
    tensor_from_json,
)
from pier.modelserver.warmup import warm_up
from pier.modelserver.workers import DEFAULT_QUEUE_LIMIT, InferencePool, default_workers

log = structlog.get_logger(__name__)

_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)
EXTENSIONS = (
    "binary_tensor_data",
    "classification",
    "model_configuration",
    "model_repository",
    "statistics",
)
"""The Triton extensions this server implements, advertised in ``GET /v2``."""

Answer = tuple[bytes, int | None]
"""An inference response body and the length of its JSON header (None: all JSON)."""


@dataclass(frozen=True, slots=True)
class OutputChoice:
    names: tuple[str, ...]
    binary: tuple[bool, ...]
    classes: tuple[int, ...]
    """Per output, its class count for the classification extension, 0 for its values."""


@dataclass(frozen=True, slots=True)
class InferRequest:
    """One decoded inference request, ready to be predicted alone or in a batch."""

    head: dict[str, Any]
    feed: dict[str, np.ndarray]
    choice: OutputChoice
    rows: int
    """Its size along the batch dimension (1 for a model without one)."""
    batch_key: Hashable
    """Requests with equal keys can be concatenated: same outputs, same inner shapes."""


class ServedModel:
    """A loaded model with everything the infer path needs precomputed."""

    def __init__(self, name: str, version: str, model: LoadedModel) -> None:
        self.name = name
        self.version = version
        self.model = model
        self.inputs: dict[str, TensorSpec] = {spec.name: spec for spec in model.inputs}
        self.outputs: dict[str, TensorSpec] = {spec.name: spec for spec in model.outputs}
        self.output_names = tuple(self.outputs)
        self._output_types = {  # BYTES outputs may hold str or bytes: no cast
            spec.name: (spec.datatype, None if spec.datatype == "BYTES" else spec.dtype)
            for spec in model.outputs
        }
        none = (0,) * len(self.outputs)
        self._all_json = OutputChoice(self.output_names, (False,) * len(self.outputs), none)
        self._all_binary = OutputChoice(self.output_names, (True,) * len(self.outputs), none)
        self.is_batched = all(spec.shape[:1] == (-1,) for spec in model.inputs)
        self.can_batch = self.is_batched and all(spec.shape[:1] == (-1,) for spec in model.outputs)
        """Requests can be combined: every input and output has a first, batch dimension."""
        self.metadata = orjson.dumps({"name": name, "versions": [version], **describe(model)})

    def decode_inputs(self, tensors: Any, body: memoryview, offset: int) -> dict[str, np.ndarray]:
        """The request's input tensors as arrays, checked against the model's inputs."""
        if not isinstance(tensors, list) or not tensors:
            raise BadRequest("request must have a non-empty 'inputs' list")
        feed: dict[str, np.ndarray] = {}
        for tensor in tensors:
            if not isinstance(tensor, dict):
                raise BadRequest("each input must be an object")
            name = tensor.get("name")
            spec = self.inputs.get(name) if isinstance(name, str) else None
            if spec is None:
                raise BadRequest(
                    f"unknown input {name!r} for model {self.name!r}; "
                    f"expected {', '.join(map(repr, self.inputs))}"
                )
            if name in feed:
                raise BadRequest(f"input {name!r} given twice")
            feed[spec.name], offset = self._decode(spec, tensor, body, offset)
        if len(feed) != len(self.inputs):
            missing = [name for name in self.inputs if name not in feed]
            raise BadRequest(f"missing input(s) {', '.join(map(repr, missing))}")
        return feed

    def decode_raw(self, body: memoryview) -> dict[str, np.ndarray]:
        """A raw binary request (``Inference-Header-Content-Length: 0``, no JSON header):
        the whole body is the data of the model's one input, its shape deduced from the
        size (at most one dynamic dimension; a ``BYTES`` input takes the body as one
        element)."""
        if len(self.inputs) != 1:
            raise BadRequest(
                f"a raw binary request (Inference-Header-Content-Length 0) needs a model "
                f"with one input; {self.name!r} has {len(self.inputs)}"
            )
        spec = next(iter(self.inputs.values()))
        shape = _raw_shape(spec, len(body))
        if spec.datatype == "BYTES":
            array = np.empty(1, dtype=np.object_)
            array[0] = bytes(body)
            return {spec.name: array.reshape(shape)}
        return {spec.name: tensor_from_binary(spec.datatype, shape, body, 0, len(body))}

    def _decode(
        self, spec: TensorSpec, tensor: dict[str, Any], body: memoryview, offset: int
    ) -> tuple[np.ndarray, int]:
        datatype, shape = tensor.get("datatype"), tensor.get("shape")
        if datatype != spec.datatype:
            raise BadRequest(
                f"input {spec.name!r} has datatype {datatype!r}, model expects {spec.datatype}"
            )
        if not (
            isinstance(shape, list)
            and all(type(dim) is int and dim >= 0 for dim in shape)
            and spec.accepts_shape(shape)
        ):
            raise BadRequest(
                f"input {spec.name!r} has shape {shape!r}, model expects {list(spec.shape)}"
            )
        parameters = tensor.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest(f"input {spec.name!r} has 'parameters' that are not an object")
        size = parameters.get("binary_data_size") if parameters else None
        try:
            if size is not None:
                if type(size) is not int or size < 0:
                    raise BadRequest(f"has invalid binary_data_size {size!r}")
                if offset < 0:
                    raise BadRequest("has binary data but no Inference-Header-Content-Length")
                return tensor_from_binary(datatype, shape, body, offset, size), offset + size
            if parameters and "shared_memory_region" in parameters:
                raise BadRequest("uses shared memory, which this server does not support")
            if "data" not in tensor:
                raise BadRequest("has neither 'data' nor binary_data_size")
            return tensor_from_json(datatype, shape, tensor["data"]), offset
        except BadRequest as e:
            raise BadRequest(f"input {spec.name!r} {e.message}") from None
        except _INPUT_ERRORS as e:
            raise BadRequest(f"input {spec.name!r}: data is not {datatype}: {e}") from None

    def choose_outputs(self, request: dict[str, Any]) -> OutputChoice:
        """Which outputs to compute, and which of them to return as binary."""
        parameters = request.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest("request 'parameters' must be an object")
        default_binary = bool(parameters.get("binary_data_output", False)) if parameters else False
        requested = request.get("outputs")
        if not requested:
            return self._all_binary if default_binary else self._all_json
        if not isinstance(requested, list):
            raise BadRequest("'outputs' must be a list")
        names: list[str] = []
        binary: list[bool] = []
        classes: list[int] = []
        for output in requested:
            name = output.get("name") if isinstance(output, dict) else None
            if not isinstance(name, str) or name not in self.outputs:
                raise BadRequest(
                    f"unknown output {name!r} for model {self.name!r}; "
                    f"expected {', '.join(map(repr, self.outputs))}"
                )
            options = output.get("parameters") or {}
            if not isinstance(options, dict):
                raise BadRequest(f"output {name!r} has 'parameters' that are not an object")
            if "shared_memory_region" in options:
                raise BadRequest(f"output {name!r}: shared memory is not supported")
            names.append(name)
            binary.append(bool(options.get("binary_data", default_binary)))
            count = options.get("classification")
            classes.append(0 if count is None else class_count(name, count))
        return OutputChoice(tuple(names), tuple(binary), tuple(classes))

    def predict(
        self, feed: Mapping[str, np.ndarray], names: Sequence[str]
    ) -> Mapping[str, np.ndarray]:
        """Run the model, turning its failures into V2 errors."""
        try:
            return self.model.predict(feed, names)
        except V2Error:
            raise
        except _INPUT_ERRORS as e:
            raise BadRequest(f"inference failed: {e}") from None
        except Exception as e:
            log.exception("inference failed", model=self.name)
            raise InferenceFailed(f"inference failed: {type(e).__name__}: {e}") from None

    def typed_outputs(
        self, results: Mapping[str, np.ndarray], choice: OutputChoice
    ) -> list[tuple[str, str, np.ndarray, bool]]:
        """(name, datatype, array, binary) per chosen output, cast to the declared dtype."""
        outputs = []
        for name, binary, classes in zip(choice.names, choice.binary, choice.classes, strict=True):
            datatype, dtype = self._output_types[name]
            array = results[name]
            if dtype is not None and array.dtype is not dtype and array.dtype != dtype:
                array = array.astype(dtype)
            if classes:
                datatype, array = "BYTES", classify(name, np.asarray(array), classes)
            outputs.append((name, datatype, array, binary))
        return outputs

    def samples(self, feed: Mapping[str, np.ndarray]) -> int:
        if not self.is_batched:
            return 1
        return int(next(iter(feed.values())).shape[0])

    def parse(self, body: bytes, header_length: int | None) -> InferRequest:
        """Decode and check one request body (JSON, or a JSON header and binary data, or
        raw binary data for the only input: ``header_length`` 0)."""
        view = memoryview(body)
        if header_length == 0:
            request: dict[str, Any] = {}
            feed = self.decode_raw(view)
            return self._request(request, feed, self.choose_outputs(request))
        if header_length is None:
            header, offset = view, -1
        elif 0 <= header_length <= len(body):
            header, offset = view[:header_length], header_length
        else:
            raise BadRequest(f"Inference-Header-Content-Length {header_length} exceeds the body")
        try:
            request = orjson.loads(header)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"request is not valid JSON: {e}") from None
        if not isinstance(request, dict):
            raise BadRequest("request must be a JSON object")
        feed = self.decode_inputs(request.get("inputs"), view, offset)
        return self._request(request, feed, self.choose_outputs(request))

    def _request(
        self, request: dict[str, Any], feed: dict[str, np.ndarray], choice: OutputChoice
    ) -> InferRequest:
        head: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        if "id" in request:
            head["id"] = request["id"]
        inner = tuple(feed[name].shape[1:] for name in self.inputs)
        return InferRequest(head, feed, choice, self.samples(feed), (choice.names, inner))

    def answer(self, request: InferRequest, results: Mapping[str, np.ndarray]) -> Answer:
        """The response to one request from the model's outputs for it."""
        return encode_response(request.head, self.typed_outputs(results, request.choice))

    def run_batch(self, requests: Sequence[InferRequest]) -> list[Answer | V2Error]:
        """Predict requests of one batch key as one call and split the rows back.

        When the combined call fails, or its outputs do not have one row per input
        row, each request is run on its own, so that one bad request fails alone.
        """
        if len(requests) > 1:
            names = requests[0].choice.names
            feed = {
                name: np.concatenate([request.feed[name] for request in requests])
                for name in self.inputs
            }
            rows = sum(request.rows for request in requests)
            try:
                results = self.predict(feed, names)
            except V2Error:
                results = {}
            if all(name in results and results[name].shape[:1] == (rows,) for name in names):
                return self._split(requests, results)
        return [self._run_one(request) for request in requests]

    def _split(
        self, requests: Sequence[InferRequest], results: Mapping[str, np.ndarray]
    ) -> list[Answer | V2Error]:
        answers: list[Answer | V2Error] = []
        start = 0
        for request in requests:
            end = start + request.rows
            answers.append(
                self.answer(request, {name: results[name][start:end] for name in results})
            )
            start = end
        return answers

    def _run_one(self, request: InferRequest) -> Answer | V2Error:
        try:
            return self.answer(request, self.predict(request.feed, request.choice.names))
        except V2Error as e:
            return e

    def run_request(self, request: dict[str, Any], body: memoryview) -> None:
        """Decode, predict and encode a JSON ``request`` without answering it (a warm-up)."""
        feed = self.decode_inputs(request.get("inputs"), body, -1)
        choice = self.choose_outputs(request)
        encode_response({}, self.typed_outputs(self.predict(feed, choice.names), choice))


def _raw_shape(spec: TensorSpec, size: int) -> tuple[int, ...]:
    """The shape of input ``spec`` holding ``size`` bytes of raw data."""
    where = f"raw binary request: input {spec.name!r} of shape {list(spec.shape)}"
    if spec.datatype == "BYTES":
        if any(dim not in (1, -1) for dim in spec.shape):
            raise BadRequest(f"{where} takes more than one BYTES element")
        return (1,) * len(spec.shape)
    itemsize = spec.dtype.itemsize
    dynamic = [i for i, dim in enumerate(spec.shape) if dim < 0]
    fixed = math.prod(dim for dim in spec.shape if dim >= 0)
    count, rest = divmod(size, itemsize)
    if len(dynamic) > 1:
        raise BadRequest(f"{where} has more than one dynamic dimension")
    if rest or (dynamic and (fixed == 0 or count % fixed)) or (not dynamic and count != fixed):
        raise BadRequest(f"{where} cannot hold {size} bytes of {spec.datatype}")
    shape = list(spec.shape)
    if dynamic:
        shape[dynamic[0]] = count // fixed
    return tuple(shape)


class DataPlane:
    """The one model this server serves, from load to inference."""

    def __init__(
        self,
        *,
        name: str,
        version: str,
        fmt: str,
        path: Path,
        metrics: ModelServerMetrics,
        workers: int | None = None,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        max_batch_size: int = 1,
        batch_delay_s: float = 0.0,
        example: bytes | None = None,
    ) -> None:
        self.name = name
        self.example = example
        """A JSON inference request for the warm-up, else inputs derived from the model."""
        self.version = version
        self.fmt = fmt
        self.path = path
        self.metrics = metrics
        self.pool = InferencePool(
            name, workers=workers or default_workers(), queue_limit=queue_limit
        )
        metrics.held = lambda: self.pool.held
        self.max_batch_size = max_batch_size
        self.batch_delay_s = batch_delay_s
        self._batcher: Batcher[InferRequest, Answer] | None = None
        self._metrics_lock = threading.Lock()  # worker threads count inferences
        self._served: ServedModel | None = None
        self.state: Literal["loading", "ready", "failed"] = "loading"
        self.statistics = InferenceStatistics(name, version)
        self.server_metadata = orjson.dumps(
            {"name": "pier", "version": __version__, "extensions": list(EXTENSIONS)}
        )

    @property
    def is_ready(self) -> bool:
        return self._served is not None

    def load(self) -> None:
        """Load and warm up the model (blocking); it serves requests only once this returns."""
        started = time.perf_counter()
        try:
            served = ServedModel(self.name, self.version, load_model(self.path, self.fmt))
            warm_up(served, self.example)
        except BaseException:
            self.state = "failed"
            raise
        self._batcher = self._make_batcher(served)
        self._served = served
        self.state = "ready"
        log.info(
            "model loaded",
            model=self.name,
            version=self.version,
            format=self.fmt,
            load_s=round(time.perf_counter() - started, 3),
            workers=self.pool.workers,
            max_batch_size=self.max_batch_size if self._batcher is not None else 1,
        )

    def _make_batcher(self, served: ServedModel) -> Batcher[InferRequest, Answer] | None:
        """The batcher when the node asks for batching and the model can be batched."""
        if self.max_batch_size <= 1:
            return None
        if not served.can_batch:
            log.warning(
                "dynamic batching off: the model has no batch dimension",
                model=self.name,
                max_batch_size=self.max_batch_size,
            )
            return None
        return Batcher(
            self.pool,
            lambda requests: self._run_batch(served, requests),
            max_batch_size=self.max_batch_size,
            delay_s=self.batch_delay_s,
            concurrency=default_workers(),
        )

    def served(self, name: str, version: str | None) -> ServedModel:
        """The model a request names, or the V2 error that says why not."""
        if name != self.name or (version is not None and version != self.version):
            raise ModelNotFound(name, version)
        served = self._served
        if served is None:
            raise ModelNotReady(name)
        return served

    def is_model_ready(self, name: str, version: str | None) -> bool:
        if name != self.name or (version is not None and version != self.version):
            raise ModelNotFound(name, version)
        return self._served is not None

    def model_metadata(self, name: str, version: str | None) -> bytes:
        return self.served(name, version).metadata

    def model_config(self, name: str, version: str | None) -> bytes:
        """Triton's model configuration of the served model (see :mod:`.model_config`)."""
        served = self.served(name, version)
        return orjson.dumps(
            model_config(
                name=served.name,
                platform=served.model.platform,
                backend=self.fmt,
                inputs=served.model.inputs,
                outputs=served.model.outputs,
                max_batch_size=self.max_batch_size if self._batcher is not None else 0,
                batch_delay_s=self.batch_delay_s,
            )
        )

    def model_statistics(self, name: str | None, version: str | None) -> bytes:
        """Triton's statistics of the named model, or of every model when ``name`` is None."""
        if name is not None and (
            name != self.name or (version is not None and version != self.version)
        ):
            raise ModelNotFound(name, version)
        return orjson.dumps({"model_stats": [self.statistics.to_json()]})

    def repository_index(self) -> bytes:
        """Triton's repository index: the one model this server serves, and its state."""
        state = {"loading": "LOADING", "ready": "READY", "failed": "UNAVAILABLE"}[self.state]
        entry = {"name": self.name, "version": self.version, "state": state, "reason": ""}
        return orjson.dumps([entry])

    def infer(
        self, name: str, version: str | None, body: bytes, header_length: int | None
    ) -> Answer:
        """Answer one inference request here and now, blocking (tests and tools)."""
        return self._infer_one(self.served(name, version), body, header_length)

    def submit(
        self, name: str, version: str | None, body: bytes, header_length: int | None
    ) -> asyncio.Future[Answer]:
        """Start answering one inference request off the event loop (call on the loop).

        Raises at once for an unknown or unready model, a full queue, and (when
        batching) a request that does not decode; the future holds the answer or the
        V2 error of this request alone.
        """
        served = self.served(name, version)
        started = time.perf_counter_ns()
        self.pool.admit()
        try:
            if self._batcher is None:
                future = self.pool.run(self._infer_one, served, body, header_length)
            else:
                future = self._batcher.submit(served.parse(body, header_length))
        except BaseException:
            self.pool.release()
            self.statistics.record_failure(time.perf_counter_ns() - started)
            raise
        future.add_done_callback(self.pool.released)
        future.add_done_callback(lambda done: self._count_failure(done, started))
        return future

    def _count_failure(self, answer: asyncio.Future[Answer], started: int) -> None:
        if not answer.cancelled() and answer.exception() is not None:
            self.statistics.record_failure(time.perf_counter_ns() - started)

    def _infer_one(self, served: ServedModel, body: bytes, header_length: int | None) -> Answer:
        started = time.perf_counter_ns()
        request = served.parse(body, header_length)
        parsed = time.perf_counter_ns()
        results = served.predict(request.feed, request.choice.names)
        predicted = time.perf_counter_ns()
        answer = served.answer(request, results)
        done = time.perf_counter_ns()
        self._observe(request.rows)
        phases = Phases(
            input_ns=parsed - started, infer_ns=predicted - parsed, output_ns=done - predicted
        )
        self.statistics.record_success(request.rows, done - started, phases)
        return answer

    def _run_batch(
        self, served: ServedModel, requests: Sequence[InferRequest]
    ) -> list[Answer | V2Error]:
        started = time.perf_counter_ns()
        answers = served.run_batch(requests)
        took = time.perf_counter_ns() - started
        rows = sum(request.rows for request in requests)
        self._observe(rows)
        answered = sum(not isinstance(answer, V2Error) for answer in answers)
        self.statistics.record_success(rows, took, Phases(infer_ns=took), requests=answered)
        return answers

    def _observe(self, samples: int) -> None:
        """Count one execution of ``samples`` samples (from any worker thread)."""
        with self._metrics_lock:
            self.metrics.observe_inference(samples)

    def close(self) -> None:
        """Stop the worker threads (running calls finish)."""
        self.pool.shutdown()
