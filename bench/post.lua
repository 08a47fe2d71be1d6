-- wrk script: every request is a small JSON POST, like an inference call.
wrk.method = "POST"
wrk.body = '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[0.1,0.2,0.3,0.4]}]}'
wrk.headers["Content-Type"] = "application/json"
