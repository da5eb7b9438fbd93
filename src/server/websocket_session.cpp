#include "websocket_session.hpp"

#include <array>
#include <cstdio>
#include <random>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "otsync/server/log.hpp"
#include "tls.hpp"

namespace otsync::server {
namespace asio = boost::asio;

namespace {

// Reads go into one buffer per thread: an idle connection holds none.
std::span<char> read_buffer() {
  static thread_local std::vector<char> buffer(64 * 1024);
  return buffer;
}

// At most this many full buffers per wake-up, so one busy client cannot hold the thread.
constexpr int max_reads_per_wakeup = 4;

// A TLS connection reads through its own buffer (a read stays pending on it): small, as OpenSSL
// keeps the rest of a record for the next read.
constexpr std::size_t tls_read_bytes = 4096;

// A write batch's frames are copied into one buffer, to go out as few TLS records (Asio's stream
// would write one record, and one send, per buffer); kept between writes up to this size.
constexpr std::size_t tls_kept_write_bytes = 16 * 1024;

}  // namespace

namespace {
// When a connection's token stops being accepted: `exp` plus the clock-skew allowance the upgrade
// was granted under (else a token let in by the allowance would be closed at once).
std::optional<std::chrono::system_clock::time_point> token_end(const caller& who, std::chrono::seconds skew) {
  if (!who.expires_at) return std::nullopt;
  if (*who.expires_at > std::chrono::system_clock::time_point::max() - skew) return who.expires_at;
  return *who.expires_at + skew;
}
}  // namespace

websocket_session::websocket_session(connection_socket&& socket, server_context& context, std::string_view early,
                                     std::string address, caller who)
    : socket_(std::move(socket)),
      context_(context),
      id_(std::to_string(context.next_connection++)),
      address_(std::move(address)),
      who_(std::move(who)),
      closes_at_(token_end(who_, std::chrono::seconds(context.options.jwt_clock_skew_s))),
      decoder_(context.options.max_message_bytes),
      held_input_(early) {}

websocket_session::websocket_session(std::unique_ptr<tls_link> tls, server_context& context, std::string_view early,
                                     std::string address, caller who)
    : websocket_session(connection_socket(tls->stream.get_executor()), context, early, std::move(address),
                        std::move(who)) {
  tls_ = std::move(tls);
}

websocket_session::~websocket_session() {
  if (context_.stats && reported_frames_ != 0) context_.stats->send_queue_changed(-static_cast<long>(reported_frames_));
  if (accounted_partial_ != 0) context_.partial_bytes.fetch_sub(accounted_partial_, std::memory_order_relaxed);
  context_.release_connection(address_);
  if (!finished_) {
    // Gone without a close (every handler let go): still leave the books straight.
    std::lock_guard lock(context_.sessions_mutex);
    context_.sessions.erase(this);
    if (context_.stats && agent_) context_.stats->connection_closed();
  }
}

std::int64_t websocket_session::now_ticks() noexcept {
  return std::chrono::steady_clock::now().time_since_epoch().count();
}

void websocket_session::run() {
  const auto& settings = context_.options;
  agent_options options;
  options.identity = context_.identity;
  options.access = &who_.access;
  options.author = who_.subject;
  options.max_pending_requests = settings.max_pending_requests;
  options.message = settings.message_limits;
  options.max_subscriptions = settings.max_subscriptions;
  options.request_rate = settings.max_request_rate;
  options.request_burst = 2 * settings.max_request_rate;
  options.create_rate = settings.max_create_rate;
  options.create_burst = 10 * settings.max_create_rate;
  options.presence = context_.presence;
  options.max_presence_bytes = settings.max_presence_bytes;
  options.max_presences = settings.max_presences;
  options.max_kept_presences = settings.max_kept_presences;
  options.max_presence_channels = settings.max_presence_channels;
  options.presence_rate = settings.max_presence_rate;
  options.max_server_presence_channels = settings.max_server_presence_channels;
  // A server-minted id (ShareDB's is 32 random hex digits): replaced by hs.id only when the client proves it holds one.
  agent_ = std::make_unique<agent>(*context_.service, weak_from_this(), context_.identity->mint_id(), options,
                                   context_.stats);
  {
    std::lock_guard lock(context_.sessions_mutex);
    context_.sessions.emplace(this, weak_from_this());
  }
  if (context_.stats) context_.stats->connection_opened();
  log::debug("connection_open", {{"conn", id_}, {"src", agent_->src_alias()}, {"sub", who_.subject}});
  last_read_.store(now_ticks(), std::memory_order_relaxed);
  boost::system::error_code ec;
  if (!tls_) socket_.non_blocking(true, ec);  // reads happen on readiness, never blocking the thread
  read_paused_ = true;                        // hands the upgrade's extra bytes (if any) to the decoder first
  if (context_.draining) {
    close(ws::close_code::going_away, "server shutting down");  // reads on, for the close handshake
    return;
  }
  resume_reading();
}

void websocket_session::do_read() {
  if (reading_ || read_paused_ || peer_closed_ || finished_) return;
  reading_ = true;
  if (tls_) {
    if (tls_->read_buffer.empty()) tls_->read_buffer.resize(tls_read_bytes);
    tls_->stream.async_read_some(
        asio::buffer(tls_->read_buffer),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) { self->on_tls_read(ec, n); });
    return;
  }
  socket_.async_wait(asio::socket_base::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); });
}

void websocket_session::linger() {
  // A failed connection whose client is still sending (a frame too large, a stalled message): a
  // close with unread input would reset the connection, and the client's TCP could drop our close
  // frame with it. So our side is shut down, what the client still sends is read and discarded,
  // and the socket closes at its end of stream, or after `linger_time` at most.
  if (agent_) agent_->on_closed();  // its subscriptions and presence go now
  lingering_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  post_after(linger_time, [self = shared_from_this()] { self->finish(); });
  if (!reading_) {
    reading_ = true;
    socket_.async_wait(asio::socket_base::wait_read,
                       [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); });
  }
}

void websocket_session::on_readable(boost::system::error_code ec) {
  reading_ = false;
  if (finished_) return;
  if (lingering_) {
    auto buffer = read_buffer();
    for (int i = 0; i < max_reads_per_wakeup && !ec; ++i) {
      std::size_t n = socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        break;
      }
      if (n == 0 && !ec) ec = asio::error::eof;
    }
    if (ec) {
      finish();  // end of stream (or an error): nothing left to lose
      return;
    }
    reading_ = true;
    socket_.async_wait(asio::socket_base::wait_read,
                       [self = shared_from_this()](boost::system::error_code e) { self->on_readable(e); });
    return;
  }
  if (ec) {
    if (ec != asio::error::operation_aborted)
      log::debug("connection_read_error", {{"conn", id_}, {"error", ec.message()}});
    finish();
    return;
  }
  auto buffer = read_buffer();
  for (int i = 0; i < max_reads_per_wakeup; ++i) {
    std::size_t n = socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) {
      if (ec != asio::error::eof && ec != asio::error::connection_reset) {
        log::debug("connection_read_error", {{"conn", id_}, {"error", ec.message()}});
      }
      finish();
      return;
    }
    last_read_.store(now_ticks(), std::memory_order_relaxed);
    pinged_.store(false, std::memory_order_relaxed);
    if (!process(buffer.first(n))) return;
    if (!account_partial()) return;
    if (n < buffer.size()) break;
  }
  do_read();
}

void websocket_session::on_tls_read(boost::system::error_code ec, std::size_t bytes) {
  reading_ = false;
  if (finished_) return;
  if (ec) {
    if (ec != asio::error::operation_aborted && ec != asio::error::eof && ec != asio::error::connection_reset &&
        ec != asio::ssl::error::stream_truncated) {
      log::debug("connection_read_error", {{"conn", id_}, {"error", ec.message()}});
    }
    finish();
    return;
  }
  last_read_.store(now_ticks(), std::memory_order_relaxed);
  pinged_.store(false, std::memory_order_relaxed);
  if (!process(std::span<char>(tls_->read_buffer.data(), bytes))) return;
  if (!account_partial()) return;
  do_read();
}

bool websocket_session::process(std::span<char> bytes) {
  using event = ws::frame_decoder::event;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    auto [used, kind] = decoder_.decode(bytes.subspan(pos));
    pos += used;
    switch (kind) {
      case event::need_more:
        break;
      case event::message:
        if (closing_) break;  // our close is out: the rest is discarded
        if (context_.draining) {
          // Shutting down: take no new requests (never acked, so safe to drop); read again only
          // for the close handshake.
          held_input_.assign(bytes.data() + pos, bytes.size() - pos);
          read_paused_ = true;
          return false;
        }
        agent_->on_frame(decoder_.payload());
        if (!closing_ && (!agent_->can_read() || replies_backlogged())) {
          held_input_.assign(bytes.data() + pos, bytes.size() - pos);  // resumed by the agent once replies drain
          read_paused_ = true;
          return false;
        }
        break;
      case event::ping:
        // Counted as a broadcast: pongs are (nearly) empty, so only the frame limit stops a
        // client that pings without reading from queueing without bound.
        if (!closing_) enqueue(std::make_shared<const std::string>(decoder_.payload()), ws::opcode::pong, true);
        break;
      case event::pong:
        break;
      case event::close:
        on_peer_close(decoder_.close_status());
        return false;
      case event::error:
        if (decoder_.error_code() == ws::close_code::too_big) {
          log::warn("frame_too_large", {{"conn", id_}, {"limit", std::to_string(context_.options.max_message_bytes)}});
          if (context_.stats) context_.stats->on_error_reply("FRAME_TOO_LARGE");
        } else {
          log::debug("websocket_protocol_error", {{"conn", id_}, {"error", std::string(decoder_.error_reason())}});
        }
        fail_connection(decoder_.error_code(), decoder_.error_reason());
        return false;
    }
  }
  if (!read_paused_) decoder_.release_memory();
  return true;
}

void websocket_session::fail_connection(std::uint16_t code, std::string_view reason) {
  // Failing the connection (RFC 6455 7.1.7): the close goes out, then the socket closes.
  drop_after_close_ = true;
  peer_closed_ = true;
  if (!closing_) {
    drop_queued();
    queue_close(code, reason);
  } else if (close_sent_) {
    finish();
  }
}

void websocket_session::abandon_input(std::uint16_t code, std::string_view reason) {
  decoder_.abandon();
  account_partial();  // gives back this connection's share; no message is in progress any more
  fail_connection(code, reason);
}

bool websocket_session::account_partial() {
  std::size_t held = decoder_.buffered_bytes();
  if (held != accounted_partial_) {
    if (held > accounted_partial_) {
      std::size_t added = held - accounted_partial_;
      std::size_t total = context_.partial_bytes.fetch_add(added, std::memory_order_relaxed) + added;
      accounted_partial_ = held;
      if (total > context_.options.max_partial_bytes) {
        log::warn("partial_bytes_exceeded", {{"conn", id_},
                                             {"held", std::to_string(held)},
                                             {"limit", std::to_string(context_.options.max_partial_bytes)}});
        if (context_.stats) context_.stats->limit_hit("partial_bytes");
        abandon_input(ws::close_code::try_again_later, "server busy: too many partly received messages");
        return false;
      }
    } else {
      context_.partial_bytes.fetch_sub(accounted_partial_ - held, std::memory_order_relaxed);
      accounted_partial_ = held;
    }
  }
  if (!decoder_.mid_message()) {
    message_started_.store(0, std::memory_order_relaxed);
  } else if (message_started_.load(std::memory_order_relaxed) == 0) {
    message_started_.store(now_ticks(), std::memory_order_relaxed);
  }
  return true;
}

void websocket_session::on_peer_close(std::uint16_t code) {
  peer_closed_ = true;
  if (!closing_) {
    // Echo the code (frames still queued are dropped: the client is gone), then close the socket.
    drop_queued();
    drop_after_close_ = true;
    queue_close(code, {});
  } else if (close_sent_) {
    finish();  // the close handshake is complete
  }
}

void websocket_session::drop_queued() {
  auto dropped = queue_.clear();
  queued_bytes_ -= dropped.bytes;
  queued_frames_ -= dropped.frames;
  queued_reply_bytes_ -= dropped.reply_bytes;
  queued_reply_frames_ -= dropped.reply_frames;
  report_queue();
}

// The gauge counts frames waiting behind a write in progress: a frame written at once is never
// counted (no shared counter touched per frame on the fast path).
void websocket_session::report_queue() {
  if (!context_.stats || queued_frames_ == reported_frames_) return;
  context_.stats->send_queue_changed(static_cast<long>(queued_frames_) - static_cast<long>(reported_frames_));
  reported_frames_ = queued_frames_;
}

void websocket_session::resume_reading() {
  if (!read_paused_ || finished_) return;
  if (!closing_ && replies_backlogged()) return;  // on_write resumes once they drain
  read_paused_ = false;
  if (!held_input_.empty()) {
    std::string input = std::move(held_input_);
    held_input_.clear();
    if (!process(input) || !account_partial()) return;
  }
  do_read();
}

void websocket_session::send(doc::shared_frame frame) {
  enqueue(std::move(frame), ws::opcode::text, false);
}

void websocket_session::send_broadcast(doc::shared_frame frame) {
  enqueue(std::move(frame), ws::opcode::text, true);
}

void websocket_session::show_presence(std::shared_ptr<const shown_presence> shown) {
  if (agent_) {
    agent_->show_presence(std::move(shown));
  } else {
    connection_io::show_presence(std::move(shown));
  }
}

void websocket_session::enqueue(doc::shared_frame frame, ws::opcode op, bool broadcast) {
  if (closing_ || finished_) return;
  // Replies to the client's own requests are always queued, however large (a
  // snapshot of a big document, a long catch-up): they are paced instead, by
  // reading no more requests while they are backlogged. A slow consumer is one
  // whose other frames (broadcasts, pongs) pile up past the limits.
  const bool reply = !broadcast && op == ws::opcode::text;
  if (!reply && ((broadcast && queued_frames_ - queued_reply_frames_ >= context_.options.max_send_queue_messages) ||
                 queued_bytes_ - queued_reply_bytes_ + frame->size() > context_.options.max_send_queue_bytes)) {
    log::warn("slow_consumer_disconnected", {{"conn", id_},
                                             {"src", agent_->src_alias()},  // never the id: it is a secret
                                             {"queued", std::to_string(queued_frames_)},
                                             {"queued_bytes", std::to_string(queued_bytes_)}});
    if (context_.stats) context_.stats->connection_dropped_slow();
    // Keep only the frames being written; the client resynchronises on reconnect.
    drop_queued();
    close(ws::close_code::try_again_later, "send queue full: client not reading");
    return;
  }
  queued_bytes_ += frame->size();
  ++queued_frames_;
  if (reply) {
    queued_reply_bytes_ += frame->size();
    ++queued_reply_frames_;
  }
  queue_.push_back({std::move(frame), op, reply});
  if (writing_) return report_queue();        // on_write sends it
  if (broadcast && op == ws::opcode::text) {  // pongs are never held
    // On a busy server, a connection receiving a stream of broadcasts gets them in groups, at most
    // one write of broadcasts per hold: one syscall for several frames. The first after a pause goes
    // at once.
    if (write_held_) {
      if (!held_backlog_full()) return;
      write_held_ = false;  // a full write's worth, or half a queue limit: no reason to wait longer
      return schedule_write();
    }
    const auto hold = context_.broadcast_hold.load(std::memory_order_relaxed);
    if (hold > 0 && last_broadcast_write_ != 0) {
      const auto now = now_ticks();
      if (now - last_broadcast_write_ < hold) return hold_write(last_broadcast_write_ + hold);
    }
  }
  schedule_write();
}

void websocket_session::hold_write(std::int64_t until) {
  if (!hold_timer_) hold_timer_ = std::make_unique<hold_timer>(socket_.get_executor());
  write_held_ = true;
  const auto hold = ++hold_generation_;
  hold_timer_->expires_at(std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(until)));
  hold_timer_->async_wait([self = shared_from_this(), hold](boost::system::error_code ec) {
    // Cancelled, closed, written meanwhile, or an earlier hold's wait that had already fired.
    if (ec || self->finished_ || !self->write_held_ || hold != self->hold_generation_) return;
    self->write_held_ = false;
    if (self->context_.stats && !self->writing_ && !self->queue_.empty()) self->context_.stats->write_held();
    self->do_write();
  });
}

void websocket_session::close(std::uint16_t code, std::string reason) {
  if (closing_ || finished_) return;
  queue_close(code, reason);
}

void websocket_session::queue_close(std::uint16_t code, std::string_view reason) {
  closing_ = true;
  closing_since_.store(now_ticks(), std::memory_order_relaxed);
  // Code 0: the client's close had none, so neither has the echo.
  queue_.push_back(
      {std::make_shared<const std::string>(code ? ws::close_payload(code, reason) : std::string()), ws::opcode::close});
  ++queued_frames_;
  if (writing_) return report_queue();
  schedule_write();
  // Keep reading for the client's close (requests that arrive meanwhile are discarded).
  if (read_paused_ && !peer_closed_) resume_reading();
}

void websocket_session::schedule_write() {
  if (write_scheduled_) return;
  write_scheduled_ = true;
  // After the handlers already queued on this executor (the other broadcasts of
  // a document's batch, say): what they queue goes out in the same write.
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->write_scheduled_ = false;
    self->do_write();
  });
}

// Broadcasts queued while a write was in flight wait out the hold as well: else a connection
// receiving a stream writes again as soon as each write completes, as often as with no hold.
bool websocket_session::hold_after_write() {
  if (closing_ || queue_.urgent() != 0 || held_backlog_full()) return false;
  const auto hold = context_.broadcast_hold.load(std::memory_order_relaxed);
  if (hold <= 0 || last_broadcast_write_ == 0 || now_ticks() - last_broadcast_write_ >= hold) return false;
  hold_write(last_broadcast_write_ + hold);
  return true;
}

bool websocket_session::held_backlog_full() const noexcept {
  // Held frames count toward the slow-consumer limits: a connection that reads promptly is never
  // taken for one because of a hold.
  const auto& o = context_.options;
  const std::size_t frames = queued_frames_ - queued_reply_frames_;
  const std::size_t bytes = queued_bytes_ - queued_reply_bytes_;
  return queue_.size() >= write_batch::max_frames || bytes >= write_batch::max_bytes ||
         frames >= o.max_send_queue_messages / 2 || bytes >= o.max_send_queue_bytes / 2;
}

void websocket_session::do_write() {
  if (writing_ || queue_.empty() || finished_) return;
  if (write_held_) {
    write_held_ = false;                     // what was held goes now (a reply came, say)
    if (hold_timer_) hold_timer_->cancel();  // no wake-up for it, and no early end of a later hold
  }
  writing_ = acquire_write_batch();
  while (!queue_.empty() && writing_->fits(queue_.front())) {
    writing_->add(std::move(queue_.front()));
    queue_.pop_front();
  }
  // Only broadcasts start a hold: a client's own replies say nothing about a stream of others' ops.
  if (writing_->frames() > writing_->reply_frames()) last_broadcast_write_ = now_ticks();
  if (context_.stats) context_.stats->frames_written(writing_->frames());
  if (tls_) {
    auto& out = tls_->write_buffer;
    out.clear();
    for (const auto& b : writing_->buffers()) out.append(static_cast<const char*>(b.data()), b.size());
    asio::async_write(tls_->stream, asio::buffer(out),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_write(ec); });
    return;
  }
  asio::async_write(socket_, writing_->buffers(),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_write(ec); });
}

void websocket_session::on_write(boost::system::error_code ec) {
  auto batch = std::move(writing_);
  const bool was_backlogged = replies_backlogged();
  queued_frames_ -= batch->frames();
  queued_bytes_ -= batch->bytes();
  queued_reply_frames_ -= batch->reply_frames();
  queued_reply_bytes_ -= batch->reply_bytes();
  report_queue();
  bool wrote_close = batch->has_close();
  batch.reset();
  if (finished_) return;
  if (ec) {
    finish();
    return;
  }
  if (wrote_close) {
    close_sent_ = true;
    // The handshake is complete (or abandoned): the server closes the TCP connection first.
    if (drop_after_close_ && !tls_) {
      linger();
    } else if (peer_closed_ || drop_after_close_) {
      finish();
    }
    return;
  }
  if (queue_.empty()) {
    queue_.release();
    if (tls_ && tls_->write_buffer.capacity() > tls_kept_write_bytes) std::string().swap(tls_->write_buffer);
  } else if (!hold_after_write()) {
    do_write();
  }
  if (was_backlogged && !replies_backlogged() && agent_ && agent_->can_read()) resume_reading();
}

void websocket_session::going_away() {
  asio::post(socket_.get_executor(),
             [self = shared_from_this()] { self->close(ws::close_code::going_away, "server shutting down"); });
}

void websocket_session::cut_off() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->finish(); });
}

websocket_session::timeout_action websocket_session::timeout_due(
    std::chrono::steady_clock::time_point now) const noexcept {
  using duration = std::chrono::steady_clock::duration;
  auto ticks = now.time_since_epoch().count();
  auto closing = closing_since_.load(std::memory_order_relaxed);
  auto silent = ticks - last_read_.load(std::memory_order_relaxed);
  const auto idle = std::chrono::duration_cast<duration>(context_.options.ws_idle_timeout).count();
  if ((closing != 0 && ticks - closing > duration(close_timeout).count()) || silent > idle) {
    return timeout_action::drop;
  }
  auto started = message_started_.load(std::memory_order_relaxed);
  if (closing == 0 && started != 0 &&
      ticks - started > std::chrono::duration_cast<duration>(context_.options.message_timeout).count()) {
    return timeout_action::message_timeout;
  }
  if (silent > idle / 2 && !pinged_.load(std::memory_order_relaxed)) {
    return timeout_action::ping;
  }
  return timeout_action::none;
}

void websocket_session::check_timeouts(std::chrono::steady_clock::time_point now) {
  if (closes_at_) {
    const auto wall = std::chrono::system_clock::now();
    if (wall >= *closes_at_ && !expiry_noted_.exchange(true)) {
      // The token ran out: the agent answers what is in flight, then closes (4001).
      asio::post(socket_.get_executor(), [self = shared_from_this()] {
        if (self->finished_ || !self->agent_) return;
        log::debug("token_expired", {{"conn", self->id_}});
        self->agent_->expire();
      });
    } else if (wall >= *closes_at_ + expiry_grace && !expiry_forced_.exchange(true)) {
      // Work queued before the expiry may not hold the connection open for long.
      asio::post(socket_.get_executor(), [self = shared_from_this()] {
        if (self->finished_) return;
        self->close(token_expired_close_code, "token expired");
      });
    }
  }
  if (timeout_due(now) == timeout_action::none) return;
  asio::post(socket_.get_executor(), [self = shared_from_this(), now] {
    if (self->finished_) return;
    switch (self->timeout_due(now)) {
      case timeout_action::drop:
        log::debug("connection_timed_out", {{"conn", self->id_}});
        self->finish();
        break;
      case timeout_action::ping:
        // Half the idle time without a byte: a ping, whose pong keeps a live client connected.
        self->pinged_.store(true, std::memory_order_relaxed);
        self->enqueue(std::make_shared<const std::string>(), ws::opcode::ping, false);
        break;
      case timeout_action::message_timeout:
        if (self->read_paused_) {
          // Our own back-pressure holds the rest of the message back: not the client's delay.
          self->message_started_.store(now_ticks(), std::memory_order_relaxed);
          break;
        }
        // A message begun and never finished (slowloris on frames) holds its buffer: fail it.
        log::debug("message_timed_out", {{"conn", self->id_}});
        if (self->context_.stats) self->context_.stats->limit_hit("message_timeout");
        self->abandon_input(ws::close_code::policy_violation, "message not completed in time");
        break;
      case timeout_action::none:
        break;
    }
  });
}

void websocket_session::post(std::function<void()> fn) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), fn = std::move(fn)] { fn(); });
}

void websocket_session::post_broadcast(std::shared_ptr<broadcast_receiver> to, doc::shared_broadcast op) {
  // A plain post (no std::function around it); the session is held too: the receiver belongs to its
  // agent.
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), to = std::move(to), op = std::move(op)] { to->receive(op); });
}

void websocket_session::post_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  // Rare (presence past its rate, or waiting for its ops): a timer of its own, holding the session
  // only weakly.
  auto timer = std::make_shared<asio::steady_timer>(socket_.get_executor(), delay);
  timer->async_wait([timer, weak = weak_from_this(), fn = std::move(fn)](boost::system::error_code) {
    if (auto self = weak.lock(); self && !self->finished_) fn();
  });
}

void websocket_session::finish() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  if (hold_timer_) hold_timer_->cancel();  // its handler holds the session
  if (agent_) agent_->on_closed();
  {
    std::lock_guard lock(context_.sessions_mutex);
    context_.sessions.erase(this);
  }
  if (context_.stats) context_.stats->connection_closed();
  log::debug("connection_closed", {{"conn", id_}});
  boost::system::error_code ignored;
  if (tls_ && peer_closed_ && close_sent_ && !reading_ && !writing_) {
    // A completed close handshake over TLS: close_notify too (a client's TLS layer reports a
    // truncated stream otherwise, and may hide the close code), bounded like the handshake.
    auto& tcp = tls_->stream.next_layer();
    tcp.expires_after(close_timeout);
    tls_->stream.async_shutdown([self = shared_from_this()](boost::system::error_code) {
      boost::system::error_code ignored_too;
      self->tls_->stream.next_layer().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored_too);
      self->tls_->stream.next_layer().socket().close(ignored_too);
    });
    return;
  }
  // Closing cancels the pending wait or write; their handlers release this session.
  auto& tcp = tls_ ? tls_->stream.next_layer().socket() : socket_;
  tcp.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  tcp.close(ignored);
}

}  // namespace otsync::server
