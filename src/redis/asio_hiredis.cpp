#include "asio_hiredis.hpp"

#include <csignal>
#include <mutex>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace otsync::redis {
namespace asio = boost::asio;

// The hooks hiredis calls to ask for readiness notifications.
struct connection::adapter {
  adapter(asio::io_context& io, redisAsyncContext* c) : ctx(c), socket(io, c->c.fd) {}
  redisAsyncContext* ctx;
  asio::posix::stream_descriptor socket;
  bool want_read = false;
  bool want_write = false;
  bool read_armed = false;
  bool write_armed = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  void arm_read() {
    if (read_armed || !want_read) return;
    read_armed = true;
    socket.async_wait(asio::posix::stream_descriptor::wait_read, [this, alive = alive](boost::system::error_code ec) {
      if (!*alive) return;
      read_armed = false;
      if (ec || !want_read) return;
      redisAsyncHandleRead(ctx);  // may free the context, and this adapter with it
      if (*alive) arm_read();
    });
  }
  void arm_write() {
    if (write_armed || !want_write) return;
    write_armed = true;
    socket.async_wait(asio::posix::stream_descriptor::wait_write, [this, alive = alive](boost::system::error_code ec) {
      if (!*alive) return;
      write_armed = false;
      if (ec || !want_write) return;
      redisAsyncHandleWrite(ctx);
      if (*alive) arm_write();
    });
  }

  static void add_read(void* p) {
    auto* a = static_cast<adapter*>(p);
    a->want_read = true;
    a->arm_read();
  }
  static void del_read(void* p) { static_cast<adapter*>(p)->want_read = false; }
  static void add_write(void* p) {
    auto* a = static_cast<adapter*>(p);
    a->want_write = true;
    a->arm_write();
  }
  static void del_write(void* p) { static_cast<adapter*>(p)->want_write = false; }
  static void cleanup(void* p) {
    auto* a = static_cast<adapter*>(p);
    *a->alive = false;
    boost::system::error_code ignored;
    a->socket.cancel(ignored);
    (void)a->socket.release();  // hiredis closes the descriptor itself
    delete a;
  }
};

// A command in flight: its handler and its timeout.
struct connection::pending_command {
  pending_command(asio::io_context& io, connection* c, reply_handler h) : owner(c), done(std::move(h)), timer(io) {}
  connection* owner;
  reply_handler done;
  asio::steady_timer timer;
  bool finished = false;
};

// The name lookup for a connect: Asio's resolver, whose getaddrinfo runs on a thread of its own
// (one per io_context, shared by its lookups), so that a DNS server that does not answer holds neither
// this io_context (timers, commands on other connections) nor the connect timeout.
struct connection::name_lookup {
  explicit name_lookup(asio::io_context& io) : resolver(io) {}
  asio::ip::tcp::resolver resolver;
};

connection::connection(asio::io_context& io, std::string host, std::uint16_t port,
                       std::chrono::milliseconds connect_timeout, std::chrono::milliseconds command_timeout)
    : io_(io),
      host_(std::move(host)),
      port_(port),
      connect_timeout_(connect_timeout),
      command_timeout_(command_timeout) {}

connection::~connection() {
  on_lost_ = nullptr;
  disconnect();
  *alive_ = false;
}

void connection::connect(std::function<void(bool)> done) {
  closing_ = false;
  connect_done_ = std::move(done);
  const auto attempt = ++connect_attempt_;
  // hiredis 0.14 has no connect timeout for async contexts: run our own, over the lookup as well.
  auto timer = std::make_shared<asio::steady_timer>(io_, connect_timeout_);
  timer->async_wait([this, alive = alive_, timer, attempt](boost::system::error_code ec) {
    if (ec || !*alive || connected_ || attempt != connect_attempt_ || !connect_done_) return;
    if (lookup_) lookup_->resolver.cancel();
    if (auto* c = ctx_) {
      ctx_ = nullptr;
      redisAsyncFree(c);
    }
    auto fn = std::move(connect_done_);
    connect_done_ = nullptr;
    fn(false);
  });
  boost::system::error_code numeric;
  asio::ip::make_address(host_, numeric);
  if (!numeric) return start_connect(host_);
  if (!lookup_) lookup_ = std::make_unique<name_lookup>(io_);
  lookup(false, attempt);
}

// IPv4 addresses first, then IPv6 if the name has none, as hiredis 0.14's own lookup does (and so no
// wait for an AAAA answer when there is an A one).
void connection::lookup(bool ipv6, std::uint64_t attempt) {
  lookup_->resolver.async_resolve(
      ipv6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), host_, std::to_string(port_),
      [this, alive = alive_, attempt, ipv6](boost::system::error_code ec,
                                            const asio::ip::tcp::resolver::results_type& results) {
        // A cancelled lookup (timeout, disconnect) finds connect_done_ gone or a newer attempt.
        if (!*alive || attempt != connect_attempt_ || !connect_done_) return;
        if (ec || results.empty()) {
          if (!ipv6) return lookup(true, attempt);
          return fail_connect();
        }
        start_connect(results.begin()->endpoint().address().to_string());
      });
}

void connection::fail_connect() {
  auto fn = std::move(connect_done_);
  connect_done_ = nullptr;
  if (fn) asio::post(io_, [fn = std::move(fn)] { fn(false); });
}

namespace {

// hiredis writes with write(), not send(MSG_NOSIGNAL): a write to a Redis that just crashed raises
// SIGPIPE, whose default action ends the process (seen in CI: the store's crash test died of it).
// The write's EPIPE is what the connection handles. Only the default action is replaced: a handler
// the program installed itself stays.
void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      sigemptyset(&ignore.sa_mask);
      sigaction(SIGPIPE, &ignore, nullptr);
    }
  });
}

}  // namespace

void connection::start_connect(const std::string& address) {
  ignore_sigpipe_once();
  ctx_ = redisAsyncConnect(address.c_str(), port_);
  if (!ctx_ || ctx_->err) {
    if (ctx_) redisAsyncFree(ctx_);
    ctx_ = nullptr;
    return fail_connect();
  }
  ctx_->data = this;
  auto* a = new adapter(io_, ctx_);
  ctx_->ev.data = a;
  ctx_->ev.addRead = &adapter::add_read;
  ctx_->ev.delRead = &adapter::del_read;
  ctx_->ev.addWrite = &adapter::add_write;
  ctx_->ev.delWrite = &adapter::del_write;
  ctx_->ev.cleanup = &adapter::cleanup;
  redisAsyncSetConnectCallback(ctx_, &connection::on_connect);
  redisAsyncSetDisconnectCallback(ctx_, &connection::on_disconnect);
}

void connection::on_connect(const redisAsyncContext* ctx, int status) {
  auto* self = static_cast<connection*>(ctx->data);
  if (!self) return;
  auto fn = std::move(self->connect_done_);
  self->connect_done_ = nullptr;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback.
    self->ctx_ = nullptr;
    if (fn) fn(false);
    return;
  }
  self->connected_ = true;
  if (fn) fn(true);
}

void connection::on_disconnect(const redisAsyncContext* ctx, int) {
  auto* self = static_cast<connection*>(ctx->data);
  if (!self) return;
  self->ctx_ = nullptr;
  self->connection_gone();
}

void connection::connection_gone() {
  bool was_connected = connected_;
  connected_ = false;
  if (was_connected && !closing_ && on_lost_) {
    // Later, not inside hiredis' teardown.
    asio::post(io_, [this, alive = alive_] {
      if (*alive && on_lost_) on_lost_();
    });
  }
}

void connection::command(const std::vector<std::string>& argv, reply_handler done) {
  if (!ctx_ || !connected_) {
    asio::post(io_, [done = std::move(done)] { done(nullptr); });
    return;
  }
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  args.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto p = std::make_shared<pending_command>(io_, this, std::move(done));
  // hiredis holds one reference (privdata) until it calls on_reply.
  auto* holder = new std::shared_ptr<pending_command>(p);
  if (redisAsyncCommandArgv(ctx_, &connection::on_reply, holder, static_cast<int>(args.size()), args.data(),
                            lengths.data()) != REDIS_OK) {
    delete holder;
    asio::post(io_, [fn = std::move(p->done)] { fn(nullptr); });
    return;
  }
  ++pending_;
  p->timer.expires_after(command_timeout_);
  p->timer.async_wait([p, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || p->finished) return;
    // No reply in time: fail it now and drop the connection, since the
    // replies after it would no longer line up with their commands.
    p->finished = true;
    auto* self = p->owner;
    ++self->timeouts_;
    if (self->timeouts_total_) ++*self->timeouts_total_;
    auto fn = std::move(p->done);
    fn(nullptr);
    if (self->ctx_) redisAsyncFree(self->ctx_);
  });
}

void connection::on_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<std::shared_ptr<pending_command>> holder(static_cast<std::shared_ptr<pending_command>*>(privdata));
  auto& p = *holder;
  --p->owner->pending_;
  p->timer.cancel();
  if (p->finished) return;
  p->finished = true;
  auto fn = std::move(p->done);
  const auto* r = static_cast<const redisReply*>(reply);
  fn(r);  // null: the connection is going
}

void connection::subscribe(const std::string& channel) {
  if (!ctx_ || !connected_) return;
  const char* argv[] = {"SUBSCRIBE", channel.data()};
  std::size_t lengths[] = {9, channel.size()};
  // hiredis keeps this callback for the channel's messages; `this` outlives the context.
  redisAsyncCommandArgv(ctx_, &connection::on_subscription_reply, this, 2, argv, lengths);
}

void connection::unsubscribe(const std::string& channel) {
  if (!ctx_ || !connected_) return;
  const char* argv[] = {"UNSUBSCRIBE", channel.data()};
  std::size_t lengths[] = {11, channel.size()};
  redisAsyncCommandArgv(ctx_, &connection::on_subscription_reply, this, 2, argv, lengths);
}

void connection::on_subscription_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* self = static_cast<connection*>(privdata);
  const auto* r = static_cast<const redisReply*>(reply);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;  // null: the connection is going
  auto text = [](const redisReply* e) -> std::string_view {
    if (!e || e->type != REDIS_REPLY_STRING) return {};
    return {e->str, e->len};
  };
  auto kind = text(r->element[0]);
  if (kind == "message") {
    if (self->on_message_) self->on_message_(text(r->element[1]), text(r->element[2]));
  } else if (kind == "subscribe") {
    if (self->on_subscribed_) self->on_subscribed_(text(r->element[1]));
  }
}

void connection::disconnect() {
  closing_ = true;
  connect_done_ = nullptr;
  if (lookup_) lookup_->resolver.cancel();
  if (ctx_) {
    // Immediately: pending commands get a null reply (unavailable).
    auto* ctx = ctx_;
    ctx_ = nullptr;
    redisAsyncFree(ctx);
  }
  connected_ = false;
}

}  // namespace otsync::redis
