"""One run of one job, from pending to its end: launched (starting.py), followed
(following.py), recorded (launcher.py), its container described by a pure function
(container.py), its mounts planned (mounts.py), its ports leased (port_leaser.py), its
secrets read (secretfiles.py), beaten for (heartbeats.py) and its timeout kept
(timers.py).

The names below load on first use, so that importing one small part (the secret files,
say) does not load the launcher and the store with it."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.runner.launch_settings import LaunchSettings
    from orchestrator.runner.launcher import (
        DATABASE_PATIENCE_SECONDS,
        Launched,
        NotStarted,
        RunLauncher,
    )

_HOMES = {
    "DATABASE_PATIENCE_SECONDS": "orchestrator.runner.launcher",
    "LaunchSettings": "orchestrator.runner.launch_settings",
    "Launched": "orchestrator.runner.launcher",
    "NotStarted": "orchestrator.runner.launcher",
    "RunLauncher": "orchestrator.runner.launcher",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)


__all__ = ["DATABASE_PATIENCE_SECONDS", "LaunchSettings", "Launched", "NotStarted", "RunLauncher"]
