"""Wire formats of the SEN transfer hub: every message that crosses a Kafka topic.

Contract layer: imports only pydantic and the standard library. Services import these
models at their edges (handlers, entry points), never each other.
"""
