// What every session of one server shares: settings, the documents, the
// store, metrics, readiness and the set of live WebSocket sessions (for the
// going-away close at shutdown).
//
// Thread safety: `ready` is atomic; the session set is guarded by its mutex.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "otsync/doc/registry.hpp"
#include "otsync/pubsub/op_feed.hpp"
#include "otsync/server/metrics.hpp"
#include "otsync/server/options.hpp"
#include "otsync/store/store.hpp"

namespace otsync::server {

class websocket_session;

struct server_context {
  server_options options;
  store::store* storage = nullptr;
  doc::registry* documents = nullptr;
  metrics* stats = nullptr;
  pubsub::op_feed* feed = nullptr;  ///< with a shared store: ops other instances commit
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> next_connection{1};

  std::mutex sessions_mutex;
  std::unordered_map<const websocket_session*, std::weak_ptr<websocket_session>> sessions;
};

}  // namespace otsync::server
