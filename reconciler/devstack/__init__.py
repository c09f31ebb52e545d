"""The embedded dev stack: PostgreSQL, Temporal dev server and the service
processes, supervised together by ``reconciler dev``. Tests reuse the pieces."""
