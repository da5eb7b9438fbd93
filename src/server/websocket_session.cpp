#include "websocket_session.hpp"

#include <algorithm>
#include <cstdio>
#include <random>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>

#include "otsync/server/log.hpp"

namespace otsync::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

websocket_session::websocket_session(beast::tcp_stream&& stream, server_context& context)
    : ws_(std::move(stream)), context_(context), id_(std::to_string(context.next_connection++)) {}

websocket_session::~websocket_session() {
  if (context_.stats && !queue_.empty()) context_.stats->send_queue_changed(-static_cast<long>(queue_.size()));
  if (!finished_) {
    // Gone without a close (every handler let go): still leave the books straight.
    std::lock_guard lock(context_.sessions_mutex);
    context_.sessions.erase(this);
    if (context_.stats && agent_) context_.stats->connection_closed();
  }
}

void websocket_session::run(beast::http::request<beast::http::string_body> request) {
  // A random 32-hex connection id, as ShareDB's hat() gives; replaced by hs.id when the client has one.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char src[33];
  std::snprintf(src, sizeof src, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  agent_options options;
  options.max_pending_requests = context_.options.max_pending_requests;
  agent_ =
      std::make_unique<agent>(*context_.documents, weak_from_this(), std::string(src, 32), options, context_.stats);

  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "otsyncd"); }));
  ws_.read_message_max(context_.options.max_message_bytes);
  ws_.auto_fragment(false);
  {
    std::lock_guard lock(context_.sessions_mutex);
    context_.sessions.emplace(this, weak_from_this());
  }
  if (context_.stats) context_.stats->connection_opened();
  log::debug("connection_open", {{"conn", id_}, {"src", agent_->src()}});
  ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
    if (ec) {
      log::debug("websocket_accept_failed", {{"conn", self->id_}, {"error", ec.message()}});
      self->finish();
      return;
    }
    if (self->context_.draining) {
      self->close(static_cast<std::uint16_t>(websocket::close_code::going_away), "server shutting down");
      return;
    }
    self->do_read();
  });
}

namespace {
constexpr std::size_t read_chunk = 256;
}  // namespace

void websocket_session::do_read() {
  if (closing_ || reading_) return;
  reading_ = true;
  // Read in pieces of at most `read_chunk` bytes: a whole-message read keeps
  // Beast's default 1.5 KB prepared per idle connection while it waits.
  ws_.async_read_some(buffer_, read_chunk, beast::bind_front_handler(&websocket_session::on_read, shared_from_this()));
}

void websocket_session::on_read(beast::error_code ec, std::size_t) {
  reading_ = false;
  if (ec) {
    if (ec == websocket::error::message_too_big) {
      log::warn("frame_too_large", {{"conn", id_}, {"limit", std::to_string(context_.options.max_message_bytes)}});
      if (context_.stats) context_.stats->on_error_reply("FRAME_TOO_LARGE");
    } else if (ec != websocket::error::closed && ec != asio::error::operation_aborted && ec != asio::error::eof) {
      log::debug("connection_read_error", {{"conn", id_}, {"error", ec.message()}});
    }
    finish();
    return;
  }
  if (!ws_.is_message_done()) {
    // More of this message to come (Beast still enforces --max-message-bytes).
    reading_ = true;
    ws_.async_read_some(buffer_, std::max(read_chunk, buffer_.size()),
                        beast::bind_front_handler(&websocket_session::on_read, shared_from_this()));
    return;
  }
  if (!ws_.got_text()) {
    buffer_.consume(buffer_.size());
    // RFC 6455 1003: a data type this endpoint cannot accept (text frames only).
    close(static_cast<std::uint16_t>(websocket::close_code::unknown_data), "binary frames are not supported");
    return;
  }
  std::string frame = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  if (context_.draining) return;  // shutting down: take no new requests (never acked, so safe to drop)
  agent_->on_frame(frame);
  if (closing_) return;
  if (agent_->can_read()) {
    do_read();
  } else {
    read_paused_ = true;  // resumed by the agent once replies drain
  }
}

void websocket_session::resume_reading() {
  if (!read_paused_ || closing_) return;
  read_paused_ = false;
  do_read();
}

void websocket_session::send(doc::shared_frame frame) {
  enqueue(std::move(frame), false);
}

void websocket_session::send_broadcast(doc::shared_frame frame) {
  enqueue(std::move(frame), true);
}

void websocket_session::enqueue(doc::shared_frame frame, bool broadcast) {
  if (closing_ || finished_) return;
  if ((broadcast && queue_.size() >= context_.options.max_send_queue_messages) ||
      queued_bytes_ + frame->size() > context_.options.max_send_queue_bytes) {
    log::warn("slow_consumer_disconnected", {{"conn", id_},
                                             {"src", agent_->src()},
                                             {"queued", std::to_string(queue_.size())},
                                             {"queued_bytes", std::to_string(queued_bytes_)}});
    if (context_.stats) context_.stats->connection_dropped_slow();
    // Keep only the frame being written; the client resynchronises on reconnect.
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
      if (context_.stats) context_.stats->send_queue_changed(-1);
    }
    close(static_cast<std::uint16_t>(websocket::close_code::try_again_later), "send queue full: client not reading");
    return;
  }
  queued_bytes_ += frame->size();
  queue_.push_back(std::move(frame));
  if (context_.stats) context_.stats->send_queue_changed(1);
  if (!writing_) do_write();
}

void websocket_session::do_write() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(asio::buffer(*queue_.front()),
                  beast::bind_front_handler(&websocket_session::on_write, shared_from_this()));
}

void websocket_session::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  queued_bytes_ -= queue_.front()->size();
  queue_.pop_front();
  if (context_.stats) context_.stats->send_queue_changed(-1);
  if (ec) {
    finish();
    return;
  }
  if (!queue_.empty()) {
    do_write();
  } else if (closing_) {
    do_close();
  }
}

void websocket_session::close(std::uint16_t code, std::string reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = std::move(reason);
  if (!writing_) do_close();
}

void websocket_session::do_close() {
  if (close_sent_ || finished_) return;
  close_sent_ = true;
  websocket::close_reason reason;
  reason.code = close_code_;
  reason.reason = close_reason_.substr(0, 120);
  ws_.async_close(reason, [self = shared_from_this()](beast::error_code) { self->finish(); });
}

void websocket_session::going_away() {
  asio::post(ws_.get_executor(), [self = shared_from_this()] {
    self->close(static_cast<std::uint16_t>(websocket::close_code::going_away), "server shutting down");
  });
}

void websocket_session::post(std::function<void()> fn) {
  asio::post(ws_.get_executor(), [self = shared_from_this(), fn = std::move(fn)] { fn(); });
}

void websocket_session::finish() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  if (agent_) agent_->on_closed();
  {
    std::lock_guard lock(context_.sessions_mutex);
    context_.sessions.erase(this);
  }
  if (context_.stats) context_.stats->connection_closed();
  log::debug("connection_closed", {{"conn", id_}});
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

}  // namespace otsync::server
