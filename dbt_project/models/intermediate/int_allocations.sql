-- depends_on: {{ ref('allocations') }}
{{ config(pre_hook="{{ assert_allocations_valid(ref('allocations'), ref('int_terms')) }}") }}

{#- The allocations in force (docs block allocation_rule): seeds/allocations.csv, which the admin edits and which
    ships empty, with each term's name turned into its dates and the default thresholds filled in; or the demo's
    examples, dated from today (EXAMPLE_ALLOCATIONS). The seed is checked as it loads and again here, where the
    terms are known (assert_allocations_valid), so nothing reads a bad file. -#}
{%- set use_example = var('example_allocations') | string | lower in ('true', '1', 'yes') %}

with

{% if use_example %}

allocations as (
    select
        name,
        grantee_kind,
        grantee,
        resource,
        amount,
        null::text as term,
        {{ utc_today() }} + starts_in_days as starts_on,
        {{ utc_today() }} + ends_in_days as ends_on,
        null::numeric as first_warning_percent,
        null::numeric as second_warning_percent
    from (
        values
        -- Sized for the demo's hub (120 users, 30 days): one past its second warning and one past its first, both
        -- running out before the end at their pace, one used up, two with room to spare, and one ended.
        ('ml-research GPU, this block', 'group', 'ml-research', 'gpu_hours', 450.0, -29, 30),
        ('cs101 GPU, this block', 'group', 'cs101', 'gpu_hours', 1550.0, -29, 30),
        ('Physics GPU, this block', 'department', 'Physics', 'gpu_hours', 150.0, -29, 30),
        ('stat200 cores, this block', 'group', 'stat200', 'cpu_core_hours', 4000.0, -29, 30),
        ('Physics storage, this block', 'department', 'Physics', 'storage_gb_months', 600.0, -29, 30),
        ('phys-lab cores, last block', 'group', 'phys-lab', 'cpu_core_hours', 600.0, -29, -8)
    ) as examples (name, grantee_kind, grantee, resource, amount, starts_in_days, ends_in_days)
),

{% else %}

allocations as (
    select * from {{ ref('allocations') }}
),

{% endif %}

terms as (
    select * from {{ ref('int_terms') }}
),

in_force as (
    select
        allocations.name as allocation_name,
        allocations.grantee_kind,
        allocations.grantee,
        allocations.resource,
        allocations.amount,
        nullif(trim(allocations.term), '') as term,
        coalesce(terms.starts_on, allocations.starts_on) as starts_on,
        coalesce(terms.ends_on, allocations.ends_on) as ends_on,
        coalesce(allocations.first_warning_percent, 75) as first_warning_percent,
        coalesce(allocations.second_warning_percent, 90) as second_warning_percent
    from allocations
    left join terms on nullif(trim(allocations.term), '') = terms.term
)

select * from in_force
