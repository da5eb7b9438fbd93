#include "websocket_transport.hpp"

#include <deque>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace otsync::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using stream_type = beast::basic_stream<tcp, asio::io_context::executor_type>;

struct websocket_transport::socket_state {
  explicit socket_state(asio::io_context& io) : resolver(io.get_executor()), ws(io.get_executor()) {}
  tcp::resolver resolver;
  websocket::stream<stream_type> ws;
  beast::flat_buffer buffer;
  std::deque<std::string> queue;  ///< the front is being written
  bool open = false;
  bool alive = true;  ///< false once shut down or closed: late handlers do nothing
};

websocket_transport::websocket_transport(asio::io_context& io, ws_url url, std::chrono::seconds keepalive,
                                         transport_callbacks callbacks)
    : io_(io), url_(std::move(url)), keepalive_(keepalive), callbacks_(std::move(callbacks)) {}

websocket_transport::~websocket_transport() {
  shutdown();
}

bool websocket_transport::open() const noexcept {
  return socket_ && socket_->open;
}

void websocket_transport::connect() {
  shutdown();
  auto state = std::make_shared<socket_state>(io_);
  socket_ = state;
  auto lost = [this, state](const std::string& why) {
    if (!state->alive) return;
    state->alive = false;
    state->open = false;
    beast::error_code ignored;
    beast::get_lowest_layer(state->ws).socket().close(ignored);
    if (callbacks_.on_closed) callbacks_.on_closed(why);
  };
  std::string where = url_.host + ":" + url_.port;
  state->resolver.async_resolve(
      url_.name, url_.port, [this, state, lost, where](beast::error_code ec, tcp::resolver::results_type results) {
        if (!state->alive) return;
        if (ec) return lost("resolve " + where + ": " + ec.message());
        beast::get_lowest_layer(state->ws).expires_after(std::chrono::seconds(10));
        beast::get_lowest_layer(state->ws).async_connect(
            results, [this, state, lost, where](beast::error_code ec2, const tcp::endpoint&) {
              if (!state->alive) return;
              if (ec2) return lost("connect " + where + ": " + ec2.message());
              beast::get_lowest_layer(state->ws).expires_never();
              beast::get_lowest_layer(state->ws).socket().set_option(tcp::no_delay(true), ec2);
              websocket::stream_base::timeout timeouts =
                  websocket::stream_base::timeout::suggested(beast::role_type::client);
              if (keepalive_.count() > 0) {
                timeouts.idle_timeout = keepalive_;
                timeouts.keep_alive_pings = true;
              }
              state->ws.set_option(timeouts);
              state->ws.auto_fragment(false);
              state->ws.text(true);
              if (callbacks_.bearer_token) {
                if (auto token = callbacks_.bearer_token(); !token.empty()) {
                  state->ws.set_option(websocket::stream_base::decorator(
                      [header = "Bearer " + token](websocket::request_type& request) {
                        request.set(beast::http::field::authorization, header);
                      }));
                }
              }
              state->ws.async_handshake(where, url_.path, [this, state, lost, where](beast::error_code ec3) {
                if (!state->alive) return;
                if (ec3) return lost("WebSocket upgrade at " + where + url_.path + ": " + ec3.message());
                state->open = true;
                if (callbacks_.on_open) callbacks_.on_open();
                // Read loop: one message at a time into the reused buffer.
                struct reader {
                  websocket_transport* self;
                  std::shared_ptr<socket_state> state;
                  std::function<void(const std::string&)> lost;
                  void operator()(beast::error_code ec4, std::size_t) {
                    if (!state->alive) return;
                    if (ec4 == websocket::error::closed) {
                      // The server closed: its code says why (4001: the token expired).
                      const auto& why = state->ws.reason();
                      return lost("closed by the server: " + std::to_string(why.code) +
                                  (why.reason.empty() ? std::string() : " " + std::string(why.reason.c_str())));
                    }
                    if (ec4) return lost("connection lost: " + ec4.message());
                    auto data = state->buffer.cdata();
                    std::string_view text(static_cast<const char*>(data.data()), data.size());
                    if (self->callbacks_.on_frame) self->callbacks_.on_frame(text);
                    state->buffer.consume(state->buffer.size());
                    if (!state->alive) return;
                    state->ws.async_read(state->buffer, std::move(*this));
                  }
                };
                state->ws.async_read(state->buffer, reader{this, state, lost});
              });
            });
      });
}

void websocket_transport::send(std::string frame) {
  auto state = socket_;
  if (!state || !state->open || !state->alive) return;
  state->queue.push_back(std::move(frame));
  if (state->queue.size() > 1) return;  // a write is under way; it continues with this one
  struct writer {
    std::shared_ptr<socket_state> state;
    void operator()(beast::error_code ec, std::size_t) {
      if (!state->alive) return;
      if (ec) {
        state->queue.clear();  // the read side reports the loss
        return;
      }
      state->queue.pop_front();
      if (state->queue.empty()) return;
      state->ws.async_write(asio::buffer(state->queue.front()), std::move(*this));
    }
  };
  state->ws.async_write(asio::buffer(state->queue.front()), writer{state});
}

void websocket_transport::shutdown() {
  if (!socket_) return;
  auto state = std::move(socket_);
  socket_.reset();
  state->alive = false;
  state->open = false;
  state->resolver.cancel();
  beast::error_code ignored;
  beast::get_lowest_layer(state->ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(state->ws).socket().close(ignored);
}

}  // namespace otsync::client
