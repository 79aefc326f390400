#!/bin/sh
# Entry point wrapper for images that read a secret from an environment variable only (RabbitMQ's RABBITMQ_DEFAULT_PASS,
# SQL Server's MSSQL_SA_PASSWORD, sqlcmd's SQLCMDPASSWORD): for each NAME_FILE=/run/secrets/..., export NAME with that
# file's content, then run the image's own command. The secret is never on a command line (`ps` shows those).
set -eu
for name in $(env | sed -n 's|^\([A-Za-z0-9_]*\)_FILE=/run/secrets/.*|\1|p'); do
  eval "file=\${${name}_FILE}"
  value=$(cat "$file")
  export "$name=$value"
  unset "${name}_FILE"
done
exec "$@"
