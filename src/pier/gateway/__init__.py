"""pier's gateway, the data plane: ``python -m pier.gateway``.

Its own process(es), kept out of the control plane's way: it serves the route table it
last received (long-polled from the control plane, persisted to a routes file) and never
imports the store, controller, services or API. Modules:

    app       process, shared state, workers          server   client connections
    routes    compiled route table, path/header rules  forward  one request to an instance
    balance   instance and alias-node choice           relay    an instance's response
    limits    body limits, whole-request timeouts      pool     upstream keep-alive pools
    metrics   Prometheus counters                      sync     route table updates
    wire      HTTP/1.1 bytes written by the gateway    errors   JSON error answers
"""
