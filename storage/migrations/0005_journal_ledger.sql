-- The ledger around the trade journal: borrow rates, position snapshots with their lots,
-- reconciliation runs with their breaks, and the reporting views.
--
-- Fees per fill are columns of trade_fills; corrections and busts are trade_fills rows of kind
-- CORRECTION or BUST naming the execution they replace or reverse (vw_fill_corrections lists
-- them). Positions are a fold of the journal, rebuilt at start; the snapshots below record what
-- the journal said at a reconciliation, for audit. Every table here is append-only like
-- trade_fills (journal_refuse_change from 0002), and the application role may only read and
-- insert.

-- Per-symbol borrow rates (hard-to-borrow as data), by the date they take effect.
CREATE TABLE borrow_rates (
    symbol          text NOT NULL,
    effective       date NOT NULL,
    annual_rate     numeric(12, 8) NOT NULL CHECK (annual_rate >= 0),
    hard_to_borrow  boolean NOT NULL DEFAULT false,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, effective)
);

-- Borrow cost accrued on short positions, daily at rate/360 on the short market value.
CREATE TABLE borrow_accruals (
    accrual_date    date NOT NULL,
    account         text NOT NULL,
    symbol          text NOT NULL,
    short_quantity  bigint NOT NULL CHECK (short_quantity > 0),
    mark_price      numeric(20, 6) NOT NULL,
    annual_rate     numeric(12, 8) NOT NULL,
    amount          numeric(20, 6) NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (accrual_date, account, symbol)
);

CREATE TABLE reconciliation_runs (
    run_id          uuid PRIMARY KEY,
    trade_date      date NOT NULL,
    run_at          timestamptz NOT NULL,
    matched         boolean NOT NULL,
    break_count     integer NOT NULL CHECK (break_count >= 0),
    -- Journal sequence high-water mark the run saw: the run can be repeated exactly.
    journal_sequence bigint NOT NULL,
    statement_positions integer NOT NULL,
    statement_accounts  integer NOT NULL
);
CREATE INDEX reconciliation_runs_date ON reconciliation_runs (trade_date, run_at);

CREATE TABLE reconciliation_breaks (
    run_id      uuid NOT NULL REFERENCES reconciliation_runs (run_id),
    position    integer NOT NULL,
    kind        text NOT NULL CHECK (
        kind IN ('MISSING_FILL', 'QUANTITY_MISMATCH', 'CASH_MISMATCH', 'UNKNOWN_SYMBOL')
    ),
    account     text NOT NULL,
    symbol      text NOT NULL,
    expected    numeric(24, 6) NOT NULL,
    actual      numeric(24, 6) NOT NULL,
    difference  numeric(24, 6) NOT NULL,
    detail      text NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, position)
);

-- The journal's positions (and FIFO lots) as of a reconciled trade date.
CREATE TABLE position_snapshots (
    run_id          uuid NOT NULL REFERENCES reconciliation_runs (run_id),
    account         text NOT NULL,
    symbol          text NOT NULL,
    quantity        bigint NOT NULL,
    cost_basis      numeric(28, 12) NOT NULL,
    realized_pnl    numeric(28, 12) NOT NULL,
    cost_method     text NOT NULL CHECK (cost_method IN ('AVERAGE', 'FIFO')),
    PRIMARY KEY (run_id, account, symbol)
);

CREATE TABLE position_lots (
    run_id      uuid NOT NULL,
    account     text NOT NULL,
    symbol      text NOT NULL,
    lot         integer NOT NULL,
    quantity    bigint NOT NULL,
    price       numeric(20, 6) NOT NULL,
    opened_at   timestamptz NOT NULL,
    PRIMARY KEY (run_id, account, symbol, lot),
    FOREIGN KEY (run_id, account, symbol) REFERENCES position_snapshots (run_id, account, symbol)
);

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY[
        'borrow_rates', 'borrow_accruals', 'reconciliation_runs', 'reconciliation_breaks',
        'position_snapshots', 'position_lots'
    ] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I '
            'FOR EACH ROW EXECUTE FUNCTION journal_refuse_change()', name || '_immutable', name
        );
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change()', name || '_no_truncate', name
        );
        EXECUTE format('GRANT SELECT, INSERT ON %I TO execgw_app', name);
    END LOOP;
END;
$$;

-- Corrections and busts with the execution they refer to.
CREATE VIEW vw_fill_corrections AS
SELECT c.trade_date, c.venue, c.exec_id, c.kind, c.corrects_exec_id, c.sequence,
       o.sequence AS corrects_sequence, c.quantity, c.price, o.quantity AS original_quantity,
       o.price AS original_price
FROM trade_fills c
LEFT JOIN trade_fills o ON o.venue = c.venue AND o.exec_id = c.corrects_exec_id
WHERE c.kind IN ('CORRECTION', 'BUST');

-- Fills that count: NEW and CORRECTION records whose execution was not busted or corrected since.
CREATE VIEW vw_effective_fills AS
SELECT f.*
FROM trade_fills f
WHERE f.kind <> 'BUST'
  AND NOT EXISTS (
      SELECT 1 FROM trade_fills later
      WHERE later.venue = f.venue AND later.corrects_exec_id = f.exec_id
  );

-- Cash and costs per account and day from the effective fills. Realised and unrealised P&L need
-- the position fold (GetPnl, `execgw report pnl`); these are the parts SQL can add exactly.
CREATE VIEW vw_daily_pnl_summary AS
SELECT trade_date, account,
       count(*) AS fills,
       sum(quantity) AS shares,
       sum(CASE WHEN side = 'BUY' THEN -1 ELSE 1 END * quantity * price) AS gross_cash,
       sum(commission) AS commission,
       sum(venue_fee) AS exchange_fees,
       sum(sec_fee + finra_taf) AS regulatory_fees,
       sum(CASE WHEN side = 'BUY' THEN -1 ELSE 1 END * quantity * price
           - commission - venue_fee - sec_fee - finra_taf) AS net_cash
FROM vw_effective_fills
GROUP BY trade_date, account;

CREATE VIEW vw_venue_performance AS
SELECT venue,
       count(*) AS fills,
       sum(quantity) AS shares,
       sum(quantity * price) AS notional,
       sum(venue_fee) AS net_venue_fees,
       sum(CASE WHEN venue_fee < 0 THEN -venue_fee ELSE 0 END) AS rebates,
       sum(venue_fee) / NULLIF(sum(quantity), 0) AS fee_per_share,
       count(*) FILTER (WHERE liquidity = 'ADDED')::numeric / count(*) AS added_share,
       avg(extract(epoch FROM received_at - transaction_time)) AS report_delay_seconds
FROM vw_effective_fills
WHERE trade_date >= current_date - 30
GROUP BY venue;

CREATE VIEW vw_symbol_pnl AS
SELECT symbol, account,
       count(*) AS fills,
       sum(CASE WHEN side = 'BUY' THEN quantity ELSE -quantity END) AS net_quantity,
       sum(CASE WHEN side = 'BUY' THEN -1 ELSE 1 END * quantity * price) AS gross_cash,
       sum(commission + venue_fee + sec_fee + finra_taf) AS fees,
       sum(CASE WHEN side = 'BUY' THEN -1 ELSE 1 END * quantity * price
           - commission - venue_fee - sec_fee - finra_taf) AS net_cash
FROM vw_effective_fills
WHERE trade_date >= current_date - 90
GROUP BY symbol, account;

GRANT SELECT ON vw_fill_corrections, vw_effective_fills, vw_daily_pnl_summary,
    vw_venue_performance, vw_symbol_pnl TO execgw_app;
