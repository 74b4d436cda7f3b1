"""Wire-accurate fake provider servers, one module per provider, used by tests and benchmarks.

Each fake is an ASGI app that speaks its provider's real HTTP API (paths, auth, form/JSON
bodies, success and error shapes), records what it received, and can be told to misbehave
(canned errors, 429 with Retry-After, slowness, dropped connections). Serve one on loopback with
``tests.fakes.server.serve_in_thread`` or ``python -m tests.fakes.<provider> --port N``.
"""
