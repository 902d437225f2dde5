-- depends_on: {{ ref('terms') }}
{#- The academic terms (seed terms); a term that ends before it begins fails the build naming it. -#}
{%- do assert_terms_valid(ref('terms')) %}

with

terms as (
    select * from {{ ref('terms') }}
)

select
    name as term,
    starts_on,
    ends_on
from terms
