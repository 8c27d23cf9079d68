-- The distinct event and page/screen names seen in [{start}, {end}), to suggest a likely
-- intended name when a matcher never matches. Parameters: {start}, {end}. Returns event.
select distinct event
from events final
where event is not null
    and occurred_at >= {start:DateTime64(6, 'UTC')} and occurred_at < {end:DateTime64(6, 'UTC')}
order by event
limit 5000
