#!/bin/sh
# netns.sh PROGRAM [ARGS...] — runs a test inside a private network namespace whose only
# interface is loopback, so nothing it sends can leave the machine (the NetJACK2 tests:
# shared/docs/netjack2.md). Exit 77, which ctest reports as skipped, where this machine does not
# permit namespaces.
if unshare -n true 2>/dev/null; then
    flags=-n
elif unshare -rn true 2>/dev/null; then
    flags=-rn
else
    echo "netns: skipped: no network namespace here (needs root or user namespaces)"
    exit 77
fi
exec unshare $flags sh -c 'ip link set lo up && exec "$@"' netns "$@"
