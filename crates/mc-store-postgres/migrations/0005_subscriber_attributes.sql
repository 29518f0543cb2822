-- Subscriber attributes for the Data Gateway: one JSON object per subscriber (identity
-- claims, KYC values, SIM-change / lost-stolen / account-state provisioning data). The
-- vocabulary is mc-datagw's; the store keeps the document as given (TEXT, like the other
-- JSON columns, so it reads back byte-for-byte and compatible servers need no JSONB).
CREATE TABLE subscriber_attributes (
    subscriber_id TEXT   NOT NULL REFERENCES subscribers (id),
    attributes    TEXT   NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT subscriber_attributes_pkey PRIMARY KEY (subscriber_id)
);
