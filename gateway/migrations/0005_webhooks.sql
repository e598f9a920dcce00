-- Events, subscriptions and their deliveries (the transactional outbox).
--
-- An event is written in the same transaction as the change it reports. Each event belongs
-- to a lane (an invoice, an account, a subscription) and is numbered within it; the number
-- comes from event_lanes, whose row lock orders the writers of one lane, so the numbers
-- follow commit order. For every subscription that wants the event's type, the same
-- transaction adds a delivery and marks the subscription's lane due.

CREATE TABLE event_lanes (
    tenant_id       text    NOT NULL,
    lane            text    NOT NULL,   -- 'invoice:<id>', 'account:<id>', 'subscription:<id>'
    last_sequence   bigint  NOT NULL,
    PRIMARY KEY (tenant_id, lane)
);

CREATE TABLE events (
    tenant_id         text        NOT NULL,
    event_pk          bigint      GENERATED ALWAYS AS IDENTITY,
    event_id          text        NOT NULL,
    type              text        NOT NULL,
    version           integer     NOT NULL,
    lane              text        NOT NULL,
    sequence          bigint      NOT NULL CHECK (sequence > 0),
    previous_event_id text,
    data              jsonb       NOT NULL,
    -- Repeats of one fact (a payment found unmatched on every run) are refused here.
    dedup_key         text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- The writing transaction: the feed serves only events of finished transactions, in
    -- (txid, event_pk) order, so a cursor never passes an event committed late.
    txid              xid8        NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (tenant_id, event_id),
    UNIQUE (tenant_id, lane, sequence),
    UNIQUE (tenant_id, dedup_key)
);
CREATE INDEX events_feed ON events (tenant_id, txid, event_pk);
CREATE INDEX events_created ON events (tenant_id, created_at);

-- status: active (delivered to), paused (by its owner), disabled (by us: 410, or failing for
-- too long). Paused and disabled subscriptions keep collecting deliveries; nothing is
-- dropped, and resuming delivers the backlog in order.
CREATE TABLE subscriptions (
    tenant_id              text        NOT NULL,
    subscription_id        text        NOT NULL,
    owner_key_id           text        NOT NULL,
    url                    text,       -- NULL: the subscriber polls GET /v1/events
    event_types            text[]      NOT NULL,
    public_jwk             jsonb,
    jwks_url               text,
    kid                    text        NOT NULL,
    secret                 text        NOT NULL,
    previous_secret        text,
    previous_secret_until  timestamptz,
    status                 text        NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'paused', 'disabled')),
    status_reason          text,
    failing_since          timestamptz,
    warned_at              timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subscription_id),
    CHECK ((public_jwk IS NULL) <> (jwks_url IS NULL))
);

-- One delivery per (subscription, event): a constraint, not a cache, keeps it single.
-- generation grows with each replay, so a completion of an older attempt does not mark a
-- replayed delivery done.
CREATE TABLE deliveries (
    tenant_id        text        NOT NULL,
    subscription_id  text        NOT NULL,
    event_id         text        NOT NULL,
    lane             text        NOT NULL,
    sequence         bigint      NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'succeeded', 'failed')),
    generation       integer     NOT NULL DEFAULT 0,
    tries            integer     NOT NULL DEFAULT 0,   -- failed attempts in this round
    first_try_at     timestamptz,                      -- first failure of this round
    attempts         integer     NOT NULL DEFAULT 0,   -- every attempt, ever
    next_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    PRIMARY KEY (tenant_id, subscription_id, event_id),
    FOREIGN KEY (tenant_id, subscription_id)
        REFERENCES subscriptions (tenant_id, subscription_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, event_id)
);
CREATE INDEX deliveries_lane_pending ON deliveries (tenant_id, subscription_id, lane, sequence)
    WHERE status = 'pending';
-- Not led by tenant_id, on purpose: an index on (tenant_id, subscription_id, ...) looks as
-- good to the planner as deliveries_lane_pending while deliveries has no statistics (right
-- after a burst), and finding a lane's first pending delivery through it scans the
-- subscription's whole backlog. Subscription ids are unique across tenants.
CREATE INDEX deliveries_listing ON deliveries (subscription_id, created_at, event_id);
CREATE INDEX deliveries_event ON deliveries (tenant_id, event_id);  -- pruning old events

-- The unit of claiming: one attempt in flight per (subscription, lane). next_attempt_at is
-- NULL when the lane has nothing pending, else when its first pending delivery is due; a
-- dispatcher holds a lane under a lease that expires if it dies.
CREATE TABLE delivery_lanes (
    tenant_id        text        NOT NULL,
    subscription_id  text        NOT NULL,
    lane             text        NOT NULL,
    next_attempt_at  timestamptz,
    lease_until      timestamptz,
    leased_by        text,
    PRIMARY KEY (tenant_id, subscription_id, lane),
    FOREIGN KEY (tenant_id, subscription_id)
        REFERENCES subscriptions (tenant_id, subscription_id) ON DELETE CASCADE
);
CREATE INDEX delivery_lanes_due ON delivery_lanes (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;

-- Every attempt: when, the answer, how long it took, the start of the answer's body.
CREATE TABLE delivery_attempts (
    tenant_id        text        NOT NULL,
    attempt_id       bigint      GENERATED ALWAYS AS IDENTITY,
    subscription_id  text        NOT NULL,
    event_id         text        NOT NULL,
    attempted_at     timestamptz NOT NULL,
    status_code      integer,
    latency_ms       double precision NOT NULL,
    error            text,
    response_excerpt text,
    dispatcher       text        NOT NULL,
    -- No foreign key to subscriptions: checking one would make a dispatcher recording
    -- attempts lock the subscription row while it holds lanes, the reverse of the order
    -- of people's changes, so the two could deadlock. Deleting a subscription deletes its
    -- attempts itself.
    PRIMARY KEY (tenant_id, attempt_id)
);
CREATE INDEX delivery_attempts_event ON delivery_attempts (tenant_id, subscription_id, event_id);
CREATE INDEX delivery_attempts_time ON delivery_attempts (attempted_at);  -- pruning

-- Our own ed25519 key for the optional v1a signature, published at /v1/webhook-keys.
CREATE TABLE signing_keys (
    tenant_id    text        NOT NULL,
    kid          text        NOT NULL,
    private_key  bytea       NOT NULL,   -- raw 32-byte ed25519 seed
    public_key   bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kid)
);

-- The lines a statement brought, for its payment.received events.
CREATE INDEX transactions_statement ON transactions (tenant_id, account_id, statement_pk);
