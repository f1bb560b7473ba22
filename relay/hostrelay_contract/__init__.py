"""The job contract the control plane, the relay and the CLI share (docs/protocol.md).

Job types and their params and result models, the name rules, canonical JSON, the signed
envelope and the relay's events. It imports only pydantic and the standard library, runs on
Python 3.10-3.13, and loads a job type's models only when that type is first used.
"""
