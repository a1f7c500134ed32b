"""Pure decisions, one question each: no driver, no thread, no socket, no clock of their own
(the time is an argument), so their tests need no I/O. The service and the runner ask them.

- overlap: what a new run does about runs of its job still going (`concurrency:`)
- retries: whether and when a failed run is tried again (`retries:`)
- outcomes: a run's status from what its container did
- lateness: how late a run starts; whether its start deadline has passed
- catchup: which missed fires to run after downtime (`catchup:`)
- chains: which jobs a run's end starts (`on_success`, `on_failure`); cycles, unknown targets
- notify_events: which events of a run are told to whom, the body, the signature
- safety: what a job may do to the host (grants, host paths, networks): the one policy
- networks: which networks a job may join (`network:`): the scheduler's own, by any name,
  only when ORCHESTRATOR_ALLOWED_NETWORKS lists them
- ownership: whether a run's owner is gone, so that the run may be adopted
- columns: what the database's text columns hold; a value made to fit them
"""
