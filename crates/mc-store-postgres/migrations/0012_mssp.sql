-- The SIM applet's durable MSSP requests (mc_store::MsspStore): written before the request
-- goes to the MSSP, leased by the node that polls it, taken over by any node's worker once
-- the lease ran out (a crash), deleted when the transaction is over. No foreign key to
-- sessions: retention purges sessions on its own schedule.
CREATE TABLE mssp_requests (
    session_id    TEXT    NOT NULL PRIMARY KEY,
    subscriber_id TEXT    NOT NULL,
    msisdn        TEXT    NOT NULL,
    text          TEXT    NOT NULL,
    pin_required  BOOLEAN NOT NULL,
    ap_trans_id   TEXT    NOT NULL,
    -- NULL until the MSSP accepted the request (then the request is polled, never resent).
    mssp_trans_id TEXT,
    attempts      BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner   TEXT    NOT NULL,
    lease_until   BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL
);

-- The take-over scan of lease_mssp_requests.
CREATE INDEX mssp_requests_lease ON mssp_requests (lease_until);
-- purge_mssp_requests.
CREATE INDEX mssp_requests_expiry ON mssp_requests (expires_at);
-- The oldest request (metrics).
CREATE INDEX mssp_requests_created ON mssp_requests (created_at);
