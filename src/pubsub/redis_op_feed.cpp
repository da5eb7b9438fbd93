#include "otsync/pubsub/redis_op_feed.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "../store/redis/asio_hiredis.hpp"
#include "../store/redis/reconnect_backoff.hpp"
#include "../store/redis/stored_op.hpp"

namespace otsync::pubsub {
namespace {

namespace asio = boost::asio;

class redis_op_feed final : public op_feed {
 public:
  explicit redis_op_feed(store::redis_options options)
      : options_(std::move(options)),
        work_(asio::make_work_guard(io_)),
        conn_(io_, options_.host, options_.port, options_.connect_timeout, options_.command_timeout),
        reconnect_(io_, options_.reconnect_min, options_.reconnect_max) {
    conn_.on_lost([this] {
      connected_ = false;
      schedule_reconnect();
    });
    conn_.on_message([this](std::string_view channel, std::string_view payload) { deliver(channel, payload); });
    conn_.on_subscribed([this](std::string_view channel) { resync(channel); });
    thread_ = std::thread([this] { io_.run(); });
    asio::post(io_, [this] { start_connect(); });
  }

  ~redis_op_feed() override {
    stopping_ = true;
    asio::post(io_, [this] {
      reconnect_.cancel();
      conn_.disconnect();
      work_.reset();
      io_.stop();
    });
    thread_.join();
  }

  std::uint64_t subscribe(const store::doc_key& key, op_handler on_op, resync_handler on_resync) override {
    auto channel = store::redis_op_channel(options_, key);
    std::uint64_t token = ++next_token_;
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      auto& subscribers = channels_[channel];
      first = subscribers.empty();
      subscribers.emplace(token, std::make_pair(std::move(on_op), std::move(on_resync)));
    }
    if (first) {
      asio::post(io_, [this, channel] { conn_.subscribe(channel); });
    }
    return token;
  }

  void unsubscribe(const store::doc_key& key, std::uint64_t token) override {
    auto channel = store::redis_op_channel(options_, key);
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
      asio::post(io_, [this, channel] {
        std::lock_guard lock(mutex_);
        if (!channels_.contains(channel)) conn_.unsubscribe(channel);
      });
    }
  }

  bool connected() const override { return connected_; }
  feed_stats stats() const override {
    return {messages_.load(), resyncs_.load(), connects_.load(), own_skipped_.load()};
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
    auto op = store::redis::decode_op(payload);
    if (!op) return;  // not an op of ours; the op log stays the truth
    ++messages_;
    for (auto& [on_op, on_resync] : subscribers_of(channel)) on_op(*op);
  }

  void resync(std::string_view channel) {
    ++resyncs_;
    for (auto& [on_op, on_resync] : subscribers_of(channel)) on_resync();
  }

  void start_connect() {
    if (stopping_) return;
    conn_.connect([this](bool ok) {
      if (!ok) return schedule_reconnect();
      connected_ = true;
      ++connects_;
      reconnect_.reset();
      std::vector<std::string> channels;
      {
        std::lock_guard lock(mutex_);
        for (const auto& [channel, subs] : channels_) channels.push_back(channel);
      }
      // Each confirmation triggers that channel's resync.
      for (const auto& channel : channels) conn_.subscribe(channel);
    });
  }

  void schedule_reconnect() {
    connected_ = false;
    if (stopping_) return;
    reconnect_.schedule([this] { start_connect(); });
  }

  store::redis_options options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  store::redis::connection conn_;
  store::redis::reconnect_backoff reconnect_;
  std::thread thread_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> next_token_{0};
  std::string own_tag_ = store::redis_publisher_tag(options_);
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> own_skipped_{0};
  std::atomic<std::uint64_t> resyncs_{0};
  std::atomic<std::uint64_t> connects_{0};
  std::mutex mutex_;
  std::map<std::string, std::map<std::uint64_t, subscriber>> channels_;
};

}  // namespace

std::unique_ptr<op_feed> open_redis_op_feed(const store::redis_options& options) {
  return std::make_unique<redis_op_feed>(options);
}

}  // namespace otsync::pubsub
