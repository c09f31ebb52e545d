"""Values and rules every layer shares: money bounds, business time, the
formats of accounts, references and keys, and the keys derived from business
ids. Plain Python, no I/O, and it imports nothing of ours, so ``ledger``,
``bank_adapters`` and ``workflows`` can all use it without importing each
other (see docs/architecture.md)."""
