"""Development-only tools: the embedded stack (PostgreSQL + moto S3) and the Binance stand-ins.

No runtime package imports it and the runtime images leave it out (`lint-imports`, .dockerignore).
"""
