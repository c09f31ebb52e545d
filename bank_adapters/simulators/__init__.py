"""Bank simulators: real aiohttp servers playing a REST account-debit bank
and a VietQR-transfer bank, with durable state and fault injection. See
``server`` for how to run one and ``common`` for the admin API."""
