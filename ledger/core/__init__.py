"""The books' core: tables, errors, double-entry postings, the audit log and
maker-checker approvals; what every domain of the ledger builds on."""
