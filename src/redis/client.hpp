// One reconnecting Redis client, the plumbing the Redis store and the op feed
// share: its own thread and io_context, one hiredis connection (asio_hiredis),
// SELECT of the database, reconnects with backoff, and Lua scripts loaded on
// every connection and called by SHA (reloaded after a NOSCRIPT).
//
// Used either for commands (the store) or for pub/sub (the feed): a
// connection in subscribe mode takes no other commands.
//
// Thread safety: `start`, `stop`, `post`, `post_after`, `connected` and the counters may be
// called from any thread; `send`, `send_script`, `subscribe` and
// `unsubscribe` only on the client's thread (inside `post` or a handler).
// Handlers run on the client's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster_slots.hpp"

struct redisReply;

namespace otsync::redis {

struct client_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  /// Sentinel mode when not empty: before every connection the master named `master_name` is asked
  /// of these (in turn), the server found must say it is a master (ROLE), a `+switch-master` for it
  /// drops the connection, and so does a READONLY reply (a demoted master). `host`/`port` unused.
  std::vector<endpoint> sentinels;
  std::string master_name;
  /// Cluster mode when not empty (cluster_router.hpp): the slot map is asked of these first.
  /// `host`/`port`/`db` unused.
  std::vector<endpoint> cluster_seeds;
  int db = 0;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};
};

/// The client settings of an options struct with the same members (such as
/// store::redis_options, which the store and the feed are opened with).
template <class Options>
client_options client_options_from(const Options& options) {
  return {options.host,          options.port,         options.sentinels,       options.master_name,
          options.cluster_seeds, options.db,           options.connect_timeout, options.command_timeout,
          options.reconnect_min, options.reconnect_max};
}

/// What the owner hears about, on the client's thread. Any may be empty.
struct client_hooks {
  /// A connection is up (database selected, scripts being loaded): the feed subscribes again here.
  std::function<void()> on_connected;
  /// Subscribe mode: a message on a subscribed channel.
  std::function<void(std::string_view channel, std::string_view payload)> on_message;
  /// Subscribe mode: Redis confirmed a subscription.
  std::function<void(std::string_view channel)> on_subscribed;
};

class client {
 public:
  /// `reply` is null when the command got no reply (not connected, timeout, connection lost).
  using reply_handler = std::function<void(const redisReply* reply)>;
  /// An index into the scripts given to the constructor.
  using script_id = std::size_t;

  /// `scripts`: Lua texts with static storage, loaded on every connection.
  client(client_options options, std::vector<const char*> scripts, client_hooks hooks);
  /// Stops without draining (as `stop({})`).
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Starts the thread and the first connection attempt. Call once, after the
  /// owner is fully constructed (hooks may run from then on).
  void start();
  /// Lets commands already sent finish (up to `drain`), then disconnects and
  /// ends the thread (joined; detached when called from the client's thread).
  /// Idempotent. Work posted afterwards never runs.
  void stop(std::chrono::milliseconds drain);

  /// Runs `fn` on the client's thread.
  void post(std::function<void()> fn);
  /// Runs `fn` on the client's thread after `delay` (never once stopped).
  void post_after(std::chrono::milliseconds delay, std::function<void()> fn);

  /// Sends one command; `done` runs exactly once (at once with null when not connected).
  /// Cluster mode: routed by `route_key`'s slot when given (a WAIT after a write of that key),
  /// else by the command's own key (cluster_slots.hpp), else to any master.
  void send(const std::vector<std::string>& argv, reply_handler done, std::string route_key = {});
  /// Calls a script: EVALSHA when its SHA is known, else EVAL with its text
  /// (also after a NOSCRIPT reply: the script did not run). `argv[0]` and
  /// `argv[1]` are placeholders for the command and the script.
  void send_script(script_id script, std::vector<std::string> argv, reply_handler done);
  /// Subscribe mode; confirmations go to `on_subscribed`, messages to `on_message`.
  void subscribe(const std::string& channel);
  void unsubscribe(const std::string& channel);
  /// Sharded pub/sub (SSUBSCRIBE) in cluster mode, on the shard that owns the channel's slot, moved
  /// with it (confirmed again through `on_subscribed`); the same as `subscribe` otherwise.
  void subscribe_sharded(const std::string& channel);
  void unsubscribe_sharded(const std::string& channel);
  /// Cluster mode (then PUBLISH is SPUBLISH for the op channels).
  [[nodiscard]] bool cluster() const noexcept;

  /// Whether a connection is up (readiness).
  [[nodiscard]] bool connected() const noexcept;
  /// Successful connections, the first included.
  [[nodiscard]] std::uint64_t connects() const noexcept;
  /// Commands sent through `send` and `send_script`.
  [[nodiscard]] std::uint64_t commands() const noexcept;
  /// Commands that got no reply in time.
  [[nodiscard]] std::uint64_t timeouts() const noexcept;
  /// Sentinel mode: masters switched to (a `+switch-master`, a READONLY reply, or a new address found).
  /// Cluster mode: changes of the slot map (a failover, a migration).
  [[nodiscard]] std::uint64_t master_switches() const noexcept;
  /// Cluster mode: MOVED and ASK redirections followed.
  [[nodiscard]] std::uint64_t redirects() const noexcept;
  /// Cluster mode: why it is not connected, last seen ("" when connected or not known).
  [[nodiscard]] std::string problem() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace otsync::redis
