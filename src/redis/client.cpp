#include "client.hpp"

#include <atomic>
#include <charconv>
#include <optional>
#include <thread>
#include <utility>

#include <hiredis/hiredis.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "asio_hiredis.hpp"
#include "cluster_router.hpp"
#include "reconnect_backoff.hpp"

namespace otsync::redis {

namespace asio = boost::asio;

struct client::impl {
  struct script {
    const char* text;
    std::string sha;  // empty until loaded on this connection's server
  };

  impl(client_options opts, const std::vector<const char*>& texts, client_hooks h)
      : options(std::move(opts)),
        hooks(std::move(h)),
        work(asio::make_work_guard(io)),
        conn(io, options.host, options.port, options.connect_timeout, options.command_timeout),
        backoff(io, options.reconnect_min, options.reconnect_max) {
    for (const char* text : texts) scripts.push_back({text, {}});
    conn.on_lost([this] {
      connected = false;
      schedule_reconnect();
    });
    if (hooks.on_message) conn.on_message(hooks.on_message);
    if (hooks.on_subscribed) conn.on_subscribed(hooks.on_subscribed);
    if (!options.cluster_seeds.empty()) {
      auto cluster_hooks = hooks;
      cluster_hooks.on_connected = [this] { on_connected(); };
      cluster = std::make_unique<cluster_router>(io, options, std::move(cluster_hooks));
    }
  }

  void send(const std::vector<std::string>& argv, reply_handler done, std::string route_key = {}) {
    if (cluster) {
      ++commands;
      return cluster->send(argv, std::move(done), std::move(route_key));
    }
    if (!conn.connected()) {
      done(nullptr);
      return;
    }
    ++commands;
    if (options.sentinels.empty()) return conn.command(argv, std::move(done));
    conn.command(argv, [this, done = std::move(done)](const redisReply* r) {
      if (r && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("READONLY")) {
        // A demoted master: nothing was written. Find the new one.
        switch_master();
      }
      done(r);
    });
  }

  // Sentinel mode: drop the connection and ask the sentinels again (now, not after a backoff).
  void switch_master() {
    ++master_switches;
    if (stopping || connecting) return;  // a connection being made asks the sentinels anyway
    if (conn.connected()) conn.disconnect();
    connected = false;
    backoff.cancel();
    backoff.reset();
    connecting = true;
    asio::post(io, [this] { start_connect(); });
  }

  void send_script(script& lua, std::vector<std::string> argv, reply_handler done) {
    if (lua.sha.empty()) {
      argv[0] = "EVAL";
      argv[1] = lua.text;
      return send(argv, std::move(done));
    }
    argv[0] = "EVALSHA";
    argv[1] = lua.sha;
    // Kept (not copied: it may hold a whole snapshot) for the NOSCRIPT retry.
    auto kept = std::make_shared<std::vector<std::string>>(std::move(argv));
    send(*kept, [this, &lua, kept, done = std::move(done)](const redisReply* r) mutable {
      if (r && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
        // The server's script cache was flushed (or this is another server, or another cluster node):
        // send the text this once; EVAL caches it there, and the SHA is the same everywhere.
        (*kept)[0] = "EVAL";
        (*kept)[1] = lua.text;
        return send(*kept, std::move(done));
      }
      done(r);
    });
  }

  void load_scripts() {
    for (auto& lua : scripts) {
      lua.sha.clear();
      send({"SCRIPT", "LOAD", lua.text}, [&lua](const redisReply* r) {
        if (r && r->type == REDIS_REPLY_STRING) lua.sha.assign(r->str, r->len);
      });
    }
  }

  void start_connect() {
    connecting = true;
    if (stopping) return;
    if (cluster) return cluster->start();
    if (!options.sentinels.empty()) {
      watch_switches();
      return ask_sentinel(0);
    }
    connect_to_server();
  }

  // Sentinel mode: SENTINEL get-master-addr-by-name on each sentinel in turn until one answers.
  void ask_sentinel(std::size_t index) {
    if (stopping) return;
    if (index >= options.sentinels.size()) return schedule_reconnect();
    const auto& [host, port] = options.sentinels[index];
    probe = std::make_unique<connection>(io, host, port, options.connect_timeout, options.command_timeout);
    probe->connect([this, index, asked = probe.get()](bool ok) {
      if (probe.get() != asked) return;
      if (!ok) return asio::post(io, [this, index] { ask_sentinel(index + 1); });
      probe->command({"SENTINEL", "get-master-addr-by-name", options.master_name},
                     [this, index, asked](const redisReply* r) {
                       if (probe.get() != asked) return;
                       auto master = master_address(r);
                       probe->disconnect();
                       if (!master) return asio::post(io, [this, index] { ask_sentinel(index + 1); });
                       if (master->first != conn.host() || master->second != conn.port()) {
                         if (connects > 0) ++master_switches;
                         conn.set_address(master->first, master->second);
                       }
                       connect_to_server();
                     });
    });
  }

  static std::optional<endpoint> master_address(const redisReply* r) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return std::nullopt;
    const auto* host = r->element[0];
    const auto* port = r->element[1];
    if (host->type != REDIS_REPLY_STRING || port->type != REDIS_REPLY_STRING || host->len == 0) return std::nullopt;
    unsigned n = 0;
    auto [end, ec] = std::from_chars(port->str, port->str + port->len, n);
    if (ec != std::errc{} || end != port->str + port->len || n == 0 || n > 65535) return std::nullopt;
    return endpoint{std::string(host->str, host->len), static_cast<std::uint16_t>(n)};
  }

  // Sentinel mode: one connection subscribed to +switch-master on a sentinel, kept up while running.
  void watch_switches() {
    if (stopping || (watch && watch->connected()) || watching) return;
    watching = true;
    const auto& [host, port] = options.sentinels[watch_index++ % options.sentinels.size()];
    watch = std::make_unique<connection>(io, host, port, options.connect_timeout, options.command_timeout);
    watch->on_message([this](std::string_view, std::string_view payload) {
      // "<name> <old-ip> <old-port> <new-ip> <new-port>"
      if (payload.substr(0, payload.find(' ')) == options.master_name) switch_master();
    });
    watch->on_lost([this] { rewatch_later(); });
    watch->connect([this, watching_now = watch.get()](bool ok) {
      if (watch.get() != watching_now) return;
      watching = false;
      if (!ok) return rewatch_later();
      watch->subscribe("+switch-master");
    });
  }

  void rewatch_later() {
    watching = false;
    if (stopping) return;
    auto timer = std::make_shared<asio::steady_timer>(io, options.reconnect_max);
    timer->async_wait([this, timer](boost::system::error_code ec) {
      if (!ec) watch_switches();
    });
  }

  void connect_to_server() {
    conn.connect([this](bool ok) {
      if (!ok) return schedule_reconnect();
      if (options.sentinels.empty()) return select_db();
      // The address a sentinel gave may be stale (a failover in progress): only a master will do.
      conn.command({"ROLE"}, [this](const redisReply* r) {
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->element[0]->type != REDIS_REPLY_STRING ||
            std::string_view(r->element[0]->str, r->element[0]->len) != "master") {
          conn.disconnect();
          return schedule_reconnect();
        }
        select_db();
      });
    });
  }

  void select_db() {
    if (options.db == 0) return until_loaded();
    conn.command({"SELECT", std::to_string(options.db)}, [this](const redisReply* r) {
      if (!r || r->type == REDIS_REPLY_ERROR) {
        conn.disconnect();
        return schedule_reconnect();
      }
      until_loaded();
    });
  }

  // A Redis that has just started accepts connections while it replays its AOF, and answers every
  // command with -LOADING until done: not connected (so not ready) until a PING answers.
  void until_loaded() {
    conn.command({"PING"}, [this](const redisReply* r) {
      if (!r || r->type == REDIS_REPLY_ERROR) {
        conn.disconnect();
        return schedule_reconnect();
      }
      on_connected();
    });
  }

  void on_connected() {
    connecting = false;
    ++connects;
    backoff.reset();
    connected = !cluster;  // cluster mode: the router's state
    load_scripts();
    if (hooks.on_connected) hooks.on_connected();
  }

  void schedule_reconnect() {
    connected = false;
    connecting = false;
    if (stopping) return;
    backoff.schedule([this] { start_connect(); });
  }

  void drain_then_stop(std::chrono::steady_clock::time_point deadline) {
    const std::size_t pending = cluster ? cluster->pending() : conn.pending();
    if (pending > 0 && std::chrono::steady_clock::now() < deadline) {
      auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(5));
      timer->async_wait([this, timer, deadline](boost::system::error_code) { drain_then_stop(deadline); });
      return;
    }
    conn.disconnect();
    if (probe) probe->disconnect();
    if (watch) watch->disconnect();
    if (cluster) cluster->stop();
    connected = false;
    work.reset();
    io.stop();
  }

  client_options options;
  client_hooks hooks;
  std::vector<script> scripts;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  connection conn;
  reconnect_backoff backoff;
  std::thread thread;
  std::atomic<bool> connected{false};
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> commands{0};
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> master_switches{0};
  // Sentinel mode.
  std::unique_ptr<connection> probe;  ///< asking a sentinel for the master
  std::unique_ptr<connection> watch;  ///< subscribed to +switch-master
  std::size_t watch_index = 0;
  bool watching = false;    ///< a watch connection is being made
  bool connecting = false;  ///< between start_connect and connected or the next backoff
  // Cluster mode (last: it uses io). Destroyed on the owner's thread after the io thread ended.
  std::unique_ptr<cluster_router> cluster;
};

client::client(client_options options, std::vector<const char*> scripts, client_hooks hooks)
    : impl_(std::make_unique<impl>(std::move(options), scripts, std::move(hooks))) {}

client::~client() {
  stop({});
}

void client::start() {
  auto& s = *impl_;
  if (s.thread.joinable() || s.stopping) return;
  s.thread = std::thread([&s] { s.io.run(); });
  asio::post(s.io, [&s] { s.start_connect(); });
}

void client::stop(std::chrono::milliseconds drain) {
  auto& s = *impl_;
  if (s.stopping.exchange(true)) return;
  if (!s.thread.joinable()) return;  // never started
  const auto deadline = std::chrono::steady_clock::now() + drain;
  asio::post(s.io, [&s, deadline] {
    s.backoff.cancel();
    s.drain_then_stop(deadline);
  });
  if (std::this_thread::get_id() == s.thread.get_id()) {
    s.thread.detach();
  } else {
    s.thread.join();
  }
}

void client::post(std::function<void()> fn) {
  asio::post(impl_->io, std::move(fn));
}

void client::post_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(impl_->io, delay);
  timer->async_wait([timer, fn = std::move(fn), &s = *impl_](boost::system::error_code ec) {
    if (!ec && !s.stopping) fn();
  });
}

void client::send(const std::vector<std::string>& argv, reply_handler done, std::string route_key) {
  impl_->send(argv, std::move(done), std::move(route_key));
}

void client::send_script(script_id script, std::vector<std::string> argv, reply_handler done) {
  impl_->send_script(impl_->scripts.at(script), std::move(argv), std::move(done));
}

void client::subscribe(const std::string& channel) {
  if (impl_->cluster) return impl_->cluster->subscribe(channel, false);
  impl_->conn.subscribe(channel);
}

void client::unsubscribe(const std::string& channel) {
  if (impl_->cluster) return impl_->cluster->unsubscribe(channel, false);
  impl_->conn.unsubscribe(channel);
}

void client::subscribe_sharded(const std::string& channel) {
  if (impl_->cluster) return impl_->cluster->subscribe(channel, true);
  impl_->conn.subscribe(channel);
}

void client::unsubscribe_sharded(const std::string& channel) {
  if (impl_->cluster) return impl_->cluster->unsubscribe(channel, true);
  impl_->conn.unsubscribe(channel);
}

bool client::cluster() const noexcept {
  return static_cast<bool>(impl_->cluster);
}

bool client::connected() const noexcept {
  return impl_->cluster ? impl_->cluster->connected() : impl_->connected.load();
}
std::uint64_t client::connects() const noexcept {
  return impl_->connects;
}
std::uint64_t client::commands() const noexcept {
  return impl_->commands;
}
std::uint64_t client::timeouts() const noexcept {
  return impl_->cluster ? impl_->cluster->timeouts() : impl_->conn.timeouts();
}
std::uint64_t client::master_switches() const noexcept {
  return impl_->cluster ? impl_->cluster->map_changes() : impl_->master_switches.load();
}
std::string client::problem() const {
  return impl_->cluster ? impl_->cluster->problem() : std::string();
}

std::uint64_t client::redirects() const noexcept {
  return impl_->cluster ? impl_->cluster->redirects() : 0;
}

}  // namespace otsync::redis
