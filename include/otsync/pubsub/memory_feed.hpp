// The in-process counterpart of Redis pub/sub, for several instances in one
// process sharing one memory store (`store::make_shared_memory`): the hub is
// the memory's commit listener, as Redis's commit script publishes each op,
// so every feed sees each committed op once, in commit order, and skips its
// own instance's. Handlers run on the hub's one delivery thread.
//
// The queue of published ops is bounded: past `max_queued_ops` (a subscriber
// too slow) the hub drops what is queued and every subscription resyncs from
// the op log, as Redis disconnects a subscriber whose output buffer
// overflows and the feed catches up after reconnecting.
//
// Thread safety: every member may be called from any thread. The feeds the
// hub opens may outlive it (they then deliver nothing).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "otsync/oplog/op_record.hpp"
#include "otsync/pubsub/op_feed.hpp"
#include "otsync/store/memory_store.hpp"

namespace otsync::pubsub {

class memory_hub {
 public:
  explicit memory_hub(std::size_t max_queued_ops = 65536);
  ~memory_hub();
  memory_hub(const memory_hub&) = delete;
  memory_hub& operator=(const memory_hub&) = delete;

  /// The listener to give `store::make_shared_memory`: publishes every commit.
  [[nodiscard]] store::commit_listener publisher();
  /// Queues `key`'s `ops`, committed by the instance `publisher`, for every feed.
  void publish(std::string_view publisher, const store::doc_key& key, std::span<const oplog::op_record> ops);
  /// Every subscription of every feed catches up from the op log, as after a Redis reconnection
  /// (a failover): what is queued is dropped.
  void resync_everyone();
  /// The feed of the instance `instance_id` ("" = skips nothing).
  [[nodiscard]] std::unique_ptr<op_feed> open_feed(std::string instance_id);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace otsync::pubsub
