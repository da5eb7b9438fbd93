// Opens what a `--store` URI names as one pair: the store, and with a store
// shared by several instances (redis://) the op feed that follows the ops the
// others commit. The server sees only the two interfaces.
//
// Thread safety: may be called from any thread; what it returns is
// thread-safe as `store::store` and `pubsub::op_feed` say.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "otsync/ot/result.hpp"
#include "otsync/pubsub/op_feed.hpp"
#include "otsync/pubsub/presence_bus.hpp"
#include "otsync/store/open.hpp"
#include "otsync/store/store.hpp"

namespace otsync::backend {

struct backend {
  std::unique_ptr<store::store> store;
  std::unique_ptr<pubsub::op_feed> feed;  ///< null for single-instance stores (memory:, sqlite:)
  /// Presence between the instances sharing the store; null as `feed`. Not started.
  std::unique_ptr<pubsub::presence_bus> presence;
};

struct backend_options {
  std::string data_dir = ".";   ///< where relative sqlite: paths go
  store::sqlite_tuning sqlite;  ///< with sqlite:
  /// With redis://: prefix of every key and channel (instances sharing data use the same one).
  std::string redis_prefix = "otsync:";
  /// With redis://: a command without a reply this long fails.
  std::chrono::milliseconds redis_timeout{5000};
  /// With redis://: acknowledge a commit only once this many replicas have it (WAIT), within the timeout.
  unsigned redis_min_replicas = 0;
  std::chrono::milliseconds redis_wait_timeout{1000};
  /// With redis://: tags the ops this instance publishes, so its own feed skips them.
  std::string instance_id;
  /// With redis://: the presence bus's lease and queue.
  pubsub::presence_bus_options presence;
};

/// Opens `uri` (memory:, sqlite:[PATH], redis://HOST[:PORT][/DB]; see
/// store/open.hpp). Errors are `store::open_errc` values; `message`, when
/// given, receives the whole sentence to show (`cannot open store '…': …`).
ot::result<backend> open_backend(std::string_view uri, const backend_options& options, std::string* message = nullptr);

}  // namespace otsync::backend
