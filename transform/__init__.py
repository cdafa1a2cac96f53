"""The transform stage: dbt over `dbt_project/`, with a profile built from the settings."""
