#include "http_session.hpp"

#include <chrono>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include "authenticate.hpp"
#include "http_target.hpp"
#include "otsync/server/log.hpp"
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
}  // namespace

http_session::http_session(connection_socket&& socket, server_context& context)
    : stream_(std::move(socket)), context_(context) {}

void http_session::run() {
  asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&http_session::do_read, shared_from_this()));
}

void http_session::do_read() {
  parser_.emplace();
  parser_->body_limit(http_api::max_request_body);
  stream_.expires_after(request_timeout);
  http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
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
        auto address = stream_.socket().remote_endpoint(ignored).address().to_string();
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
  handle_http(context_, request, [self = shared_from_this(), head](http_response response) {
    asio::post(self->stream_.get_executor(), [self, head, response = std::move(response)]() mutable {
      if (head) response.body().clear();
      self->write(std::move(response));
    });
  });
}

void http_session::upgrade(http_response response, std::string address, caller who) {
  auto shared = std::make_shared<http_response>(std::move(response));
  stream_.expires_after(request_timeout);
  http::async_write(stream_, *shared,
                    [self = shared_from_this(), shared, address = std::move(address), who = std::move(who)](
                        beast::error_code ec, std::size_t) mutable {
                      if (ec) {
                        self->context_.release_connection(address);
                        return;
                      }
                      self->stream_.expires_never();
                      // Bytes the client sent right after its request already belong to the WebSocket.
                      auto early = self->buffer_.cdata();
                      std::string_view extra(static_cast<const char*>(early.data()), early.size());
                      std::make_shared<websocket_session>(self->stream_.release_socket(), self->context_, extra,
                                                          std::move(address), std::move(who))
                          ->run();
                    });
}

void http_session::write(http_response response) {
  auto shared = std::make_shared<http_response>(std::move(response));
  bool keep_alive = shared->keep_alive();
  http::async_write(stream_, *shared,
                    [self = shared_from_this(), shared, keep_alive](beast::error_code ec, std::size_t) {
                      if (ec) return;
                      if (!keep_alive || self->context_.draining) {
                        self->stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
                        return;
                      }
                      self->do_read();
                    });
}

}  // namespace otsync::server
