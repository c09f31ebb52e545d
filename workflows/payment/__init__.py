"""The payment saga: FinePayment, ExternalDebit and LinkRecovery workflows,
their activities, types and client."""
