"""The Docker engine: the contract's adapter (adapter.py) over the docker SDK, apart from
the socket's transport (transport.py), the log stream (logstream.py) and the translation of
the SDK's errors (translate.py), which another adapter of the same API can reuse.
DockerEngine is the adapter with exec workloads (execs.py) on top."""

from orchestrator.engine.docker.execs import ExecEngine as DockerEngine

__all__ = ["DockerEngine"]
