-- NBBO midpoint history for P&L attribution (markouts, timing cost, implementation shortfall).
-- The gateway samples the mid of every symbol from its market state, off the hot path, and
-- records each change with the time of the quote that set it (gateway/mid_sampler.py). The mid at
-- a moment is the latest row of the symbol at or before it. Append-only like trade_fills:
-- triggers refuse UPDATE, DELETE and TRUNCATE even for the owner, and the application role may
-- only read and insert.

CREATE TABLE nbbo_mids (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol       text NOT NULL,
    at           timestamptz NOT NULL,
    mid          numeric NOT NULL CHECK (mid > 0),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX nbbo_mids_symbol_at ON nbbo_mids (symbol, at);

-- journal_refuse_change() comes from 0002; its message names the operation and the table.
CREATE TRIGGER nbbo_mids_immutable
    BEFORE UPDATE OR DELETE ON nbbo_mids
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER nbbo_mids_no_truncate
    BEFORE TRUNCATE ON nbbo_mids
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

GRANT SELECT, INSERT ON nbbo_mids TO execgw_app;
