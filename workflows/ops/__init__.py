"""The service's own health on Temporal Schedules: the heartbeat that proves
every task queue's pollers work, and the integrity checks."""
