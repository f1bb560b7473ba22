"""Local fakes of the SaaS APIs connectors call, each started by a test on a free port."""
