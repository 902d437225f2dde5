-- gpu_hours + cpu_hours = total_hours for every user (within rounding of numeric division).
select
    user_email,
    total_hours,
    gpu_hours,
    cpu_hours
from {{ ref('user_session_stats') }}
where abs(gpu_hours + cpu_hours - total_hours) > 0.000001
