-- The key of every launch that exists, sorted.
select distinct launch_key
from launch_versions
order by launch_key
