-- 0007: MIND impressions as `recsys load mind` writes them, and a source view over them.
--
-- MIND (Microsoft News Dataset, Wu et al., ACL 2020) ships one line per impression,
-- listing the news shown and a 0/1 click label for each. The loader writes one row
-- per shown slot; `mind_events` reads them in the shape of a recsys source
-- (RECSYS_SOURCE_TABLE=mind_events), with the log's text keys as the ids.
CREATE TABLE mind_impressions (
    impression_id bigint      NOT NULL,
    user_key      text        NOT NULL,   -- 'U81994'
    news_key      text        NOT NULL,   -- 'N55689'
    position      integer     NOT NULL CHECK (position >= 1),  -- slot in the file's list (MIND shuffles it)
    clicked       boolean     NOT NULL,
    event_time    timestamptz NOT NULL,   -- MIND's zone-less time, read as UTC
    source        text        NOT NULL,   -- the load that wrote the row ('mind:<folder>')
    -- MIND's train and dev splits both number impressions from 1: unique per load only
    PRIMARY KEY (source, impression_id, position)
);
-- the nightly extract reads a window of the view; the loader writes rows in time order
CREATE INDEX mind_impressions_event_time_brin ON mind_impressions USING brin (event_time)
    WITH (pages_per_range = 32, autosummarize = on);

-- One impression event per slot, and a click event for each clicked slot. No value,
-- model_version or propensity: MIND has none (the night says once what that turns off).
CREATE VIEW mind_events AS
SELECT event_time, user_key AS user_id, news_key AS item_id, 'impression'::text AS event_type,
       impression_id AS session_id
FROM mind_impressions
UNION ALL
SELECT event_time, user_key AS user_id, news_key AS item_id, 'click'::text AS event_type,
       impression_id AS session_id
FROM mind_impressions
WHERE clicked;
