"""Trade journal domain tests: fills, fees, borrow, positions, P&L, reconciliation, audit chain."""
