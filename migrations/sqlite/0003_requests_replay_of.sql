-- A request stored by `webhooks replay` names the request it judged again
-- (the first of a chain of replays); no foreign key, so that pruning the
-- original never fails for its replay.
ALTER TABLE requests ADD COLUMN replay_of INTEGER;
CREATE INDEX requests_by_replay_of ON requests (replay_of, http_status);
