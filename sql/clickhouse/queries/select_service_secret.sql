-- The value of one service secret: the first one stored under its name. Parameters: name.
select value
from service_secrets
where name = {name:String}
order by _block_number
limit 1
