#include "otsync/pubsub/redis_op_feed.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../redis/client.hpp"
#include "../redis/keys.hpp"
#include "../redis/stored_op.hpp"

namespace otsync::pubsub {
namespace {

class redis_op_feed final : public op_feed {
 public:
  explicit redis_op_feed(store::redis_options options)
      : options_(std::move(options)),
        own_tag_(redis::publisher_tag(options_.instance_id)),
        client_(redis::client_options_from(options_), {},
                {[this] { subscribe_all(); },
                 [this](std::string_view channel, std::string_view payload) { deliver(channel, payload); },
                 [this](std::string_view channel) { resync(channel); }}) {
    client_.start();
  }

  // Stops the client's thread before the subscriber map goes.
  ~redis_op_feed() override { client_.stop({}); }

  std::uint64_t subscribe(const store::doc_key& key, op_handler on_op, resync_handler on_resync) override {
    auto channel = redis::op_channel(options_.key_prefix, key.collection, key.id);
    std::uint64_t token = ++next_token_;
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      auto& subscribers = channels_[channel];
      first = subscribers.empty();
      subscribers.emplace(token, std::make_pair(std::move(on_op), std::move(on_resync)));
    }
    if (first) {
      client_.post([this, channel] { client_.subscribe_sharded(channel); });
    }
    return token;
  }

  void unsubscribe(const store::doc_key& key, std::uint64_t token) override {
    auto channel = redis::op_channel(options_.key_prefix, key.collection, key.id);
    bool last = false;
    {
      std::lock_guard lock(mutex_);
      auto it = channels_.find(channel);
      if (it == channels_.end()) return;
      it->second.erase(token);
      if (it->second.empty()) {
        channels_.erase(it);
        last = true;
      }
    }
    if (last) {
      client_.post([this, channel] {
        std::lock_guard lock(mutex_);
        if (!channels_.contains(channel)) client_.unsubscribe_sharded(channel);
      });
    }
  }

  bool connected() const override { return client_.connected(); }
  feed_stats stats() const override {
    return {messages_.load(), resyncs_.load(), client_.connects(), own_skipped_.load()};
  }
  store::backend_health health() const override {
    const bool up = client_.connected();
    return {
        up,
        "redis pub/sub " + options_.host + ":" + std::to_string(options_.port) + (up ? " connected" : " unreachable"),
        {{"otsync_redis_feed_up", "1 while the op feed's pub/sub connection is up (readiness)",
          store::health_kind::gauge, up ? 1U : 0U},
         {"otsync_redis_feed_messages_total", "Ops other instances committed, received over pub/sub since start",
          store::health_kind::total, messages_.load()},
         {"otsync_redis_feed_resyncs_total", "Channel (re)subscriptions since start, each followed by a catch-up",
          store::health_kind::total, resyncs_.load()},
         {"otsync_redis_feed_connects_total", "Successful op feed connections to Redis since start",
          store::health_kind::total, client_.connects()},
         {"otsync_redis_feed_own_skipped_total",
          "This instance's own ops echoed back over pub/sub and skipped without decoding", store::health_kind::total,
          own_skipped_.load()}}};
  }

 private:
  using subscriber = std::pair<op_handler, resync_handler>;

  std::vector<subscriber> subscribers_of(std::string_view channel) {
    std::lock_guard lock(mutex_);
    std::vector<subscriber> out;
    auto it = channels_.find(std::string(channel));
    if (it == channels_.end()) return out;
    for (const auto& [token, s] : it->second) out.push_back(s);
    return out;
  }

  void deliver(std::string_view channel, std::string_view payload) {
    if (payload.starts_with("i:")) {
      // Tagged by its publisher: this instance's own ops are already applied here.
      if (!own_tag_.empty() && payload.starts_with(own_tag_)) {
        ++own_skipped_;
        return;
      }
      auto end = payload.find('\n');
      if (end == std::string_view::npos) return;
      payload.remove_prefix(end + 1);
    }
    if (payload == "resync") {
      // A commit confirmed late (--redis-min-replicas) may not have been published: read the log.
      resync(channel);
      return;
    }
    auto op = redis::decode_stored_op(payload);
    if (!op) return;  // not an op of ours; the op log stays the truth
    ++messages_;
    for (auto& [on_op, on_resync] : subscribers_of(channel)) on_op(*op);
  }

  void resync(std::string_view channel) {
    ++resyncs_;
    for (auto& [on_op, on_resync] : subscribers_of(channel)) on_resync();
  }

  // On every (re)connection: subscribe to every channel again; each
  // confirmation triggers that channel's resync.
  void subscribe_all() {
    std::vector<std::string> channels;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [channel, subs] : channels_) channels.push_back(channel);
    }
    for (const auto& channel : channels) client_.subscribe_sharded(channel);
  }

  store::redis_options options_;
  std::string own_tag_;
  std::atomic<std::uint64_t> next_token_{0};
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> own_skipped_{0};
  std::atomic<std::uint64_t> resyncs_{0};
  std::mutex mutex_;
  std::map<std::string, std::map<std::uint64_t, subscriber>> channels_;
  // Last: started once everything above exists, stopped before it goes.
  redis::client client_;
};

}  // namespace

std::unique_ptr<op_feed> open_redis_op_feed(const store::redis_options& options) {
  return std::make_unique<redis_op_feed>(options);
}

}  // namespace otsync::pubsub
