"""`klinehouse dashboard`: a Dash app over the marts and the model registry, read by key."""
