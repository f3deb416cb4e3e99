"""Smart order routing: the pure domain layer."""
