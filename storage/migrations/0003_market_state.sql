-- Market state history and pre-trade refusals, so compliance can show afterwards every halt, pause
-- (declared and inferred), limit state, circuit breaker, short-sale restriction and refusal, with
-- its time and reason; and the Reg SHO Rule 201 restrictions, which must survive a restart and
-- carry over to the next trading day. Append-only like trade_fills: triggers refuse UPDATE, DELETE
-- and TRUNCATE even for the owner, and the application role may only read and insert.

CREATE TABLE market_state_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    trade_date   date NOT NULL,
    -- '' for a market-wide event (circuit breaker).
    symbol       text NOT NULL,
    kind         text NOT NULL CHECK (kind IN (
        'HALT', 'RESUME', 'PAUSE', 'PAUSE_INFERRED', 'LIMIT_STATE', 'STRADDLE', 'CIRCUIT_BREAKER',
        'SHORT_SALE_RESTRICTION', 'OPERATIONAL_HALT', 'OPERATIONAL_RESUME', 'AUCTION_PHASE',
        'BAND_SOURCE'
    )),
    reason_code  text NOT NULL DEFAULT '',
    venue        text NOT NULL DEFAULT '',
    detail       jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX market_state_events_symbol ON market_state_events (symbol, occurred_at);
CREATE INDEX market_state_events_day_kind ON market_state_events (trade_date, kind);

CREATE TABLE pretrade_refusals (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decided_at       timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    trade_date       date NOT NULL,
    client_order_id  text NOT NULL,
    account          text NOT NULL,
    symbol           text NOT NULL,
    side             text NOT NULL,
    order_type       text NOT NULL,
    quantity         bigint NOT NULL,
    limit_price      numeric,
    -- A refusal always says why.
    reason_codes     text[] NOT NULL CHECK (cardinality(reason_codes) > 0),
    restrictions     text[] NOT NULL,
    phase            text NOT NULL,
    rpc              text NOT NULL CHECK (rpc IN ('CheckOrder', 'SubmitOrder'))
);

CREATE INDEX pretrade_refusals_symbol ON pretrade_refusals (symbol, decided_at);
CREATE INDEX pretrade_refusals_account ON pretrade_refusals (account, decided_at);

-- Reg SHO Rule 201(b)(1)(ii): once triggered, the restriction applies for the rest of the day and
-- the following trading day; restricted_until is that day, computed by the gateway's calendar.
CREATE TABLE short_sale_restrictions (
    symbol            text NOT NULL,
    triggered_on      date NOT NULL,
    restricted_until  date NOT NULL CHECK (restricted_until >= triggered_on),
    trigger_price     numeric NOT NULL,
    triggered_at      timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, triggered_on)
);

CREATE INDEX short_sale_restrictions_until ON short_sale_restrictions (restricted_until);

-- journal_refuse_change() comes from 0002; its message names the operation and the table.
CREATE TRIGGER market_state_events_immutable
    BEFORE UPDATE OR DELETE ON market_state_events
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER market_state_events_no_truncate
    BEFORE TRUNCATE ON market_state_events
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER pretrade_refusals_immutable
    BEFORE UPDATE OR DELETE ON pretrade_refusals
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER pretrade_refusals_no_truncate
    BEFORE TRUNCATE ON pretrade_refusals
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER short_sale_restrictions_immutable
    BEFORE UPDATE OR DELETE ON short_sale_restrictions
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER short_sale_restrictions_no_truncate
    BEFORE TRUNCATE ON short_sale_restrictions
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- The role exists since 0002. Read and append, nothing else: identity columns need no sequence
-- grant, and INSERT ... ON CONFLICT DO NOTHING needs no UPDATE.
GRANT SELECT, INSERT ON market_state_events, pretrade_refusals, short_sale_restrictions
    TO execgw_app;
