-- Every occurrence of one alert (launch, kind, subject) as it stands: its first clearing if
-- cleared, else its raise (the first row inserted of it).
-- Parameters: launch_key, kind, subject. Returns: occurrence, state, message, raised_at, as_of,
-- cleared_at.
select occurrence, state, message, raised_at, as_of, cleared_at
from alerts
where launch_key = {launch_key:String} and kind = {kind:String} and subject = {subject:String}
order by occurrence, cleared_at is null, _block_number
limit 1 by occurrence
