"""bank_adapters package."""
