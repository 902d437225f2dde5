{#- The Fellowships fix-up (see the fellowships_rule docs block): Graph lists some fellows with
    department 'Fellowships' and the real department after the first comma of the job title. -#}

{% macro fellowships_applies(department, job_title) -%}
    ({{ department }} = 'Fellowships' and strpos({{ job_title }}, ',') > 0)
{%- endmacro %}

{% macro fellowships_job_title(department, job_title) -%}
    case
        when {{ fellowships_applies(department, job_title) }}
            then nullif(trim(split_part({{ job_title }}, ',', 1)), '')
        else {{ job_title }}
    end
{%- endmacro %}

{% macro fellowships_department(department, job_title) -%}
    case
        when {{ fellowships_applies(department, job_title) }}
            then nullif(trim(substr({{ job_title }}, strpos({{ job_title }}, ',') + 1)), '')
        else {{ department }}
    end
{%- endmacro %}
