#include "websocket_transport.hpp"

#include <deque>
#include <type_traits>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "tls.hpp"

namespace otsync::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using stream_type = beast::basic_stream<tcp, asio::io_context::executor_type>;
using plain_ws = websocket::stream<stream_type>;
using tls_ws = websocket::stream<beast::ssl_stream<stream_type>>;

struct websocket_transport::tls_state {
  ssl::context context{ssl::context::tls_client};
};

struct websocket_transport::socket_state {
  explicit socket_state(asio::io_context& io) : resolver(io.get_executor()) {}
  virtual ~socket_state() = default;
  socket_state(const socket_state&) = delete;
  socket_state& operator=(const socket_state&) = delete;
  /// Queues a frame and starts writing when no write is under way.
  virtual void send(std::string frame) = 0;
  /// Closes the TCP socket (TLS included: nothing is owed to a peer we leave).
  virtual void close_socket() = 0;

  tcp::resolver resolver;
  std::deque<std::string> queue;  ///< the front is being written
  bool open = false;
  bool alive = true;  ///< false once shut down or closed: late handlers do nothing
};

template <class Ws>
struct websocket_transport::stream_state final : socket_state, std::enable_shared_from_this<stream_state<Ws>> {
  template <class... Args>
  explicit stream_state(asio::io_context& io, Args&&... args) : socket_state(io), ws(std::forward<Args>(args)...) {}

  void send(std::string frame) override {
    queue.push_back(std::move(frame));
    if (queue.size() > 1) return;  // a write is under way; it continues with this one
    struct writer {
      std::shared_ptr<stream_state> state;
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
    ws.async_write(asio::buffer(queue.front()), writer{this->shared_from_this()});
  }

  void close_socket() override {
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws).socket().close(ignored);
  }

  Ws ws;
  beast::flat_buffer buffer;
};

websocket_transport::websocket_transport(asio::io_context& io, ws_url url, std::chrono::seconds keepalive,
                                         transport_callbacks callbacks, const transport_tls& settings)
    : io_(io),
      url_(std::move(url)),
      where_(url_.host + ":" + url_.port),
      keepalive_(keepalive),
      callbacks_(std::move(callbacks)) {
  if (!url_.tls) return;
  tls_ = std::make_unique<tls_state>();
  tls::configure_client_context(tls_->context.native_handle(), settings.ca_file, settings.skip_verify);
}

websocket_transport::~websocket_transport() {
  shutdown();
}

bool websocket_transport::open() const noexcept {
  return socket_ && socket_->open;
}

void websocket_transport::connect() {
  shutdown();
  if (tls_) {
    start(std::make_shared<stream_state<tls_ws>>(io_, io_.get_executor(), tls_->context));
  } else {
    start(std::make_shared<stream_state<plain_ws>>(io_, io_.get_executor()));
  }
}

void websocket_transport::lose(socket_state& state, const std::string& why) {
  if (!state.alive) return;
  state.alive = false;
  state.open = false;
  state.close_socket();
  if (callbacks_.on_closed) callbacks_.on_closed(why);
}

template <class Ws>
void websocket_transport::start(std::shared_ptr<stream_state<Ws>> state) {
  socket_ = state;
  state->resolver.async_resolve(
      url_.name, url_.port, [this, state](beast::error_code ec, tcp::resolver::results_type results) {
        if (!state->alive) return;
        if (ec) return lose(*state, "resolve " + where_ + ": " + ec.message());
        // One deadline for TCP and TLS; the WebSocket upgrade has its own (the stream's timeouts).
        beast::get_lowest_layer(state->ws).expires_after(std::chrono::seconds(10));
        beast::get_lowest_layer(state->ws).async_connect(
            results, [this, state](beast::error_code ec2, const tcp::endpoint&) {
              if (!state->alive) return;
              if (ec2) return lose(*state, "connect " + where_ + ": " + ec2.message());
              beast::get_lowest_layer(state->ws).socket().set_option(tcp::no_delay(true), ec2);
              if constexpr (std::is_same_v<Ws, tls_ws>) {
                auto& stream = state->ws.next_layer();
                if (auto problem = tls::prepare_connection(stream.native_handle(), url_.name); !problem.empty())
                  return lose(*state, "TLS with " + where_ + ": " + problem);
                stream.async_handshake(ssl::stream_base::client, [this, state](beast::error_code ec3) {
                  if (!state->alive) return;
                  if (ec3)
                    return lose(*state,
                                tls::handshake_failure(where_, ec3.message(), state->ws.next_layer().native_handle()));
                  upgrade(state);
                });
              } else {
                upgrade(state);
              }
            });
      });
}

template <class Ws>
void websocket_transport::upgrade(std::shared_ptr<stream_state<Ws>> state) {
  beast::get_lowest_layer(state->ws).expires_never();
  websocket::stream_base::timeout timeouts = websocket::stream_base::timeout::suggested(beast::role_type::client);
  if (keepalive_.count() > 0) {
    timeouts.idle_timeout = keepalive_;
    timeouts.keep_alive_pings = true;
  }
  state->ws.set_option(timeouts);
  state->ws.auto_fragment(false);
  state->ws.text(true);
  if (callbacks_.bearer_token) {
    if (auto token = callbacks_.bearer_token(); !token.empty()) {
      state->ws.set_option(
          websocket::stream_base::decorator([header = "Bearer " + token](websocket::request_type& request) {
            request.set(beast::http::field::authorization, header);
          }));
    }
  }
  state->ws.async_handshake(where_, url_.path, [this, state](beast::error_code ec) {
    if (!state->alive) return;
    if (ec) return lose(*state, "WebSocket upgrade at " + where_ + url_.path + ": " + ec.message());
    state->open = true;
    if (callbacks_.on_open) callbacks_.on_open();
    // Read loop: one message at a time into the reused buffer.
    struct reader {
      websocket_transport* self;
      std::shared_ptr<stream_state<Ws>> state;
      void operator()(beast::error_code ec2, std::size_t) {
        if (!state->alive) return;
        if (ec2 == websocket::error::closed) {
          // The server closed: its code says why (4001: the token expired).
          const auto& why = state->ws.reason();
          return self->lose(*state, "closed by the server: " + std::to_string(why.code) +
                                        (why.reason.empty() ? std::string() : " " + std::string(why.reason.c_str())));
        }
        if (ec2) return self->lose(*state, "connection lost: " + ec2.message());
        auto data = state->buffer.cdata();
        std::string_view text(static_cast<const char*>(data.data()), data.size());
        if (self->callbacks_.on_frame) self->callbacks_.on_frame(text);
        state->buffer.consume(state->buffer.size());
        if (!state->alive) return;
        state->ws.async_read(state->buffer, std::move(*this));
      }
    };
    state->ws.async_read(state->buffer, reader{this, state});
  });
}

void websocket_transport::send(std::string frame) {
  auto state = socket_;
  if (!state || !state->open || !state->alive) return;
  state->send(std::move(frame));
}

void websocket_transport::shutdown() {
  if (!socket_) return;
  auto state = std::move(socket_);
  socket_.reset();
  state->alive = false;
  state->open = false;
  state->resolver.cancel();
  state->close_socket();
}

}  // namespace otsync::client
