"""The HTTP API: routes, their dependencies (``deps``), auth, problem responses and term-id resolution."""
