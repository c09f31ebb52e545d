"""The books' core: tables, errors, double-entry postings, the audit log,
maker-checker approvals and the outbox, with the row mapper, input checks
and keyset paging they share; what every domain of the ledger builds on."""
