-- How many event rows the table's parts hold, duplicates awaiting a merge included: read from
-- the parts' metadata, so it costs nothing; it changes whenever anyone (this process or
-- another replica) stores events, and when merges drop duplicates. data_version polls it.
select count() as written from events
