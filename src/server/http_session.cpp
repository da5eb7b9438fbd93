#include "http_session.hpp"

#include <chrono>
#include <optional>
#include <type_traits>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "authenticate.hpp"
#include "http_routes.hpp"
#include "http_target.hpp"
#include "otsync/server/log.hpp"
#include "tls.hpp"
#include "websocket_session.hpp"
#include "ws_handshake.hpp"

namespace otsync::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
constexpr std::chrono::seconds request_timeout{30};

// A refused upgrade: a JSON error, and the connection closes after it.
http_response closing_error(unsigned version, http::status status, std::string_view code, std::string_view message) {
  http_response res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}
using plain_stream = beast::basic_stream<asio::ip::tcp, connection_executor>;

// One connection; `Stream` is plain_stream or tls_stream.
template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

 public:
  http_session(connection_socket&& socket, server_context& context) requires(!is_tls)
      : stream_(std::move(socket)), context_(context) {}
  http_session(connection_socket&& socket, server_context& context,
               std::shared_ptr<asio::ssl::context> tls) requires is_tls
      : tls_context_(std::move(tls)),
        stream_(plain_stream(std::move(socket)), *tls_context_),
        context_(context) {}

  void run();
  /// The handshake slot (server_context::acquire_handshake) this session gives back when its handshake ends.
  void hold_handshake_slot(std::string address) { handshake_slot_.emplace(context_, std::move(address)); }

 private:
  struct handshake_slot {
    handshake_slot(server_context& c, std::string a) : context(c), address(std::move(a)) {}
    ~handshake_slot() { context.release_handshake(address); }
    handshake_slot(const handshake_slot&) = delete;
    handshake_slot& operator=(const handshake_slot&) = delete;
    server_context& context;
    std::string address;
  };
  plain_stream& tcp() {
    if constexpr (is_tls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }
  void on_handshake(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t bytes);
  void write(http_response response);
  /// Writes the 101 and hands the connection to a WebSocket session holding `address`'s connection slot.
  void upgrade(http_response response, std::string address, caller who);
  std::shared_ptr<http_session> self() { return this->shared_from_this(); }

  std::shared_ptr<asio::ssl::context> tls_context_;  // before stream_: outlives its SSL object
  Stream stream_;
  server_context& context_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<handshake_slot> handshake_slot_;
};

}  // namespace

void serve_http(connection_socket&& socket, server_context& context) {
  std::make_shared<http_session<plain_stream>>(std::move(socket), context)->run();
}

void serve_https(connection_socket&& socket, server_context& context, std::shared_ptr<asio::ssl::context> tls) {
  boost::system::error_code ec;
  auto address = socket.remote_endpoint(ec).address().to_string();
  if (ec) return;  // already gone
  if (auto refused = context.acquire_handshake(address); !refused.empty()) {
    // Every handshake in progress holds an SSL object (tens of KB): past the limit, close at once.
    if (context.stats) context.stats->limit_hit(refused);
    socket.close(ec);
    return;
  }
  auto session = std::make_shared<http_session<tls_stream>>(std::move(socket), context, std::move(tls));
  session->hold_handshake_slot(std::move(address));
  session->run();
}

template <class Stream>
void http_session<Stream>::run() {
  if constexpr (is_tls) {
    asio::dispatch(stream_.get_executor(), [self = self()] {
      // A client that connects and never finishes its handshake holds a socket and an SSL object.
      self->tcp().expires_after(self->context_.options.tls_handshake_timeout);
      self->stream_.async_handshake(asio::ssl::stream_base::server,
                                    beast::bind_front_handler(&http_session::on_handshake, self));
    });
  } else {
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&http_session::do_read, self()));
  }
}

template <class Stream>
void http_session<Stream>::on_handshake(beast::error_code ec) {
  handshake_slot_.reset();
  if (ec) {
    // Plain HTTP to the TLS port, an unknown client CA, a timeout: logged without detail at info.
    if (context_.stats) context_.stats->tls_handshake_failed();
    boost::system::error_code ignored;
    log::debug("tls_handshake_failed",
               {{"address", tcp().socket().remote_endpoint(ignored).address().to_string()}, {"error", ec.message()}});
    if (ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
      // Plain HTTP to the TLS port (a ws:// URL, a health check without TLS): say so in plain HTTP.
      static const std::string plain_http_refused = [] {
        const std::string body =
            R"({"error":{"code":"ERR_TLS_REQUIRED","message":"This port speaks TLS: use https:// or wss:// URLs"}})";
        return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
               "Content-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
      }();
      asio::async_write(tcp().socket(), asio::buffer(plain_http_refused),
                        [self = self()](boost::system::error_code, std::size_t) {
                          boost::system::error_code ignored_too;
                          self->tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored_too);
                          self->tcp().socket().close(ignored_too);
                        });
      return;
    }
    tcp().socket().close(ignored);
    return;
  }
  do_read();
}

template <class Stream>
void http_session<Stream>::do_read() {
  parser_.emplace();
  parser_->body_limit(http_api::max_request_body);
  tcp().expires_after(request_timeout);
  http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, self()));
}

template <class Stream>
void http_session<Stream>::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec) {
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      http_request req;
      req.version(11);
      http_response res{http::status::bad_request, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = nlohmann::json{{"error", {{"code", "ERR_BAD_REQUEST"}, {"message", ec.message()}}}}.dump();
      res.keep_alive(false);
      res.prepare_payload();
      write(std::move(res));
    }
    return;
  }
  auto request = parser_->release();
  if (beast::websocket::is_upgrade(request)) {
    auto target = request.target();
    auto path = target.substr(0, target.find('?'));
    if (path == "/ws" && !context_.draining) {
      auto response = websocket_upgrade_response(request);
      if (response.result() == http::status::switching_protocols) {
        boost::system::error_code ignored;
        auto address = tcp().socket().remote_endpoint(ignored).address().to_string();
        auto who = authenticate(context_.verifier, request, true, std::chrono::system_clock::now());
        if (auto* refused = std::get_if<auth_refusal>(&who)) {
          // Logged and counted without the token.
          if (context_.stats) context_.stats->auth_failed(refused->reason);
          log::info("auth_refused", {{"address", address}, {"reason", refused->reason}});
          auto res = closing_error(request.version(), http::status::unauthorized, refused->code, refused->message);
          res.set(http::field::www_authenticate, "Bearer");
          write(std::move(res));
          return;
        }
        if (auto refused = context_.acquire_connection(address); !refused.empty()) {
          // Refused before the upgrade, so the client sees a plain HTTP error and retries later.
          if (context_.stats) context_.stats->limit_hit(refused);
          auto res = closing_error(request.version(), http::status::service_unavailable, "ERR_TOO_MANY_CONNECTIONS",
                                   refused == "connections" ? "The server has as many connections as it accepts"
                                                            : "Too many connections from this address");
          res.set(http::field::retry_after, "5");
          write(std::move(res));
          return;
        }
        upgrade(std::move(response), std::move(address), std::move(std::get<caller>(who)));
      } else {
        write(std::move(response));
      }
      return;
    }
    write(closing_error(request.version(),
                        context_.draining ? http::status::service_unavailable : http::status::not_found,
                        context_.draining ? "ERR_SHUTTING_DOWN" : "ERR_NOT_FOUND",
                        context_.draining ? "The server is shutting down" : "WebSocket connections are served at /ws"));
    return;
  }
  bool head = request.method() == http::verb::head;
  handle_http(context_, request, [self = self(), head](http_response response) {
    asio::post(self->stream_.get_executor(), [self, head, response = std::move(response)]() mutable {
      if (head) response.body().clear();
      self->write(std::move(response));
    });
  });
}

template <class Stream>
void http_session<Stream>::upgrade(http_response response, std::string address, caller who) {
  auto shared = std::make_shared<http_response>(std::move(response));
  tcp().expires_after(request_timeout);
  http::async_write(stream_, *shared,
                    [self = self(), shared, address = std::move(address), who = std::move(who)](beast::error_code ec,
                                                                                                std::size_t) mutable {
                      if (ec) {
                        self->context_.release_connection(address);
                        return;
                      }
                      self->tcp().expires_never();
                      // Bytes the client sent right after its request already belong to the WebSocket.
                      auto early = self->buffer_.cdata();
                      std::string_view extra(static_cast<const char*>(early.data()), early.size());
                      if constexpr (is_tls) {
                        auto link = std::make_unique<tls_link>(std::move(self->stream_), self->tls_context_);
                        std::make_shared<websocket_session>(std::move(link), self->context_, extra, std::move(address),
                                                            std::move(who))
                            ->run();
                      } else {
                        std::make_shared<websocket_session>(self->stream_.release_socket(), self->context_, extra,
                                                            std::move(address), std::move(who))
                            ->run();
                      }
                    });
}

template <class Stream>
void http_session<Stream>::write(http_response response) {
  auto shared = std::make_shared<http_response>(std::move(response));
  bool keep_alive = shared->keep_alive();
  // The write's own bound: the answer may have waited (a read waits for the store, --max-store-wait-ms).
  tcp().expires_after(request_timeout);
  http::async_write(stream_, *shared, [self = self(), shared, keep_alive](beast::error_code ec, std::size_t) {
    if (ec) return;
    if (!keep_alive || self->context_.draining) {
      self->tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      return;
    }
    self->do_read();
  });
}

}  // namespace otsync::server
