#!/usr/bin/env bash
# Brings the whole Envio stack up with the Aspire dashboard: RabbitMQ, the database, the API and the consumer.
# With Docker or Podman running, the broker and SQL Server run as containers; otherwise RabbitMQ and PostgreSQL
# run as local processes (installed on first use). Extra arguments go to the AppHost, e.g. --Envio:Hosting=processes.
set -euo pipefail
cd "$(dirname "$0")"

container_runtime_answers() {
  for runtime in ${ASPIRE_CONTAINER_RUNTIME:-docker podman}; do
    command -v "$runtime" >/dev/null 2>&1 && "$runtime" info >/dev/null 2>&1 && return 0
  done
  return 1
}

# The dashboard warns "No trusted development certificate" on a machine that never made one: make it on first use,
# and trust it where the platform lets a user do so (on Linux only some clients read that trust; not fatal).
development_certificate_exists() {
  dotnet dev-certs https --check --quiet >/dev/null 2>&1
}
if ! development_certificate_exists; then
  echo "Creating the ASP.NET Core development certificate (dotnet dev-certs https --trust)..."
  dotnet dev-certs https --trust || development_certificate_exists || echo "warning: no development certificate; run 'dotnet dev-certs https --trust'" >&2
fi

if [[ " $* " == *"Envio:Hosting=processes"* ]] || ! container_runtime_answers; then
  scripts/prerequisites.sh
fi

exec dotnet run --project Envio.AppHost --launch-profile http -- "$@"
