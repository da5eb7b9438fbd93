#include "cluster_router.hpp"

#include <algorithm>

#include <hiredis/hiredis.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "asio_hiredis.hpp"
#include "push_connection.hpp"

namespace otsync::redis {
namespace asio = boost::asio;

namespace {

std::string_view text_of(const redisReply* r) {
  if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_ERROR)) {
    return {};
  }
  return {r->str, r->len};
}

// CLUSTER INFO's `cluster_state:ok`: the node serves its slots (not loading, not in its writable
// delay, the cluster not missing a master).
bool cluster_state_ok(const redisReply* r) {
  return r && r->type == REDIS_REPLY_STRING && text_of(r).find("cluster_state:ok") != std::string_view::npos;
}

}  // namespace

struct cluster_router::node {
  endpoint address;
  std::uint64_t generation = 0;             ///< which connection attempt the callbacks belong to
  std::unique_ptr<connection> commands;     // command clients
  std::unique_ptr<push_connection> pushes;  // subscriber clients
  bool up = false;
  bool connecting = false;
  /// Connected, but the node said CLUSTERDOWN or LOADING since: not ready until CLUSTER INFO says ok.
  bool degraded = false;
  bool probing = false;
  std::vector<std::function<void(bool)>> waiting;
};

cluster_router::cluster_router(asio::io_context& io, const client_options& options, client_hooks hooks)
    : io_(io),
      options_(options),
      hooks_(std::move(hooks)),
      subscriber_(static_cast<bool>(hooks_.on_message)),
      // Asking a live node for the map is cheap, and a failover is over as soon as a replica has
      // taken over: poll for that at most every half second, not the reconnect backoff's 2 s.
      backoff_(io, options.reconnect_min, std::min(options.reconnect_max, std::chrono::milliseconds(500))) {}

cluster_router::~cluster_router() {
  stop();
}

void cluster_router::start() {
  refresh_now();
}

void cluster_router::stop() {
  stopped_ = true;
  backoff_.cancel();
  if (probe_) probe_->disconnect();
  std::vector<std::function<void(bool)>> waiting;
  for (auto& [address, n] : nodes_) {
    if (n->commands) n->commands->disconnect();
    if (n->pushes) n->pushes->disconnect();
    n->up = false;
    n->connecting = false;
    for (auto& fn : n->waiting) waiting.push_back(std::move(fn));
    n->waiting.clear();
  }
  connected_ = false;
  // Commands waiting for a node's connection fail now: a disconnect never finishes the connect.
  for (auto& fn : waiting) fn(false);
}

std::size_t cluster_router::pending() const {
  std::size_t total = retrying_;
  for (const auto& [address, n] : nodes_) {
    if (n->commands) total += n->commands->pending();
  }
  return total;
}

cluster_router::node* cluster_router::find_node(const endpoint& address) {
  auto it = nodes_.find(address);
  return it == nodes_.end() ? nullptr : it->second.get();
}

const endpoint* cluster_router::any_master() const {
  return masters_.empty() ? nullptr : &masters_.front();
}

void cluster_router::send(std::vector<std::string> argv, reply_handler done, std::string route_key) {
  route(std::make_shared<const command>(command{std::move(argv), std::move(route_key)}), std::move(done), 0,
        std::nullopt);
}

void cluster_router::route(shared_argv argv, reply_handler done, int attempt, std::optional<endpoint> ask_to) {
  // A subscriber's connections are in subscribe mode: they take no command.
  if (stopped_ || subscriber_) return done(nullptr);
  const endpoint* target = nullptr;
  if (ask_to) {
    target = &*ask_to;
  } else if (!argv->route_key.empty()) {
    target = map_.owner(key_slot(argv->route_key));
  } else if (auto key = routing_key(argv->argv)) {
    target = map_.owner(key_slot(*key));
  } else {
    target = any_master();
  }
  if (!target) {
    refresh_later();
    return done(nullptr);
  }
  const endpoint address = *target;  // ask_to moves below
  node* n = find_node(address);
  if (!n || !n->up) {
    if (attempt >= max_attempts) return done(nullptr);
    // A master learnt from a redirection (or one reconnecting): connect, then go again.
    return connect_node(address, [this, argv = std::move(argv), done = std::move(done), attempt,
                                  ask_to = std::move(ask_to)](bool ok) mutable {
      if (!ok) return done(nullptr);
      route(std::move(argv), std::move(done), attempt + 1, std::move(ask_to));
    });
  }
  if (ask_to) n->commands->command({"ASKING"}, [](const redisReply*) {});
  n->commands->command(argv->argv, [this, address, argv, done = std::move(done), attempt](const redisReply* r) mutable {
    if (r && r->type == REDIS_REPLY_ERROR && attempt < max_attempts && !stopped_) {
      const auto error = text_of(r);
      if (auto redirection = parse_redirect(error)) {
        // Nothing ran: the slot is served elsewhere (for good, or, with ASK, during a migration).
        ++redirects_;
        if (!redirection->ask) {
          map_.assign(redirection->slot, redirection->slot, redirection->to);
          masters_ = map_.masters();
          refresh_now();
        }
        std::optional<endpoint> ask_target;
        if (redirection->ask) ask_target = redirection->to;
        return route(std::move(argv), std::move(done), attempt + 1, std::move(ask_target));
      }
      const bool refused = error.starts_with("CLUSTERDOWN") || error.starts_with("LOADING");
      if (refused) {
        // The node refused before running anything (a master restarted waits 2 s before it serves,
        // a cluster missing a master serves nothing): not ready until it says ok, and the command
        // goes again after a pause (within max_attempts, about 2.5 s).
        node_refused(address);
        refresh_later();
      }
      if (error.starts_with("TRYAGAIN") || refused) {
        // TRYAGAIN: a multi-key command during a slot migration: its keys are split for a moment.
        auto timer =
            std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(std::min(20 * (attempt + 1), 200)));
        ++retrying_;  // counted as pending: a stop drains it instead of dropping its handler
        return timer->async_wait([this, timer, argv, done = std::move(done), attempt](boost::system::error_code) {
          --retrying_;
          route(argv, done, attempt + 1, std::nullopt);
        });
      }
    }
    done(r);
  });
}

void cluster_router::connect_node(const endpoint& address, std::function<void(bool)> then) {
  if (stopped_) return then(false);
  auto& slot = nodes_[address];
  if (!slot) {
    slot = std::make_unique<node>();
    slot->address = address;
  }
  node& n = *slot;
  if (n.up) return then(true);
  n.waiting.push_back(std::move(then));
  if (n.connecting) return;
  n.connecting = true;
  const auto generation = n.generation = ++next_generation_;
  auto finished = [this, address, generation](bool ok) {
    node* connected_node = find_node(address);
    if (!connected_node || connected_node->generation != generation) return;
    connected_node->connecting = false;
    connected_node->up = ok && !stopped_;
    connected_node->degraded = false;  // checked on connect (command clients)
    connected_node->probing = false;   // a probe of an earlier connection stops at its generation
    auto waiting = std::move(connected_node->waiting);
    connected_node->waiting.clear();
    if (connected_node->up) {
      reconcile_subscriptions();
      update_connected();
    } else {
      refresh_later();
    }
    for (auto& fn : waiting) fn(ok && !stopped_);
  };
  if (subscriber_) {
    n.pushes = std::make_unique<push_connection>(io_, address.first, address.second, options_.connect_timeout);
    n.pushes->on_reply([this, address](const redisReply* r) { on_push(address, r); });
    n.pushes->on_lost([this, address, generation] {
      asio::post(io_, [this, address, generation] { node_lost(address, generation); });
    });
    n.pushes->connect(std::move(finished));
  } else {
    n.commands = std::make_unique<connection>(io_, address.first, address.second, options_.connect_timeout,
                                              options_.command_timeout);
    n.commands->count_timeouts_in(&timeouts_);
    n.commands->on_lost([this, address, generation] { node_lost(address, generation); });
    // Connected is not serving: a master that has just started answers LOADING while it reads its
    // data, then CLUSTERDOWN for 2 s (Redis's writable delay). Up once CLUSTER INFO says ok.
    n.commands->connect([this, address, generation, finished = std::move(finished)](bool ok) mutable {
      node* connected_node = find_node(address);
      if (!ok || !connected_node || connected_node->generation != generation) return finished(false);
      connected_node->commands->command(
          {"CLUSTER", "INFO"}, [this, address, generation, finished = std::move(finished)](const redisReply* r) {
            node* checked = find_node(address);
            if (!checked || checked->generation != generation) return finished(false);
            if (cluster_state_ok(r)) return finished(true);
            set_problem(address.first + ":" + std::to_string(address.second) + " does not serve yet (" +
                        (r && r->type == REDIS_REPLY_ERROR ? std::string(text_of(r)) : "cluster_state not ok") + ")");
            checked->commands->disconnect();
            finished(false);
          });
    });
  }
}

void cluster_router::node_refused(const endpoint& address) {
  node* n = find_node(address);
  if (!n || !n->up || stopped_) return;
  n->degraded = true;
  update_connected();
  if (n->probing) return;
  n->probing = true;
  probe_node(address, n->generation);
}

void cluster_router::probe_node(const endpoint& address, std::uint64_t generation) {
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(200));
  timer->async_wait([this, timer, address, generation](boost::system::error_code) {
    node* n = find_node(address);
    if (!n || n->generation != generation) return;
    if (stopped_ || !n->up) {
      n->probing = false;  // a reconnect checks the state itself
      return;
    }
    n->commands->command({"CLUSTER", "INFO"}, [this, address, generation](const redisReply* r) {
      node* probed = find_node(address);
      if (!probed || probed->generation != generation) return;
      if (!cluster_state_ok(r)) return probe_node(address, generation);
      probed->probing = false;
      probed->degraded = false;
      update_connected();
    });
  });
}

void cluster_router::node_lost(const endpoint& address, std::uint64_t generation) {
  node* n = find_node(address);
  if (!n || n->generation != generation || stopped_) return;
  n->up = false;
  for (auto it = sharded_at_.begin(); it != sharded_at_.end();) {
    it = it->second == address ? sharded_at_.erase(it) : std::next(it);
  }
  if (classic_at_ == address) classic_at_.reset();
  update_connected();
  // A master gone: maybe failed over to a replica. Ask again (after a pause: it may take seconds).
  refresh_later();
  // A subscription on a node that no longer is a master (so not in the required set) moves now.
  reconcile_subscriptions();
}

void cluster_router::refresh_now() {
  if (stopped_) return;
  if (refreshing_) {
    refresh_again_ = true;
    return;
  }
  refreshing_ = true;
  // The masters known first (they know the newest map), then the seeds.
  std::vector<endpoint> candidates = masters_;
  for (const auto& seed : options_.cluster_seeds) {
    if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end()) candidates.push_back(seed);
  }
  ask_for_slots(std::move(candidates), 0);
}

void cluster_router::refresh_later() {
  if (stopped_ || refresh_scheduled_) return;
  refresh_scheduled_ = true;
  backoff_.schedule([this] {
    refresh_scheduled_ = false;
    refresh_now();
  });
}

void cluster_router::ask_for_slots(std::vector<endpoint> candidates, std::size_t index) {
  if (stopped_) return;
  if (index >= candidates.size()) {
    refreshing_ = false;
    refresh_again_ = false;
    return refresh_later();
  }
  const endpoint address = candidates[index];
  if (probe_) {
    // This may run inside the old probe's own reply callback (its map applied, a refresh asked for
    // meanwhile): destroyed once that callback has returned, never under it.
    asio::post(io_, [retired = std::shared_ptr<connection>(std::move(probe_))] {});
  }
  probe_ = std::make_unique<connection>(io_, address.first, address.second, options_.connect_timeout,
                                        options_.command_timeout);
  auto next = [this, candidates, index] {
    asio::post(io_, [this, candidates, index] { ask_for_slots(candidates, index + 1); });
  };
  probe_->connect([this, address, next, asked = probe_.get()](bool ok) {
    if (probe_.get() != asked) return;
    if (!ok) {
      set_problem("cannot connect to " + address.first + ":" + std::to_string(address.second));
      return next();
    }
    probe_->command({"CLUSTER", "SLOTS"}, [this, address, next, asked](const redisReply* r) {
      if (probe_.get() != asked) return;
      auto map = slot_map::from_cluster_slots(r, address.first);
      probe_->disconnect();
      // A node that lost touch with the others may serve a partial map: ask the next.
      if (!map || !map->complete()) {
        const auto where = address.first + ":" + std::to_string(address.second);
        // "ERR This instance has cluster support disabled": a redis-cluster:// URI at a plain Redis.
        if (r && r->type == REDIS_REPLY_ERROR) {
          set_problem("CLUSTER SLOTS at " + where + ": " + std::string(text_of(r)));
        } else {
          set_problem(where + (r ? " knows a map that does not cover every slot" : " did not answer CLUSTER SLOTS"));
        }
        return next();
      }
      apply_map(std::move(*map));
    });
  });
}

void cluster_router::apply_map(slot_map map) {
  auto masters = map.masters();
  bool changed = !have_map_;
  if (!changed) {
    for (std::size_t slot = 0; slot < cluster_slot_count && !changed; ++slot) {
      const auto* before = map_.owner(static_cast<std::uint16_t>(slot));
      const auto* after = map.owner(static_cast<std::uint16_t>(slot));
      changed = (before == nullptr) != (after == nullptr) || (before && *before != *after);
    }
  }
  if (changed && have_map_) ++map_changes_;
  map_ = std::move(map);
  masters_ = std::move(masters);
  have_map_ = true;
  refreshing_ = false;
  for (const auto& master : masters_) connect_node(master, [](bool) {});
  reconcile_subscriptions();
  update_connected();
  if (refresh_again_) {
    refresh_again_ = false;
    refresh_now();
  }
}

void cluster_router::update_connected() {
  bool all = have_map_ && !masters_.empty() && !stopped_;
  for (const auto& master : masters_) {
    const node* n = find_node(master);
    all = all && n && n->up && !n->degraded;
  }
  if (all == connected_) return;
  connected_ = all;
  if (!all) return refresh_later();
  set_problem({});
  backoff_.reset();
  if (hooks_.on_connected) hooks_.on_connected();
}

void cluster_router::set_problem(std::string what) {
  std::lock_guard lock(problem_mutex_);
  problem_ = std::move(what);
}

std::string cluster_router::problem() const {
  std::lock_guard lock(problem_mutex_);
  return problem_;
}

void cluster_router::subscribe(const std::string& channel, bool sharded) {
  if (sharded) {
    sharded_wanted_.insert(channel);
    sharded_at_.erase(channel);  // sent again: the caller expects a confirmation
  } else {
    classic_wanted_.insert(channel);
    if (classic_at_) {
      if (node* n = find_node(*classic_at_); n && n->up) n->pushes->send({"SUBSCRIBE", channel});
    }
  }
  reconcile_subscriptions();
}

void cluster_router::unsubscribe(const std::string& channel, bool sharded) {
  if (sharded) {
    sharded_wanted_.erase(channel);
    auto it = sharded_at_.find(channel);
    if (it == sharded_at_.end()) return;
    if (node* n = find_node(it->second); n && n->up) n->pushes->send({"SUNSUBSCRIBE", channel});
    sharded_at_.erase(it);
  } else {
    classic_wanted_.erase(channel);
    if (!classic_at_) return;
    if (node* n = find_node(*classic_at_); n && n->up) n->pushes->send({"UNSUBSCRIBE", channel});
  }
}

void cluster_router::reconcile_subscriptions() {
  if (!subscriber_ || stopped_) return;
  for (const auto& channel : sharded_wanted_) {
    const endpoint* owner = map_.owner(key_slot(channel));
    if (!owner) continue;
    auto at = sharded_at_.find(channel);
    if (at != sharded_at_.end() && at->second == *owner) continue;
    node* n = find_node(*owner);
    if (!n || !n->up) continue;  // subscribed once it is connected
    if (at != sharded_at_.end()) {
      if (node* old = find_node(at->second); old && old->up) old->pushes->send({"SUNSUBSCRIBE", channel});
    }
    n->pushes->send({"SSUBSCRIBE", channel});
    sharded_at_[channel] = *owner;
  }
  // Classic pub/sub reaches every node of a cluster: one connection to any master carries it.
  const endpoint* any = any_master();
  if (!any || classic_at_ == *any || classic_wanted_.empty()) return;
  node* n = find_node(*any);
  if (!n || !n->up) return;
  if (classic_at_) {
    if (node* old = find_node(*classic_at_); old && old->up) {
      for (const auto& channel : classic_wanted_) old->pushes->send({"UNSUBSCRIBE", channel});
    }
  }
  for (const auto& channel : classic_wanted_) n->pushes->send({"SUBSCRIBE", channel});
  classic_at_ = *any;
}

void cluster_router::on_push(const endpoint& from, const redisReply* r) {
  if (stopped_) return;
  if (r->type == REDIS_REPLY_ERROR) {
    // An SSUBSCRIBE sent to a node that no longer has the slot: the map is out of date.
    if (auto redirection = parse_redirect(text_of(r)); redirection && !redirection->ask) {
      ++redirects_;
      for (auto it = sharded_at_.begin(); it != sharded_at_.end();) {
        it = it->second == from && key_slot(it->first) == redirection->slot ? sharded_at_.erase(it) : std::next(it);
      }
      map_.assign(redirection->slot, redirection->slot, redirection->to);
      masters_ = map_.masters();
      reconcile_subscriptions();
      refresh_now();
    }
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  const auto kind = text_of(r->element[0]);
  const auto channel = text_of(r->element[1]);
  if (kind == "message" || kind == "smessage") {
    if (hooks_.on_message) hooks_.on_message(channel, text_of(r->element[2]));
  } else if (kind == "subscribe" || kind == "ssubscribe") {
    if (hooks_.on_subscribed) hooks_.on_subscribed(channel);
  } else if (kind == "sunsubscribe") {
    // Also sent unasked when the channel's slot leaves this node (a migration or a failover).
    const std::string name(channel);
    auto at = sharded_at_.find(name);
    if (!sharded_wanted_.contains(name) || at == sharded_at_.end() || at->second != from) return;
    sharded_at_.erase(at);
    refresh_now();
  }
}

}  // namespace otsync::redis
