"""Developer-only helpers (an embedded PostgreSQL for the demo and the tests); nothing in a
night imports them."""
