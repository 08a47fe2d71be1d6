"""The model server: what each instance of a model node runs (``python -m pier.modelserver``).

It speaks the KServe V2 / Open Inference Protocol over HTTP; see ``__main__`` for the
command line, ``app`` for the routes and ``loaders`` for the model formats.
"""
