-- The trade journal: immutable fill records, append-only in the database itself.
--
-- Idempotency key: (trade_date, venue, exec_id). Venues guarantee execution ids unique within a
-- trading day (FIX ExecID), and the key must contain the partition key to be enforced by
-- PostgreSQL on a partitioned table.
--
-- Tamper evidence: every gateway process writes its own hash chain (journal_chains); each row
-- carries the hash of the previous row of its chain and of its own canonical content.

CREATE SEQUENCE trade_fill_sequence AS bigint;

CREATE TABLE journal_chains (
    chain_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    hostname    text NOT NULL,
    pid         integer NOT NULL,
    -- Version of the canonical row encoding the chain's hashes use.
    encoding    smallint NOT NULL
);

CREATE TABLE trade_fills (
    trade_date        date NOT NULL,
    venue             text NOT NULL,
    exec_id           text NOT NULL,
    sequence          bigint NOT NULL,
    chain_id          bigint NOT NULL,
    chain_seq         bigint NOT NULL,
    account           text NOT NULL,
    symbol            text NOT NULL,
    side              text NOT NULL CHECK (side IN ('BUY', 'SELL', 'SELL_SHORT', 'SELL_SHORT_EXEMPT')),
    quantity          bigint NOT NULL CHECK (quantity > 0),
    price             numeric(20, 6) NOT NULL CHECK (price > 0),
    liquidity         text NOT NULL,
    transaction_time  timestamptz NOT NULL,
    received_at       timestamptz NOT NULL,
    client_order_id   text NOT NULL DEFAULT '',
    decision_id       text NOT NULL DEFAULT '',
    kind              text NOT NULL CHECK (kind IN ('NEW', 'CORRECTION', 'BUST')),
    corrects_exec_id  text NOT NULL DEFAULT '',
    commission        numeric(20, 6) NOT NULL DEFAULT 0,
    venue_fee         numeric(20, 6) NOT NULL DEFAULT 0,
    sec_fee           numeric(20, 6) NOT NULL DEFAULT 0,
    finra_taf         numeric(20, 6) NOT NULL DEFAULT 0,
    prev_hash         bytea NOT NULL,
    row_hash          bytea NOT NULL,
    PRIMARY KEY (trade_date, venue, exec_id)
) PARTITION BY RANGE (trade_date);

CREATE INDEX trade_fills_account_symbol ON trade_fills (account, symbol, sequence);
CREATE INDEX trade_fills_chain ON trade_fills (chain_id, chain_seq);
CREATE INDEX trade_fills_sequence ON trade_fills (sequence);

-- Append-only: refuse UPDATE and DELETE on every row, and TRUNCATE of the table and its partitions.
CREATE FUNCTION journal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal rows are immutable: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER trade_fills_immutable
    BEFORE UPDATE OR DELETE ON trade_fills
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER trade_fills_no_truncate
    BEFORE TRUNCATE ON trade_fills
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER journal_chains_immutable
    BEFORE UPDATE OR DELETE ON journal_chains
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER journal_chains_no_truncate
    BEFORE TRUNCATE ON journal_chains
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- Monthly partitions, created on demand by the writer. SECURITY DEFINER: the application role may
-- create a partition through this function but has no DDL rights of its own. A TRUNCATE of a
-- partition does not fire the parent's trigger, so each partition gets its own.
CREATE FUNCTION journal_ensure_month(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    first_day date := date_trunc('month', day)::date;
    name text := format('trade_fills_%s', to_char(first_day, 'YYYY_MM'));
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(name));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN;
    END IF;
    -- The catalog cache may not show a partition another session created a moment ago.
    BEGIN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF trade_fills FOR VALUES FROM (%L) TO (%L)',
            name, first_day, (first_day + interval '1 month')::date
        );
    EXCEPTION WHEN duplicate_table THEN
        RETURN;
    END;
    EXECUTE format(
        'CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
        'EXECUTE FUNCTION journal_refuse_change()',
        name || '_no_truncate', name
    );
END;
$$;

-- The role the gateway's pool runs as (SET ROLE after connecting): read and append, nothing else.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'execgw_app') THEN
        CREATE ROLE execgw_app NOLOGIN;
    END IF;
END;
$$;
GRANT execgw_app TO CURRENT_USER;
GRANT SELECT, INSERT ON trade_fills, journal_chains TO execgw_app;
GRANT SELECT, INSERT ON gateway_starts TO execgw_app;
GRANT USAGE ON SEQUENCE trade_fill_sequence TO execgw_app;
REVOKE ALL ON FUNCTION journal_ensure_month(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION journal_ensure_month(date) TO execgw_app;
