{{ config(materialized='table', indexes=[{'columns': ['day']}]) }}

{#- Every day of every academic term: the term rollups join session-days to it on the day, an equality the planner
    estimates from statistics (a join on a date range it cannot), so a dashboard showing one term reads that term's
    days by the index on session_days.day instead of all history. A table of the seed alone (a few hundred rows a
    year), rebuilt when the seed changes. -#}

with

terms as (
    select * from {{ ref('int_terms') }}
),

term_days as (
    select
        terms.term,
        terms.starts_on,
        terms.ends_on,
        (terms_day.day)::date as day
    from terms
    cross join lateral generate_series(terms.starts_on, terms.ends_on, interval '1 day') as terms_day (day)
)

select * from term_days
