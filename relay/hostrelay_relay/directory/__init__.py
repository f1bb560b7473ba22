"""Directory sync: users, groups and OUs from LDAP or AD into inventory entities, incrementally."""
