"""Transom's benchmark suite: equal-work apps for Transom and its peers, and the runner."""
