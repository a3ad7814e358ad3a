-- The unresolved dead letters of a collection by the cluster time of their
-- event: the applier records an event's dead letter only when no
-- unresolved one of the same event exists (sink, deadletters.go,
-- insertEventDeadLetter), and looks it up here instead of reading every
-- unresolved dead letter of the collection for each one it writes.
CREATE INDEX IF NOT EXISTS dead_letters_unresolved_event
    ON replicator.dead_letters (collection, cluster_ts, cluster_inc) WHERE resolved_at IS NULL;
