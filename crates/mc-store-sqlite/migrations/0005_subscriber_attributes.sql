-- Subscriber attributes for the Data Gateway: one JSON object per subscriber (identity
-- claims, KYC values, SIM-change / lost-stolen / account-state provisioning data). The
-- vocabulary is mc-datagw's; the store keeps the document as given.
CREATE TABLE subscriber_attributes (
    subscriber_id TEXT    NOT NULL PRIMARY KEY REFERENCES subscribers (id),
    attributes    TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
