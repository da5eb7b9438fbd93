// The op feed over Redis pub/sub: one subscriber connection per instance, a
// channel per document (`redis_op_channel`), subscribed only while this
// instance has a document with subscribers. The Redis store's commit script
// publishes every op, so the feed delivers each committed op once, in commit
// order. After a (re)subscription it asks the subscriber to resync from the
// op log; it reconnects with backoff on its own.
//
// Thread safety: as `op_feed`.
#pragma once

#include <memory>

#include "otsync/pubsub/op_feed.hpp"
#include "otsync/store/redis_store.hpp"

namespace otsync::pubsub {

std::unique_ptr<op_feed> open_redis_op_feed(const store::redis_options& options);

}  // namespace otsync::pubsub
