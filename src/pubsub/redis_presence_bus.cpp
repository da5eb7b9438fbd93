// The presence bus over Redis pub/sub. Two connections: a subscriber (a
// connection in subscribe mode takes no other command) and a publisher. Every
// payload is prefixed with the sending instance's id and a newline, so each
// instance skips its own (Redis echoes them to every subscriber) and knows who
// to clear when a sender goes silent.
//
// The heartbeat, the lease check and every handler run on the subscriber's
// thread; publishing runs on the publisher's.
#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../redis/client.hpp"
#include "../redis/keys.hpp"
#include "otsync/pubsub/presence_bus.hpp"

namespace otsync::pubsub {
namespace {

using clock = std::chrono::steady_clock;

constexpr std::string_view heartbeat_word = "hb";
constexpr std::string_view goodbye_word = "bye";
/// "Some of my messages may not have gone out": the others clear what I showed and ask again.
constexpr std::string_view reset_word = "reset";
/// Instances reported lost that are remembered (to tell when one is back).
constexpr std::size_t remembered_lost = 1024;

/// Splits "instance\nrest"; false when there is no newline (not ours).
bool split_sender(std::string_view payload, std::string_view& instance, std::string_view& rest) {
  const auto newline = payload.find('\n');
  if (newline == std::string_view::npos || newline == 0) return false;
  instance = payload.substr(0, newline);
  rest = payload.substr(newline + 1);
  return true;
}

class redis_presence_bus final : public presence_bus {
 public:
  redis_presence_bus(store::redis_options options, presence_bus_options bus_options)
      : options_(std::move(options)),
        bus_options_(bus_options),
        channel_prefix_(redis::presence_channel(options_.key_prefix, "")),
        instances_channel_(redis::presence_instances_channel(options_.key_prefix)),
        subscriber_(redis::client_options_from(options_), {},
                    {[this] { subscribe_all(); },
                     [this](std::string_view channel, std::string_view payload) { on_message(channel, payload); },
                     [this](std::string_view channel) { on_subscribed(channel); }}),
        publisher_(redis::client_options_from(options_), {}, {}) {}

  ~redis_presence_bus() override { stop(); }

  void start(presence_bus_handlers handlers) override {
    handlers_ = std::move(handlers);
    subscriber_.start();
    publisher_.start();
    subscriber_.post([this] { tick(); });
  }

  void join(const std::string& channel) override {
    {
      std::lock_guard lock(mutex_);
      if (!joined_.insert(channel).second) return;
    }
    subscriber_.post([this, channel] { sync_subscription(channel); });
  }

  void leave(const std::string& channel) override {
    {
      std::lock_guard lock(mutex_);
      if (joined_.erase(channel) == 0) return;
    }
    // Unsubscribed a while later: a member that leaves and comes back (or churns on purpose) causes
    // no new subscription, so no new request for everyone's presences.
    subscriber_.post_after(unsubscribe_grace(), [this, channel] { sync_subscription(channel); });
  }

  void publish(const std::string& channel, std::string payload) override {
    send(channel_prefix_ + channel, std::move(payload), message_kind::presence);
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    // Goodbye first, so the others clear what this instance showed now rather than after the lease.
    send(instances_channel_, std::string(goodbye_word), message_kind::control);
    publisher_.stop(std::chrono::milliseconds(500));
    subscriber_.stop({});
  }

  presence_bus_stats stats() const override {
    return {published_.load(), received_.load(), dropped_.load(), lost_total_.load()};
  }

  store::backend_health health() const override {
    const bool up = subscriber_.connected() && publisher_.connected();
    return {
        up,
        "redis presence " + options_.host + ":" + std::to_string(options_.port) + (up ? " connected" : " unreachable"),
        {{"otsync_redis_presence_up", "1 while both presence bus connections to Redis are up",
          store::health_kind::gauge, up ? 1U : 0U},
         {"otsync_presence_relayed_out_total",
          "Presence messages published to the other instances (heartbeats not counted)", store::health_kind::total,
          published_.load()},
         {"otsync_presence_relayed_in_total", "Presence messages heard from the other instances",
          store::health_kind::total, received_.load()},
         {"otsync_presence_relay_dropped_total",
          "Presence messages not published (Redis unreachable, --max-presence-relay-queue full, no reply); "
          "each leads to a reset: the others clear what this instance showed and ask again",
          store::health_kind::total, dropped_.load()},
         {"otsync_presence_instances_lost_total",
          "Instances whose presences were cleared: silent for the lease (--presence-lease-ms) or gone",
          store::health_kind::total, lost_total_.load()}}};
  }

 private:
  std::chrono::milliseconds unsubscribe_grace() const {
    return std::max(std::chrono::milliseconds(100), bus_options_.lease / 4);
  }

  // On the subscriber's thread: subscribed exactly while joined (one SUBSCRIBE per channel, so one
  // confirmation, which is a renewal only after the connection was lost).
  void sync_subscription(const std::string& channel) {
    bool want = false;
    bool have = false;
    {
      std::lock_guard lock(mutex_);
      want = joined_.contains(channel);
      have = subscribed_.contains(channel);
      if (want && !have) subscribed_.insert(channel);
      if (!want && have) {
        subscribed_.erase(channel);
        confirmed_.erase(channel);
      }
    }
    if (want && !have) subscriber_.subscribe(channel_prefix_ + channel);
    if (!want && have) subscriber_.unsubscribe(channel_prefix_ + channel);
  }

  // A presence message is counted, and a drop makes this instance `dirty_`; so does a reset that
  // may not have gone out (it is sent again). A heartbeat or goodbye is state nobody keeps: a lost
  // one is not worth a reset.
  enum class message_kind { presence, reset, control };

  void dropped(message_kind kind) {
    if (kind == message_kind::presence) ++dropped_;
    if (kind != message_kind::control) dirty_ = true;
  }

  void send(std::string channel, std::string payload, message_kind kind) {
    if (!publisher_.connected()) {
      dropped(kind);
      return;
    }
    if (queued_.fetch_add(1) >= bus_options_.max_queue) {
      queued_.fetch_sub(1);
      if (kind == message_kind::control) return;
      dropped(message_kind::presence);  // counted whatever it was: the queue was full
      return;
    }
    std::string framed;
    framed.reserve(options_.instance_id.size() + 1 + payload.size());
    framed += options_.instance_id;
    framed += '\n';
    framed += payload;
    publisher_.post([this, kind, channel = std::move(channel), framed = std::move(framed)] {
      publisher_.send({"PUBLISH", channel, framed}, [this, kind](const redisReply* reply) {
        queued_.fetch_sub(1);
        if (!reply) {
          dropped(kind);  // perhaps published, perhaps not: the others cannot tell what they show is current
        } else if (kind == message_kind::presence) {
          ++published_;
        }
      });
    });
  }

  // Every quarter lease: a heartbeat out, and the instances silent for the lease are lost.
  void tick() {
    if (stopped_) return;
    send(instances_channel_, std::string(heartbeat_word), message_kind::control);
    // Messages of ours were dropped (Redis unreachable or slow, the queue full): once they can go
    // out again, the others clear what this instance showed and ask everyone on their channels to
    // show theirs again (the members here hear it through Redis); this instance asks again too, for
    // the requests of its own that were dropped.
    if (dirty_ && publisher_.connected() && queued_.load() < bus_options_.max_queue / 2) {
      dirty_ = false;
      send(instances_channel_, std::string(reset_word), message_kind::reset);
      if (handlers_.on_instance_back) handlers_.on_instance_back(options_.instance_id);
    }
    const auto now = clock::now();
    std::vector<std::string> lost;
    {
      std::lock_guard lock(mutex_);
      for (auto it = last_heard_.begin(); it != last_heard_.end();) {
        if (now - it->second > bus_options_.lease) {
          lost.push_back(it->first);
          remember_lost(it->first);
          it = last_heard_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const auto& instance : lost) report_lost(instance);
    subscriber_.post_after(std::max(std::chrono::milliseconds(10), bus_options_.lease / 4), [this] { tick(); });
  }

  void report_lost(const std::string& instance) {
    ++lost_total_;
    if (handlers_.on_instance_lost) handlers_.on_instance_lost(instance);
  }

  void remember_lost(const std::string& instance) {
    lost_order_.push_back(instance);
    lost_.insert(instance);
    if (lost_order_.size() > remembered_lost) {
      lost_.erase(lost_order_.front());
      lost_order_.pop_front();
    }
  }

  // An instance spoke: alive for another lease; back, when it had been reported lost.
  void heard(std::string_view instance) {
    bool back = false;
    {
      std::lock_guard lock(mutex_);
      auto it = last_heard_.find(std::string(instance));
      if (it != last_heard_.end()) {
        it->second = clock::now();
        return;
      }
      back = lost_.erase(std::string(instance)) > 0;
      last_heard_.emplace(std::string(instance), clock::now());
    }
    if (back && handlers_.on_instance_back) handlers_.on_instance_back(instance);
  }

  void on_message(std::string_view channel, std::string_view payload) {
    std::string_view instance;
    std::string_view rest;
    if (!split_sender(payload, instance, rest) || instance == options_.instance_id) return;
    if (channel == instances_channel_) {
      if (rest == reset_word) {
        // Lost and back at once: what it showed is cleared, and everyone is asked to show theirs.
        {
          std::lock_guard lock(mutex_);
          lost_.erase(std::string(instance));
          last_heard_[std::string(instance)] = clock::now();
        }
        report_lost(std::string(instance));
        if (handlers_.on_instance_back) handlers_.on_instance_back(instance);
      } else if (rest == goodbye_word) {
        bool known = false;
        {
          std::lock_guard lock(mutex_);
          known = last_heard_.erase(std::string(instance)) > 0;
          remember_lost(std::string(instance));
        }
        if (known) report_lost(std::string(instance));
      } else {
        heard(instance);
      }
      return;
    }
    if (!channel.starts_with(channel_prefix_)) return;
    heard(instance);
    ++received_;
    if (handlers_.on_message) handlers_.on_message(channel.substr(channel_prefix_.size()), instance, rest);
  }

  void on_subscribed(std::string_view name) {
    if (name == instances_channel_ || !name.starts_with(channel_prefix_)) return;
    std::string channel(name.substr(channel_prefix_.size()));
    bool again = false;
    {
      std::lock_guard lock(mutex_);
      if (!joined_.contains(channel)) return;
      again = !confirmed_.insert(channel).second;
    }
    if (handlers_.on_subscribed) handlers_.on_subscribed(channel, again);
  }

  // On every (re)connection: the heartbeat channel and every joined channel again.
  void subscribe_all() {
    subscriber_.subscribe(instances_channel_);
    std::vector<std::string> channels;
    {
      std::lock_guard lock(mutex_);
      subscribed_ = joined_;
      // A channel left while the connection was down is not renewed if joined again: it is new.
      std::erase_if(confirmed_, [&](const std::string& channel) { return !joined_.contains(channel); });
      channels.assign(joined_.begin(), joined_.end());
    }
    for (const auto& channel : channels) subscriber_.subscribe(channel_prefix_ + channel);
  }

  store::redis_options options_;
  presence_bus_options bus_options_;
  std::string channel_prefix_;
  std::string instances_channel_;
  presence_bus_handlers handlers_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> dirty_{false};  ///< a presence message of ours may not have reached the others
  std::atomic<std::size_t> queued_{0};
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> lost_total_{0};
  std::mutex mutex_;
  std::set<std::string> joined_;      ///< channels with members here
  std::set<std::string> subscribed_;  ///< channels SUBSCRIBEd on the current connection (subscriber thread)
  std::set<std::string> confirmed_;   ///< joined channels Redis has confirmed at least once
  std::unordered_map<std::string, clock::time_point> last_heard_;
  std::set<std::string> lost_;
  std::deque<std::string> lost_order_;
  // Last: started once everything above exists, stopped before it goes.
  redis::client subscriber_;
  redis::client publisher_;
};

}  // namespace

std::unique_ptr<presence_bus> open_redis_presence_bus(const store::redis_options& options,
                                                      const presence_bus_options& bus_options) {
  return std::make_unique<redis_presence_bus>(options, bus_options);
}

}  // namespace otsync::pubsub
