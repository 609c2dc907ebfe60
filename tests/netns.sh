#!/bin/sh
# netns.sh PROGRAM [ARGS...] — runs a test inside a private network namespace whose only
# interface is loopback, so nothing it sends can leave the machine (the NetJACK2 tests:
# shared/docs/netjack2.md), and with a /dev/shm of its own: JACK keeps one registry of servers
# per machine and user there (/dev/shm/jack-shm-registry, at most 8 servers, and a server that was
# killed keeps its place), so other tests' servers, running or killed, could leave a rig's third
# server "Too many servers already active". Exit 77, which ctest reports as skipped, where this
# machine does not permit namespaces.
if unshare -n -m true 2>/dev/null; then
    flags=-nm
elif unshare -rnm true 2>/dev/null; then
    flags=-rnm
else
    echo "netns: skipped: no network namespace here (needs root or user namespaces)"
    exit 77
fi
exec unshare $flags sh -c 'ip link set lo up && mount -t tmpfs -o mode=1777 netns-shm /dev/shm &&
    exec "$@"' netns "$@"
