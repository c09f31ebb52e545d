"""Reports over the ledger (read only)."""
