// The only translation unit of otsync-load that includes Beast.
#include "session.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <stdexcept>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "otsync/client/ws_url.hpp"
#include "otsync/ot/text_unicode.hpp"

namespace otsync::load {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
// The io_context's own executor type: no type-erased any_io_executor on every handler.
using socket_type = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

target resolve_target(const std::string& url) {
  client::ws_url parts;
  try {
    parts = client::parse_ws_url(url);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
  target t;
  t.url = url;
  t.host = parts.host;
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
  return t;
}

struct session::io {
  explicit io(asio::io_context& context) : ws(context.get_executor()), timer(context) {}
  websocket::stream<socket_type> ws;
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
      io_(std::make_unique<io>(context)),
      rng_(config_.seed * 0x9E3779B97F4A7C15ULL + config_.index + 1) {
  if (rng_ == 0) rng_ = 1;
}

session::~session() = default;

void session::connect() {
  status_.store(session_status::connecting, std::memory_order_release);
  tcp::endpoint endpoint(asio::ip::make_address(config_.server->address), config_.server->port_number);
  beast::get_lowest_layer(io_->ws).async_connect(endpoint, [this](beast::error_code ec) {
    if (ec) return fail("connect to " + config_.server->url + ": " + ec.message());
    beast::get_lowest_layer(io_->ws).set_option(tcp::no_delay(true), ec);
    io_->ws.auto_fragment(false);
    io_->ws.text(true);
    std::string host = config_.server->host + ":" + config_.server->port;
    io_->ws.async_handshake(host, config_.server->path, [this](beast::error_code ec2) {
      if (ec2) return fail("WebSocket handshake with " + config_.server->url + ": " + ec2.message());
      send(handshake_frame());
      // Read loop: one frame at a time, the buffer reused.
      struct reader {
        session* self;
        void operator()(beast::error_code ec3, std::size_t) const {
          auto& x = *self->io_;
          if (ec3) {
            if (self->closing_) return;
            if (self->status() == session_status::ready) {
              stats_of(self).disconnects.fetch_add(1, std::memory_order_relaxed);
              self->status_.store(session_status::disconnected, std::memory_order_release);
              self->settled_.store(true, std::memory_order_release);
              return;
            }
            return self->fail("connection to " + self->config_.server->url + " lost: " + ec3.message());
          }
          auto data = x.buffer.cdata();
          self->on_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
          x.buffer.consume(x.buffer.size());
          if (self->closing_) return;
          x.ws.async_read(x.buffer, *this);
        }
        static thread_stats& stats_of(session* s) { return s->stats_; }
      };
      io_->ws.async_read(io_->buffer, reader{this});
    });
  });
}

void session::send(std::string_view text) {
  auto& x = *io_;
  if (x.write_busy) {
    x.queued.emplace_back(text);
    return;
  }
  x.write_busy = true;
  x.writing.assign(text);
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
      y.ws.async_write(asio::buffer(y.writing), *this);
    }
  };
  x.ws.async_write(asio::buffer(x.writing), writer{this});
}

void session::close() {
  closing_ = true;
  writing_ = false;
  io_->timer.cancel();
  if (status() != session_status::failed && status() != session_status::disconnected)
    status_.store(session_status::closed, std::memory_order_release);
  beast::error_code ec;
  beast::get_lowest_layer(io_->ws).shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(io_->ws).close(ec);
}

void session::fail(std::string why) {
  if (closing_) return;
  closing_ = true;
  failure_ = std::move(why);
  bool was_ready = ready_reported_;
  status_.store(session_status::failed, std::memory_order_release);
  settled_.store(true, std::memory_order_release);
  beast::error_code ec;
  beast::get_lowest_layer(io_->ws).close(ec);
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
  bool quiet = !fetching_ && !reloading_ && create_seq_ == 0 && (!replica_ || replica_->synchronised());
  version_.store(replica_ ? replica_->version() : 0, std::memory_order_relaxed);
  settled_.store(quiet, std::memory_order_release);
}

void session::count_error(std::string_view code) {
  std::string key(code.empty() ? std::string_view("ERR_NO_CODE") : code);
  ++stats_.errors[key];
}

void session::on_frame(std::string_view text) {
  if (!parse_frame(text, frame_)) {
    stats_.parse_failures.fetch_add(1, std::memory_order_relaxed);
    count_error("ERR_LOADGEN_UNPARSABLE_FRAME");
    return;
  }
  switch (frame_.a) {
    case action::init:
      if (src_.empty()) send(handshake_frame());  // as sharedb's client: answer the legacy greeting
      break;
    case action::hs:
      if (!src_.empty()) break;  // the reply to the second hs
      if (frame_.has_error || frame_.id.empty()) return fail("handshake refused by " + config_.server->url);
      src_ = frame_.id;
      build_doc_request(out_, config_.kind == role::checker ? "f" : "s", config_.collection, config_.doc_id,
                        std::nullopt);
      send(out_);
      break;
    case action::s:
    case action::f:
      if (frame_.c == config_.collection && frame_.d == config_.doc_id) on_doc_reply(frame_);
      break;
    case action::op:
      if (frame_.c == config_.collection && frame_.d == config_.doc_id) on_op(frame_);
      break;
    case action::other:
      break;
  }
  publish();
}

void session::on_doc_reply(frame& f) {
  if (f.has_error) {
    count_error(f.error_code);
    if (!subscribed_ && config_.kind != role::checker && f.a == action::s)
      return fail("subscribe refused: " + f.error_code);
    if (config_.kind == role::checker) return fail("fetch refused: " + f.error_code);
    fetching_ = reloading_ = false;
    return;
  }
  if (f.data_raw.empty()) {  // the end of a versioned fetch
    fetching_ = false;
    return;
  }
  snapshot snap;
  if (!parse_snapshot(f.data_raw, snap)) {
    count_error("ERR_LOADGEN_BAD_SNAPSHOT");
    return fail("unreadable snapshot from " + config_.server->url);
  }
  if (config_.kind == role::checker) {
    checked_ = std::move(snap);
    return mark_ready();
  }
  if (f.a == action::s) subscribed_ = true;
  if (f.a == action::f) reloading_ = false;
  if (snap.has_type) {
    adopt_snapshot(snap);
  } else if (config_.creator && !replica_ && create_seq_ == 0) {
    create_seq_ = next_seq_++;
    build_create(out_, config_.collection, config_.doc_id, create_seq_);
    send(out_);
  }
  if (config_.kind != role::writer || replica_) mark_ready();
}

void session::adopt_snapshot(const snapshot& snap) {
  if (replica_ && replica_->version() > snap.v && !reloading_) return;
  replica_ = std::make_unique<client::ot_client>(src_, snap.v, snap.data);
  if (writing_ && config_.rate == 0) edit_and_flush();
}

void session::on_op_error(const frame& f) {
  if (create_seq_ != 0 && f.seq == create_seq_) {
    create_seq_ = 0;
    // Another writer created it first: its create reaches us as an op (or, if missed, a reload does).
    if (f.error_code != "ERR_DOC_ALREADY_CREATED") count_error(f.error_code);
    if (!replica_) reload();
    return;
  }
  count_error(f.error_code);
  // As sharedb's client: an error while an op is in flight rolls it back; we reload the snapshot.
  if (replica_ && replica_->has_inflight()) reload();
}

void session::on_op(frame& f) {
  if (f.has_error) return on_op_error(f);
  bool has_body = f.has_op || f.has_create || f.has_del;
  if (!f.v) return;
  if (!has_body) {  // an ack
    if (f.src != src_ || !f.seq) return;
    if (create_seq_ != 0 && *f.seq == create_seq_) {
      create_seq_ = 0;
      if (!replica_) replica_ = std::make_unique<client::ot_client>(src_, *f.v + 1, "");
      if (config_.kind == role::writer) mark_ready();
      if (writing_ && config_.rate == 0) edit_and_flush();
      return;
    }
    if (!replica_ || !replica_->has_inflight() || *f.seq != inflight_seq_) return;
    if (replica_->acknowledge(*f.v)) {
      // The ack is ahead of us: ops are missing; the op is acknowledged when it shows up in the stream.
      fetch_from_version();
      return;
    }
    return on_ack();
  }
  if (reloading_) return;  // the snapshot on its way supersedes it
  if (f.has_create) {
    if (!replica_) {
      std::string data;
      if (!parse_create_data(f.create_raw, data)) {
        count_error("ERR_LOADGEN_BAD_CREATE");
        reload();
        return;
      }
      replica_ = std::make_unique<client::ot_client>(src_, *f.v + 1, data);
      if (config_.kind == role::writer) mark_ready();
      if (writing_ && config_.rate == 0) edit_and_flush();
    }
    return;
  }
  if (!replica_) {
    reload();
    return;
  }
  oplog::op_record record;
  record.src = f.src;
  record.seq = f.seq.value_or(0);
  record.version = *f.v;
  if (f.has_del) {
    record.body = oplog::delete_body{};
  } else {
    record.body = std::move(f.op);
  }
  auto result = replica_->receive(record);
  if (!result) {
    count_error("ERR_LOADGEN_REMOTE_OP_FAILED");
    reload();
    return;
  }
  switch (*result) {
    case client::receive_result::applied: {
      phase p = run_.get();
      if (p == phase::connecting) break;
      auto it = run_.writer_index.find(std::string_view(f.src));
      if (it == run_.writer_index.end()) break;
      auto sent = run_.sends.take(send_times::key(it->second, record.seq));
      if (!sent || p != phase::measuring) break;
      if (*sent < run_.window_start_ns.load(std::memory_order_relaxed)) break;
      stats_.delivery_latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now_ns() - *sent)) / 1000);
      ++stats_.window_deliveries;
      break;
    }
    case client::receive_result::acknowledged:
      on_ack();
      break;
    case client::receive_result::duplicate:
      break;
    case client::receive_result::gap:
      fetch_from_version();
      break;
  }
}

void session::on_ack() {
  std::int64_t now = now_ns();
  stats_.acks.fetch_add(1, std::memory_order_relaxed);
  if (run_.get() == phase::measuring) {
    stats_.ack_latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - sent_ns_)) / 1000);
    ++stats_.window_acks;
  }
  if (writing_ && config_.rate == 0)
    edit_and_flush();
  else
    flush();
}

void session::edit_and_flush() {
  if (!replica_ || reloading_) return;
  if (replica_->has_inflight() && config_.rate == 0) return;
  std::uint64_t length = replica_->text().size();
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
  if (auto ec = replica_->submit(std::move(edit).finish())) {
    count_error("ERR_LOADGEN_LOCAL_EDIT_FAILED");
    return;
  }
  flush();
}

void session::flush() {
  if (!replica_ || reloading_) return;
  auto out = replica_->flush(next_seq_);
  if (!out) return;
  inflight_seq_ = out->seq;
  build_submit(out_, config_.collection, config_.doc_id, out->version, out->seq, out->resend ? &out->src : nullptr,
               out->op);
  sent_ns_ = now_ns();
  if (run_.get() != phase::connecting)
    run_.sends.record(send_times::key(config_.index, out->seq), sent_ns_, config_.receivers);
  send(out_);
}

void session::fetch_from_version() {
  if (fetching_ || reloading_ || !replica_) return;
  fetching_ = true;
  build_doc_request(out_, "f", config_.collection, config_.doc_id, replica_->version());
  send(out_);
}

void session::reload() {
  if (reloading_) return;
  reloading_ = true;
  fetching_ = false;
  build_doc_request(out_, "f", config_.collection, config_.doc_id, std::nullopt);
  send(out_);
}

void session::start_writing() {
  if (config_.kind != role::writer || closing_) return;
  writing_ = true;
  if (config_.rate <= 0) {
    edit_and_flush();
  } else {
    io_->next_tick = std::chrono::steady_clock::now();
    schedule_tick();
  }
  publish();
}

void session::schedule_tick() {
  auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(1.0 / config_.rate));
  auto now = std::chrono::steady_clock::now();
  io_->next_tick += period;
  if (io_->next_tick < now - 10 * period) io_->next_tick = now;  // fell far behind: do not burst
  io_->timer.expires_at(io_->next_tick);
  io_->timer.async_wait([this](beast::error_code ec) {
    if (ec || !writing_) return;
    edit_and_flush();
    publish();
    schedule_tick();
  });
}

void session::stop_writing() {
  writing_ = false;
  io_->timer.cancel();
  flush();
  publish();
}

}  // namespace otsync::load
