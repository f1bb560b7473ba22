"""The local stack: runs the control plane, broker, relay and demo directories on this machine."""
