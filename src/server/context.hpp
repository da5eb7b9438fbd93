// What every session of one server shares: settings, the documents, the
// store, metrics, readiness and the set of live WebSocket sessions (for the
// going-away close at shutdown).
//
// Thread safety: `ready` is atomic; the session set is guarded by its mutex.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "otsync/auth/identity.hpp"
#include "otsync/auth/jwt.hpp"
#include "otsync/doc/registry.hpp"
#include "otsync/doc/service.hpp"
#include "otsync/pubsub/op_feed.hpp"
#include "otsync/pubsub/presence_bus.hpp"
#include "otsync/server/metrics.hpp"
#include "otsync/server/options.hpp"
#include "otsync/store/store.hpp"

namespace otsync::server {

class websocket_session;

/// Slots in use, in all and per client address, each bounded (0: no limit). Not locked itself.
class address_slots {
 public:
  /// Takes a slot for `address`: empty when it fits, else `total_limit_name` or `per_address_name`.
  std::string_view acquire(const std::string& address, std::size_t total_limit, std::size_t per_address_limit,
                           std::string_view total_limit_name, std::string_view per_address_name);
  void release(const std::string& address);

 private:
  std::size_t open_ = 0;
  std::unordered_map<std::string, std::size_t> per_address_;
};
class tls_server_config;
class presence_hub;
class static_site;

struct server_context {
  server_options options;
  store::store* storage = nullptr;
  doc::registry* documents = nullptr;        ///< the open documents (eviction, memory, metrics)
  doc::document_service* service = nullptr;  ///< every document read and write of the agents and the REST API
  metrics* stats = nullptr;
  pubsub::op_feed* feed = nullptr;                ///< with a shared store: ops other instances commit
  pubsub::presence_bus* presence_bus = nullptr;   ///< with a shared store: presence between instances
  const auth::identity_keys* identity = nullptr;  ///< mints connection ids and the aliases others see
  const auth::jwt_verifier* verifier = nullptr;   ///< --auth jwt; null: --auth none
  presence_hub* presence = nullptr;               ///< presence channels (`ps`, `p`, ...)
  tls_server_config* tls = nullptr;               ///< --tls-cert: the listener's certificate; null: plain
  std::string metrics_token;                      ///< --metrics-token-file's content; empty: /metrics is open
  const static_site* editor = nullptr;            ///< the editor page's files; null: disabled or not found
  std::string editor_unavailable;                 ///< why the editor is not served although enabled
  /// How long a connection receiving a stream of broadcasts holds them to write them together
  /// (steady_clock ticks): up to --broadcast-coalesce-us as the server gets busy, 0 when quiet.
  std::atomic<std::int64_t> broadcast_hold{0};
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> next_connection{1};

  std::mutex sessions_mutex;
  std::unordered_map<const websocket_session*, std::weak_ptr<websocket_session>> sessions;

  /// Bytes of partly received WebSocket messages, over all connections (--max-partial-bytes).
  std::atomic<std::size_t> partial_bytes{0};

  /// Counts a WebSocket connection from `address` against --max-connections and
  /// --max-connections-per-address. Empty when it fits (release it with
  /// `release_connection`), else which limit refused it.
  std::string_view acquire_connection(const std::string& address);
  void release_connection(const std::string& address);

  /// The same for TLS handshakes in progress (--max-tls-handshakes, --max-tls-handshakes-per-address):
  /// each holds an SSL object until it finishes or times out.
  std::string_view acquire_handshake(const std::string& address);
  void release_handshake(const std::string& address);

 private:
  std::mutex connections_mutex_;  // guards both
  address_slots connections_;
  address_slots handshakes_;
};

}  // namespace otsync::server
