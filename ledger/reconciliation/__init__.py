"""Statement reconciliation in the books: imports, runs, the bulk load and
matching, discrepancies, follow-up and the report."""
