#include "client.hpp"

#include <atomic>
#include <thread>
#include <utility>

#include <hiredis/hiredis.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "asio_hiredis.hpp"
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
  }

  void send(const std::vector<std::string>& argv, reply_handler done) {
    if (!conn.connected()) {
      done(nullptr);
      return;
    }
    ++commands;
    conn.command(argv, std::move(done));
  }

  void send_script(script& lua, std::vector<std::string> argv, reply_handler done) {
    if (lua.sha.empty()) {
      argv[0] = "EVAL";
      argv[1] = lua.text;
      return send(argv, std::move(done));
    }
    argv[0] = "EVALSHA";
    argv[1] = lua.sha;
    send(argv, [this, &lua, argv, done = std::move(done)](const redisReply* r) mutable {
      if (r && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
        // The server's script cache was flushed (or this is another server): send the text again.
        lua.sha.clear();
        return send_script(lua, std::move(argv), std::move(done));
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
    if (stopping) return;
    conn.connect([this](bool ok) {
      if (!ok) return schedule_reconnect();
      if (options.db == 0) return on_connected();
      conn.command({"SELECT", std::to_string(options.db)}, [this](const redisReply* r) {
        if (!r || r->type == REDIS_REPLY_ERROR) {
          conn.disconnect();
          return schedule_reconnect();
        }
        on_connected();
      });
    });
  }

  void on_connected() {
    ++connects;
    backoff.reset();
    connected = true;
    load_scripts();
    if (hooks.on_connected) hooks.on_connected();
  }

  void schedule_reconnect() {
    connected = false;
    if (stopping) return;
    backoff.schedule([this] { start_connect(); });
  }

  void drain_then_stop(std::chrono::steady_clock::time_point deadline) {
    if (conn.pending() > 0 && std::chrono::steady_clock::now() < deadline) {
      auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(5));
      timer->async_wait([this, timer, deadline](boost::system::error_code) { drain_then_stop(deadline); });
      return;
    }
    conn.disconnect();
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

void client::send(const std::vector<std::string>& argv, reply_handler done) {
  impl_->send(argv, std::move(done));
}

void client::send_script(script_id script, std::vector<std::string> argv, reply_handler done) {
  impl_->send_script(impl_->scripts.at(script), std::move(argv), std::move(done));
}

void client::subscribe(const std::string& channel) {
  impl_->conn.subscribe(channel);
}

void client::unsubscribe(const std::string& channel) {
  impl_->conn.unsubscribe(channel);
}

bool client::connected() const noexcept {
  return impl_->connected;
}
std::uint64_t client::connects() const noexcept {
  return impl_->connects;
}
std::uint64_t client::commands() const noexcept {
  return impl_->commands;
}
std::uint64_t client::timeouts() const noexcept {
  return impl_->conn.timeouts();
}

}  // namespace otsync::redis
