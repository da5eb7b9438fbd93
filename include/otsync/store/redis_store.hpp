// The Redis store: the op log, heads and snapshots of every document in
// Redis, shared by several otsyncd instances. A commit is one Lua script that
// checks the head version (compare-and-set) and the (src, seq) record and
// appends atomically, so no instance can lose an update or apply a resend
// twice. All keys of one document share a hash tag (one cluster slot).
//
// hiredis (0.14, async API) runs on the store's own Asio thread; commands
// time out on the store's own timers (hiredis 0.14 has no timer hook). When
// Redis is unreachable, calls fail with `unavailable` and the store keeps
// reconnecting with backoff; `connected()` tells readiness.
//
// Thread safety: as `store` (any thread; handlers run on the store's thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "otsync/ot/result.hpp"
#include "otsync/store/store.hpp"

namespace otsync::store {

struct redis_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  /// redis-sentinel://: the sentinels to ask for the master `master_name` (then host/port are unused).
  std::vector<std::pair<std::string, std::uint16_t>> sentinels;
  std::string master_name;
  /// redis-cluster://: the nodes to ask for the slot map first (then host/port are unused).
  std::vector<std::pair<std::string, std::uint16_t>> cluster_seeds;
  int db = 0;
  /// After each commit, `WAIT min_replicas wait_timeout`: an op is acknowledged only once that many
  /// replicas have it; otherwise its outcome is unknown to the client (ERR_DATABASE_UNAVAILABLE, and a
  /// resend finds it if it did commit). 0: acknowledged once the master has it.
  unsigned min_replicas = 0;
  std::chrono::milliseconds wait_timeout{1000};
  std::string key_prefix = "otsync:";  ///< prepended to every key (several apps can share one Redis)
  /// Tags the ops this instance publishes, so its own op feed skips them ("" = untagged).
  std::string instance_id;
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};
};

struct redis_store_stats {
  std::uint64_t commands = 0;  ///< commands sent (a commit is one EVALSHA)
  std::uint64_t connects = 0;  ///< successful connections, the first included
  std::uint64_t timeouts = 0;  ///< commands that got no reply in time
};

class redis_store : public store {
 public:
  /// Whether the store has a live connection to Redis (readiness).
  [[nodiscard]] virtual bool connected() const = 0;
  [[nodiscard]] virtual redis_store_stats stats() const = 0;
};

/// `{len:collection/id}`: the hash tag every key of the document carries.
std::string redis_doc_tag(const doc_key& key);
/// The channel the commit script publishes each of the document's ops on.
std::string redis_op_channel(const redis_options& options, const doc_key& key);

/// `i:<instance_id>\n`, prepended to every op the store publishes ("" without an id).
std::string redis_publisher_tag(const redis_options& options);

/// Parses `redis://HOST:PORT[/DB]` (port defaults to 6379, DB to 0) and
/// `redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]` (sentinel port 26379, at most 32).
ot::result<redis_options> parse_redis_uri(std::string_view uri);

/// Starts a Redis store; it connects in the background (a Redis that is
/// down at start is not an error: calls fail with `unavailable` until it is up).
std::unique_ptr<redis_store> open_redis_store(const redis_options& options);

}  // namespace otsync::store
