// Redis Cluster mode of redis::client: the slot map (from CLUSTER SLOTS, asked
// of the seeds and every master known), one connection per master, commands
// routed by their key's slot, MOVED (the slot map is corrected and refreshed,
// the command goes again) and ASK (ASKING, then the command on the target),
// TRYAGAIN retried after a pause. A subscriber client (one with an on_message
// hook) has a pub/sub connection per master instead: SSUBSCRIBE goes to the
// channel's shard and follows it when its slot moves (Redis sends
// `sunsubscribe`); SUBSCRIBE (classic, cluster-wide) goes to one master.
//
// Connected (ready) while the map covers every slot and every master's
// connection is up and serving (CLUSTER INFO: cluster_state:ok, checked on
// connect and again after a CLUSTERDOWN or LOADING reply, which is retried
// like TRYAGAIN); `on_connected` runs on every change to connected.
//
// Thread safety: none; everything runs on the client's io_context thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "client.hpp"
#include "cluster_slots.hpp"
#include "reconnect_backoff.hpp"

namespace otsync::redis {

class connection;
class push_connection;

class cluster_router {
 public:
  using reply_handler = std::function<void(const redisReply* reply)>;
  /// Redirections and retries one command may take before it fails: during a migration a command
  /// may go ASK -> TRYAGAIN (its keys split for a moment) -> back several times. With the pauses
  /// below at most about 2.5 s in all.
  static constexpr int max_attempts = 16;

  cluster_router(boost::asio::io_context& io, const client_options& options, client_hooks hooks);
  ~cluster_router();
  cluster_router(const cluster_router&) = delete;
  cluster_router& operator=(const cluster_router&) = delete;

  void start();
  /// Disconnects everything; commands in flight or waiting for a connection fail (null reply).
  void stop();
  /// Routed by `route_key` when not empty (WAIT: the node the key's write went to), else by the command's key.
  void send(std::vector<std::string> argv, reply_handler done, std::string route_key = {});
  void subscribe(const std::string& channel, bool sharded);
  void unsubscribe(const std::string& channel, bool sharded);

  [[nodiscard]] bool connected() const noexcept { return connected_; }
  /// Commands sent and not yet answered, over every connection.
  [[nodiscard]] std::size_t pending() const;
  [[nodiscard]] std::uint64_t timeouts() const noexcept { return timeouts_; }
  /// Times the slot map changed owners (a failover, a migration, a MOVED).
  [[nodiscard]] std::uint64_t map_changes() const noexcept { return map_changes_; }
  [[nodiscard]] std::uint64_t redirects() const noexcept { return redirects_; }
  /// Why the cluster is not usable, last seen (for the store's health line and the log); any thread.
  [[nodiscard]] std::string problem() const;

 private:
  struct node;
  struct command {
    std::vector<std::string> argv;
    std::string route_key;
  };
  using shared_argv = std::shared_ptr<const command>;

  void route(shared_argv argv, reply_handler done, int attempt, std::optional<endpoint> ask_to);
  void connect_node(const endpoint& address, std::function<void(bool)> then);
  void node_lost(const endpoint& address, std::uint64_t generation);
  /// The node answered CLUSTERDOWN or LOADING: not ready until CLUSTER INFO says ok again.
  void node_refused(const endpoint& address);
  void probe_node(const endpoint& address, std::uint64_t generation);
  void refresh_now();
  void refresh_later();
  void ask_for_slots(std::vector<endpoint> candidates, std::size_t index);
  void apply_map(slot_map map);
  void update_connected();
  void set_problem(std::string what);
  void reconcile_subscriptions();
  void on_push(const endpoint& from, const redisReply* reply);
  [[nodiscard]] const endpoint* any_master() const;
  [[nodiscard]] node* find_node(const endpoint& address);

  boost::asio::io_context& io_;
  client_options options_;
  client_hooks hooks_;
  bool subscriber_;  ///< pub/sub connections instead of command connections
  reconnect_backoff backoff_;
  bool stopped_ = false;
  std::map<endpoint, std::unique_ptr<node>> nodes_;
  std::uint64_t next_generation_ = 0;
  slot_map map_;
  bool have_map_ = false;
  std::vector<endpoint> masters_;      ///< map_.masters(), kept with the map
  std::unique_ptr<connection> probe_;  ///< asking for CLUSTER SLOTS
  std::size_t retrying_ = 0;           ///< commands waiting to try again (TRYAGAIN)
  bool refreshing_ = false;
  bool refresh_again_ = false;
  bool refresh_scheduled_ = false;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> map_changes_{0};
  std::atomic<std::uint64_t> redirects_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  mutable std::mutex problem_mutex_;
  std::string problem_;
  // Subscriber: what is wanted and where each subscription is now.
  std::set<std::string> sharded_wanted_;
  std::map<std::string, endpoint> sharded_at_;
  std::set<std::string> classic_wanted_;
  std::optional<endpoint> classic_at_;
};

}  // namespace otsync::redis
