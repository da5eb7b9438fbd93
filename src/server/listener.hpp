// Accepts TCP connections and starts an HTTP session for each, handing them
// to the I/O threads' contexts in turn.
//
// Thread safety: the acceptor lives on its own strand; `stop` may be called
// from any thread.
#pragma once

#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include "context.hpp"

namespace otsync::server {

class listener : public std::enable_shared_from_this<listener> {
 public:
  /// Accepts on `executor`; connections go to `connection_contexts` in turn (not empty).
  listener(boost::asio::io_context::executor_type executor,
           std::vector<boost::asio::io_context::executor_type> connection_contexts, server_context& context);
  /// Binds and listens; the error says why not (address in use, ...).
  boost::system::error_code open(const boost::asio::ip::tcp::endpoint& endpoint);
  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;
  void start();
  void stop();

 private:
  void do_accept();

  std::vector<boost::asio::io_context::executor_type> connection_contexts_;
  std::size_t next_context_ = 0;  // on the acceptor's strand
  server_context& context_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace otsync::server
