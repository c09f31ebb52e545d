"""Disputes: a citizen's complaint, its evidence and its maker-checker
resolution."""
