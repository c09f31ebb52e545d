"""The ``reconciler`` command line."""
