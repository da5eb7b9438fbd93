#include "otsync/server/config.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

namespace otsync::server {
namespace {

/// CLI::Range for a number with a fraction, refusing nan and inf too (Range's comparisons let nan pass).
CLI::Validator finite_range(double min, double max) {
  std::array<char, 64> text{};
  std::snprintf(text.data(), text.size(), "[%g - %g]", min, max);
  const std::string bounds = text.data();
  return CLI::Validator(
      [min, max, bounds](std::string& input) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(input.c_str(), &end);
        if (input.empty() || end != input.c_str() + input.size() || !std::isfinite(value) || value < min ||
            value > max) {
          return "Value " + input + " not a number in range " + bounds;
        }
        return {};
      },
      "FLOAT in " + bounds);
}

}  // namespace

std::optional<parsed_config> parse_config(int argc, char** argv, int& exit_code) {
  parsed_config out;
  auto& o = out.options;
  CLI::App app{
      "otsyncd: a ShareDB-compatible collaborative text-editing server (text-unicode documents).\n"
      "Clients connect with the sharedb npm client to ws://HOST:PORT/ws.",
      "otsyncd"};
  app.option_defaults()->always_capture_default();
  app.set_config("--config", "", "Read settings from a TOML/INI file (flag names as keys)");
  app.add_option("--listen", o.listen, "HOST:PORT to serve WebSocket (/ws) and HTTP on; port 0 picks a free port")
      ->envname("OTSYNC_LISTEN");
  app.add_option("--store", o.store,
                 "Storage: sqlite:PATH (durable default; relative to --data-dir), redis://HOST:PORT[/DB] or "
                 "redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or redis-cluster://HOST:PORT[,HOST:PORT...] "
                 "(shared by several instances) or memory: "
                 "(tests; lost on exit)")
      ->envname("OTSYNC_STORE");
  app.add_option("--sqlite-cache-mib", o.sqlite.cache_mib,
                 "With a sqlite: store: the writer's page cache in MiB (the pages a commit changes are read "
                 "from it instead of the file)")
      ->envname("OTSYNC_SQLITE_CACHE_MIB")
      ->check(CLI::Range(std::size_t{1}, std::size_t{65536}));
  app.add_option("--sqlite-checkpoint-pages", o.sqlite.checkpoint_pages,
                 "With a sqlite: store: pages (4 KiB) the write-ahead log holds before they are copied back into "
                 "the database file (SQLite's wal_autocheckpoint; the log file keeps the size it reached)")
      ->envname("OTSYNC_SQLITE_CHECKPOINT_PAGES")
      ->check(CLI::Range(std::uint32_t{100}, std::uint32_t{1} << 20));
  app.add_option("--data-dir", o.data_dir, "Directory for the SQLite database (created if missing)")
      ->envname("OTSYNC_DATA_DIR");
  app.add_option("--identity-secret-file", o.identity_secret_file,
                 "File holding the secret (16 bytes or more) that tags connection ids and keys their aliases; "
                 "instances sharing a store must share it. Default: DATA_DIR/identity-secret, made on first start")
      ->envname("OTSYNC_IDENTITY_SECRET_FILE");
  app.add_option("--auth", o.auth,
                 "none: every client may read and write everything (warned about off loopback); jwt: a bearer token "
                 "(JWT) is required on WebSocket upgrades and REST requests, and its claim grants documents")
      ->envname("OTSYNC_AUTH")
      ->check(CLI::IsMember({"none", "jwt"}));
  app.add_option("--jwt-secret-file", o.jwt_secret_file, "With --auth jwt: file holding the HS256 secret (32+ bytes)")
      ->envname("OTSYNC_JWT_SECRET_FILE");
  app.add_option("--jwt-public-keys", o.jwt_public_keys,
                 "With --auth jwt: JWKS or PEM file of the RS256 (RSA >= 2048 bits) and ES256 (P-256) public keys")
      ->envname("OTSYNC_JWT_PUBLIC_KEYS");
  app.add_option("--jwt-issuer", o.jwt_issuer, "With --auth jwt: the iss tokens must have (empty: any)")
      ->envname("OTSYNC_JWT_ISSUER");
  app.add_option("--jwt-audience", o.jwt_audience, "With --auth jwt: a value tokens' aud must hold (empty: any)")
      ->envname("OTSYNC_JWT_AUDIENCE");
  app.add_option("--jwt-clock-skew-s", o.jwt_clock_skew_s, "With --auth jwt: seconds of allowance for exp and nbf")
      ->envname("OTSYNC_JWT_CLOCK_SKEW_S")
      ->check(CLI::Range(0u, 3600u));
  app.add_option("--jwt-permissions-claim", o.jwt_permissions_claim,
                 "With --auth jwt: the claim holding {\"read\": [patterns], \"write\": [patterns]}")
      ->envname("OTSYNC_JWT_PERMISSIONS_CLAIM");
  app.add_option("--max-presence-bytes", o.max_presence_bytes,
                 "Largest presence value (a cursor, a selection, a name), as JSON: ERR_PRESENCE_TOO_LARGE")
      ->envname("OTSYNC_MAX_PRESENCE_BYTES")
      ->check(CLI::Range(std::size_t{16}, std::size_t{1} << 20));
  app.add_option("--max-kept-presences", o.max_kept_presences,
                 "Others' presences one connection keeps, to send again moved to the head after its own ops are "
                 "acknowledged; past it a new one is only sent (otsync_presence_unkept_total)")
      ->envname("OTSYNC_MAX_KEPT_PRESENCES")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1000000}));
  app.add_option("--max-presences", o.max_presences,
                 "Presences (ids with a value) one connection shows at once: ERR_PRESENCE_LIMIT_EXCEEDED")
      ->envname("OTSYNC_MAX_PRESENCES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  app.add_option("--max-presence-channels", o.max_presence_channels,
                 "Presence channels one connection subscribes to at once: ERR_PRESENCE_LIMIT_EXCEEDED")
      ->envname("OTSYNC_MAX_PRESENCE_CHANNELS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  app.add_option("--max-server-presence-channels", o.max_server_presence_channels,
                 "Presence channels with subscribers on this server at once (each a Redis subscription with a "
                 "redis:// store); a ps past it gets ERR_PRESENCE_LIMIT_EXCEEDED")
      ->envname("OTSYNC_MAX_SERVER_PRESENCE_CHANNELS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000000}));
  app.add_option("--max-presence-rate", o.max_presence_rate,
                 "Presence broadcasts per second per connection (bursts of twice that); past it every update is "
                 "acked at once and only the latest of each presence goes out, at this rate (0: no limit)")
      ->envname("OTSYNC_MAX_PRESENCE_RATE")
      ->check(finite_range(0.0, 1e6));
  app.add_option("--tls-cert", o.tls_cert,
                 "Serve TLS (wss://, https://) on --listen with this PEM certificate chain (the key may follow it in "
                 "the same file); re-read on SIGHUP without dropping connections. Default: plain (put TLS in a proxy)")
      ->envname("OTSYNC_TLS_CERT");
  app.add_option("--tls-key", o.tls_key, "With --tls-cert: the PEM private key file (default: read from --tls-cert)")
      ->envname("OTSYNC_TLS_KEY");
  app.add_option("--tls-client-ca", o.tls_client_ca,
                 "With --tls-cert: require client certificates signed by a CA in this PEM file")
      ->envname("OTSYNC_TLS_CLIENT_CA");
  std::int64_t tls_handshake_timeout_ms = o.tls_handshake_timeout.count();
  app.add_option("--tls-handshake-timeout-ms", tls_handshake_timeout_ms,
                 "With --tls-cert: a connection that has not completed its TLS handshake by then is dropped "
                 "(counted in otsync_tls_handshake_failures_total)")
      ->envname("OTSYNC_TLS_HANDSHAKE_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{600000}));
  app.add_option("--max-tls-handshakes", o.max_tls_handshakes,
                 "With --tls-cert: TLS handshakes in progress at once; connections past it are closed at once "
                 "(otsync_limit_hits_total{limit=\"tls_handshakes\"}; 0: no limit)")
      ->envname("OTSYNC_MAX_TLS_HANDSHAKES");
  app.add_option("--max-tls-handshakes-per-address", o.max_tls_handshakes_per_address,
                 "With --tls-cert: TLS handshakes in progress from one client IP address (0: no limit)")
      ->envname("OTSYNC_MAX_TLS_HANDSHAKES_PER_ADDRESS");
  app.add_option("--editor-dir", o.editor_dir,
                 "Directory of the editor page's built files (clients/editor/dist), served at / and /editor/NAME; "
                 "read once at startup. Default: DIR_OF_OTSYNCD/editor, else DIR_OF_OTSYNCD/../share/otsync/editor")
      ->envname("OTSYNC_EDITOR_DIR");
  app.add_flag("--no-editor", o.no_editor, "Do not serve the editor page (/, /editor/..., /editor-config.json: 404)")
      ->envname("OTSYNC_NO_EDITOR");
  app.add_option("--editor-token-url", o.editor_token_url,
                 "With --auth jwt: URL (http(s):// or a path on this origin) the editor page fetches its bearer token "
                 "from, with the browser's cookies; JSON {\"token\": \"...\"} or the token as text")
      ->envname("OTSYNC_EDITOR_TOKEN_URL");
  app.add_option("--metrics-token-file", o.metrics_token_file,
                 "File holding a token /metrics requires (Authorization: Bearer); default: /metrics is open")
      ->envname("OTSYNC_METRICS_TOKEN_FILE");
  app.add_option("--port-file", o.port_file, "Write the bound port to this file once listening")
      ->envname("OTSYNC_PORT_FILE");
  app.add_option("--threads", o.threads, "I/O threads (0: one per core)")->envname("OTSYNC_THREADS");
  app.add_option("--max-message-bytes", o.max_message_bytes,
                 "Largest WebSocket message accepted; larger ones close the connection with 1009")
      ->envname("OTSYNC_MAX_MESSAGE_BYTES")
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 30));
  app.add_option("--max-send-queue", o.max_send_queue_messages,
                 "Frames queued for a connection before it is closed as a slow consumer (1013)")
      ->envname("OTSYNC_MAX_SEND_QUEUE")
      ->check(CLI::Range(std::size_t{16}, std::size_t{1} << 24));
  app.add_option("--max-send-queue-bytes", o.max_send_queue_bytes, "Bytes queued for a connection before it is closed")
      ->envname("OTSYNC_MAX_SEND_QUEUE_BYTES");
  std::int64_t broadcast_coalesce_us = o.broadcast_coalesce.count();
  app.add_option("--broadcast-coalesce-us", broadcast_coalesce_us,
                 "On a busy server, broadcasts to a connection that wrote less than this ago wait until then and "
                 "leave in one write (0: each at once). Replies are never held")
      ->envname("OTSYNC_BROADCAST_COALESCE_US")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{100000}))
      ->capture_default_str();
  double coalesce_load_percent = o.broadcast_coalesce_load * 100;
  app.add_option("--broadcast-coalesce-load", coalesce_load_percent,
                 "CPU use of the I/O threads (percent) at which broadcasts start being held; the whole "
                 "--broadcast-coalesce-us at twice that (0: always)")
      ->envname("OTSYNC_BROADCAST_COALESCE_LOAD")
      ->check(finite_range(0.0, 100.0))
      ->capture_default_str();
  app.add_option("--max-pending-requests", o.max_pending_requests,
                 "Requests per connection awaiting replies before the server stops reading from it")
      ->envname("OTSYNC_MAX_PENDING_REQUESTS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  auto& limits = o.message_limits;
  app.add_option("--max-json-depth", limits.max_depth,
                 "Deepest nesting of arrays/objects in a message (deeper: ERR_MESSAGE_BADLY_FORMED, nothing parsed)")
      ->envname("OTSYNC_MAX_JSON_DEPTH")
      ->check(CLI::Range(std::size_t{8}, std::size_t{1000}));
  app.add_option("--max-json-values", limits.max_values,
                 "Most values (numbers, strings, arrays, ...) in one message (more: ERR_MESSAGE_BADLY_FORMED, nothing "
                 "parsed)")
      ->envname("OTSYNC_MAX_JSON_VALUES")
      ->check(CLI::Range(std::size_t{1000}, std::size_t{100000000}));
  app.add_option("--max-id-bytes", limits.max_id_bytes,
                 "Longest collection or document id, in UTF-8 bytes (longer: ERR_MESSAGE_BADLY_FORMED)")
      ->envname("OTSYNC_MAX_ID_BYTES")
      ->check(CLI::Range(std::size_t{16}, std::size_t{65536}));
  app.add_option("--max-bulk-ids", limits.max_bulk_ids,
                 "Documents one bulk fetch/subscribe/unsubscribe may name (more: ERR_BULK_LIMIT_EXCEEDED)")
      ->envname("OTSYNC_MAX_BULK_IDS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  app.add_option("--max-op-components", limits.max_op_components, "Components of one op (more: ERR_OP_TOO_LARGE)")
      ->envname("OTSYNC_MAX_OP_COMPONENTS")
      ->check(CLI::Range(std::size_t{16}, std::size_t{10000000}));
  app.add_option("--max-op-bytes", limits.max_op_bytes,
                 "Bytes of text one op may insert or delete, or a create may hold (more: ERR_OP_TOO_LARGE)")
      ->envname("OTSYNC_MAX_OP_BYTES")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30));
  app.add_option("--max-subscriptions", o.max_subscriptions,
                 "Documents one connection may subscribe to at once (more: ERR_SUBSCRIPTION_LIMIT_EXCEEDED)")
      ->envname("OTSYNC_MAX_SUBSCRIPTIONS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}));
  app.add_option("--max-request-rate", o.max_request_rate,
                 "Messages per second per connection, bursts of twice that (more: ERR_RATE_LIMITED); 0: no limit")
      ->envname("OTSYNC_MAX_REQUEST_RATE")
      ->check(finite_range(0.0, 1e9));
  app.add_option("--max-create-rate", o.max_create_rate,
                 "Documents created per second per connection, bursts of ten times that (more: "
                 "ERR_CREATE_RATE_LIMITED); 0: no limit")
      ->envname("OTSYNC_MAX_CREATE_RATE")
      ->check(finite_range(0.0, 1e9));
  app.add_option("--max-connections", o.max_connections,
                 "WebSocket connections in total; more are refused with 503 and Retry-After (0: no limit)")
      ->envname("OTSYNC_MAX_CONNECTIONS");
  app.add_option("--max-connections-per-address", o.max_connections_per_address,
                 "WebSocket connections per client IP address; more are refused with 503 and Retry-After (0: no "
                 "limit; use 0 behind a load balancer)")
      ->envname("OTSYNC_MAX_CONNECTIONS_PER_ADDRESS");
  std::int64_t message_timeout_ms = o.message_timeout.count();
  app.add_option("--message-timeout-ms", message_timeout_ms,
                 "A WebSocket message (or frame) begun must be complete within this, or the connection is closed "
                 "(1008)")
      ->envname("OTSYNC_MESSAGE_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{86400000}));
  app.add_option("--max-partial-bytes", o.max_partial_bytes,
                 "Bytes of partly received messages, all connections together; the connection that would pass it "
                 "is closed (1013)")
      ->envname("OTSYNC_MAX_PARTIAL_BYTES")
      ->check(CLI::Range(std::size_t{1} << 16, std::size_t{1} << 40));
  std::int64_t idle_ms = o.idle_eviction.count();
  app.add_option("--idle-eviction-ms", idle_ms, "Unload a document idle (no subscribers) this long")
      ->envname("OTSYNC_IDLE_EVICTION_MS")
      ->check(CLI::Range(std::int64_t{10}, std::int64_t{86400000}));
  std::int64_t grace_ms = o.shutdown_grace.count();
  app.add_option("--shutdown-grace-ms", grace_ms, "On SIGTERM, wait this long for in-flight commits")
      ->envname("OTSYNC_SHUTDOWN_GRACE_MS");
  std::int64_t ws_idle_ms = o.ws_idle_timeout.count();
  app.add_option("--ws-idle-timeout-ms", ws_idle_ms,
                 "A WebSocket that sends nothing for half this long gets a ping; for all of it, is dropped")
      ->envname("OTSYNC_WS_IDLE_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{86400000}));
  std::int64_t drain_delay_ms = o.drain_delay.count();
  app.add_option("--drain-delay-ms", drain_delay_ms,
                 "On SIGTERM, keep answering /readyz with 503 this long before closing the listener "
                 "(lets a load balancer's health check see it)")
      ->envname("OTSYNC_DRAIN_DELAY_MS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{600000}));
  app.add_option("--snapshot-interval", o.documents.snapshot_interval,
                 "Store a snapshot every N ops (bounds the replay when loading a document)")
      ->envname("OTSYNC_SNAPSHOT_INTERVAL")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000}));
  app.add_option("--max-submit-retries", o.documents.max_submit_retries,
                 "Lost commit races (other instances writing the same document) tolerated per op before "
                 "ERR_MAX_SUBMIT_RETRIES_EXCEEDED")
      ->envname("OTSYNC_MAX_SUBMIT_RETRIES")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--op-cache-bytes", o.documents.recent_ops_bytes,
                 "Per open document: encoded bytes of recent ops kept in memory (for catch-ups and transforms; "
                 "older ones are read from the store)")
      ->envname("OTSYNC_OP_CACHE_BYTES")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 34));
  app.add_option("--max-open-document-bytes", o.documents.max_open_document_bytes,
                 "Text and cached ops of all open documents together; past it idle documents are unloaded at once "
                 "and loading more is refused (ERR_MEMORY_BUDGET_EXCEEDED)")
      ->envname("OTSYNC_MAX_OPEN_DOCUMENT_BYTES")
      ->check(CLI::Range(std::uint64_t{1} << 20, std::uint64_t{1} << 44));
  std::int64_t max_store_wait_ms = o.documents.max_store_wait.count();
  app.add_option("--max-store-wait-ms", max_store_wait_ms,
                 "A fetch or subscribe waits this long for a store that does not answer (a failover, a restart) "
                 "before it gets ERR_DATABASE_UNAVAILABLE (0: at once; submits never wait)")
      ->envname("OTSYNC_MAX_STORE_WAIT_MS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{600000}));
  app.add_option("--max-document-bytes", o.documents.max_document_bytes, "Refuse edits that grow a document past this")
      ->envname("OTSYNC_MAX_DOCUMENT_BYTES");
  app.add_option("--redis-prefix", o.redis_prefix,
                 "With a redis:// store: prefix of every Redis key and pub/sub channel (instances sharing "
                 "documents use the same one; other apps on the same Redis use another)")
      ->envname("OTSYNC_REDIS_PREFIX");
  std::int64_t redis_timeout_ms = o.redis_timeout.count();
  app.add_option("--redis-timeout-ms", redis_timeout_ms,
                 "With a redis:// store: a command without a reply this long fails (ERR_DATABASE_UNAVAILABLE, "
                 "nothing acked) and the connection is re-established")
      ->envname("OTSYNC_REDIS_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{10}, std::int64_t{600000}));
  app.add_option("--redis-min-replicas", o.redis_min_replicas,
                 "With a redis:// store: acknowledge an op only once this many replicas have it (WAIT after each "
                 "commit); one not confirmed within --redis-wait-timeout-ms is not acknowledged "
                 "(ERR_DATABASE_UNAVAILABLE; a resend finds it if it committed). 0: once the master has it")
      ->envname("OTSYNC_REDIS_MIN_REPLICAS")
      ->check(CLI::Range(0U, 16U));
  std::int64_t redis_wait_timeout_ms = o.redis_wait_timeout.count();
  app.add_option("--redis-wait-timeout-ms", redis_wait_timeout_ms,
                 "With --redis-min-replicas: how long a commit waits for the replicas")
      ->envname("OTSYNC_REDIS_WAIT_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{60000}));
  std::int64_t presence_lease_ms = o.presence_lease.count();
  app.add_option("--presence-lease-ms", presence_lease_ms,
                 "With a redis:// store: instances send a presence heartbeat every quarter of this; one silent this "
                 "long is taken for dead and the others send p: null for the presences its connections showed")
      ->envname("OTSYNC_PRESENCE_LEASE_MS")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{600000}));
  app.add_option("--max-presence-relay-queue", o.max_presence_relay_queue,
                 "With a redis:// store: presence messages waiting for Redis at most; more are dropped and counted "
                 "(otsync_presence_relay_dropped_total)")
      ->envname("OTSYNC_MAX_PRESENCE_RELAY_QUEUE")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}));
  app.add_option("--max-remote-presences", o.max_remote_presences,
                 "With a redis:// store: other instances' presences remembered (to clear them if their instance "
                 "dies); past it they are relayed but not cleared")
      ->envname("OTSYNC_MAX_REMOTE_PRESENCES")
      ->check(CLI::Range(std::size_t{0}, std::size_t{100000000}));
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, critical or off")
      ->envname("OTSYNC_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", o.log_format, "text or json (one JSON object per line)")
      ->envname("OTSYNC_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--print-config", out.print_config, "Print the effective configuration (as a config file) and exit")
      ->configurable(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
    return std::nullopt;
  }
  o.idle_eviction = std::chrono::milliseconds(idle_ms);
  o.documents.max_store_wait = std::chrono::milliseconds(max_store_wait_ms);
  o.shutdown_grace = std::chrono::milliseconds(grace_ms);
  o.drain_delay = std::chrono::milliseconds(drain_delay_ms);
  o.ws_idle_timeout = std::chrono::milliseconds(ws_idle_ms);
  o.redis_timeout = std::chrono::milliseconds(redis_timeout_ms);
  o.presence_lease = std::chrono::milliseconds(presence_lease_ms);
  o.redis_wait_timeout = std::chrono::milliseconds(redis_wait_timeout_ms);
  o.message_timeout = std::chrono::milliseconds(message_timeout_ms);
  o.broadcast_coalesce = std::chrono::microseconds(broadcast_coalesce_us);
  o.broadcast_coalesce_load = coalesce_load_percent / 100;
  o.tls_handshake_timeout = std::chrono::milliseconds(tls_handshake_timeout_ms);
  out.printed = app.config_to_str(true, false);
  return out;
}

}  // namespace otsync::server
