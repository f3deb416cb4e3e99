"""Pure-domain tests."""
