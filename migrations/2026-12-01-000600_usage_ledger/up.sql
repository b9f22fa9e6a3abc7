-- The usage ledger (issue 14): tokens each user spent, per UTC day, model, purpose
-- (`reply` or `title`) and kind (`estimated`: the provider reported no usage and the
-- service estimated it). A reply's charge is added in the same transaction as its final
-- state; rows are summed in place (INSERT … ON CONFLICT DO UPDATE), so a user's month is
-- at most a few dozen rows and the quota check reads them by the primary key. Erasure
-- deletes a user's rows (USER_ROWS in infra-postgres).
CREATE TABLE usage_ledger (
    user_id           text    NOT NULL,
    day               date    NOT NULL,
    model             text    NOT NULL,
    purpose           text    NOT NULL CHECK (purpose IN ('reply', 'title')),
    estimated         boolean NOT NULL,
    prompt_tokens     bigint  NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens bigint  NOT NULL CHECK (completion_tokens >= 0),
    requests          bigint  NOT NULL CHECK (requests >= 0),
    PRIMARY KEY (user_id, day, model, purpose, estimated)
);
