// Presence between server instances: each instance publishes what its own
// connections show on a presence channel, and hears what the others' show,
// on a bus channel per presence channel that it subscribes only while it has
// members there. Every instance also sends a heartbeat; one that stays silent
// for the lease (it died, or lost Redis) is reported lost, so the others clear
// the presences it left. Presence is ephemeral: the bus stores nothing.
//
// The payloads are opaque here (the server's presence hub writes and reads
// them); the bus only adds the sending instance.
//
// Thread safety: member functions may be called from any thread; handlers run
// on the bus's own thread, one at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "otsync/store/redis_store.hpp"
#include "otsync/store/store.hpp"

namespace otsync::pubsub {

struct presence_bus_handlers {
  /// A payload another instance published on `channel`.
  std::function<void(std::string_view channel, std::string_view instance, std::string_view payload)> on_message;
  /// The subscription to `channel` is in place. `reconnected`: it is again, after the connection to
  /// the bus was lost, so messages may have been missed; otherwise this is its first subscription.
  std::function<void(std::string_view channel, bool reconnected)> on_subscribed;
  /// `instance` sent no heartbeat for the lease, or said goodbye: what it showed is gone.
  std::function<void(std::string_view instance)> on_instance_lost;
  /// `instance` was reported lost and is heard again: it has to be asked to show its presences again.
  std::function<void(std::string_view instance)> on_instance_back;
};

struct presence_bus_stats {
  std::uint64_t published = 0;  ///< payloads sent to the other instances
  std::uint64_t received = 0;   ///< payloads heard from them
  std::uint64_t dropped = 0;    ///< payloads not sent: too many waiting for Redis (--max-presence-relay-queue)
  std::uint64_t instances_lost = 0;
};

class presence_bus {
 public:
  virtual ~presence_bus() = default;
  /// Connects and starts the heartbeat; call once, before anything else.
  virtual void start(presence_bus_handlers handlers) = 0;
  /// Subscribes to `channel` (once per channel: the hub joins on its first local member).
  virtual void join(const std::string& channel) = 0;
  virtual void leave(const std::string& channel) = 0;
  /// Sends `payload` to every other instance that has joined `channel`; dropped when the queue is full.
  virtual void publish(const std::string& channel, std::string payload) = 0;
  /// Says goodbye (the others clear this instance's presences at once) and disconnects.
  virtual void stop() = 0;
  [[nodiscard]] virtual presence_bus_stats stats() const = 0;
  /// Its connections, for /metrics (not readiness: presence is ephemeral).
  [[nodiscard]] virtual store::backend_health health() const = 0;
};

struct presence_bus_options {
  /// An instance silent this long is lost; heartbeats go out every quarter of it.
  std::chrono::milliseconds lease{5000};
  /// Payloads waiting for Redis at most; more are dropped (presence is ephemeral).
  std::size_t max_queue = 10000;
};

/// `options.instance_id` names this instance to the others; `options.key_prefix` starts its channels.
std::unique_ptr<presence_bus> open_redis_presence_bus(const store::redis_options& options,
                                                      const presence_bus_options& bus_options);

}  // namespace otsync::pubsub
