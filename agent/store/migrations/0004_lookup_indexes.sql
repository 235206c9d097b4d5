-- Indexes for lookups that scanned whole tables: a search's ideas (every resume, report and
-- export) and a training's ideas by their source (closing a training's interrupted runs).
CREATE INDEX search_ideas_by_search ON search_ideas(search_id, epoch, position);
CREATE INDEX ideas_by_source ON ideas(source);
