"""Directory sync: read users, groups and OUs from LDAP/AD into inventory entities, incrementally."""
