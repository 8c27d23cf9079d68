-- How many events are stored.
select count(*) as events from events
