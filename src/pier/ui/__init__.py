"""The web UI at ``/`` on the control plane: Jinja2 pages made live by htmx, charts drawn
by uPlot. It acts through the same services, token check and policy table as the REST
API; the browser holds the token in an HttpOnly cookie (see pier.ui.session)."""
