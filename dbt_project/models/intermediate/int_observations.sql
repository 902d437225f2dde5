{#- Every observation as the session models read it: the staged observations of both observation tables. -#}

with

observations as (
    select * from {{ ref('stg_raw__container_observations') }}
)

-- The staged columns, whatever they are: this model adds to them, never picks.
select * from observations  -- noqa: AM04
