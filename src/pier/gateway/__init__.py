"""pier's gateway, the data plane: ``python -m pier.gateway``.

Its own process(es), kept out of the control plane's way, on the control plane's machine
(`pier up` starts one) or any other (`pier gateway --control-url`): it serves the route
table it last received (long-polled from the control plane, persisted to a routes file),
reports what it serves and counts (report.py), and never imports the store, controller,
services or API.

The modules form layers; each imports only those below it (an import-linter contract
checks it), and what a lower one needs of an upper one is a small Protocol in the lower
one (``forward.Client``, ``forward.Shared``, ``relay.Exchange``, ``relay.Origin``...):

    app        the process: workers, shared state (``Gateway``), route updates, draining
    server     a client connection: parses requests, answers in order
    forward    one request (``Exchange``): picks an instance, sends, retries, times out
    mirror     copies of an alias's requests to its mirrors: queue, budget, comparison
    routes     the compiled table: ``match_request`` (path or headers) and ``resolve``
    pool       an instance (``Upstream``): its keep-alive pool and requests in flight
    relay      an instance connection: relays one response at a time to a ``ClientOutput``
    report     reports to the control plane: routes version, draining, figures (heartbeat)
    balance, compare, connections, errors, flow, limits, metrics, request_ids, sync
               instance choice (and sticky sessions), V2 outputs compared, the connection
               cap, JSON errors, the client's write side and flow control, limits and
               deadlines, Prometheus figures, X-Request-Id, route table updates
    headers    what each request header is to the gateway

A request: ``server.ClientConnection`` parses it and calls ``Router.resolve``, then makes
an ``Exchange``; the exchange takes an ``Upstream`` (``acquire``) and a pooled
connection, which sends the request and writes the response to the client's
``ClientOutput`` (pausing when the client reads slowly); the connection goes back with
``Upstream.put_idle``, the exchange ``finish``es and the client starts its next request.
Every field is changed only by methods of the class that has it. HTTP/1.1 bytes both
the gateway and the model server write (status lines, simple responses) are in
``pier.http.wire``.
"""
