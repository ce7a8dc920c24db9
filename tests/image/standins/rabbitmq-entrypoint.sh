#!/bin/sh
# The official image's entrypoint, as far as the compose files rely on it:
# RABBITMQ_ERLANG_COOKIE becomes the node's cookie, and the server runs as the
# rabbitmq user as the container's main process, so `docker stop`'s SIGTERM
# reaches it and stops the node cleanly. (Debian's /usr/sbin/rabbitmq-server
# switches user through `su`, which does not pass SIGTERM on.) Other commands
# (rabbitmqctl, rabbitmq-diagnostics) go through Debian's wrappers, which
# switch to the rabbitmq user themselves.
set -e
if [ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]; then
    cookie=/var/lib/rabbitmq/.erlang.cookie
    printf '%s' "$RABBITMQ_ERLANG_COOKIE" > "$cookie"
    chown rabbitmq:rabbitmq "$cookie"
    chmod 600 "$cookie"
fi
chown rabbitmq:rabbitmq /var/lib/rabbitmq
if [ "$1" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
    shift
    cd /var/lib/rabbitmq
    export HOME=/var/lib/rabbitmq
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
