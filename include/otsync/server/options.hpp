// otsyncd's settings, from the command line, the environment or a config
// file (see config.hpp), with their defaults.
//
// Thread safety: a plain value type.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "otsync/doc/types.hpp"
#include "otsync/store/open.hpp"

namespace otsync::server {

struct server_options {
  std::string listen = "127.0.0.1:8080";   ///< HOST:PORT; port 0 picks a free one
  std::string store = "sqlite:otsync.db";  ///< memory: | sqlite:PATH (relative to data_dir)
  std::string data_dir = "./data";
  store::sqlite_tuning sqlite;  ///< --sqlite-cache-mib, --sqlite-checkpoint-pages
  std::string port_file;        ///< written (atomically) with the bound port once listening
  unsigned threads = 0;         ///< 0: one per core
  std::size_t max_message_bytes = 16u << 20;
  std::size_t max_send_queue_messages = 20000;
  std::size_t max_send_queue_bytes = 64u << 20;
  /// On a busy server, a connection that wrote less than this ago holds further broadcasts until
  /// then, so they leave together in one write (one syscall) instead of one each; replies are never
  /// held. 0: off. The hold grows from 0 to this as the I/O threads' CPU use goes from
  /// `broadcast_coalesce_load` to twice that (a quiet server sends each broadcast at once).
  std::chrono::microseconds broadcast_coalesce{5000};
  double broadcast_coalesce_load = 0.25;  ///< of the I/O threads' CPU; 0: always hold
  std::size_t max_pending_requests = 128;
  // Hostile-input limits (docs/server.md, *Limits*): each refusal has its own error code and is counted.
  protocol::message_limits message_limits;   ///< nesting, id length, bulk size, op size
  std::size_t max_subscriptions = 5000;      ///< per connection
  std::size_t max_presence_bytes = 4096;     ///< one presence value, as JSON
  std::size_t max_presences = 100;           ///< presence ids with a value, per connection
  std::size_t max_kept_presences = 4096;     ///< others' presences a connection keeps to send again after its acks
  std::size_t max_presence_channels = 1000;  ///< presence channels subscribed, per connection
  std::size_t max_server_presence_channels = 100000;  ///< presence channels with subscribers, in all
  double max_presence_rate =
      20;  ///< presence broadcasts/s per connection (bursts of twice that); past it, the latest wins
  double max_request_rate = 5000;       ///< messages/s per connection (burst: twice that); 0: no limit
  double max_create_rate = 10;          ///< documents created/s per connection (burst: ten times); 0: no limit
  std::size_t max_connections = 50000;  ///< WebSocket connections in total (0: no limit)
  std::size_t max_connections_per_address = 1000;    ///< per client IP address (0: no limit)
  std::chrono::milliseconds message_timeout{30000};  ///< a started message must be complete within this
  std::size_t max_partial_bytes = 256u << 20;        ///< all connections' partly received messages together
  std::chrono::milliseconds idle_eviction{60000};
  std::chrono::milliseconds shutdown_grace{10000};
  std::chrono::milliseconds drain_delay{300};  ///< /readyz answers 503 this long before the listener closes
  /// A WebSocket silent for half this long is pinged, for all of it dropped (Beast's suggested server value).
  std::chrono::milliseconds ws_idle_timeout{300000};
  /// The secret that tags connection ids and keys their aliases (docs/security.md). Empty: a
  /// random one kept in DATA_DIR/identity-secret (memory: store: per process). Instances that
  /// share a store must share it, or a client reconnecting to another instance gets a new id.
  std::string identity_secret_file;
  // Authentication (docs/security.md): none, or JWT bearer tokens with permissions in a claim.
  std::string auth = "none";                     ///< none | jwt
  std::string jwt_secret_file;                   ///< HS256 shared secret (32 bytes or more)
  std::string jwt_public_keys;                   ///< RS256/ES256 public keys: a JWKS or PEM file
  std::string jwt_issuer;                        ///< required `iss` (empty: not checked)
  std::string jwt_audience;                      ///< required in `aud` (empty: not checked)
  unsigned jwt_clock_skew_s = 60;                ///< allowance for `exp` and `nbf`
  std::string jwt_permissions_claim = "otsync";  ///< the claim holding {read, write} patterns
  // TLS on otsyncd's own listener (docs/security.md): empty tls_cert serves plain HTTP/WebSocket.
  std::string tls_cert;       ///< PEM certificate chain (may hold the key too); reloaded on SIGHUP
  std::string tls_key;        ///< PEM private key; empty: read from tls_cert
  std::string tls_client_ca;  ///< when set, clients must present a certificate this CA signed
  std::chrono::milliseconds tls_handshake_timeout{10000};  ///< a TLS handshake not done by then is dropped
  std::size_t max_tls_handshakes = 1000;                   ///< TLS handshakes in progress at once (0: no limit)
  std::size_t max_tls_handshakes_per_address = 100;        ///< ... from one client IP address (0: no limit)
  // The editor page (clients/editor, docs/server.md *The editor page*): served at / and /editor/NAME.
  std::string editor_dir;                         ///< its built files; empty: next to the binary (default_editor_dir())
  bool no_editor = false;                         ///< --no-editor: /, /editor/... and /editor-config.json answer 404
  std::string editor_token_url;                   ///< with --auth jwt: where the page fetches its bearer token
  std::string metrics_token_file;                 ///< when set, /metrics needs "Authorization: Bearer <its content>"
  std::string redis_prefix = "otsync:";           ///< with a redis:// store: prefix of every key and channel
  std::chrono::milliseconds redis_timeout{5000};  ///< with a redis:// store: per command
  unsigned redis_min_replicas = 0;                ///< WAIT for this many replicas before acknowledging
  std::chrono::milliseconds redis_wait_timeout{1000};
  /// With a redis:// store: an instance silent this long is lost, and the others clear its presences.
  std::chrono::milliseconds presence_lease{5000};
  std::size_t max_presence_relay_queue = 10000;  ///< presence messages waiting for Redis; more are dropped
  std::size_t max_remote_presences = 100000;     ///< other instances' presences tracked to clear them
  std::string log_level = "info";
  std::string log_format = "text";  ///< text | json
  doc::document_options documents;
};

}  // namespace otsync::server
