#!/bin/sh
# The official redis image's entrypoint interface (docker-entrypoint.sh on PATH; a first argument that
# is an option or a .conf file means redis-server), with its default of protected mode off (the
# official image builds Redis so; here the flag is added after the config file and options): the
# compose network is the boundary.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = "redis-server" ]; then
  shift
  exec redis-server "$@" --protected-mode no
fi
exec "$@"
