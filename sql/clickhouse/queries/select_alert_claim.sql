-- Who raised one occurrence of an alert: the claim of its first row inserted.
-- Parameters: launch_key, kind, subject, occurrence. Returns: claim (no row while none is visible).
select claim
from alerts
where launch_key = {launch_key:String} and kind = {kind:String} and subject = {subject:String}
    and occurrence = {occurrence:Int32}
order by _block_number
limit 1
