#!/usr/bin/env bash
# hostrelay enrollment refused: nothing on this host was changed.
printf 'hostrelay: %s\n' ${message} >&2
exit 1
