"""Use cases called by the API, by tests and by `pier up`: one module per noun."""
