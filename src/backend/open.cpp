#include "otsync/backend/open.hpp"

#include "otsync/pubsub/presence_bus.hpp"
#include "otsync/pubsub/redis_op_feed.hpp"
#include "otsync/store/open.hpp"
#include "otsync/store/open_error.hpp"
#include "otsync/store/redis_store.hpp"

namespace otsync::backend {

ot::result<backend> open_backend(std::string_view uri, const backend_options& options, std::string* message) {
  auto fail = [message](store::open_errc error, std::string text) -> ot::result<backend> {
    if (message) *message = std::move(text);
    return error;
  };
  if (uri.starts_with("redis://") || uri.starts_with("redis-sentinel://") || uri.starts_with("redis-cluster://")) {
    auto redis = store::parse_redis_uri(uri);
    if (!redis) {
      return fail(store::open_errc::invalid_option,
                  "cannot open store '" + std::string(uri) +
                      "': expected redis://HOST:PORT[/DB], redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or "
                      "redis-cluster://HOST:PORT[,HOST:PORT...]");
    }
    if (options.redis_prefix.empty()) return fail(store::open_errc::invalid_option, "--redis-prefix must not be empty");
    redis->key_prefix = options.redis_prefix;
    redis->command_timeout = options.redis_timeout;
    redis->instance_id = options.instance_id;
    redis->min_replicas = options.redis_min_replicas;
    redis->wait_timeout = options.redis_wait_timeout;
    backend opened;
    opened.store = store::open_redis_store(*redis);
    // Several instances share this store: follow the ops the others commit.
    opened.feed = pubsub::open_redis_op_feed(*redis);
    // ... and show the presences the others' connections show.
    opened.presence = pubsub::open_redis_presence_bus(*redis, options.presence);
    return opened;
  }
  std::string detail;
  auto opened = store::open_store(uri, options.data_dir, &detail, options.sqlite);
  if (!opened) {
    if (message) {
      *message = "cannot open store '" + std::string(uri) + "': " + opened.error().message() +
                 (detail.empty() ? "" : ": " + detail);
    }
    return opened.error();
  }
  return backend{std::move(*opened), nullptr, nullptr};
}

}  // namespace otsync::backend
