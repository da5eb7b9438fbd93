// The ops other server instances commit, per document: the fan-in side of
// pub/sub. (Publishing needs no interface: a shared store publishes each op
// atomically with its commit, so the feed carries every op exactly once, in
// commit order.) A single instance has no feed.
//
// Thread safety: member functions may be called from any thread; handlers
// run on the feed's own thread (callers post to their executor).
#pragma once

#include <cstdint>
#include <functional>

#include "otsync/oplog/op_record.hpp"
#include "otsync/store/store.hpp"

namespace otsync::pubsub {

struct feed_stats {
  std::uint64_t messages = 0;     ///< ops delivered from other instances' commits
  std::uint64_t resyncs = 0;      ///< (re)subscriptions, each followed by a catch-up from the op log
  std::uint64_t connects = 0;     ///< successful connections, the first included
  std::uint64_t own_skipped = 0;  ///< this instance's own ops, echoed by Redis and skipped undecoded
};

class op_feed {
 public:
  using op_handler = std::function<void(oplog::op_record op)>;
  /// The subscription is (again) in place: ops committed while it was not may
  /// have been missed, so the subscriber catches up from the op log.
  using resync_handler = std::function<void()>;

  virtual ~op_feed() = default;
  /// Starts delivering `key`'s ops to `on_op`. Returns a token for `unsubscribe`.
  virtual std::uint64_t subscribe(const store::doc_key& key, op_handler on_op, resync_handler on_resync) = 0;
  virtual void unsubscribe(const store::doc_key& key, std::uint64_t token) = 0;
  [[nodiscard]] virtual bool connected() const = 0;
  [[nodiscard]] virtual feed_stats stats() const { return {}; }
  /// Readiness (as `connected()`) and counters for /metrics, as a store's.
  [[nodiscard]] virtual store::backend_health health() const { return {connected(), {}, {}}; }
};

}  // namespace otsync::pubsub
