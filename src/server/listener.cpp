#include "listener.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>

#include "http_session.hpp"
#include "otsync/server/log.hpp"
#include "tls.hpp"

namespace otsync::server {
namespace asio = boost::asio;

listener::listener(asio::io_context::executor_type executor,
                   std::vector<asio::io_context::executor_type> connection_contexts, server_context& context)
    : connection_contexts_(std::move(connection_contexts)), context_(context), acceptor_(asio::make_strand(executor)) {}

boost::system::error_code listener::open(const asio::ip::tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  return ec;
}

asio::ip::tcp::endpoint listener::local_endpoint() const {
  return acceptor_.local_endpoint();
}

void listener::start() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->do_accept(); });
}

void listener::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

void listener::do_accept() {
  // Each connection goes to the next I/O thread's context: its reads, writes and the documents it
  // opens first then hand work to each other on one thread.
  const auto& home = connection_contexts_[next_context_++ % connection_contexts_.size()];
  acceptor_.async_accept(home, [self = shared_from_this()](boost::system::error_code ec, connection_socket socket) {
    if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
    if (ec) {
      log::warn("accept_failed", {{"error", ec.message()}});
    } else {
      boost::system::error_code opt;
      socket.set_option(asio::ip::tcp::no_delay(true), opt);
      if (self->context_.tls) {
        serve_https(std::move(socket), self->context_, self->context_.tls->current());
      } else {
        serve_http(std::move(socket), self->context_);
      }
    }
    self->do_accept();
  });
}

}  // namespace otsync::server
