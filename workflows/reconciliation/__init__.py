"""The reconciliation workflows (a statement, a discrepancy's action),
their activities, types, schedules and client."""
