-- Every start of a gateway process, so operators and compliance can tell which build served when.
CREATE TABLE gateway_starts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    version     text NOT NULL,
    hostname    text NOT NULL,
    pid         integer NOT NULL,
    settings    jsonb NOT NULL
);
