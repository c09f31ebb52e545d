"""Receipts: gapless numbering, Ed25519 signing, the PDF and the amount in
words."""
