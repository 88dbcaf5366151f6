-- Reconciliation with the shops' order APIs: per shop, how far it got (the
-- newest updated_at taken), how its last run went, and a lease on the
-- database's clock so that one process at a time reconciles a shop.
-- Orders reconciliation brought are those with a request at a reconcile:* endpoint.
CREATE TABLE reconciliations (
    platform        VARCHAR(32)  NOT NULL,
    shop            VARCHAR(255) NOT NULL,
    watermark       BIGINT,
    last_run_at     BIGINT,
    last_success_at BIGINT,
    last_fetched    BIGINT       NOT NULL DEFAULT 0,
    last_new        BIGINT       NOT NULL DEFAULT 0,
    last_changed    BIGINT       NOT NULL DEFAULT 0,
    last_unchanged  BIGINT       NOT NULL DEFAULT 0,
    last_refused    BIGINT       NOT NULL DEFAULT 0,
    found_total     BIGINT       NOT NULL DEFAULT 0,
    last_error      TEXT,
    lease_token     VARCHAR(64),
    lease_until     BIGINT,
    PRIMARY KEY (platform, shop)
);
