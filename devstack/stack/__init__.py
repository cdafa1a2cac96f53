"""The embedded local stack: PostgreSQL and an S3 endpoint started by klinehouse itself."""

from devstack.stack.manager import StackError, stack_down, stack_env, stack_status, stack_up

__all__ = ["StackError", "stack_down", "stack_env", "stack_status", "stack_up"]
