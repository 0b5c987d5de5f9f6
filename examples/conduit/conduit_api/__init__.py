"""The RealWorld "Conduit" backend API, written with Transom's batteries (see README.md)."""
