"""execgw: halt-safe execution gateway for US equities."""

__version__ = "0.1.0"
