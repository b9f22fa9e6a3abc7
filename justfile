# Everyday commands. `just` lists them; `just <recipe> [args]` runs one.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The user `just token` mints a development token for.
default_sub := "dev-user"

# List the recipes.
default:
    @just --list --unsorted

# Run the service locally (embedded defaults unless env/--config say otherwise).
run *args:
    cargo run -p api-actix -- {{ args }}

# Run every test in the workspace.
test *args:
    cargo test --workspace {{ args }}

# Check formatting and run clippy with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the whole workspace.
fmt:
    cargo fmt --all

# Run the benchmark suite (bench/run.sh).
bench *args:
    bash bench/run.sh {{ args }}

# Run the fault-injection scenarios (bench/faults.sh); kafka-restart needs tansu (`just tansu`).
faults *args:
    bash bench/faults.sh {{ args }}

# Install tansu, the Kafka-protocol broker of the kafka-restart fault scenario (a long build).
tansu:
    command -v tansu >/dev/null || cargo install tansu --locked --features dynostore

# The infra-kafka test against a real broker (tansu) restarted empty; not in CI's path.
test-tansu *args: tansu
    cargo test -p infra-kafka --features tansu-tests --test it tansu -- --nocapture {{ args }}

# Only the Kafka fault scenario: a broker killed under load and restarted empty.
faults-kafka *args: tansu
    bash bench/faults.sh kafka-restart {{ args }}

# Apply the database migrations (DATABASE_URL or DB_* from the environment).
migrate:
    cargo run -p api-actix -- migrate

# Print a bearer token for a user, signed with the configured JWT_SECRET.
token sub=default_sub:
    cargo run -q -p api-actix -- token --sub {{ quote(sub) }}

# Run the fake OpenAI-compatible LLM server (default 127.0.0.1:8081).
fake-llm *args:
    cargo run -p fake-llm -- {{ args }}

# Regenerate docs/openapi.json from the code.
openapi:
    mkdir -p docs
    cargo run -q -p api-actix -- openapi > docs/openapi.json.tmp
    mv docs/openapi.json.tmp docs/openapi.json

# Generate a TypeScript client from docs/openapi.json and type-check a flow using it.
ts-check:
    cd clients/ts-check && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run check

# Click through the playground page (GET /) in headless Chromium; screenshots in target/playground/.
playground-test:
    bash clients/playground-test/run.sh

# Build the images and start the compose stack (Postgres, Kafka, fake-llm, service).
up:
    docker compose up -d --build

# Stop the compose stack and delete its volumes.
down:
    docker compose down -v

# Follow the logs of the compose stack (or of one service).
logs *services:
    docker compose logs -f {{ services }}

# Print a bearer token valid for the compose stack (uses its JWT_SECRET).
compose-token sub=default_sub:
    docker compose run --rm --no-deps chat-service token --sub {{ quote(sub) }}

# Build the two images without compose.
image tag="dev":
    docker build -f deploy/Dockerfile --target chat-service -t chat-service:{{ tag }} .
    docker build -f deploy/Dockerfile --target fake-llm -t chat-fake-llm:{{ tag }} .

# Render the Kubernetes manifests (kubectl kustomize) to stdout.
k8s-render:
    kubectl kustomize deploy/k8s
