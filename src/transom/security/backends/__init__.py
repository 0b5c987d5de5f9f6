"""Session and rate-limit backends that need a server (Redis, a SQL database)."""
