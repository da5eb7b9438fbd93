// The only translation unit of otsync-load that includes Beast.
#include "session.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
#include <stdexcept>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "client/tls.hpp"
#include "otsync/client/ws_url.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/server_message.hpp"

namespace otsync::load {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
// The io_context's own executor type: no type-erased any_io_executor on every handler.
using socket_type = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;
using plain_ws = websocket::stream<socket_type>;
using tls_ws = websocket::stream<beast::ssl_stream<socket_type>>;

target resolve_target(const std::string& url, const tls_options& tls) {
  client::ws_url parts;
  try {
    parts = client::parse_ws_url(url);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
  target t;
  t.url = url;
  t.host = parts.host;
  t.name = parts.name;
  t.port = parts.port;
  t.path = parts.path;
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::error_code ec;
  auto results = resolver.resolve(parts.name, t.port, ec);
  if (ec || results.empty()) throw std::runtime_error("cannot resolve " + url + ": " + ec.message());
  auto endpoint = results.begin()->endpoint();
  t.address = endpoint.address().to_string();
  t.port_number = endpoint.port();
  if (parts.tls) {
    t.tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    try {
      client::tls::configure_client_context(t.tls->native_handle(), tls.ca_file, tls.skip_verify);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
  }
  return t;
}

struct session::io {
  io(asio::io_context& context, ssl::context* tls) : timer(context) {
    if (tls != nullptr) {
      secure.emplace(context.get_executor(), *tls);
    } else {
      plain.emplace(context.get_executor());
    }
  }
  /// Runs `f` on the WebSocket stream, whichever it is: one branch per call,
  /// the plain stream's code unchanged.
  template <class F>
  decltype(auto) with_ws(F&& f) {
    if (secure) return std::forward<F>(f)(*secure);
    return std::forward<F>(f)(*plain);
  }
  socket_type& socket() { return secure ? beast::get_lowest_layer(*secure) : beast::get_lowest_layer(*plain); }

  std::optional<plain_ws> plain;  ///< ws://
  std::optional<tls_ws> secure;   ///< wss://
  beast::flat_buffer buffer;
  asio::steady_timer timer;
  std::string writing;             ///< the frame being written
  std::deque<std::string> queued;  ///< frames waiting behind it
  bool write_busy = false;
  std::chrono::steady_clock::time_point next_tick;
};

namespace {

std::uint64_t next_random(std::uint64_t& state) noexcept {  // xorshift64*
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

// Mostly ASCII, with some two-, three- and four-byte code points.
constexpr std::string_view alphabet[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "k", "l", "m", "n",
                                         "o", "p", "r", "s", "t", "u", "w", " ", " ", "é", "ß", "✓", "😀"};

}  // namespace

session::session(asio::io_context& context, session_config config, run_state& run, thread_stats& stats,
                 std::function<void()> on_connected)
    : config_(std::move(config)),
      run_(run),
      stats_(stats),
      on_connected_(std::move(on_connected)),
      io_(std::make_unique<io>(context, config_.server->tls.get())),
      core_(nullptr, events_, {protocol::frame_style::sharedb_npm, this}),
      doc_(core_.open(config_.collection, config_.doc_id,
                      config_.creator ? std::optional<std::string>("") : std::nullopt, outbox_, events_)),
      rng_(config_.seed * 0x9E3779B97F4A7C15ULL + config_.index + 1) {
  if (rng_ == 0) rng_ = 1;
  if (config_.kind == role::checker) {
    doc_.fetch_only = true;
    doc_.on_change = [this](const client::change& c) { checked_.v = c.version; };
  }
}

session::~session() = default;

void session::connect() {
  status_.store(session_status::connecting, std::memory_order_release);
  tcp::endpoint endpoint(asio::ip::make_address(config_.server->address), config_.server->port_number);
  io_->socket().async_connect(endpoint, [this](beast::error_code ec) {
    if (ec) return fail("connect to " + config_.server->url + ": " + ec.message());
    io_->socket().set_option(tcp::no_delay(true), ec);
    if (!io_->secure) return upgrade();
    auto& stream = io_->secure->next_layer();
    if (auto problem = client::tls::prepare_connection(stream.native_handle(), config_.server->name); !problem.empty())
      return fail("TLS with " + config_.server->url + ": " + problem);
    stream.async_handshake(ssl::stream_base::client, [this](beast::error_code ec2) {
      if (ec2)
        return fail(client::tls::handshake_failure(config_.server->url, ec2.message(),
                                                   io_->secure->next_layer().native_handle()));
      upgrade();
    });
  });
}

void session::upgrade() {
  std::string host = config_.server->host + ":" + config_.server->port;
  io_->with_ws([&](auto& ws) {
    ws.auto_fragment(false);
    ws.text(true);
    ws.async_handshake(host, config_.server->path, [this](beast::error_code ec) {
      if (ec) return fail("WebSocket handshake with " + config_.server->url + ": " + ec.message());
      send(core_.on_open());
      // Read loop: one frame at a time, the buffer reused.
      struct reader {
        session* self;
        void operator()(beast::error_code ec2, std::size_t) const {
          auto& x = *self->io_;
          if (ec2) {
            if (self->closing_) return;
            if (self->status() == session_status::ready) {
              stats_of(self).disconnects.fetch_add(1, std::memory_order_relaxed);
              self->status_.store(session_status::disconnected, std::memory_order_release);
              self->settled_.store(true, std::memory_order_release);
              return;
            }
            return self->fail("connection to " + self->config_.server->url + " lost: " + ec2.message());
          }
          auto data = x.buffer.cdata();
          self->on_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
          x.buffer.consume(x.buffer.size());
          if (self->closing_) return;
          x.with_ws([&](auto& stream) { stream.async_read(x.buffer, *this); });
        }
        static thread_stats& stats_of(session* s) { return s->stats_; }
      };
      io_->with_ws([&](auto& stream) { stream.async_read(io_->buffer, reader{this}); });
    });
  });
}

void session::send(std::string&& text) {
  auto& x = *io_;
  if (x.write_busy) {
    x.queued.push_back(std::move(text));
    return;
  }
  x.write_busy = true;
  x.writing = std::move(text);
  struct writer {
    session* self;
    void operator()(beast::error_code ec, std::size_t) const {
      auto& y = *self->io_;
      if (ec) {
        y.write_busy = false;
        return;  // the read side reports the failure
      }
      if (y.queued.empty()) {
        y.write_busy = false;
        return;
      }
      y.writing.swap(y.queued.front());
      y.queued.pop_front();
      y.with_ws([&](auto& ws) { ws.async_write(asio::buffer(y.writing), *this); });
    }
  };
  x.with_ws([&](auto& ws) { ws.async_write(asio::buffer(x.writing), writer{this}); });
}

void session::close() {
  closing_ = true;
  writing_ = false;
  io_->timer.cancel();
  if (status() != session_status::failed && status() != session_status::disconnected)
    status_.store(session_status::closed, std::memory_order_release);
  beast::error_code ec;
  io_->socket().shutdown(tcp::socket::shutdown_both, ec);
  io_->socket().close(ec);
}

void session::fail(std::string why) {
  if (closing_) return;
  closing_ = true;
  failure_ = std::move(why);
  bool was_ready = ready_reported_;
  status_.store(session_status::failed, std::memory_order_release);
  settled_.store(true, std::memory_order_release);
  beast::error_code ec;
  io_->socket().close(ec);
  if (!was_ready) {
    ready_reported_ = true;
    if (on_connected_) on_connected_();
  }
}

void session::mark_ready() {
  if (ready_reported_) return;
  ready_reported_ = true;
  status_.store(session_status::ready, std::memory_order_release);
  if (on_connected_) on_connected_();
}

void session::publish() noexcept {
  const auto* replica = doc_.replica.get();
  bool quiet = !doc_.fetching && !doc_.reloading && doc_.create_seq == 0 && (!replica || replica->synchronised());
  version_.store(replica ? replica->version() : 0, std::memory_order_relaxed);
  settled_.store(quiet, std::memory_order_release);
}

void session::count_error(std::string_view code) {
  std::string key(code.empty() ? std::string_view("ERR_NO_CODE") : code);
  ++stats_.errors[key];
}

void session::on_frame(std::string_view text) {
  core_.on_frame(text, outbox_, events_);
  after_core();
}

void session::after_core() {
  for (auto& frame : outbox_) send(std::move(frame));
  outbox_.clear();
  if (!events_.empty()) {
    for (auto& [notify, c] : events_.changes) notify(c);
    for (const auto& e : events_.errors) {
      if (e.code == "OTSYNC_CLIENT_BAD_FRAME") {
        stats_.parse_failures.fetch_add(1, std::memory_order_relaxed);
        count_error("ERR_LOADGEN_UNPARSABLE_FRAME");
        continue;
      }
      if (e.collection.empty() && !core_.connected()) {
        fail("handshake refused by " + config_.server->url);
        break;
      }
      count_error(e.code);
      if (config_.kind == role::checker) {
        fail("fetch refused: " + e.code);
        break;
      }
      if (!doc_.subscribed && !ready_reported_) {
        fail("subscribe refused: " + e.code);
        break;
      }
    }
    events_.changes.clear();
    events_.errors.clear();
  }
  if (closing_) return;
  if (!ready_reported_) {
    if (config_.kind == role::checker) {
      if (doc_.loaded) {
        checked_.has_type = doc_.replica != nullptr;
        if (doc_.replica) checked_.data = doc_.replica->text().to_string();
        mark_ready();
      }
    } else if (config_.kind == role::writer ? doc_.replica != nullptr : doc_.subscribed) {
      mark_ready();
    }
  }
  if (writing_ && config_.rate == 0) {  // closed loop: the next edit once the last one is acknowledged
    edit();
    for (auto& frame : outbox_) send(std::move(frame));
    outbox_.clear();
  }
  publish();
}

void session::op_sent(const client::doc_entry& /*doc*/, const client::outgoing_op& op) {
  sent_ns_ = now_ns();
  if (run_.get() != phase::connecting)
    run_.sends.record(send_times::key(config_.index, op.seq), sent_ns_, config_.receivers);
}

void session::acknowledged(const client::doc_entry& /*doc*/, std::uint64_t /*seq*/) {
  stats_.acks.fetch_add(1, std::memory_order_relaxed);
  if (run_.get() == phase::measuring) {
    stats_.ack_latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now_ns() - sent_ns_)) / 1000);
    ++stats_.window_acks;
  }
}

void session::remote_applied(const client::doc_entry& /*doc*/, std::string_view src, std::uint64_t seq) {
  phase p = run_.get();
  if (p == phase::connecting) return;
  auto it = run_.writer_index.find(src);
  if (it == run_.writer_index.end()) return;
  auto sent = run_.sends.take(send_times::key(it->second, seq));
  if (!sent || p != phase::measuring) return;
  if (*sent < run_.window_start_ns.load(std::memory_order_relaxed)) return;
  stats_.delivery_latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now_ns() - *sent)) / 1000);
  ++stats_.window_deliveries;
}

void session::edit() {
  const auto* replica = doc_.replica.get();
  if (replica == nullptr || doc_.reloading || !doc_.subscribed) return;
  if (config_.rate == 0 && !replica->synchronised()) return;
  std::uint64_t length = replica->text().size();
  ot::op_builder edit;
  bool erase = length > 0 && (length >= config_.max_doc_chars || next_random(rng_) % 4 == 0);
  if (erase) {
    std::uint64_t pos = next_random(rng_) % length;
    std::uint64_t count = 1 + next_random(rng_) % std::min<std::uint64_t>(8, length - pos);
    edit.skip(pos).erase(count);
  } else {
    std::uint64_t pos = next_random(rng_) % (length + 1);
    std::uint64_t count = 1 + next_random(rng_) % 8;
    std::string text;
    for (std::uint64_t i = 0; i < count; ++i) {
      std::uint64_t r = next_random(rng_) % 100;
      std::size_t pick = r < 92 ? static_cast<std::size_t>(r % 22) : static_cast<std::size_t>(22 + r % 4);
      text.append(alphabet[pick]);
    }
    edit.skip(pos).insert(text, count);
  }
  if (core_.submit(doc_, std::move(edit).finish(), outbox_, events_)) count_error("ERR_LOADGEN_LOCAL_EDIT_FAILED");
}

void session::start_writing() {
  if (config_.kind != role::writer || closing_) return;
  writing_ = true;
  if (config_.rate <= 0) {
    after_core();  // edits if it can
  } else {
    // Each writer at its own phase: writers started together would otherwise send in step, and a
    // fixed load would arrive as bursts.
    const double phase = static_cast<double>(next_random(rng_) >> 11) * 0x1.0p-53;
    io_->next_tick = std::chrono::steady_clock::now() - std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                            std::chrono::duration<double>(phase / config_.rate));
    schedule_tick();
    publish();
  }
}

void session::schedule_tick() {
  double factor = 1.0;
  if (config_.rate_jitter > 0) {
    const double unit = static_cast<double>(next_random(rng_) >> 11) * 0x1.0p-53;  // [0, 1)
    factor = 1.0 + config_.rate_jitter * (2.0 * unit - 1.0);
  }
  auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(factor / config_.rate));
  auto now = std::chrono::steady_clock::now();
  io_->next_tick += period;
  if (io_->next_tick < now - 10 * period) io_->next_tick = now;  // fell far behind: do not burst
  io_->timer.expires_at(io_->next_tick);
  io_->timer.async_wait([this](beast::error_code ec) {
    if (ec || !writing_ || closing_) return;
    edit();
    after_core();
    schedule_tick();
  });
}

void session::stop_writing() {
  writing_ = false;
  io_->timer.cancel();
  publish();
}

}  // namespace otsync::load
