"""The job contract the control plane, the relay and the CLI share (docs/protocol.md).

Job types with their params and result models and error codes, the name rules, canonical
JSON, the signed envelope, and the relay's events (job output, inventory batches) as both
sides build and read them. It imports only pydantic and the standard library, runs on
Python 3.10-3.13, and loads a job type's models only when that type is first used.
"""
