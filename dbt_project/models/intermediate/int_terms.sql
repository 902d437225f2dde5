-- depends_on: {{ ref('terms') }}
{#- The academic terms (seed terms, checked as it loads: assert_terms_valid). #}

with

terms as (
    select * from {{ ref('terms') }}
)

select
    name as term,
    starts_on,
    ends_on
from terms
