"""The application layer: the `klinehouse` command, the tasks the Airflow DAGs call, the demo.

It sits on top of every stage and may import all of them; nothing imports it.
"""
