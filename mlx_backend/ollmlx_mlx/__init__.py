"""ollmlx's MLX runner: one model in one process, served to the daemon over loopback HTTP.

The wire contract is docs/runner-protocol.md. Modules: ``__main__`` (process lifecycle),
``server`` (HTTP handlers), ``engine`` (the thread that owns every MLX object), ``protocol``
(request parsing and event shapes), ``sampling``, ``stops``, ``templates``, ``facts`` and ``log``.
"""

__version__ = "0.1.0"

# Bump together with docs/runner-protocol.md and src/runner/protocol.rs when the wire contract
# changes in a way that is not backwards compatible.
PROTOCOL_VERSION = 1
