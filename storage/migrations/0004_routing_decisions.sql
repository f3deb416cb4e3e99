-- Every routing decision with the market snapshot it used, so it can be audited and analysed in
-- hindsight (GetRoutingReport joins it to trade_fills by decision_id). Append-only like
-- trade_fills: triggers refuse UPDATE, DELETE and TRUNCATE even for the owner, and the application
-- role may only read and insert.

CREATE TABLE routing_decisions (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decision_id              text NOT NULL,
    decided_at               timestamptz NOT NULL,
    recorded_at              timestamptz NOT NULL DEFAULT now(),
    trade_date               date NOT NULL,
    symbol                   text NOT NULL,
    side                     text NOT NULL CHECK (side IN ('BUY', 'SELL', 'SELL_SHORT', 'SELL_SHORT_EXEMPT')),
    order_type               text NOT NULL,
    quantity                 bigint NOT NULL CHECK (quantity > 0),
    -- The primary venue (first child order).
    venue                    text NOT NULL,
    -- '' when the symbol's reference data did not name it.
    listing_venue            text NOT NULL,
    size_tier                text NOT NULL,
    -- NULL on a one-sided book.
    arrival_mid              numeric,
    national_best_bid        numeric,
    national_best_offer      numeric,
    expected_cost_per_share  numeric NOT NULL,
    fallback_from            text NOT NULL DEFAULT '',
    venue_set_version        integer NOT NULL,
    latency_ns               bigint NOT NULL,
    -- [[venue, score, eligible, [exclusion codes]], ...] in rank order.
    ranking                  jsonb NOT NULL,
    -- [[venue, quantity, limit price or null, order type, iso, role, expected cost], ...]
    child_orders             jsonb NOT NULL,
    -- [[venue, bid, bid size, ask, ask size, quote time], ...]: the book the router read.
    snapshot                 jsonb NOT NULL
);

-- Not unique: a decision recorded again after a connection loss mid-commit must not sink the
-- batch it is in (the recorder resolves in-doubt batches, so copies are not expected).
CREATE INDEX routing_decisions_decision_id ON routing_decisions (decision_id);
CREATE INDEX routing_decisions_day_symbol ON routing_decisions (trade_date, symbol);
CREATE INDEX trade_fills_decision_id ON trade_fills (decision_id) WHERE decision_id <> '';

-- journal_refuse_change() comes from 0002; its message names the operation and the table.
CREATE TRIGGER routing_decisions_immutable
    BEFORE UPDATE OR DELETE ON routing_decisions
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER routing_decisions_no_truncate
    BEFORE TRUNCATE ON routing_decisions
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- The role exists since 0002. Read and append, nothing else.
GRANT SELECT, INSERT ON routing_decisions TO execgw_app;
