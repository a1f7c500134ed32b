"""Settings: their names, environment variables and defaults. Only this module and the
CLI read the environment; everything else receives values as arguments."""

from __future__ import annotations

DATABASE_URL_ENV = "ORCHESTRATOR_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///orchestrator.db"

PORT_RANGE_ENV = "ORCHESTRATOR_PORT_RANGE"
DEFAULT_PORT_RANGE = "20000-20999"

PORT_HOST_IP_ENV = "ORCHESTRATOR_PORT_HOST_IP"
DEFAULT_PORT_HOST_IP = "0.0.0.0"

CONTAINER_ID_ENV = "ORCHESTRATOR_CONTAINER_ID"

OUTPUT_LIMIT_ENV = "ORCHESTRATOR_OUTPUT_LIMIT"
DEFAULT_OUTPUT_LIMIT = "1MiB"
