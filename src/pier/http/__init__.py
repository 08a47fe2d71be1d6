"""HTTP/1.1 vocabulary shared by pier's two hand-written servers (the gateway and the
model server): status lines, connection headers, whole simple responses.

It imports nothing else from pier, so either server can use it without depending on
the other, and on neither the control plane's modules.
"""
